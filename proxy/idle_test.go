package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// Issue 15: an idle keep-alive client connection is parked (internal/edge/park.go):
// it gives back fasthttp's goroutine, buffers and request context, and is
// served again when its next request comes, closed at its idle timeout or
// at shutdown.

// getOn sends a GET on c and reads the response, which must be a 200 that
// keeps the connection open.
func getOn(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Close || string(b) != "ok" {
		t.Fatalf("GET: %d %q, close %v: %v", resp.StatusCode, b, resp.Close, err)
	}
	_ = c.SetDeadline(time.Time{})
}

// dialUsed opens a connection to addr and uses it for one GET.
func dialUsed(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	getOn(t, c)
	return c
}

// waitParked waits, up to 15 s, until n of s's client connections are
// parked, and /stats says so.
func waitParked(t *testing.T, s *Server, n int64) {
	t.Helper()
	waitLong(t, "parked connections", func() bool { return s.clients.Parked() == n })
	var doc struct {
		Listener struct{ Parked int64 } `json:"listener"`
	}
	readStats(t, s, &doc)
	if doc.Listener.Parked != n {
		t.Errorf("/stats listener.parked = %d, want %d", doc.Listener.Parked, n)
	}
}

// waitLong is waitFor with room for 1,000 connections under -race on a
// busy machine: it polls cond for up to 15 s.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestParkedConnectionServesAgain(t *testing.T) {
	up := startRaw(t, replyOK)
	s, addr := startServer(t, oneRoute, up.addr())
	c := dialUsed(t, addr)
	waitParked(t, s, 1)
	if n := s.clients.Open(); n != 1 {
		t.Errorf("open connections while parked: %d, want 1", n)
	}
	for range 3 { // served again, then parked again
		getOn(t, c)
		waitParked(t, s, 1)
	}
	// A request that arrives in pieces is read whole once woken.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := io.WriteString(c, "Host: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request in pieces: %v, %v", resp, err)
	}
	_ = resp.Body.Close()
}

func TestParkedConnectionIdleTimeout(t *testing.T) {
	up := startRaw(t, replyOK)
	s, addr := startServer(t, oneRoute+"limits: {idle_timeout: 1500ms}\n", up.addr())
	c := dialUsed(t, addr)
	waitParked(t, s, 1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a parked connection past idle_timeout: read %d, %v; want EOF", n, err)
	}
	waitFor(t, "the connection to leave the count", func() bool { return s.clients.Open() == 0 })
	waitParked(t, s, 0)
}

func TestShutdownClosesParked(t *testing.T) {
	up := startRaw(t, replyOK)
	s, addr := startServer(t, oneRoute, up.addr())
	c := dialUsed(t, addr)
	waitParked(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a parked connection at shutdown: read %d, %v; want EOF", n, err)
	}
	waitParked(t, s, 0)
}

// idleConns is how many connections TestIdleConnectionMemory holds.
const idleConns = 1000

// maxIdleBytes bounds the Go heap and goroutine stack one idle
// connection adds, both ends counted (the client's socket is in this
// process too). Measured on linux/amd64, 2 vCPUs: 1.9 to 2.2 KiB, 2.0
// KiB under -race: its socket, wrappers and its entry in the parking's
// map, about 1 KiB; the client's socket and the test's bookkeeping, about
// 1 KiB. A parked connection has no goroutine of its own (one per
// listener watches them all); when each had one it was 4.6 to 5.2 KiB,
// 6.4 KiB under -race. Before parking it was 28 KiB (the read buffer, 16
// KiB; the worker goroutine's stack, 8 KiB; the request context, 2 KiB),
// and 36 KiB before ReduceMemoryUsage (the 8 KiB write buffer). The bound
// is about twice what was measured: any one of those coming back, a
// goroutine per connection included, crosses it.
const maxIdleBytes = 4 << 10

// TestIdleConnectionMemory: 1,000 idle keep-alive connections, each
// used once, add at most maxIdleBytes each to the live heap and stacks.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	up := startRaw(t, replyOK)
	s, addr := startServer(t, oneRoute, up.addr())
	getOn(t, dialUsed(t, addr)) // the upstream connection, pools, lazily built state
	waitParked(t, s, 1)
	heap0, stack0 := live()
	goroutines := runtime.NumGoroutine()
	for range idleConns - 1 {
		dialUsed(t, addr)
	}
	waitParked(t, s, idleConns)
	// fasthttp's workers, idle since their connections were parked, exit
	// after a second: then no connection has a goroutine (the listener's
	// one watcher, started by the first, watches them all).
	waitLong(t, "fasthttp's idle workers to exit", func() bool {
		return runtime.NumGoroutine() <= goroutines+16
	})
	heap, stack := live()
	heap, stack = (heap-heap0)/(idleConns-1), (stack-stack0)/(idleConns-1)
	t.Logf("per idle connection: %d B of heap, %d B of stack (bound %d together)", heap, stack, maxIdleBytes)
	if heap+stack > maxIdleBytes {
		t.Errorf("an idle connection holds %d B of heap and %d B of stack, over %d", heap, stack, maxIdleBytes)
	}
}

// live is the Go heap's live objects and the goroutine stacks, in bytes,
// after two collections (the second empties sync.Pools).
func live() (heap, stacks int64) {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64()), int64(s[1].Value.Uint64())
}
