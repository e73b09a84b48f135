package bench

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOpenLoopCountsStalls: the target stalls once, for 300 ms, on its
// first request. A closed-loop generator would record one slow request; an
// open-loop one must also record the requests that fell due during the
// stall as slow, because their latency runs from their intended start.
func TestOpenLoopCountsStalls(t *testing.T) {
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	addr := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(stall)
		}
	}))
	l := Load{URL: "http://" + addr + "/", Rate: 100, Duration: time.Second, Connections: 1, Timeout: 5 * time.Second}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Count(); got != 100 || res.CountOf(IsStatus(200)) != 100 {
		t.Fatalf("completed %d, classes %v; want 100 answered 200", got, classCounts(res))
	}
	// About 30 requests fell due during the stall; at least half of them
	// waited more than half of it.
	var slow int64
	for _, b := range res.Latency.Distribution() {
		if b.From >= (stall / 2).Microseconds() {
			slow += b.Count
		}
	}
	if slow < 15 {
		t.Errorf("%d requests recorded over %v; the stall is hidden (coordinated omission)", slow, stall/2)
	}
}

// TestCountBoundsTheRun: with a count and a long duration, the count
// ends the run, in open and closed loop alike.
func TestCountBoundsTheRun(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{})
	for _, closed := range []bool{false, true} {
		l := Load{URL: "http://" + up.Addr() + "/", Rate: 2000, Closed: closed, Count: 137, Duration: time.Minute, Connections: 8}
		before := up.Stats().Requests
		res, err := l.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Count() != 137 || up.Stats().Requests-before != 137 {
			t.Errorf("closed=%v: recorded %d, upstream saw %d; want 137 each", closed, res.Count(), up.Stats().Requests-before)
		}
	}
}

// TestClosedLoopCounts: a closed loop bounded by time records exactly the
// requests the upstream answered, and makes its calls Fanout at a time.
func TestClosedLoopCounts(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{})
	l := Load{URL: "http://" + up.Addr() + "/", Closed: true, Duration: 300 * time.Millisecond, Connections: 4, Fanout: 3}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := up.Stats()
	if res.Count() == 0 || res.Calls != 3*res.Count() || s.Requests != res.Calls || s.Answered != res.Calls {
		t.Errorf("requests %d, calls %d, upstream saw %d and answered %d; want calls = 3 × requests = upstream's",
			res.Count(), res.Calls, s.Requests, s.Answered)
	}
	if res.CountOf(Is2xx) != res.Count() {
		t.Errorf("classes %v; want all 200", classCounts(res))
	}
}

// TestLoadSendsMethodHeadersBody: what the load is told to send arrives.
func TestLoadSendsMethodHeadersBody(t *testing.T) {
	got := make(chan string, 1)
	addr := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		n, _ := r.Body.Read(b)
		select {
		case got <- r.Method + " " + r.Header.Get("X-Priority") + " " + string(b[:n]):
		default:
		}
	}))
	l := Load{URL: "http://" + addr + "/", Method: "PUT", Body: []byte("hello"), Rate: 10, Count: 1,
		Headers: []Header{{"X-Priority", "sheddable"}}}
	if _, err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "PUT sheddable hello" {
		t.Errorf("upstream got %q, want %q", g, "PUT sheddable hello")
	}
}

// TestProgressIsCalled: a run of over a second reports progress, and the
// last-second shares add up to at most the total.
func TestProgressIsCalled(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{})
	var calls, lastSum atomic.Int64
	l := Load{URL: "http://" + up.Addr() + "/", Rate: 200, Duration: 2200 * time.Millisecond, Progress: func(p Progress) {
		calls.Add(1)
		lastSum.Add(p.Last.Count())
	}}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 1 || lastSum.Load() > res.Count() {
		t.Errorf("%d progress calls, %d requests in their last seconds, %d in all", calls.Load(), lastSum.Load(), res.Count())
	}
}

// TestLoadNeedsABound: a load with neither count nor duration is refused.
func TestLoadNeedsABound(t *testing.T) {
	if _, err := (Load{URL: "http://127.0.0.1:1/", Rate: 1}).Run(context.Background()); err == nil {
		t.Error("a load without count or duration ran")
	}
}

func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func startTestUpstream(t *testing.T, o UpstreamOptions) *Upstream {
	t.Helper()
	up, err := StartUpstream(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	return up
}

func classCounts(r *Result) map[string]int64 {
	m := map[string]int64{}
	for c, h := range r.Classes {
		m[c] = h.TotalCount()
	}
	return m
}

// TestTLSLoad: over https, a keep-alive run reuses the connections it
// opened ahead, and a run without keep-alive makes a new connection, with
// a full handshake and never a resumption, for every request.
func TestTLSLoad(t *testing.T) {
	dir := t.TempDir()
	pki, err := NewPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := pki.IssueServer("server")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns, resumed := map[string]bool{}, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		conns[r.RemoteAddr] = true
		if r.TLS.DidResume {
			resumed++
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	for _, noKeepAlive := range []bool{false, true} {
		clear(conns)
		l := Load{URL: srv.URL + "/", CAFile: pki.CAFile, Closed: true, Count: 40, Duration: time.Minute, Connections: 4, NoKeepAlive: noKeepAlive}
		res, err := l.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// With keep-alive, at most one connection per worker: a worker
		// slow to start may find the others have sent every request.
		want := 4
		if noKeepAlive {
			want = 40
		}
		mu.Lock()
		if res.CountOf(IsStatus(200)) != 40 || len(conns) > want || !noKeepAlive && len(conns) == 0 || noKeepAlive && len(conns) != want || resumed != 0 {
			t.Errorf("no keep-alive %v: classes %v, %d connections (want %d), %d resumed", noKeepAlive, classCounts(res), len(conns), want, resumed)
		}
		mu.Unlock()
	}
	// A certificate the CA did not sign fails every request.
	l := Load{URL: srv.URL + "/", Closed: true, Count: 3, Connections: 1}
	if res, err := l.Run(context.Background()); err != nil || res.CountOf(IsError) != 3 {
		t.Errorf("unverified target: %v, classes %v; want 3 errors", err, classCounts(res))
	}
}
