package main

// Integration tests of draining and of streaming in bounded memory.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Tests: graceful drain

func TestDrainFinishesInFlightRequests(t *testing.T) {
	skipShort(t)
	const inFlight = 10
	up := startGoUpstream(t)
	arrived := make(chan struct{}, inFlight)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	slowBody := patternBytes(256 << 10)
	up.mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // in flight until the test has watched the drain begin
		case <-release:
		case <-time.After(ioTimeout):
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(slowBody)))
		_, _ = w.Write(slowBody)
	})
	tg := startWithConfig(t, strings.Replace(oneRouteConfig(up.addr),
		"drain: {delay: 0s, timeout: 5s}", "drain: {delay: 300ms, timeout: 5s}", 1))

	type result struct {
		status int
		body   []byte
		err    error
	}
	client := newClient(t, ioTimeout)
	results := make(chan result, inFlight)
	for range inFlight {
		go func() {
			resp, err := client.Get(tg.url("/slow"))
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results <- result{resp.StatusCode, body, err}
		}()
	}
	waitArrivals(t, arrived, inFlight)

	tg.signal(t, syscall.SIGTERM)
	admin := newClient(t, 2*time.Second)
	if !pollUntil(200, 10*time.Millisecond, func() bool {
		resp, err := admin.Get(tg.adminURL("/readyz"))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}) {
		t.Errorf("/readyz never returned 503 after SIGTERM")
	}
	// The listener must close after the delay while requests are still in
	// flight (they are held), not only when the process exits.
	if !pollUntil(200, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", tg.listen, time.Second)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	}) {
		t.Errorf("the proxy listener still accepted connections 4s after SIGTERM (drain delay 300ms)")
	}
	select {
	case <-tg.exited:
		t.Fatalf("tailguard exited with %d requests in flight: %v", inFlight, tg.waitErr)
	default:
	}

	releaseAll()
	for i := range inFlight {
		select {
		case r := <-results:
			if r.err != nil || r.status != 200 || !bytes.Equal(r.body, slowBody) {
				t.Errorf("in-flight request %d: status %d, %d of %d body bytes, error %v", i, r.status, len(r.body), len(slowBody), r.err)
			}
		case <-time.After(exitTimeout):
			t.Fatalf("only %d of %d in-flight requests finished", i, inFlight)
		}
	}
	tg.waitExit(t)
}

// waitArrivals waits until n requests have reached the upstream.
func waitArrivals(t *testing.T, arrived <-chan struct{}, n int) {
	t.Helper()
	timeout := time.After(ioTimeout)
	for i := range n {
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("only %d of %d requests reached the upstream", i, n)
		}
	}
}

// pollUntil calls cond up to attempts times, pausing between calls, until
// it returns true.
func pollUntil(attempts int, pause time.Duration, cond func() bool) bool {
	for range attempts {
		if cond() {
			return true
		}
		time.Sleep(pause)
	}
	return false
}

// ---------------------------------------------------------------------------
// Tests: large bodies

// TestLargeBodiesStreamInBoundedMemory: on a route without buffering, a 1
// GiB upload and a 1 GiB download stream through in a few MiB (buffered
// routes: TestShieldBigBodiesSpill).
func TestLargeBodiesStreamInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB each way; skipped with -short")
	}
	const size = 1 << 30
	const maxRSS = 64 << 20
	up := startGoUpstream(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: bulk
    upstream: app
    timeout: 0
    max_body_bytes: 0
    buffering: {request: off, response: off}
`, up.addr))
	transferBoth(t, tg, size, false)

	hwm := tg.peakRSS(t)
	t.Logf("uploaded and downloaded %d bytes through tailguard; its peak RSS (VmHWM) was %.1f MiB", int64(size), float64(hwm)/(1<<20))
	if hwm > maxRSS {
		t.Errorf("tailguard's peak RSS %.1f MiB is over %d MiB: bodies are not streaming", float64(hwm)/(1<<20), maxRSS>>20)
	}
}
