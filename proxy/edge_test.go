package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnectionCap: a connection over limits.max_connections gets
// tailguard's own 503 (X-Tailguard-Error: connection_limit, Retry-After)
// and is closed; the connections under the cap keep being served, and a
// slot freed by a closing client is taken by the next.
func TestConnectionCap(t *testing.T) {
	up := startRaw(t, replyOK)
	addr := startProxy(t, `
listen: "127.0.0.1:0"
limits: {max_connections: 3}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, up.addr())
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	var held []*keptConn
	for range 3 {
		c := dialKept(t, addr)
		if status := c.do(t, get); status != 200 {
			t.Fatalf("connection under the cap: status %d", status)
		}
		held = append(held, c)
	}

	resp := rawRequest(t, addr, get)
	for _, want := range []string{"HTTP/1.1 503 ", "X-Tailguard-Error: connection_limit\r\n", "Retry-After: 1\r\n", "Connection: close\r\n", "tailguard: too many client connections"} {
		if !strings.Contains(resp, want) {
			t.Errorf("connection over the cap: response %q lacks %q", resp, want)
		}
	}
	for i, c := range held {
		if status := c.do(t, get); status != 200 {
			t.Errorf("held connection %d after a refusal: status %d", i, status)
		}
	}

	held[0].Close()
	ok := false
	for range 100 { // the server notices the close asynchronously
		if strings.HasPrefix(rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200 ") {
			ok = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !ok {
		t.Error("a slot freed by a closed connection was never reused")
	}
}

// keptConn is a keep-alive client connection for raw requests.
type keptConn struct {
	net.Conn
	br       *bufio.Reader
	lastBody string // of the last response get read
}

func dialKept(t testing.TB, addr string) *keptConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{Conn: c, br: bufio.NewReader(c)}
}

// do sends raw and returns the response's status (0 if none came).
func (c *keptConn) do(t testing.TB, raw string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestChunkFramingOverhead: a chunked request body may spend only so many
// wire bytes on framing (chunk extensions, chunk lines) for the data it
// carries; beyond that it is refused like a broken body. Ordinary chunking,
// even a byte per chunk, passes whole.
func TestChunkFramingOverhead(t *testing.T) {
	var received atomic.Int64
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		received.Store(n)
		fmt.Fprintf(w, "%d", n)
	}))
	addr := startProxy(t, oneRoute, up)
	chunks := func(n int, ext string, data string) string {
		var sb strings.Builder
		for range n {
			fmt.Fprintf(&sb, "%x%s\r\n%s\r\n", len(data), ext, data)
		}
		return sb.String() + "0\r\n\r\n"
	}
	tests := []struct {
		name   string
		body   string
		status int
		want   int64 // bytes the upstream read, when it answered
	}{
		{"one byte per chunk", chunks(5000, "", "x"), 200, 5000},
		{"short extensions", chunks(2000, ";name=value", "abcd"), 200, 8000},
		{"large chunks", chunks(40, "", strings.Repeat("y", 4096)), 200, 40 * 4096},
		{"one 200 KiB extension", "1;" + strings.Repeat("e", 200<<10) + "\r\nx\r\n0\r\n\r\n", 400, 0},
		// Sent in one write with the head: fasthttp's reader holds up to
		// 16 KiB of it before the meter starts, and those bytes count.
		{"one 20 KiB extension", "1;" + strings.Repeat("e", 20<<10) + "\r\nx\r\n0\r\n\r\n", 400, 0},
		{"a 15 KiB chunk with the head", chunks(1, "", strings.Repeat("z", 15<<10)), 200, 15 << 10},
		{"a 2 KiB extension", chunks(1, ";"+strings.Repeat("e", 2<<10), "abcd"), 200, 4},
		{"many 1 KiB extensions", chunks(200, ";"+strings.Repeat("e", 1024), "x"), 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			received.Store(-1)
			resp := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"+tt.body)
			status := 0
			fmt.Sscanf(resp, "HTTP/1.1 %d", &status)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %.200q", status, tt.status, resp)
			}
			if tt.status != 200 {
				if !strings.Contains(resp, "X-Tailguard-Error: bad_request") {
					t.Errorf("refusal without X-Tailguard-Error: bad_request: %.300q", resp)
				}
				if n := received.Load(); n != -1 {
					t.Errorf("the upstream read a whole body of %d bytes", n)
				}
				return
			}
			if n := received.Load(); n != tt.want {
				t.Errorf("upstream read %d bytes, want %d", n, tt.want)
			}
		})
	}
}

// TestChunkFramingOverheadLargeHeadBuffer: with limits.max_header_bytes
// above the framing allowance, an oversized body can arrive whole with its
// head and be decoded without a metered read; it is refused at its end.
func TestChunkFramingOverheadLargeHeadBuffer(t *testing.T) {
	var whole atomic.Int64
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			panic(http.ErrAbortHandler)
		}
		whole.Add(1)
	}))
	addr := startProxy(t, `
listen: "127.0.0.1:0"
limits: {max_header_bytes: 64KiB}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, up)
	const head = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
	resp := rawRequest(t, addr, head+"1;"+strings.Repeat("e", 30<<10)+"\r\nx\r\n0\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 400 ") || !strings.Contains(resp, "X-Tailguard-Error: bad_request\r\n") {
		t.Errorf("a 30 KiB chunk extension: %.200q, want 400 bad_request", resp)
	}
	if n := whole.Load(); n != 0 {
		t.Errorf("the upstream read %d whole bodies", n)
	}
	if resp := rawRequest(t, addr, head+"5;"+strings.Repeat("e", 2<<10)+"\r\nhello\r\n0\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
		t.Errorf("a 2 KiB chunk extension: %.200q, want 200", resp)
	}
}

// TestChunkedBodyClosesConnection: after a request with a chunked body the
// connection closes, so no byte after where fasthttp ended the body (its
// trailer parser is lenient) is read as a request; a trailer field whose
// name is not a token is refused before it is forwarded.
func TestChunkedBodyClosesConnection(t *testing.T) {
	const head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	const next = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, body string
		status     int
	}{
		{"plain", "1\r\nx\r\n0\r\n\r\n" + next, 200},
		{"trailers", "1\r\nx\r\n0\r\nX-Checksum: 1\r\n\r\n" + next, 200},
		{"bare LF ending the trailers", "1\r\nx\r\n0\r\n\n" + next, 200},
		{"space in a trailer name", "1\r\nx\r\n0\r\nX Y: 1\r\n\r\n" + next, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startStrictUpstream(t)
			addr := startProxy(t, oneRoute, up.addr())
			resp := rawRequest(t, addr, head+tt.body)
			if !strings.HasPrefix(resp, fmt.Sprintf("HTTP/1.1 %d ", tt.status)) {
				t.Fatalf("response %.200q, want status %d", resp, tt.status)
			}
			if n := strings.Count(resp, "HTTP/1.1 "); n != 1 || !strings.Contains(resp, "Connection: close\r\n") {
				t.Errorf("%d responses, want one with Connection: close: %q", n, resp)
			}
			if v := up.takeViolations(); len(v) > 0 {
				t.Errorf("upstream saw %q", v)
			}
			if want := map[int]int{200: 1, 400: 0}[tt.status]; up.requestCount() != want {
				t.Errorf("upstream got %d whole requests, want %d", up.requestCount(), want)
			}
		})
	}
}
