package edge

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
)

// Request hygiene: what fasthttp accepts but tailguard refuses, because a
// parser in front of tailguard or behind it could read the same bytes as a
// different request (request smuggling, RFC 9112 §11.2). fasthttp already
// refuses duplicate or malformed Content-Length, Transfer-Encoding codings
// other than chunked or identity, doubled Transfer-Encoding, bad chunk
// lines, NUL and bare CR, and missing or duplicate Host on HTTP/1.1. What
// it lets through is checked here, once per request, before the route is
// matched, on the raw header block fasthttp keeps
// (RequestHeader.RawHeaders) where its parser normalised things away.
// The check allocates nothing.

// maxHeaders bounds the header lines of one request (431 above it), as
// Envoy's and Apache's default of 100 does. The head's size is bounded
// separately, by limits.max_header_bytes.
const maxHeaders = 100

// Check reports why the request in ctx must not be forwarded, or
// cause.None. maxURI bounds the request target (414 above it).
func Check(ctx *fasthttp.RequestCtx, maxURI int) cause.Cause {
	h := &ctx.Request.Header
	if c := checkRequestLine(h.Method(), h.RequestURI(), h.Protocol(), maxURI); c != cause.None {
		return c
	}
	if len(ctx.Host()) == 0 || len(h.Host()) == 0 && h.RequestURI()[0] == '/' {
		// An HTTP/1.0 request may lack Host (fasthttp refuses an HTTP/1.1
		// one), but tailguard forwards the client's Host and never
		// invents one. Nor does it take one from an origin-form target:
		// fasthttp reads "//evil/admin" without a Host header as the
		// authority evil and the path /admin, which would reach the
		// upstream as such.
		return cause.BadRequest
	}
	return checkHeaderBlock(h.RawHeaders())
}

var (
	strHTTP11   = []byte("HTTP/1.1")
	strHTTP10   = []byte("HTTP/1.0")
	strConnect  = []byte(fasthttp.MethodConnect)
	strHTTP     = []byte("http://")
	strHTTPS    = []byte("https://")
	strTE       = []byte("transfer-encoding")
	strCL       = []byte("content-length")
	strUpgrade  = []byte("upgrade")
	strSettings = []byte("http2-settings")
	strChunked  = []byte("chunked")
	strH2C      = []byte("h2c")
)

// checkRequestLine checks what fasthttp parsed of the request line.
//
//   - Versions other than HTTP/1.1 and HTTP/1.0 (fasthttp accepts any
//     HTTP/d.d, and would have tailguard forward HTTP/2.0 as HTTP/1.1).
//   - CONNECT: tailguard never tunnels, and the authority-form target
//     names a destination that is not configured.
//   - The asterisk form (OPTIONS *), which would reach the upstream as
//     the path /%2A.
//   - An absolute-form target whose scheme is not http or https.
//   - A target over maxURI bytes: 414.
func checkRequestLine(method, uri, proto []byte, maxURI int) cause.Cause {
	if !bytes.Equal(proto, strHTTP11) && !bytes.Equal(proto, strHTTP10) {
		return cause.BadRequest
	}
	if bytes.Equal(method, strConnect) {
		return cause.BadRequest
	}
	if len(uri) > maxURI {
		return cause.URITooLong
	}
	if len(uri) == 0 {
		return cause.BadRequest
	}
	if uri[0] == '/' {
		return cause.None
	}
	if hasPrefixFold(uri, strHTTP) || hasPrefixFold(uri, strHTTPS) {
		return cause.None
	}
	return cause.BadRequest
}

// checkHeaderBlock checks the raw header block, from the line after the
// request line to the blank line ending the head. It refuses:
//
//   - a line not ending in CRLF, or holding a CR elsewhere (bare LF, bare
//     CR), and a block not ending in a blank line;
//   - obs-fold: a line starting with a space or tab continues the one
//     before (RFC 9112 §5.2), which fasthttp joins into one value;
//   - a header name that is not a token (a space, a character outside
//     tchar), and names that differ from a framing header only by '_' for
//     '-' (Transfer_Encoding: CGI-style servers read it as the real one);
//   - Transfer-Encoding other than exactly one "chunked" (identity, a list,
//     a doubled header), and Transfer-Encoding with Content-Length;
//   - an h2c upgrade: Upgrade naming h2c, or an HTTP2-Settings header;
//   - more than maxHeaders lines: 431.
func checkHeaderBlock(raw []byte) cause.Cause {
	lines, te, cl := 0, 0, 0
	for {
		i := bytes.IndexByte(raw, '\n')
		if i < 1 || raw[i-1] != '\r' {
			return cause.BadRequest // bare LF, or no line end at all
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		if bytes.IndexByte(line, '\r') >= 0 {
			return cause.BadRequest
		}
		if len(line) == 0 {
			if len(raw) != 0 {
				return cause.BadRequest
			}
			break
		}
		if lines++; lines > maxHeaders {
			return cause.TooManyHeaders
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return cause.BadRequest // a folded line, or no name
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !isToken(name) {
			return cause.BadRequest
		}
		switch len(name) { // most names are none of these: one compare
		case len(strTE):
			if lookalike(name, strTE) {
				return cause.BadRequest
			}
			if bytes.EqualFold(name, strTE) {
				te++
				if !bytes.EqualFold(value, strChunked) {
					return cause.BadRequest
				}
			}
		case len(strCL): // also len(strSettings)
			if lookalike(name, strCL) || bytes.EqualFold(name, strSettings) {
				return cause.BadRequest
			}
			if bytes.EqualFold(name, strCL) {
				cl++
			}
		case len(strUpgrade):
			if bytes.EqualFold(name, strUpgrade) && HasToken(value, strH2C) {
				return cause.BadRequest
			}
		}
	}
	if te > 1 || te == 1 && cl > 0 {
		return cause.BadRequest
	}
	return cause.None
}

// tchar is RFC 9110 §5.6.2's token characters.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// trimOWS trims optional whitespace (spaces and tabs) from both ends.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// lookalike reports whether name is lower-case want with at least one '-'
// written as '_', in any case.
func lookalike(name, want []byte) bool {
	if len(name) != len(want) || bytes.IndexByte(name, '_') < 0 {
		return false
	}
	for i, c := range name {
		if c == '_' {
			c = '-'
		}
		if c|0x20 != want[i]|0x20 {
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list v (a header value)
// holds tok, in any case.
func HasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if bytes.EqualFold(trimOWS(item), tok) {
			return true
		}
	}
	return false
}

func hasPrefixFold(b, prefix []byte) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], prefix)
}
