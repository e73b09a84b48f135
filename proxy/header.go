package proxy

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"
)

// hopHeaders are hop-by-hop headers (RFC 9110 §7.6.1): they describe one
// connection, not the message, so they are never forwarded in either
// direction. Transfer-Encoding is hop-by-hop too; fasthttp re-derives it
// from the body framing on every write, so it needs no deletion here.
var hopHeaders = [...]string{
	fasthttp.HeaderConnection,
	fasthttp.HeaderKeepAlive,
	"Proxy-Connection",
	fasthttp.HeaderProxyAuthenticate,
	fasthttp.HeaderProxyAuthorization,
	fasthttp.HeaderTE,
	fasthttp.HeaderTrailer,
	fasthttp.HeaderUpgrade,
}

// header is what RequestHeader and ResponseHeader share for hygiene and
// header rules.
type header interface {
	PeekAll(key string) [][]byte
	Del(key string)
	DelBytes(key []byte)
	SetBytesKV(key, value []byte)
}

// stripHopHeaders deletes the hop-by-hop headers and every header the
// Connection header names. Framing and Host are never deleted that way: a
// client must not be able to remove what makes the request well formed.
// scratch holds a copy of the Connection values while headers move; the
// grown scratch is returned for reuse.
func stripHopHeaders(h header, scratch []byte) []byte {
	scratch = scratch[:0]
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		scratch = append(append(scratch, v...), ',')
	}
	for len(scratch) > 0 {
		var name []byte
		name, scratch, _ = bytes.Cut(scratch, comma)
		name = bytes.TrimSpace(name)
		if len(name) == 0 || protectedHeader(name) {
			continue
		}
		h.DelBytes(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	return scratch
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
// its own. It returns the grown scratch buffer.
func setForwarded(h *fasthttp.RequestHeader, clientIP net.IP, trusted bool, proto, host, scratch []byte) []byte {
	scratch = scratch[:0]
	for _, v := range h.PeekAll(fasthttp.HeaderXForwardedFor) {
		scratch = append(append(scratch, v...), ", "...)
	}
	scratch = appendIP(scratch, clientIP)
	h.Del(fasthttp.HeaderXForwardedFor)
	h.SetBytesV(fasthttp.HeaderXForwardedFor, scratch)
	replaceUntrusted(h, fasthttp.HeaderXForwardedProto, proto, trusted)
	replaceUntrusted(h, fasthttp.HeaderXForwardedHost, host, trusted)
	return scratch
}

// replaceUntrusted sets key to v, unless the peer is trusted and sent one
// value of its own, which is then kept (several are replaced).
func replaceUntrusted(h *fasthttp.RequestHeader, key string, v []byte, trusted bool) {
	if trusted {
		if all := h.PeekAll(key); len(all) == 1 {
			return
		}
	}
	h.Del(key)
	h.SetBytesV(key, v)
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
