package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func replyOK(c net.Conn, _ int, _ string) { _, _ = io.WriteString(c, okReply) }

// headerOf returns a header's value from a raw request head, or "".
func headerOf(head, name string) string {
	for _, line := range strings.Split(head, "\r\n")[1:] {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestRequestHeaderHygiene(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	resp := rawRequest(t, addr, "GET /a?b=1 HTTP/1.1\r\n"+
		"Host: Example.com:8000\r\n"+
		"Connection: keep-alive, X-Hop, Host\r\n"+
		"X-Hop: secret\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"TE: trailers\r\n"+
		"Upgrade: websocket\r\n"+
		"X-Forwarded-For: 10.1.1.1\r\n"+
		"X-Forwarded-Proto: https\r\n"+
		"X-Forwarded-Host: spoofed\r\n"+
		"X-Keep: yes\r\n"+
		"Connection: close\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("response: %q", resp)
	}
	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests", len(reqs))
	}
	head := reqs[0]
	if !strings.HasPrefix(head, "GET /a?b=1 HTTP/1.1\r\n") {
		t.Errorf("request line: %q", head)
	}
	for _, gone := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "TE", "Upgrade"} {
		if v := headerOf(head, gone); v != "" {
			t.Errorf("%s forwarded: %q", gone, v)
		}
	}
	want := map[string]string{
		"Host":              "Example.com:8000",
		"X-Forwarded-For":   "10.1.1.1, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "Example.com:8000",
		"X-Keep":            "yes",
	}
	for k, v := range want {
		if got := headerOf(head, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if id := headerOf(head, "X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("X-Request-Id = %q, want 32 hex digits", id)
	}
}

func TestRequestIDKept(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\nConnection: close\r\n\r\n")
	if got := headerOf(up.requests()[0], "X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q", got)
	}
}

func TestResponseHeaderHygiene(t *testing.T) {
	up := startRaw(t, func(c net.Conn, _ int, _ string) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Hop\r\n"+
			"X-Hop: secret\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Authenticate: Basic\r\n"+
			"Upgrade: h2c\r\n"+
			"X-Keep: yes\r\n"+
			"Server: app/1.0\r\n"+
			"Date: Mon, 02 Jan 2006 15:04:05 GMT\r\n"+
			"Content-Length: 2\r\n\r\nok")
	})
	addr := startProxy(t, oneRoute, up.addr())
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, gone := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v := resp.Header.Get(gone); v != "" {
			t.Errorf("%s passed to client: %q", gone, v)
		}
	}
	for k, v := range map[string]string{"X-Keep": "yes", "Server": "app/1.0", "Date": "Mon, 02 Jan 2006 15:04:05 GMT"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestOnlyConfiguredUpstream: an absolute-form request target names
// another host; the request still goes to the configured upstream, in
// origin form.
func TestOnlyConfiguredUpstream(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	resp := rawRequest(t, addr, "GET http://evil.example:9/x?y HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("response: %q", resp)
	}
	head := up.requests()[0]
	if !strings.HasPrefix(head, "GET /x?y HTTP/1.1\r\n") {
		t.Errorf("request line: %q", head)
	}
}

func TestKeepAliveReuse(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	for i := range 20 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	if n := up.connCount(); n != 1 {
		t.Errorf("upstream connections = %d, want 1", n)
	}
}

// TestClientConnectionClose: a client's Connection: close closes the client
// connection, not the pooled upstream one.
func TestClientConnectionClose(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	for range 3 {
		resp := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasSuffix(resp, "ok") || !strings.Contains(resp, "Connection: close") {
			t.Fatalf("response: %q", resp)
		}
	}
	if n := up.connCount(); n != 1 {
		t.Errorf("upstream connections = %d, want 1", n)
	}
}

func TestHTTP10Client(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, oneRoute, up.addr())
	resp := rawRequest(t, addr, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	if !strings.Contains(resp, " 200 ") || !strings.HasSuffix(resp, "ok") {
		t.Fatalf("response: %q", resp)
	}
	if !strings.HasPrefix(up.requests()[0], "GET / HTTP/1.1\r\n") {
		t.Errorf("upstream request line: %q", up.requests()[0])
	}
}

// TestOwnErrors: each failure tailguard answers itself has its status, its
// X-Tailguard-Error, and a fixed body that never carries upstream bytes.
func TestOwnErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	stall := startRaw(t, func(c net.Conn, _ int, _ string) { _, _ = io.Copy(io.Discard, c) })
	reset := startRaw(t, func(c net.Conn, _ int, _ string) { c.(*net.TCPConn).SetLinger(0); c.Close() })
	garbage := startRaw(t, func(c net.Conn, _ int, _ string) { io.WriteString(c, "SECRET garbage\r\n\r\n") })
	counting := startRaw(t, replyOK)

	const routes = `
listen: "127.0.0.1:0"
limits: {max_body_bytes: 1KiB}
upstreams:
  refused: {endpoints: ["%s"]}
  stall: {endpoints: ["%s"]}
  reset: {endpoints: ["%s"]}
  garbage: {endpoints: ["%s"]}
  counting: {endpoints: ["%s"]}
routes:
  - {name: refused, match: {path_prefix: /refused}, upstream: refused}
  - {name: stall, match: {path_prefix: /stall}, upstream: stall, timeout: 200ms}
  - {name: reset, match: {path_prefix: /reset}, upstream: reset}
  - {name: garbage, match: {path_prefix: /garbage}, upstream: garbage}
  - {name: counting, match: {path_prefix: /counting}, upstream: counting}
`
	addr := startProxy(t, routes, refused, stall.addr(), reset.addr(), garbage.addr(), counting.addr())
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name, req string
		status    int
		cause     string
	}{
		{"no route", "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "no_route"},
		{"refused", "GET /refused HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 502, "connect_failure"},
		{"timeout", "GET /stall HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 504, "timeout"},
		{"reset", "GET /reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 502, "upstream_reset"},
		{"malformed", "GET /garbage HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 502, "bad_response"},
		{"body over limit", "POST /counting HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + big, 413, "body_too_large"},
		{"head too large", "GET /counting HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("y", 20<<10) + "\r\n\r\n", 431, "headers_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(rawRequest(t, addr, tt.req))), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Tailguard-Error") != tt.cause {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), tt.status, tt.cause)
			}
			if !strings.HasPrefix(string(body), "tailguard: ") || strings.Contains(string(body), "SECRET") {
				t.Errorf("body %q", body)
			}
		})
	}
	if n := len(counting.requests()); n != 0 {
		t.Errorf("refused requests reached the upstream %d times", n)
	}
}

// TestExpectContinueOverLimit: a body the route refuses by its
// Content-Length is refused before the client is invited to send it.
func TestExpectContinueOverLimit(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, `
listen: "127.0.0.1:0"
limits: {max_body_bytes: 1KiB}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, up.addr())
	resp := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20971520\r\nExpect: 100-continue\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 413 ") || !strings.Contains(resp, "X-Tailguard-Error: body_too_large") {
		t.Errorf("response: %q", resp)
	}
	if len(up.requests()) != 0 {
		t.Error("the request reached the upstream")
	}
}
