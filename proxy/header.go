package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"
)

// passNames are the header names the header passes act on, each at its
// bit in a headerSet. The first hopCount are the hop-by-hop headers (RFC
// 9110 §7.6.1): they describe one connection, not the message, so they
// are never forwarded in either direction. Transfer-Encoding is
// hop-by-hop too; fasthttp re-derives it from the body framing on every
// write, so it needs no deletion here.
var passNames = [...]string{
	fasthttp.HeaderConnection,
	fasthttp.HeaderKeepAlive,
	"Proxy-Connection",
	fasthttp.HeaderProxyAuthenticate,
	fasthttp.HeaderProxyAuthorization,
	fasthttp.HeaderTE,
	fasthttp.HeaderTrailer,
	fasthttp.HeaderUpgrade,
	headerAccelBuffering,
	fasthttp.HeaderExpect,
	fasthttp.HeaderXForwardedFor,
	fasthttp.HeaderXForwardedProto,
	fasthttp.HeaderXForwardedHost,
	headerRequestID,
}

const hopCount = 8

// A headerSet is a set of passNames: those a message may hold, found in
// one walk over its headers, so that a pass deletes, or looks for, only
// what is there instead of walking the headers once per name. A name
// missing from the set is certainly missing from the message; one in it
// may have gone since (a Connection header may name it).
type headerSet uint16

const (
	hasConnection headerSet = 1 << iota
	_                       // Keep-Alive
	_                       // Proxy-Connection
	_                       // Proxy-Authenticate
	_                       // Proxy-Authorization
	_                       // TE
	_                       // Trailer
	_                       // Upgrade
	hasAccelBuffering
	hasExpect
	hasForwardedFor
	hasForwardedProto
	hasForwardedHost
	hasRequestID

	hopHeaders  = 1<<hopCount - 1
	everyHeader = hasRequestID<<1 - 1
)

// nameBit is name's bit in a headerSet; 0 if it is none of passNames.
func nameBit(name []byte) headerSet {
	for i, n := range passNames {
		if len(name) == len(n) && asciiEqualFold(name, n) {
			return 1 << i
		}
	}
	return 0
}

// asciiEqualFold reports whether b and s, of one length, are equal but for
// the case of ASCII letters: header names are ASCII tokens. (Folding
// every byte with |0x20 would take a CR for a '-'.)
func asciiEqualFold(b []byte, s string) bool {
	for i := range b {
		if c, d := b[i], s[i]; c != d {
			if c |= 0x20; c < 'a' || c > 'z' || c != d|0x20 {
				return false
			}
		}
	}
	return true
}

// requestHeaderSet walks the request's header block as the client sent
// it (RawHeaders; the edge has refused what is not cleanly framed,
// obs-fold included, so a line is a whole field), and
// returns the passNames in it, with the values of its Connection headers
// appended to conn, each followed by a comma. A request without a raw
// block (not read from a client), or with a chunked body, whose trailer
// section may have added fields, gets every name: the passes then look
// for each.
func requestHeaderSet(h *fasthttp.RequestHeader, conn []byte) (headerSet, []byte) {
	raw := h.RawHeaders()
	if len(raw) == 0 || h.ContentLength() == -1 {
		return everyHeader, appendConnectionValues(conn, h.PeekAll(fasthttp.HeaderConnection))
	}
	var set headerSet
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, value, ok := bytes.Cut(line, strColon)
		if !ok {
			continue
		}
		bit := nameBit(bytes.TrimSpace(name))
		set |= bit
		if bit == hasConnection {
			conn = append(append(conn, value...), ',')
		}
	}
	if h.ConnectionClose() { // an HTTP/1.0 request without keep-alive, too
		set |= hasConnection
	}
	return set, conn
}

// responseHeaderSet is requestHeaderSet for a response, walking its
// parsed headers. A response that announces trailers, or has a chunked
// or close-delimited body, gets every name: fasthttp's walk would copy
// its Trailer header, and its trailer section may add fields.
func responseHeaderSet(h *fasthttp.ResponseHeader, conn []byte) (headerSet, []byte) {
	if h.ContentLength() < 0 || announcesTrailers(h) {
		return everyHeader, appendConnectionValues(conn, h.PeekAll(fasthttp.HeaderConnection))
	}
	var set headerSet
	for name, value := range h.All() {
		bit := nameBit(name)
		set |= bit
		if bit == hasConnection {
			conn = append(append(conn, value...), ',')
		}
	}
	return set, conn
}

// announcesTrailers reports whether the response's Trailer header names
// any field.
func announcesTrailers(h *fasthttp.ResponseHeader) bool {
	for range h.Trailers() {
		return true
	}
	return false
}

// appendConnectionValues appends the Connection header's values to conn,
// each followed by a comma, as the headerSet functions do.
func appendConnectionValues(conn []byte, values [][]byte) []byte {
	for _, v := range values {
		conn = append(append(conn, v...), ',')
	}
	return conn
}

var strColon = []byte{':'}

// header is what RequestHeader and ResponseHeader share for hygiene and
// header rules.
type header interface {
	Del(key string)
	DelBytes(key []byte)
	SetBytesKV(key, value []byte)
}

// stripHeaders deletes from h the passNames in del, and every header the
// Connection values in conn (as requestHeaderSet and responseHeaderSet
// append them) name.
// Framing and Host are never deleted that way: a client must not be able
// to remove what makes the request well formed.
func stripHeaders(h header, del headerSet, conn []byte) {
	for len(conn) > 0 {
		var name []byte
		name, conn, _ = bytes.Cut(conn, comma)
		name = bytes.TrimSpace(name)
		if len(name) == 0 || protectedHeader(name) {
			continue
		}
		h.DelBytes(name)
	}
	for i, name := range passNames {
		if del&(1<<i) != 0 {
			h.Del(name)
		}
	}
}

var comma = []byte{','}

func protectedHeader(name []byte) bool {
	for _, p := range [...]string{fasthttp.HeaderHost, fasthttp.HeaderContentLength, fasthttp.HeaderTransferEncoding, "close", "keep-alive"} {
		if len(name) == len(p) && bytes.EqualFold(name, []byte(p)) {
			return true
		}
	}
	return false
}

// setForwarded sets the X-Forwarded-* headers: the client's address is
// appended to X-Forwarded-For (after any values it brought, joined into
// one header); X-Forwarded-Proto and X-Forwarded-Host are replaced with
// proto and host, unless the peer is trusted (trusted_proxies) and sent
// its own. set says which of them the request may hold (headerSet); only
// those are looked for. It returns the grown scratch buffer.
func setForwarded(h *fasthttp.RequestHeader, set headerSet, clientIP net.IP, trusted bool, proto, host, scratch []byte) []byte {
	scratch = scratch[:0]
	if set&hasForwardedFor != 0 {
		for _, v := range h.PeekAll(fasthttp.HeaderXForwardedFor) {
			scratch = append(append(scratch, v...), ", "...)
		}
		h.Del(fasthttp.HeaderXForwardedFor)
	}
	scratch = appendIP(scratch, clientIP)
	h.SetCanonical(keyForwardedFor, scratch)
	replaceUntrusted(h, keyForwardedProto, proto, trusted, set&hasForwardedProto != 0)
	replaceUntrusted(h, keyForwardedHost, host, trusted, set&hasForwardedHost != 0)
	return scratch
}

// The headers tailguard sets on every request, in fasthttp's canonical
// form, so that setting them skips the normalisation of the key.
var (
	keyForwardedFor   = []byte(fasthttp.HeaderXForwardedFor)
	keyForwardedProto = []byte(fasthttp.HeaderXForwardedProto)
	keyForwardedHost  = []byte(fasthttp.HeaderXForwardedHost)
	keyRequestID      = []byte(headerRequestID)
)

// replaceUntrusted sets key (canonical) to v, unless the peer is trusted
// and sent one value of its own, which is then kept (several are
// replaced). sent is false when the request certainly has no key header.
func replaceUntrusted(h *fasthttp.RequestHeader, key, v []byte, trusted, sent bool) {
	if sent {
		if trusted && len(h.PeekAll(string(key))) == 1 {
			return
		}
		h.DelBytes(key)
	}
	h.SetCanonical(key, v)
}

// trustedPeer reports whether ip is in one of the networks.
func trustedPeer(ip net.IP, networks []netip.Prefix) bool {
	if len(networks) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, n := range networks {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// appendIP appends ip in text form without allocating (net.IP.String
// allocates).
func appendIP(dst []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		for i, b := range ip4 {
			if i > 0 {
				dst = append(dst, '.')
			}
			dst = strconv.AppendUint(dst, uint64(b), 10)
		}
		return dst
	}
	if a, ok := netip.AddrFromSlice(ip); ok {
		return a.AppendTo(dst)
	}
	return append(dst, "unknown"...)
}
