package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"tailguard/proxy/internal/spool"
)

// bufferConfig is one route in front of one endpoint whose pool holds a
// single connection, so that a request holding it shows at once: the next
// one finds the pool full (503 pool_exhausted).
const bufferConfig = `
listen: "127.0.0.1:0"
limits: {read_header_timeout: 500ms, buffer_memory: %s, buffer_disk: %s, buffer_dir: "%s"}
upstreams: {app: {endpoints: ["%s"], max_connections: %d}}
routes: [{name: default, match: {path_prefix: /}, upstream: app, timeout: 20s%s}]
`

// stalledReader dials addr with a tiny receive buffer, sends a GET for
// path and reads nothing: a client as slow as a client can be.
func stalledReader(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	return c
}

// TestBufferedResponseFreesTheUpstream is the slow-client shield: a client
// that reads nothing of a large response holds the upstream's only
// connection when the response streams (the next request finds the pool
// full), and holds nothing when it is buffered (the next request is
// served, from the same connection). When the stalled client goes away,
// everything it held is released: the room, the spill file, goroutines
// and descriptors.
func TestBufferedResponseFreesTheUpstream(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			w.Header().Set("Content-Length", strconv.Itoa(len(large)))
			_, _ = w.Write(large)
			return
		}
		_, _ = io.WriteString(w, "small")
	}))
	ignore := goleak.IgnoreCurrent() // the upstream's
	for _, tt := range []struct {
		name, route string
		status      int
		cause       string
	}{
		{"streamed", ", buffering: {response: off}", 503, "pool_exhausted"},
		{"buffered in memory", "", 200, ""},
		{"buffered on disk", "", 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			memory := "64MiB"
			if tt.name == "buffered on disk" {
				memory = "1MiB"
			}
			srv, addr := startServer(t, bufferConfig, memory, "1GiB", dir, up, 1, tt.route)
			slow := stalledReader(t, addr, "/large")
			// Buffered: wait until tailguard holds the whole response (the
			// upstream's handler returning says only that the kernel has it).
			deadline := time.Now().Add(10 * time.Second)
			for tt.status == 200 && time.Now().Before(deadline) {
				if f := srv.spool.Figures(); f.MemoryBytes+f.DiskBytes >= int64(len(large)) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // the connection is back in the pool; a streamed response is well under way
			status, cause, _ := dialKept(t, addr).get("/small")
			if status != tt.status || cause != tt.cause {
				t.Fatalf("a request behind the stalled client: %d %q, want %d %q", status, cause, tt.status, tt.cause)
			}
			held := openFDs(t)
			f := srv.spool.Figures()
			if tt.status == 200 && f.MemoryBytes+f.DiskBytes < int64(len(large))/2 {
				t.Errorf("the stalled client's response holds %d + %d bytes of room, want about %d", f.MemoryBytes, f.DiskBytes, len(large))
			}
			if spilled := f.Spills > 0; spilled != (tt.name == "buffered on disk") {
				t.Errorf("%d spills", f.Spills)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the buffer directory holds %d entries while a body is spilled", len(entries))
			}
			slow.Close()
			// Gone with the client: its connection's two ends, and the
			// spill file if there was one. (A streamed response's upstream
			// connection closes too, but the pool may dial it again.)
			released := 2
			if f.Spills > 0 {
				released = 3
			}
			for time.Now().Before(deadline) {
				if f = srv.spool.Figures(); f.MemoryBytes == 0 && f.DiskBytes == 0 && openFDs(t) <= held-released {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if f.MemoryBytes != 0 || f.DiskBytes != 0 {
				t.Errorf("after the client left, %d + %d bytes of room are still held", f.MemoryBytes, f.DiskBytes)
			}
			if fds := openFDs(t); fds > held-released {
				t.Errorf("open file descriptors: %d after the client left, %d before", fds, held)
			}
		})
	}
	goleak.VerifyNone(t, append(leakOptions, ignore)...)
}

// bodyUpstream answers each request with its body's length, SHA-256 and
// framing, and counts the requests it has seen.
type bodyUpstream struct {
	addr  string
	seen  atomic.Int32
	fails atomic.Int32 // answer this many requests 503 first
	slow  atomic.Int32 // answer this many requests a second late first
}

func startBodyUpstream(t *testing.T) *bodyUpstream {
	u := &bodyUpstream{}
	u.addr = startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.seen.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		if u.fails.Add(-1) >= 0 {
			w.WriteHeader(503)
			return
		}
		if u.slow.Add(-1) >= 0 {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(w, "%d %x cl=%d te=%v", n, h.Sum(nil), r.ContentLength, r.TransferEncoding)
	}))
	return u
}

// TestBufferedRequestBody: a request body is collected before anything is
// sent upstream. The upstream sees nothing of a request whose body is
// still arriving, nor of one whose client stops sending (408
// body_timeout); it gets a chunked body with a Content-Length, and a
// retry sends the whole body again. With no room at all, the body streams
// and still arrives intact.
func TestBufferedRequestBody(t *testing.T) {
	body := bytes.Repeat([]byte("tailguard"), 50000) // 450,000 bytes
	sum := sha256.Sum256(body)
	want := fmt.Sprintf("%d %x cl=%d te=[]", len(body), sum, len(body))
	up := startBodyUpstream(t)

	t.Run("slow sender", func(t *testing.T) {
		addr := startProxy(t, bufferConfig, "64MiB", "0", t.TempDir(), up.addr, 1, "")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		up.seen.Store(0)
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		for i := 0; i < len(body); i += len(body) / 4 {
			_, _ = c.Write(body[i : i+len(body)/4])
			time.Sleep(200 * time.Millisecond) // under read_header_timeout each time
			if i+len(body)/4 < len(body) && up.seen.Load() != 0 {
				t.Fatal("the upstream saw a request whose body was still arriving")
			}
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("%d %q, want 200 %q", resp.StatusCode, got, want)
		}
	})

	t.Run("stalled sender", func(t *testing.T) {
		addr := startProxy(t, bufferConfig, "64MiB", "0", t.TempDir(), up.addr, 1, "")
		up.seen.Store(0)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body))
		_, _ = c.Write(body[:100000])
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 408 || resp.Header.Get("X-Tailguard-Error") != "body_timeout" || !resp.Close {
			t.Fatalf("%d %q close=%v, want 408 body_timeout and the connection closed", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), resp.Close)
		}
		if up.seen.Load() != 0 {
			t.Fatal("the upstream saw a request whose client stopped sending its body")
		}
	})

	for _, tt := range []struct {
		name, memory, disk, route string
		chunked                   bool
		fails, slow               int32
		status                    int
		want                      string
	}{
		{"chunked", "64MiB", "0", "", true, 0, 0, 200, want},
		{"chunked, spilled", "128KiB", "1MiB", "", true, 0, 0, 200, want},
		{"retried", "64MiB", "0", ", retry: {attempts: 2, on: [503]}", false, 1, 0, 200, want},
		{"retried, spilled", "0", "1MiB", ", retry: {attempts: 2, on: [503]}", false, 1, 0, 200, want},
		// The hedge finds the pool full: the primary's answer still wins.
		{"hedge refused, spilled", "0", "1MiB", ", hedge: {delay: 100ms}", false, 0, 1, 200, want},
		{"hedged, spilled", "0", "1MiB", ", hedge: {delay: 100ms}", false, 0, 1, 200, want},
		{"no room: streamed", "0", "0", "", false, 0, 0, 200, want},
		{"no room: chunked streamed", "0", "0", "", true, 0, 0, 200, fmt.Sprintf("%d %x cl=-1 te=[chunked]", len(body), sum)},
		{"chunked over max_body_bytes", "64MiB", "0", ", max_body_bytes: 100KiB", true, 0, 0, 413, "tailguard: request body too large (route \"default\")\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conns := 1
			if tt.name == "hedged, spilled" {
				conns = 2
			}
			srv, addr := startServer(t, bufferConfig, tt.memory, tt.disk, t.TempDir(), up.addr, conns, tt.route)
			up.seen.Store(0)
			up.fails.Store(tt.fails)
			up.slow.Store(tt.slow)
			var r io.Reader = bytes.NewReader(body)
			if tt.chunked {
				r = io.MultiReader(r) // no length: net/http sends it chunked
			}
			req, _ := http.NewRequest("PUT", "http://"+addr+"/", r)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(got) != tt.want {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, got, tt.status, tt.want)
			}
			if sent := 1 + tt.fails + int32(conns-1)*tt.slow; up.seen.Load() != sent && tt.status == 200 {
				t.Errorf("the upstream saw %d requests, want %d", up.seen.Load(), sent)
			}
			// A losing hedge holds the body until its attempt ends.
			f := srv.spool.Figures()
			for end := time.Now().Add(5 * time.Second); (f.MemoryBytes != 0 || f.DiskBytes != 0) && time.Now().Before(end); {
				time.Sleep(20 * time.Millisecond)
				f = srv.spool.Figures()
			}
			if f.MemoryBytes != 0 || f.DiskBytes != 0 {
				t.Errorf("%d + %d bytes of room held after the request", f.MemoryBytes, f.DiskBytes)
			}
		})
	}
}

// TestStreamsStayStreams: server-sent events and a response whose upstream
// says X-Accel-Buffering: no are passed on as they come, not held until
// they end; X-Accel-Buffering stays between tailguard and the upstream.
func TestStreamsStayStreams(t *testing.T) {
	release := make(chan struct{})
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" { // held whole however it is marked
			w.Header().Set("X-Accel-Buffering", "no")
			_, _ = io.WriteString(w, "ok")
			return
		}
		if r.URL.Path == "/events" {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		} else {
			w.Header().Set("X-Accel-Buffering", "no")
		}
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: last\n\n")
	}))
	addr := startProxy(t, oneRoute, up)
	resp, err := http.Get("http://" + addr + "/small")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("X-Accel-Buffering"); v != "" {
		t.Errorf("/small: X-Accel-Buffering %q reached the client", v)
	}
	for _, path := range []string{"/events", "/accel"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("%s: first line %q (%v) before the stream ended", path, line, err)
		}
		if v := resp.Header.Get("X-Accel-Buffering"); v != "" {
			t.Errorf("%s: X-Accel-Buffering %q reached the client", path, v)
		}
		release <- struct{}{}
		resp.Body.Close()
	}
}

// TestBufferedResponseIntact: responses of every framing arrive whole and
// exact through a buffering route, in memory, spilled to disk, and past
// the room (streamed), with a Content-Length once buffered whole.
func TestBufferedResponseIntact(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 300000) // 3,000,000 bytes
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for i := 0; i < n; i += 100000 {
			_, _ = w.Write(payload[i:min(n, i+100000)])
		}
	}))
	for _, tt := range []struct {
		name, memory, disk string
		spills, fallbacks  bool
	}{
		{"memory", "64MiB", "0", false, false},
		{"spilled", "256KiB", "64MiB", true, false},
		{"no room", "256KiB", "1MiB", true, true},
	} {
		srv, addr := startServer(t, bufferConfig, tt.memory, tt.disk, t.TempDir(), up, 1, "")
		for _, n := range []int{1, spool.ChunkSize + 1, len(payload)} {
			for _, chunked := range []string{"", "1"} {
				resp, err := http.Get(fmt.Sprintf("http://%s/?n=%d&chunked=%s", addr, n, chunked))
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || !bytes.Equal(got, payload[:n]) {
					t.Fatalf("%s, %d bytes chunked=%q: got %d bytes (%v)", tt.name, n, chunked, len(got), err)
				}
				if whole := !tt.fallbacks || n < 1<<20; whole && resp.ContentLength != int64(n) {
					t.Errorf("%s, %d bytes chunked=%q: Content-Length %d", tt.name, n, chunked, resp.ContentLength)
				}
			}
		}
		f := srv.spool.Figures()
		if f.Spills > 0 != tt.spills || f.Fallbacks > 0 != tt.fallbacks || f.MemoryBytes != 0 || f.DiskBytes != 0 {
			t.Errorf("%s: figures %+v", tt.name, f)
		}
	}
}

// TestResponseTimeRunsToTheLastByte: a buffered response's request is
// recorded when its client has taken the last byte, not when the upstream
// is done: a client that takes two seconds to read makes a response time
// of at least that, while the service time stays the upstream's (8 MiB
// over loopback; two seconds leave room for a loaded machine under -race).
func TestResponseTimeRunsToTheLastByte(t *testing.T) {
	large := strings.Repeat("x", 8<<20)
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, large)
	}))
	srv, addr := startServer(t, oneRoute, up)
	slow := stalledReader(t, addr, "/")
	time.Sleep(2 * time.Second)
	br := bufio.NewReader(slow)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != int64(len(large)) {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	var doc struct {
		Routes []struct {
			Requests  int64 `json:"requests"`
			LatencyMS struct {
				Service  struct{ Max float64 } `json:"service"`
				Response struct{ Max float64 } `json:"response"`
			} `json:"latency_ms"`
		} `json:"routes"`
	}
	for range 100 {
		readStats(t, srv, &doc)
		if len(doc.Routes) == 1 && doc.Routes[0].Requests > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(doc.Routes) != 1 || doc.Routes[0].Requests != 1 {
		t.Fatalf("/stats routes: %+v, want one request recorded", doc.Routes)
	}
	l := doc.Routes[0].LatencyMS
	if l.Response.Max < 2000 || l.Service.Max >= 2000 {
		t.Fatalf("response time %vms, service time %vms; want the response ≥ 2s of client reading and the service well under", l.Response.Max, l.Service.Max)
	}
}

// TestStartSweepsTheBufferDir: a spill file a killed process left behind
// (one it made and had not yet unlinked) is removed when a server starts;
// other files stay.
func TestStartSweepsTheBufferDir(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"tailguard-buffer-123", "app.log"} {
		if err := os.WriteFile(dir+"/"+name, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startServer(t, bufferConfig, "1MiB", "1MiB", dir, "127.0.0.1:1", 1, "")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "app.log" {
		t.Fatalf("the buffer directory holds %v, want only app.log", entries)
	}
}
