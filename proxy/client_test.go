package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// get sends GET path through the proxy with a keep-alive client and
// returns status and body.
func get(t *testing.T, c *http.Client, addr, method, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStrayBytesNeverDesync: an upstream that writes bytes after a
// complete response (a second response nobody asked for, or a body after
// a HEAD, 204 or 304) must not poison the pooled connection: every later
// request, from any client, gets its own response.
func TestStrayBytesNeverDesync(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"
	tests := []struct {
		name   string
		method string
		first  string        // the misbehaving response
		delay  time.Duration // before the stray bytes; 0: same write; < 0: next write
	}{
		{"extra response, same write", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA" + evil, 0},
		// Over TLS, a second record right behind the response.
		{"extra response, next write", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA", -1},
		{"extra response, later", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA", 30 * time.Millisecond},
		{"body after HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + evil, 0},
		{"body after 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n" + evil, 0},
		{"body after 304", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n" + evil, 0},
		{"body after 204, later", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 30 * time.Millisecond},
	}
	for _, tr := range upstreamTransports(t) {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				strayWritten := make(chan struct{})
				up := tr.start(t, func(c net.Conn, n int, head string) {
					if n == 1 {
						io.WriteString(c, tt.first)
						if tt.delay != 0 {
							time.Sleep(max(tt.delay, 0))
							io.WriteString(c, evil)
							close(strayWritten)
						}
						return
					}
					body := fmt.Sprintf("B%d", n)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				})
				addr := startProxy(t, tr.config, up.addr())
				client := &http.Client{Transport: &http.Transport{}}
				defer client.CloseIdleConnections()
				get(t, client, addr, tt.method, "/first")
				if tt.delay != 0 {
					// The guarantee is for bytes that arrived before the
					// connection is reused: wait until they were written,
					// however slow the machine, then a little for the
					// kernel to deliver them.
					select {
					case <-strayWritten:
					case <-time.After(5 * time.Second):
						t.Fatal("the upstream never wrote its stray bytes")
					}
				}
				time.Sleep(10 * time.Millisecond)
				for i := 2; i <= 5; i++ {
					status, body := get(t, client, addr, "GET", "/next")
					if status != 200 || body != fmt.Sprintf("B%d", i) {
						t.Fatalf("request %d got %d %q: a response out of step", i, status, body)
					}
				}
				// The misbehaving connection was closed, never reused; the
				// rest shared one new connection.
				if n := up.connCount(); n != 2 {
					t.Errorf("upstream connections = %d, want 2", n)
				}
			})
		}
	}
}

// TestUpstreamClosedIdleConnection: an upstream that closes a keep-alive
// connection while it idles in the pool (without saying Connection: close;
// over TLS, with a close_notify) costs the next request nothing: the
// closed connection is detected before use and a fresh one is dialed.
func TestUpstreamClosedIdleConnection(t *testing.T) {
	for _, tr := range upstreamTransports(t) {
		t.Run(tr.name, func(t *testing.T) {
			up := tr.start(t, func(c net.Conn, n int, _ string) {
				io.WriteString(c, okReply)
				c.Close()
			})
			addr := startProxy(t, tr.config, up.addr())
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := range 5 {
				status, body := get(t, client, addr, "GET", "/")
				if status != 200 || body != "ok" {
					t.Fatalf("request %d: %d %q", i, status, body)
				}
				time.Sleep(20 * time.Millisecond) // the FIN arrives while idle
			}
			if n := up.connCount(); n != 5 {
				t.Errorf("upstream connections = %d, want 5 (one per request)", n)
			}
		})
	}
}

// upstreamTransport is a way to reach a raw upstream: plain TCP, or TLS
// with a CA of the test's own.
type upstreamTransport struct {
	name   string
	start  func(t testing.TB, reply func(c net.Conn, n int, head string)) *rawUpstream
	config string // a one-route config for the upstream at %s
}

func upstreamTransports(t *testing.T) []upstreamTransport {
	pki, pair := upstreamPKI(t)
	return []upstreamTransport{
		{name: "plain", start: startRaw, config: oneRoute},
		{name: "tls", start: func(t testing.TB, reply func(c net.Conn, n int, head string)) *rawUpstream {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return startRawOn(t, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}}), reply)
		}, config: `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], tls: {ca_file: "` + pki.CAFile + `"}}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`},
	}
}

// TestStreamedResponseFailure: once a streamed response has begun, an
// upstream failure can only be signalled by closing the client connection;
// the client must see an error, never a silently truncated body. A
// buffering route reads the whole response before answering, so the
// client gets tailguard's 502 instead.
func TestStreamedResponseFailure(t *testing.T) {
	tests := []struct{ name, reply string }{
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nSECRET\r\n0\r\n\r\n"},
		{"bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"},
		{"truncated chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"},
		{"truncated length", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 70000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startRaw(t, func(c net.Conn, _ int, _ string) {
				io.WriteString(c, tt.reply)
				c.Close()
			})
			for _, buffered := range []bool{false, true} {
				cfg := oneRoute + "    buffering: {response: off}\n"
				if buffered {
					cfg = oneRoute
				}
				addr := startProxy(t, cfg, up.addr())
				resp, err := http.Get("http://" + addr + "/")
				if err != nil {
					continue // refused before the head: also never a truncated body
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case buffered && (err != nil || resp.StatusCode != 502 || resp.Header.Get("X-Tailguard-Error") == ""):
					t.Errorf("buffered: %d %q, %v; want tailguard's 502", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), err)
				case !buffered && err == nil:
					t.Fatalf("client read %d bytes and no error", len(b))
				}
				if strings.Contains(string(b), "SECRET") {
					t.Errorf("bytes after the malformed chunk reached the client")
				}
			}
		})
	}
}
