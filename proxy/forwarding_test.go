package proxy

import (
	"io"
	"net"
	"strings"
	"testing"
)

// TestTrustedProxies: a peer in trusted_proxies keeps the X-Forwarded-Proto
// and -Host it sends; any other peer's are replaced. Either way the peer's
// address is appended to X-Forwarded-For.
func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name, trusted          string
		wantProto, wantHost    string
		wantFor                string
		sentProto, sentHostHdr string
	}{
		{"trusted peer keeps its own", "[127.0.0.0/8]", "https", "shop.example", "203.0.113.9, 127.0.0.1", "https", "shop.example"},
		{"trusted by address", "[127.0.0.1]", "https", "shop.example", "203.0.113.9, 127.0.0.1", "https", "shop.example"},
		{"untrusted peer is replaced", "[10.0.0.0/8]", "http", "h.example", "203.0.113.9, 127.0.0.1", "https", "shop.example"},
		{"no trusted proxies", "[]", "http", "h.example", "203.0.113.9, 127.0.0.1", "https", "shop.example"},
		{"trusted peer without its own", "[127.0.0.0/8]", "http", "h.example", "203.0.113.9, 127.0.0.1", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRaw(t, replyOK)
			addr := startProxy(t, `
listen: "127.0.0.1:0"
trusted_proxies: `+tt.trusted+`
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, up.addr())
			req := "GET / HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n"
			if tt.sentProto != "" {
				req += "X-Forwarded-Proto: " + tt.sentProto + "\r\nX-Forwarded-Host: " + tt.sentHostHdr + "\r\n"
			}
			if resp := rawRequest(t, addr, req+"\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200") {
				t.Fatalf("response %q", resp)
			}
			head := up.requests()[0]
			for name, want := range map[string]string{
				"X-Forwarded-Proto": tt.wantProto, "X-Forwarded-Host": tt.wantHost, "X-Forwarded-For": tt.wantFor,
			} {
				if got := headerOf(head, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestHeaderRules: request_headers and response_headers remove, then set;
// tailguard's own answers are left as they are.
func TestHeaderRules(t *testing.T) {
	up := startRaw(t, func(c net.Conn, _ int, head string) {
		if strings.HasPrefix(head, "GET /close") {
			_ = c.Close() // a reset: tailguard answers 502 itself
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nServer: legacy/1.0\r\nX-Powered-By: php\r\nX-Frame-Options: ALLOW\r\nContent-Length: 2\r\n\r\nok")
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - name: default
    match: {path_prefix: /}
    upstream: app
    request_headers: {set: {X-Env: prod, X-Forwarded-Proto: https, x-request-id: from-the-rule}, remove: [Cookie, X-Debug]}
    response_headers: {set: {X-Frame-Options: DENY, Strict-Transport-Security: max-age=63072000}, remove: [Server, x-powered-by]}
`, up.addr())
	resp := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-Debug: 1\r\nX-Env: dev\r\nX-Keep: 1\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("response %q", resp)
	}
	head := up.requests()[0]
	for name, want := range map[string]string{
		"X-Env": "prod", "X-Forwarded-Proto": "https", "Cookie": "", "X-Debug": "", "X-Keep": "1",
		"X-Request-Id": "from-the-rule", // a rule's id is the request's: none is made up beside it
	} {
		if got := headerOf(head, name); got != want {
			t.Errorf("upstream got %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"x-env:", "x-request-id:"} {
		if n := strings.Count(strings.ToLower(head), name); n != 1 {
			t.Errorf("%s sent %d times", name, n)
		}
	}
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age=63072000", "Server": "", "X-Powered-By": "",
	} {
		if got := headerOf(resp, name); got != want {
			t.Errorf("client got %s = %q, want %q", name, got, want)
		}
	}
	own := rawRequest(t, addr, "GET /close HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(own, "HTTP/1.1 502") || headerOf(own, "Strict-Transport-Security") != "" {
		t.Errorf("own answer %q", own)
	}
}

// TestNameBit: a header name is one of the header passes' names whatever
// the case of its letters, and only then: a byte that folds onto '-' by
// its 0x20 bit (CR) is no dash.
func TestNameBit(t *testing.T) {
	for _, tt := range []struct {
		name string
		want headerSet
	}{
		{"Connection", hasConnection},
		{"cOnNeCtIoN", hasConnection},
		{"X-REQUEST-ID", hasRequestID},
		{"x-forwarded-for", hasForwardedFor},
		{"Keep\rAlive", 0},
		{"X\rRequest\rId", 0},
		{"Connectio", 0},
		{"Content-Length", 0},
	} {
		if got := nameBit([]byte(tt.name)); got != tt.want {
			t.Errorf("nameBit(%q) = %b, want %b", tt.name, got, tt.want)
		}
	}
}
