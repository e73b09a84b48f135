package bench

import (
	"context"
	"net"
	"net/http"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(stall)
		}
	}), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	l := Load{URL: "http://" + ln.Addr().String() + "/", Rate: 100, Duration: time.Second, MaxInFlight: 1, Timeout: 5 * time.Second}
	res, err := l.Run(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Count(); got != 100 || res.Status[200] != 100 {
		t.Fatalf("completed %d, statuses %v; want 100 answered 200", got, res.Status)
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
