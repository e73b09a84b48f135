package main

// The soak: the real binary under a steady open-loop load while the
// upstream's faults switch on and off. Nothing may be lost or answered
// twice, and goroutines, file descriptors and heap return to their
// baseline afterwards (README, "What tailguard promises").
//
//	go test -run TestSoak -v .                                   # 30 s at 200 req/s
//	TAILGUARD_SOAK=3s go test -run TestSoak -v .                 # 3 s (-short skips it)
//	TAILGUARD_SOAK=5m TAILGUARD_SOAK_RATE=500 go test -run TestSoak -v -timeout 30m .

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakFault is what the soak upstream does to a share of its requests.
type soakFault int32

const (
	faultNone   soakFault = iota
	faultErrors           // 503 to half the requests
	faultResets           // a TCP reset instead of a response, to a third
	faultStalls           // no answer until the client gives up, to a fifth
)

// soakUpstream echoes each request's X-Request-Id (header and body) and
// counts how often each id reached it; its fault switches while it runs.
type soakUpstream struct {
	addr  string
	fault atomic.Int32
	seq   atomic.Int64
	mu    sync.Mutex
	seen  map[string]int
}

func startSoakUpstream(t *testing.T) *soakUpstream {
	t.Helper()
	u := &soakUpstream{seen: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: ioTimeout}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.addr = ln.Addr().String()
	return u
}

func (u *soakUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	u.mu.Lock()
	u.seen[id]++
	u.mu.Unlock()
	n := u.seq.Add(1)
	w.Header().Set("X-Request-Id", id)
	switch soakFault(u.fault.Load()) {
	case faultErrors:
		if n%2 == 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
	case faultResets:
		if n%3 == 0 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.Close()
			}
			return
		}
	case faultStalls:
		if n%5 == 0 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second): // the stall, not synchronisation
			}
			return
		}
	}
	_, _ = io.WriteString(w, id)
}

// attempts returns how many times each id reached the upstream.
func (u *soakUpstream) attempts() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := make(map[string]int, len(u.seen))
	for k, v := range u.seen {
		m[k] = v
	}
	return m
}

// soakSettings are the soak's duration and rate: 30 s at 200 requests a
// second, or TAILGUARD_SOAK (a duration) and TAILGUARD_SOAK_RATE.
func soakSettings(t *testing.T) (time.Duration, int) {
	d, rate := 30*time.Second, 200
	if v := os.Getenv("TAILGUARD_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("TAILGUARD_SOAK: %v", err)
		}
	}
	if v := os.Getenv("TAILGUARD_SOAK_RATE"); v != "" {
		var err error
		if rate, err = strconv.Atoi(v); err != nil || rate <= 0 {
			t.Fatalf("TAILGUARD_SOAK_RATE: %q", v)
		}
	}
	return d, rate
}

// soakOutcome is what the client saw for one request.
type soakOutcome struct {
	status int
	echoed string // X-Request-Id of the response
	err    error
	count  int // responses received for the request
}

const soakAttempts = 2

func TestSoak(t *testing.T) {
	skipShort(t)
	if raceEnabled {
		t.Skip("figures under the race detector are the detector's: .ci/run runs this without it")
	}
	duration, rate := soakSettings(t)
	up := startSoakUpstream(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`admin_token: soak-token
upstreams:
  app: {endpoints: [%q], connect_timeout: 500ms}
routes:
  - name: soak
    upstream: app
    timeout: 400ms
    retry: {attempts: %d, on: [reset, connect_failure, "503"], budget: 0.5, backoff: 5ms}
`, up.addr, soakAttempts))
	client := newClient(t, 10*time.Second)
	admin := soakAdmin{t: t, tg: tg, client: newClient(t, ioTimeout)}

	// Warm up at the soak's rate, let it settle, and take the baseline.
	warm := runLoad(t, client, tg, "warm", rate, min(duration, 3*time.Second))
	for _, o := range warm {
		if o.err != nil || o.status != 200 {
			t.Fatalf("warm-up request failed: %d %v", o.status, o.err)
		}
	}
	// The client's idle keep-alive connections are its own business: close
	// them, so that what remains at tailguard is tailguard's.
	client.CloseIdleConnections()
	time.Sleep(2 * time.Second) // settle, not synchronisation: the baseline is a reading
	base := admin.resources()

	// The soak: faults on for a second in every two, each kind in turn.
	stopFaults := make(chan struct{})
	var faultsDone sync.WaitGroup
	faultsDone.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopFaults:
				up.fault.Store(int32(faultNone))
				return
			case <-tick.C:
				f := faultNone
				if i%2 == 0 {
					f = soakFault(1 + (i/2)%3)
				}
				up.fault.Store(int32(f))
			}
		}
	})
	outcomes := runLoad(t, client, tg, "soak", rate, duration)
	close(stopFaults)
	faultsDone.Wait()
	client.CloseIdleConnections()

	// Every request got exactly one response, carrying its own id; no id
	// reached the upstream more often than the route's attempts.
	seen := up.attempts()
	statuses := map[int]int{}
	lost, twice, mixed, overRetried, maxAttempts := 0, 0, 0, 0, 0
	for id, o := range outcomes {
		statuses[o.status]++
		switch {
		case o.err != nil || o.count == 0:
			lost++
			if lost <= 5 {
				t.Errorf("request %s: no response: %v", id, o.err)
			}
		case o.count > 1:
			twice++
		case o.echoed != id:
			mixed++
			if mixed <= 5 {
				t.Errorf("request %s got the response of %q", id, o.echoed)
			}
		}
		if n := seen[id]; n > soakAttempts {
			overRetried++
		} else if o.status == 200 && n == 0 {
			t.Errorf("request %s: 200 without reaching the upstream", id)
		}
		maxAttempts = max(maxAttempts, seen[id])
	}
	if lost+twice+mixed+overRetried > 0 {
		t.Errorf("%d requests lost, %d answered twice, %d answered with another's response, %d sent upstream more than %d times",
			lost, twice, mixed, overRetried, soakAttempts)
	}

	// Resources return to the baseline: fasthttp retires idle workers and
	// idle upstream connections after 10 s, so wait up to 30 s.
	var after soakResources
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(time.Second) {
		if after = admin.resources(); after.within(base) {
			break
		}
	}
	t.Logf("soak: %v at %d req/s with faults (errors, resets, stalls) on for 1 s in 2: %d requests, statuses %v; "+
		"%d lost, %d answered twice, %d mixed up, at most %d attempts per request upstream; "+
		"goroutines %d -> %d, fds %d -> %d, heap in use %.1f -> %.1f MiB",
		duration, rate, len(outcomes), statuses, lost, twice, mixed, maxAttempts,
		base.goroutines, after.goroutines, base.fds, after.fds, mib(base.heap), mib(after.heap))
	if !after.within(base) {
		t.Errorf("resources did not return to the baseline: %+v, baseline %+v", after, base)
	}
}

// runLoad sends rate requests a second for d, open loop (each at its
// intended time, in its own goroutine), each with a unique X-Request-Id,
// and returns the outcome of each by id.
func runLoad(t *testing.T, client *countingClient, tg *tailguardProc, prefix string, rate int, d time.Duration) map[string]*soakOutcome {
	t.Helper()
	n := int(d.Seconds() * float64(rate))
	outcomes := make(map[string]*soakOutcome, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		id := fmt.Sprintf("%s-%08d", prefix, i)
		o := &soakOutcome{}
		mu.Lock()
		outcomes[id] = o
		mu.Unlock()
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, tg.url("/soak"), nil)
			if err != nil {
				o.err = err
				return
			}
			req.Header.Set("X-Request-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				o.err = err
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			o.status, o.echoed, o.err, o.count = resp.StatusCode, resp.Header.Get("X-Request-Id"), err, 1
			if o.status == 200 && string(body) != id {
				o.echoed = string(body)
			}
		})
	}
	wg.Wait()
	return outcomes
}

// soakResources are the tailguard process's goroutines (from the admin
// port's profiler), open file descriptors and heap in use (after a GC).
type soakResources struct {
	goroutines, fds int
	heap            int64
}

// within reports whether r is back at base: a few goroutines and
// descriptors of slack, and half as much heap again plus 4 MiB.
func (r soakResources) within(base soakResources) bool {
	return r.goroutines <= base.goroutines+5 && r.fds <= base.fds+2 && r.heap <= base.heap*3/2+4<<20
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

type soakAdmin struct {
	t      *testing.T
	tg     *tailguardProc
	client *countingClient
}

var (
	goroutinesLine = regexp.MustCompile(`^goroutine profile: total (\d+)`)
	heapInuseLine  = regexp.MustCompile(`(?m)^# HeapInuse = (\d+)$`)
)

func (a soakAdmin) resources() soakResources {
	t := a.t
	t.Helper()
	get := func(path string) string {
		req, err := http.NewRequest(http.MethodGet, a.tg.adminURL(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer soak-token")
		resp, body := a.client.fetch(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		return string(body)
	}
	var r soakResources
	first, _ := bufio.NewReader(strings.NewReader(get("/debug/pprof/goroutine?debug=1"))).ReadString('\n')
	m := goroutinesLine.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("goroutine profile starts %q", first)
	}
	r.goroutines, _ = strconv.Atoi(m[1])
	if m = heapInuseLine.FindStringSubmatch(get("/debug/pprof/heap?debug=1&gc=1")); m == nil {
		t.Fatal("no HeapInuse in the heap profile")
	}
	r.heap, _ = strconv.ParseInt(m[1], 10, 64)
	r.fds = procFDs(t, a.tg)
	return r
}
