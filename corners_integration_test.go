package main

// Integration tests of the contract's untested corners (issue "One room,
// one job", item 8, and README's promise on chunk extensions). Each runs
// the real binary in front of real sockets on 127.0.0.1 and checks the
// status, the X-Tailguard-Error value and, where it applies, that the
// upstream never saw the request. Every wait is bounded; no assertion
// depends on how fast the machine is.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Fixtures

// holdHandler is an upstream handler that reports each request's arrival,
// then answers 200 "held" once released, or gives up when its client (the
// proxy) goes away or ioTimeout passes. It counts the requests it saw.
type holdHandler struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
	seen    atomic.Int64
}

// newHoldHandler serves a holdHandler at path on up; it is released when
// the test ends.
func newHoldHandler(t *testing.T, up *goUpstream, path string) *holdHandler {
	h := &holdHandler{arrived: make(chan struct{}, 64), release: make(chan struct{})}
	t.Cleanup(h.releaseAll)
	up.mux.Handle(path, h)
	return h
}

func (h *holdHandler) releaseAll() { h.once.Do(func() { close(h.release) }) }

func (h *holdHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.seen.Add(1)
	h.arrived <- struct{}{}
	select {
	case <-h.release:
		fmt.Fprint(w, "held")
	case <-r.Context().Done():
	case <-time.After(ioTimeout):
	}
}

// getResult is the end of a GET sent in the background.
type getResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// getAsync sends a GET with extra headers (name, value pairs) in the
// background and delivers its result on the returned channel.
func getAsync(client *countingClient, url string, headers ...string) <-chan getResult {
	out := make(chan getResult, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			out <- getResult{err: err}
			return
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			out <- getResult{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		out <- getResult{resp.StatusCode, resp.Header, body, err}
	}()
	return out
}

// await waits for a background request's result (ioTimeout at most).
func await(t *testing.T, what string, ch <-chan getResult) getResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(ioTimeout):
		t.Fatalf("%s: no answer within %v", what, ioTimeout)
		return getResult{}
	}
}

// cornerRouteStats is the part of a route's /stats entry these tests read.
type cornerRouteStats struct {
	Name     string `json:"name"`
	Requests int64  `json:"requests"`
	Timeouts int64  `json:"timeouts"`
	Retries  int64  `json:"retries"`
	Shed     int64  `json:"shed"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	Tunnels  struct {
		Active int64  `json:"active"`
		Total  uint64 `json:"total"`
	} `json:"tunnels"`
}

// routeStats reads route's entry of /stats?window=all with client.
func routeStats(t *testing.T, client *countingClient, tg *tailguardProc, route string) cornerRouteStats {
	t.Helper()
	resp, body := client.get(t, tg.adminURL("/stats?window=all"))
	if resp.StatusCode != 200 {
		t.Fatalf("/stats: status %d: %.200q", resp.StatusCode, body)
	}
	var doc struct {
		Routes []cornerRouteStats `json:"routes"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/stats: %v: %.300q", err, body)
	}
	for _, r := range doc.Routes {
		if r.Name == route {
			return r
		}
	}
	t.Fatalf("/stats has no route %q: %.300q", route, body)
	return cornerRouteStats{}
}

// routeStatsWhen polls route's /stats entry until cond holds (metrics are
// merged on a tick), and returns the last entry read.
func routeStatsWhen(t *testing.T, tg *tailguardProc, route string, cond func(cornerRouteStats) bool) cornerRouteStats {
	t.Helper()
	client := newClient(t, ioTimeout)
	var rs cornerRouteStats
	pollUntil(300, 25*time.Millisecond, func() bool {
		rs = routeStats(t, client, tg, route)
		return cond(rs)
	})
	return rs
}

// ---------------------------------------------------------------------------
// 1. connect_timeout

// backlogListener is an upstream that accepts no connection: a raw socket
// listening with a backlog of 1 that nobody accepts from, its accept queue
// filled by the test, so that the kernel drops further SYNs and a dial to
// it hangs until its timeout.
type backlogListener struct {
	fd      int
	addr    string
	fillers []net.Conn
}

// startBacklogListener opens the listener and fills its accept queue. It
// verifies the hang: it fails the test unless a dial to it times out.
func startBacklogListener(t *testing.T) *backlogListener {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &backlogListener{fd: fd}
	t.Cleanup(l.close)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	l.addr = fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 16 { // Linux queues backlog+1; a few more for other kernels
		c, err := net.DialTimeout("tcp", l.addr, 500*time.Millisecond)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return l // the queue is full: dials hang
		}
		if err != nil {
			t.Fatalf("filling the accept queue: %v", err)
		}
		l.fillers = append(l.fillers, c)
	}
	t.Fatalf("%d connections into a listener with backlog 1 and no dial hung: cannot test connect_timeout here", len(l.fillers))
	return nil
}

// received accepts, without blocking, every connection in the queue and
// returns how many there were and how many bytes they carried. The
// fillers send nothing, so any byte is a request that got through.
func (l *backlogListener) received(t *testing.T) (conns, bytes int) {
	t.Helper()
	if err := syscall.SetNonblock(l.fd, true); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for range 64 {
		nfd, _, err := syscall.Accept(l.fd)
		if err != nil {
			break // EAGAIN: the queue is empty
		}
		conns++
		_ = syscall.SetNonblock(nfd, true)
		if n, err := syscall.Read(nfd, buf); err == nil && n > 0 {
			bytes += n
		}
		_ = syscall.Close(nfd)
	}
	return conns, bytes
}

func (l *backlogListener) close() {
	for _, c := range l.fillers {
		_ = c.Close()
	}
	_ = syscall.Close(l.fd)
}

// TestCornerConnectTimeout: an upstream whose accept queue is full makes
// the dial hang; after upstreams.NAME.connect_timeout the client gets 504
// connect_timeout, nothing reaches the upstream, and /stats counts the 504
// as one of the route's timeouts.
func TestCornerConnectTimeout(t *testing.T) {
	skipShort(t)
	up := startBacklogListener(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
    connect_timeout: 300ms
routes:
  - name: stuck
    upstream: app
    timeout: 10s
`, up.addr))
	resp, body := newClient(t, ioTimeout).get(t, tg.url("/x"))
	assertTailguardError(t, resp, body, 504, "connect_timeout", "stuck")
	if conns, n := up.received(t); conns > len(up.fillers) || n > 0 {
		t.Errorf("the upstream got %d connections (the test made %d) carrying %d bytes; want none from tailguard", conns, len(up.fillers), n)
	}
	t.Run("counted as a timeout in /stats", func(t *testing.T) {
		rs := routeStatsWhen(t, tg, "stuck", func(rs cornerRouteStats) bool { return rs.Requests >= 1 })
		if rs.Requests != 1 || rs.Timeouts != 1 {
			t.Errorf("/stats route stuck: requests %d, timeouts %d; want 1 and 1 (a 504 connect_timeout is a timeout)", rs.Requests, rs.Timeouts)
		}
	})
}

// ---------------------------------------------------------------------------
// 2. pool_exhausted

// TestCornerPoolExhausted: with upstreams.NAME.max_connections: 1 and that
// connection held by a slow request, a second request is answered 503
// pool_exhausted at once (never queued) and never reaches the upstream;
// the first still completes.
func TestCornerPoolExhausted(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	hold := newHoldHandler(t, up, "/hold")
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
    max_connections: 1
routes:
  - name: pooled
    upstream: app
    timeout: 20s
`, up.addr))
	client := newClient(t, ioTimeout)
	first := getAsync(client, tg.url("/hold"))
	waitArrivals(t, hold.arrived, 1)

	resp, body := client.get(t, tg.url("/hold"))
	assertTailguardError(t, resp, body, 503, "pool_exhausted", "pooled")
	if n := hold.seen.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1: the refused one got through", n)
	}
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("the upstream accepted %d connections, want 1 (max_connections: 1)", n)
	}

	hold.releaseAll()
	if r := await(t, "the held request", first); r.err != nil || r.status != 200 || string(r.body) != "held" {
		t.Errorf("the held request: status %d, body %q, error %v; want 200 held", r.status, r.body, r.err)
	}
}

// ---------------------------------------------------------------------------
// 3. limits.idle_timeout

// TestCornerIdleTimeout: a keep-alive client connection left idle is
// closed by tailguard after limits.idle_timeout (the client reads EOF, and
// no byte), while a connection that keeps sending requests more often than
// that stays open. read_header_timeout is far longer, so only the idle
// timeout can close the connection within the test's safety limit.
func TestCornerIdleTimeout(t *testing.T) {
	skipShort(t)
	const idle = time.Second
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr)+fmt.Sprintf("limits: {idle_timeout: %s, read_header_timeout: 60s}\n", idle))
	get := rawRequest("GET /status/200 HTTP/1.1", "Host: app.test")

	t.Run("idle connection closed", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", tg.listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if status := roundTripOn(t, c, br, get); status != 200 {
			t.Fatalf("request before idling: status %d", status)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * idle)) // safety limit only
		n, err := br.Read(make([]byte, 1))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("idle connection: read %d bytes, error %v; want EOF (closed by idle_timeout %v)", n, err, idle)
		}
	})

	t.Run("busy connection kept", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", tg.listen, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		const requests, gap = 60, idle / 20 // 3 idle timeouts' worth
		for i := range requests {
			if status := roundTripOn(t, c, br, get); status != 200 {
				t.Fatalf("request %d of %d on one connection, %v apart: status %d (0: connection closed)", i+1, requests, gap, status)
			}
			time.Sleep(gap)
		}
	})
}

// roundTripOn sends raw on c and reads the response through br; it returns
// the status, or 0 if the connection failed.
func roundTripOn(t *testing.T, c net.Conn, br *bufio.Reader, raw string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Logf("write: %v", err)
		return 0
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Logf("read: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// ---------------------------------------------------------------------------
// 4. drain.timeout expiring

// TestCornerDrainTimeoutExpires: on SIGTERM with a request held by the
// upstream longer than drain.timeout, tailguard stops waiting at the
// timeout and exits 1 with "drain: context deadline exceeded" (main.go
// serve returns the drain error; main exits 1); the in-flight client gets
// a closed connection (or a response), never a hang.
func TestCornerDrainTimeoutExpires(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	hold := newHoldHandler(t, up, "/hold") // released only when the test ends
	tg := startWithConfig(t, strings.Replace(oneRouteConfig(up.addr),
		"drain: {delay: 0s, timeout: 5s}", "drain: {delay: 0s, timeout: 500ms}", 1))
	inFlight := getAsync(newClient(t, ioTimeout), tg.url("/hold"))
	waitArrivals(t, hold.arrived, 1)

	tg.signal(t, syscall.SIGTERM)
	code, ok := tg.waitExitCode(t)
	if ok && code != 1 {
		t.Errorf("exit code %d after drain.timeout expired, want 1", code)
	}
	if s := tg.stderr.String(); !strings.Contains(s, "drain: context deadline exceeded") {
		t.Errorf("stderr does not say the drain timed out:\n%s", s)
	}
	r := await(t, "the in-flight request", inFlight)
	switch {
	case r.err != nil:
		t.Logf("in-flight request after the drain expired: %v", r.err)
	case r.status == 200:
		t.Errorf("the in-flight request got 200 %q although the upstream never answered", r.body)
	default:
		t.Logf("in-flight request after the drain expired: status %d %q, X-Tailguard-Error %q", r.status, r.body, r.header.Get("X-Tailguard-Error"))
	}
	if n := hold.seen.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// 5. per_try_timeout

// tryUpstream counts the attempts of each request (by X-Request-Id, which
// tailguard keeps across retries). Mode "all" holds every attempt; mode
// "first" holds only the first and answers 200 "fast" after it.
type tryUpstream struct {
	mu       sync.Mutex
	attempts map[string]int
}

func (u *tryUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	u.mu.Lock()
	u.attempts[id]++
	n := u.attempts[id]
	u.mu.Unlock()
	if r.URL.Query().Get("slow") == "all" || n == 1 {
		select { // slower than per_try_timeout: tailguard gives up first
		case <-r.Context().Done():
		case <-time.After(ioTimeout):
		}
		return
	}
	fmt.Fprint(w, "fast")
}

func (u *tryUpstream) count(id string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.attempts[id]
}

// TestCornerPerTryTimeout: with per_try_timeout shorter than the
// upstream's latency, a longer route timeout and retries on timeout, every
// attempt is cut at per_try_timeout and retried: when all time out the
// upstream sees exactly retry.attempts attempts and the client gets 504
// timeout; when the second is fast the client gets its 200.
func TestCornerPerTryTimeout(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	tries := &tryUpstream{attempts: map[string]int{}}
	up.mux.Handle("/try", tries)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: tries
    upstream: app
    timeout: 20s
    per_try_timeout: 300ms
    retry: {attempts: 3, on: [timeout], backoff: 0s}
`, up.addr))
	client := newClient(t, ioTimeout)
	tests := []struct {
		name, slow string
		status     int
		cause      string
		attempts   int
	}{
		{"every try times out", "all", 504, "timeout", 3},
		{"second try is fast", "first", 200, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("per-try-%s-%d", tt.slow, time.Now().UnixNano())
			req, err := http.NewRequest(http.MethodGet, tg.url("/try?slow="+tt.slow), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Request-Id", id)
			resp, body := client.fetch(t, req)
			if tt.status == 200 {
				if resp.StatusCode != 200 || string(body) != "fast" {
					t.Errorf("status %d, body %q; want 200 fast from the second try", resp.StatusCode, body)
				}
				noTailguardError(t, "second try", resp.Header)
			} else {
				assertTailguardError(t, resp, body, tt.status, tt.cause, "tries")
			}
			if n := tries.count(id); n != tt.attempts {
				t.Errorf("the upstream saw %d attempts, want %d", n, tt.attempts)
			}
		})
	}
	rs := routeStatsWhen(t, tg, "tries", func(rs cornerRouteStats) bool { return rs.Requests >= 2 })
	if rs.Requests != 2 || rs.Retries != 3 || rs.Timeouts != 1 {
		t.Errorf("/stats route tries: requests %d, retries %d, timeouts %d; want 2, 3 (2+1), 1", rs.Requests, rs.Retries, rs.Timeouts)
	}
}

// ---------------------------------------------------------------------------
// 6. /readyz and health checks

// TestCornerReadyzFollowsHealthChecks: with health_check on an upstream
// whose only endpoint fails its checks, admin /readyz answers 503; once
// the checks pass, 200.
func TestCornerReadyzFollowsHealthChecks(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	var healthy atomic.Bool
	var probes atomic.Int64
	up.mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if !healthy.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "up")
	})
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
    health_check: {path: /health, interval: 100ms, timeout: 100ms}
routes:
  - name: default
    upstream: app
`, up.addr))
	admin := newClient(t, 5*time.Second)
	readyz := func() int {
		resp, err := admin.Get(tg.adminURL("/readyz"))
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	var last int
	if !pollUntil(400, 25*time.Millisecond, func() bool { last = readyz(); return last == 503 }) {
		t.Fatalf("/readyz: %d after %d failed health checks; want 503 with no healthy endpoint", last, probes.Load())
	}
	healthy.Store(true)
	if !pollUntil(400, 25*time.Millisecond, func() bool { last = readyz(); return last == 200 }) {
		t.Errorf("/readyz: %d after the health checks pass again (%d probes in all); want 200", last, probes.Load())
	}
}

// ---------------------------------------------------------------------------
// 7. Priority under contention

// TestCornerShedPriority: a route with shed {max_concurrency: 1, queue: 2,
// priority_header: X-Priority} saturated by sheddable requests: sheddable
// ones may take only half the queue, so the next is refused; critical ones
// queue past them and, when the queue is full, take a sheddable waiter's
// place (that waiter is refused); when the slot frees, the critical ones
// are admitted and answered 2xx. Every refusal is the route's shed status
// with X-Tailguard-Error: shed and Retry-After, and no refused request
// reaches the upstream.
func TestCornerShedPriority(t *testing.T) {
	skipShort(t)
	for _, status := range []int{503, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			testShedPriority(t, status)
		})
	}
}

func testShedPriority(t *testing.T, status int) {
	up := startGoUpstream(t)
	var mu sync.Mutex
	var seen []string
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	up.mux.HandleFunc("/prio", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Name"))
		mu.Unlock()
		arrived <- struct{}{}
		if r.Header.Get("X-Hold") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			case <-time.After(ioTimeout):
			}
		}
		fmt.Fprint(w, r.Header.Get("X-Name"))
	})
	// The queue timeout and CoDel target are far above the test's length,
	// so that waiting is decided by priority alone.
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: prio
    upstream: app
    timeout: 30s
    shed: {max_concurrency: 1, queue: 2, queue_timeout: 25s, codel: {target: 20s, interval: 20s}, priority_header: X-Priority, status: %d}
`, up.addr, status))
	client := newClient(t, ioTimeout)
	url := tg.url("/prio")
	send := func(name, prio string, hold bool) <-chan getResult {
		h := []string{"X-Name", name, "X-Priority", prio}
		if hold {
			h = append(h, "X-Hold", "1")
		}
		return getAsync(client, url, h...)
	}
	queued := func(n int) {
		t.Helper()
		if rs := routeStatsWhen(t, tg, "prio", func(rs cornerRouteStats) bool { return rs.Queued == n }); rs.Queued != n {
			t.Fatalf("/stats: %d queued, want %d", rs.Queued, n)
		}
	}
	refused := func(what string, r getResult) {
		t.Helper()
		if r.err != nil || r.status != status || r.header.Get("X-Tailguard-Error") != "shed" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s: status %d, X-Tailguard-Error %q, Retry-After %q, error %v; want %d shed with Retry-After",
				what, r.status, r.header.Get("X-Tailguard-Error"), r.header.Get("Retry-After"), r.err, status)
		}
	}

	s1 := send("s1", "sheddable", true) // takes the one slot
	waitArrivals(t, arrived, 1)
	s2 := send("s2", "sheddable", false) // takes half the queue
	queued(1)
	refused("s3, sheddable, half the queue taken", await(t, "s3", send("s3", "sheddable", false)))
	c1 := send("c1", "critical", false) // queues past the sheddable limit
	queued(2)
	c2 := send("c2", "critical", false) // the queue is full: takes s2's place
	refused("s2, sheddable, displaced by a critical arrival", await(t, "s2", s2))
	queued(2)
	refused("s4, sheddable, queue full", await(t, "s4", send("s4", "sheddable", false)))

	releaseAll()
	for _, x := range []struct {
		name string
		ch   <-chan getResult
	}{{"s1", s1}, {"c1", c1}, {"c2", c2}} {
		r := await(t, x.name, x.ch)
		if r.err != nil || r.status != 200 || string(r.body) != x.name {
			t.Errorf("%s: status %d, body %q, X-Tailguard-Error %q, error %v; want 200 from the upstream",
				x.name, r.status, r.body, r.header.Get("X-Tailguard-Error"), r.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, " "); got != "s1 c1 c2" {
		t.Errorf("the upstream saw %q, want \"s1 c1 c2\": only admitted requests, critical served in arrival order", got)
	}
}

// ---------------------------------------------------------------------------
// 8. Chunk extensions (README: "an oversized chunk extension is refused")

// ext is a chunk extension of about n bytes; its run of 'E's marks
// extension bytes in what the upstream receives.
func ext(n int) string { return ";x=" + strings.Repeat("E", n) }

// chunks is n chunks carrying data, each with the chunk extension e.
func chunks(n int, e, data string) string {
	var sb strings.Builder
	for range n {
		fmt.Fprintf(&sb, "%x%s\r\n%s\r\n", len(data), e, data)
	}
	return sb.String()
}

// chunkedHead is the head of a chunked POST to path.
func chunkedHead(path string) string {
	return "POST " + path + " HTTP/1.1\r\n" + hostLine + "Transfer-Encoding: chunked\r\n\r\n"
}

// chunkShape is a chunked body (as the parts the client writes, pause
// apart) and the data it carries; the head is written with the first
// part, or alone first if headAlone.
type chunkShape struct {
	name      string
	parts     []string
	pause     time.Duration
	headAlone bool
	data      string // for accepted bodies: what the upstream must read
}

// body is the whole body of the shape.
func (s chunkShape) body() string { return strings.Join(s.parts, "") }

// splitEvery cuts s into parts of n bytes.
func splitEvery(s string, n int) []string {
	var parts []string
	for len(s) > n {
		parts, s = append(parts, s[:n]), s[n:]
	}
	return append(parts, s)
}

// oversizedChunkShapes spend tens of KiB or more on chunk extensions for a
// few bytes of data: each must be refused.
var oversizedChunkShapes = []chunkShape{
	{name: "one 20 KiB extension on a 1-byte chunk", parts: []string{"1" + ext(20<<10) + "\r\nx\r\n0\r\n\r\n"}},
	{name: "one 32 KiB extension on a 1-byte chunk", parts: []string{"1" + ext(32<<10) + "\r\nx\r\n0\r\n\r\n"}},
	{name: "one 60 KiB extension on a 1-byte chunk", parts: []string{"1" + ext(60<<10) + "\r\nx\r\n0\r\n\r\n"}},
	{name: "one 1 MiB extension on a 1-byte chunk", parts: []string{"1" + ext(1<<20) + "\r\nx\r\n0\r\n\r\n"}},
	{name: "one 20 KiB extension, the head sent first", headAlone: true, pause: 50 * time.Millisecond,
		parts: []string{"1" + ext(20<<10) + "\r\nx\r\n0\r\n\r\n"}},
	{name: "32 KiB extension in 1 KiB writes with pauses", pause: 5 * time.Millisecond,
		parts: splitEvery("1"+ext(32<<10)+"\r\nx\r\n0\r\n\r\n", 1<<10)},
	{name: "40 1-byte chunks with 1 KiB extensions", parts: []string{chunks(40, ext(1<<10), "x") + "0\r\n\r\n"}},
	{name: "200 1-byte chunks with 1 KiB extensions", parts: []string{chunks(200, ext(1<<10), "x") + "0\r\n\r\n"}},
	{name: "32 100-byte chunks with 2 KiB extensions", parts: []string{chunks(32, ext(2<<10), strings.Repeat("d", 100)) + "0\r\n\r\n"}},
	{name: "32 KiB extension on the last chunk", parts: []string{"1\r\nx\r\n0" + ext(32<<10) + "\r\n\r\n"}},
	{name: "32 KiB extension, then trailers", parts: []string{"1" + ext(32<<10) + "\r\nx\r\n0\r\nX-Checksum: 1\r\n\r\n"}},
	{name: "32 KiB extension on the last chunk, then trailers", parts: []string{"1\r\nx\r\n0" + ext(32<<10) + "\r\nX-Checksum: 1\r\n\r\n"}},
	{name: "data, then a 32 KiB extension", parts: []string{chunks(4, "", strings.Repeat("d", 1000)) + "1" + ext(32<<10) + "\r\nx\r\n0\r\n\r\n"}},
}

// ordinaryChunkShapes are ordinary chunked bodies, extensions included:
// each must be forwarded whole.
var ordinaryChunkShapes = []chunkShape{
	{name: "short extensions", parts: []string{"5;name=value\r\nhello\r\n0\r\n\r\n"}, data: "hello"},
	{name: "one 2 KiB extension", parts: []string{"5" + ext(2<<10) + "\r\nhello\r\n0\r\n\r\n"}, data: "hello"},
	{name: "8 1-byte chunks with 1 KiB extensions", parts: []string{chunks(8, ext(1<<10), "x") + "0\r\n\r\n"}, data: strings.Repeat("x", 8)},
	{name: "one byte per chunk", parts: []string{chunks(3000, "", "x") + "0\r\n\r\n"}, data: strings.Repeat("x", 3000)},
	{name: "256 KiB in 4 KiB chunks with 64-byte extensions", parts: []string{chunks(64, ext(64), strings.Repeat("d", 4<<10)) + "0\r\n\r\n"},
		data: strings.Repeat("d", 256<<10)},
	{name: "1-byte writes", pause: time.Millisecond, parts: splitEvery("5;a=b\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n", 1), data: "hello"},
	{name: "a body filling the read buffer with the head", parts: []string{chunks(1, "", strings.Repeat("d", 15<<10)) + "0\r\n\r\n"},
		data: strings.Repeat("d", 15<<10)},
}

// TestCornerChunkExtensions sends chunked POSTs through the real binary,
// on a route with the default body limit and on one that streams without
// a limit, to an upstream that records every byte: a body spending too
// many wire bytes on chunk extensions, in any shape, is refused with 400
// bad_request and its connection closed, and the upstream never gets the
// whole request nor any extension byte; ordinary bodies arrive whole.
func TestCornerChunkExtensions(t *testing.T) {
	skipShort(t)
	up := startByteRecorder(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: streams
    match: {path_prefix: /streams}
    upstream: app
    timeout: 0
    max_body_bytes: 0
  - name: limited
    upstream: app
`, up.addr()))
	send := func(t *testing.T, path string, s chunkShape) (*http.Response, []byte, bool) {
		parts := append([]string{chunkedHead(path)}, s.parts...)
		if !s.headAlone {
			parts = append([]string{parts[0] + parts[1]}, parts[2:]...)
		}
		return rawExchangeWrites(t, tg.listen, s.pause, parts...)
	}
	for _, path := range []string{"/streams", "/limited"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			for _, s := range oversizedChunkShapes {
				t.Run(s.name, func(t *testing.T) {
					up.take()
					resp, body, closed := send(t, path, s)
					up.settle() // what was forwarded before the refusal may still be on its way
					got := up.take()
					if resp.StatusCode != 400 || resp.Header.Get("X-Tailguard-Error") != "bad_request" || !closed {
						t.Errorf("%d bytes of body: got %d %q (closed: %v), want 400 bad_request and the connection closed; body %q",
							len(s.body()), resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), closed, body)
					}
					if wholeRequest(got) {
						t.Errorf("the upstream received the whole request: %.300q", got)
					}
					if bytes.Contains(got, []byte("EEEE")) {
						t.Errorf("the upstream received extension bytes: %.300q", got)
					}
				})
			}
			for _, s := range ordinaryChunkShapes {
				t.Run(s.name, func(t *testing.T) {
					up.take()
					resp, body, _ := send(t, path, s)
					if resp.StatusCode != 200 || string(body) != "ok" {
						t.Fatalf("got %d %q (X-Tailguard-Error %q), want the upstream's 200 ok",
							resp.StatusCode, body, resp.Header.Get("X-Tailguard-Error"))
					}
					got := up.take()
					req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(got)))
					if err != nil {
						t.Fatalf("the upstream received %.300q: %v", got, err)
					}
					data, err := io.ReadAll(req.Body)
					if err != nil || string(data) != s.data {
						t.Errorf("the upstream read %d bytes (%v), want the %d bytes of data sent", len(data), err, len(s.data))
					}
					if bytes.Contains(got, []byte("EEEE")) {
						t.Errorf("the upstream received extension bytes")
					}
				})
			}
		})
	}
}
