//go:build linux

package edge

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// parkBed is a fasthttp server behind NewListener, as the proxy runs it,
// answering every request "ok" and keeping the client connection of each.
type parkBed struct {
	ln     *clientListener
	stats  Stats
	served atomic.Int64
	mu     sync.Mutex
	conns  []*clientConn // as the handler saw them, in order
}

// startParkBed serves on 127.0.0.1 with fasthttp's idle timeout idle (0:
// none) until the test ends.
func startParkBed(t *testing.T, idle time.Duration) *parkBed {
	t.Helper()
	b := &parkBed{}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			b.served.Add(1)
			if c, ok := ctx.Conn().(*clientConn); ok {
				b.mu.Lock()
				b.conns = append(b.conns, c)
				b.mu.Unlock()
			}
			ctx.SetBodyString("ok")
		},
		ConnState:             ConnState,
		IdleTimeout:           idle,
		ReduceMemoryUsage:     true,
		MaxIdleWorkerDuration: 100 * time.Millisecond,
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.ln = NewListener(tl, 10000, nil, &b.stats, srv.ServeConn).(*clientListener)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(b.ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		waitUntil(t, "the watcher to stop", func() bool { return watchers() == 0 })
	})
	return b
}

// dial opens a connection to b and uses it for one GET.
func (b *parkBed) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", b.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	get(t, c)
	return c
}

// conn is the server's side of the last connection served.
func (b *parkBed) conn() *clientConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns[len(b.conns)-1]
}

// waitParked waits until n of b's connections are parked.
func (b *parkBed) waitParked(t *testing.T, n int64) {
	t.Helper()
	waitUntil(t, "parked connections", func() bool { return b.stats.Parked() == n })
}

// get sends a GET on c and reads its "ok".
func get(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET: %d %q: %v", resp.StatusCode, body, err)
	}
}

// closedByServer reports whether the server closed c (a read gets EOF)
// within wait, and when.
func closedByServer(t *testing.T, c net.Conn, wait time.Duration) time.Time {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want EOF", n, err)
	}
	return time.Now()
}

// watchers is the number of parking watchers running.
func watchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("edge.(*parking).watch("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitUntil polls cond for up to 15 s (room for -race on a busy machine).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestParkedConnectionsShareOneGoroutine: 200 parked connections hold no
// goroutine of their own (one watcher holds them all), and are each
// served again when their next request comes.
func TestParkedConnectionsShareOneGoroutine(t *testing.T) {
	const n = 200
	b := startParkBed(t, 0)
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = b.dial(t)
	}
	b.waitParked(t, n)
	// fasthttp's workers exit once idle; then only the watcher is new.
	waitUntil(t, "fasthttp's idle workers to exit", func() bool { return runtime.NumGoroutine() <= before+1+8 })
	if w := watchers(); w != 1 {
		t.Fatalf("%d watchers for one listener, want 1", w)
	}
	for _, c := range conns {
		get(t, c)
	}
	if got := b.served.Load(); got != 2*n {
		t.Fatalf("served %d requests, want %d", got, 2*n)
	}
	b.waitParked(t, n)
	if got := b.stats.Open(); got != n {
		t.Fatalf("%d connections open, want %d", got, n)
	}
}

// TestParkedConnectionClientCloses: a parked connection whose client
// closes is closed and taken out of the parking, without being served.
func TestParkedConnectionClientCloses(t *testing.T) {
	b := startParkBed(t, 0)
	c := b.dial(t)
	b.waitParked(t, 1)
	_ = c.Close()
	waitUntil(t, "the connection to close", func() bool { return b.stats.Open() == 0 })
	b.waitParked(t, 0)
	if got := b.served.Load(); got != 1 {
		t.Fatalf("served %d requests, want 1", got)
	}
	if got := len(b.ln.parking.conns); got != 0 {
		t.Fatalf("%d connections left in the parking", got)
	}
}

// TestParkedConnectionSwept: a parked connection is closed once its idle
// deadline passes, within sweepEvery, and taken out of the parking; one
// with a later deadline stays.
func TestParkedConnectionSwept(t *testing.T) {
	const idle = 1200 * time.Millisecond
	b := startParkBed(t, idle)
	// fasthttp sets the idle deadline between the GET's start and its end.
	start := time.Now()
	first := b.dial(t)
	end := time.Now()
	time.Sleep(idle / 2)
	second := b.dial(t)
	b.waitParked(t, 2)
	closed := closedByServer(t, first, 10*time.Second)
	if closed.Before(start.Add(idle)) || closed.After(end.Add(idle+sweepEvery+500*time.Millisecond)) {
		t.Errorf("closed %v after the GET's start, %v after its end; want past idle_timeout %v, within %v",
			closed.Sub(start), closed.Sub(end), idle, sweepEvery)
	}
	b.waitParked(t, 1)
	closedByServer(t, second, 10*time.Second)
	b.waitParked(t, 0)
	waitUntil(t, "the connections to leave the count", func() bool { return b.stats.Open() == 0 })
}

// TestParkedConnectionClosedByOthers: a parked connection closed by
// someone else than the parking (as fasthttp's shutdown may) leaves the
// epoll set before its socket closes, so a connection that gets its
// descriptor number next is parked and served like any.
func TestParkedConnectionClosedByOthers(t *testing.T) {
	b := startParkBed(t, 0)
	c := b.dial(t)
	b.waitParked(t, 1)
	sc := b.conn()
	fd := sc.spot.fd
	if err := sc.Close(); err != nil {
		t.Fatal(err)
	}
	b.waitParked(t, 0)
	closedByServer(t, c, 10*time.Second)
	next := b.dialFreeing(t, fd)
	get(t, next)
	b.waitParked(t, 1)
	if got := b.conn().spot.fd; got != fd {
		t.Logf("the next connection got descriptor %d, not %d: reuse not exercised", got, fd)
	}
	get(t, next)
	if got := b.served.Load(); got != 3 {
		t.Fatalf("served %d requests, want 3", got)
	}
}

// dialFreeing connects to b from a socket made before fd is freed for
// the server's accept: fd, closed, is taken by a placeholder while the
// client's socket is made, so that the server's side of the connection
// gets fd's number next (the client's socket is wrapped, which dups it,
// only once the server has accepted).
func (b *parkBed) dialFreeing(t *testing.T, fd int32) net.Conn {
	t.Helper()
	addr := b.ln.Addr().String()
	open := b.stats.Open()
	hold, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.Close(hold)
	if hold != int(fd) {
		t.Logf("placeholder got descriptor %d, not %d", hold, fd)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(s, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the server to accept", func() bool { return b.stats.Open() == open+1 })
	f := os.NewFile(uintptr(s), "client")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestParkGivesUpOnClosing: a connection that a racing Close has begun
// to close (closed set before Close looks at whether it is parked) is not
// parked, but closed.
func TestParkGivesUpOnClosing(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stats Stats
	ln := NewListener(tl, 10, nil, &stats, func(net.Conn) error {
		t.Error("a connection closing was served")
		return nil
	}).(*clientListener)
	defer ln.Close()
	client, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := sc.(*clientConn)
	c.closed.Store(true)
	_ = ln.parking.park(c)
	if c.spot.watched.Load() || stats.Parked() != 0 || len(ln.parking.conns) != 0 {
		t.Fatal("a connection closing was parked")
	}
	closedByServer(t, client, 10*time.Second)
}

// TestStaleEventDropped: a readiness event whose registration is not the
// connection's current one (its socket taken out and the number parked
// again meanwhile) wakes nothing.
func TestStaleEventDropped(t *testing.T) {
	b := startParkBed(t, 0)
	b.dial(t)
	b.waitParked(t, 1)
	sc := b.conn()
	b.ln.parking.mu.Lock()
	fd, gen := sc.spot.fd, sc.spot.gen
	b.ln.parking.mu.Unlock()
	b.ln.parking.wake([]unix.EpollEvent{{Events: unix.EPOLLIN, Fd: fd, Pad: int32(gen - 1)}})
	if !sc.spot.watched.Load() || b.stats.Parked() != 1 {
		t.Fatal("a stale event took the connection out of the parking")
	}
}

// TestListenerCloseClosesParked: closing the listener closes its parked
// connections and stops its watcher; a connection parked after is closed.
func TestListenerCloseClosesParked(t *testing.T) {
	b := startParkBed(t, 0)
	c := b.dial(t)
	b.waitParked(t, 1)
	b.ln.parking.close()
	closedByServer(t, c, 10*time.Second)
	if w := watchers(); w != 0 {
		t.Fatalf("%d watchers after close, want 0", w)
	}
	b.waitParked(t, 0)
	waitUntil(t, "the connection to leave the count", func() bool { return b.stats.Open() == 0 })
	closedByServer(t, b.dial(t), 10*time.Second)
	if got := b.stats.Open(); got != 0 {
		t.Fatalf("%d connections open after one parked after close, want 0", got)
	}
}
