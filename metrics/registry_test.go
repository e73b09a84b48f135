package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSnapshotLosesNothing records from several goroutines while another
// spins Tick; afterwards "all" holds every sample and the counters add up.
func TestSnapshotLosesNothing(t *testing.T) {
	const writers, perWriter = 4, 4_800 // perWriter: a multiple of every cycle below
	reg := NewRegistry(RegistryOptions{Shards: 2})
	reg.Configure([]RouteConfig{{Name: "api", SLO: &SLO{Latency: 5 * time.Millisecond, Availability: 0.999}}})
	rt := reg.Route("api")

	statuses := []int{200, 204, 301, 404, 500, 503}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				s := ok(time.Duration(1+i%10) * time.Millisecond)
				s.Status = statuses[i%len(statuses)]
				s.Flags = Flag(i % 16)
				s.Retries, s.Hedges = 1, 2
				if i%5 == 0 {
					s.Service = 0
				}
				rt.Record(uint64(w), s)
			}
		})
	}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				reg.Tick(time.Now())
			}
		}
	})
	wg.Wait()
	close(stop)
	ticker.Wait()
	reg.Tick(time.Now())

	const n = writers * perWriter
	s := rt.view(winAll, true)
	c := s.c
	checks := []struct {
		name      string
		got, want int64
	}{
		{"requests", c.requests, n},
		{"status classes", c.status[0] + c.status[1] + c.status[2] + c.status[3], n},
		{"2xx", c.status[class2xx], n / 3},
		{"5xx", c.status[class5xx], n / 3},
		{"shed", c.shed, n / 2},
		{"breaker rejects", c.breakerRejects, n / 2},
		{"timeouts", c.timeouts, n / 2},
		{"hedges won", c.hedgesWon, n / 2},
		{"retries", c.retries, n},
		{"hedges sent", c.hedgesSent, 2 * n},
		{"latency good", c.latencyGood, n / 2},
		{"queue values", s.h[Queue].TotalCount(), n},
		{"service values", s.h[Service].TotalCount(), n * 4 / 5},
		{"response values", s.h[Response].TotalCount(), n},
		{"overhead values", s.h[Overhead].TotalCount(), n},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: %d, want %d", ch.name, ch.got, ch.want)
		}
	}
}

// TestConfigureKeepsState checks that a reload keeps a route's recorder
// and history by name and drops routes no longer configured.
func TestConfigureKeepsState(t *testing.T) {
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api"}, RouteConfig{Name: "old"})
	api := reg.Route("api")
	api.Record(1, ok(time.Millisecond))
	reg.Tick(clock.set(clock.Now(), time.Second))

	reg.Configure([]RouteConfig{{Name: "new"}, {Name: "api", SLO: &SLO{Latency: time.Second}}})
	if reg.Route("api") != api {
		t.Fatal("api got a new recorder on reload")
	}
	if reg.Route("old") != nil {
		t.Error("old is still configured")
	}
	var names []string
	for _, r := range reg.stats(winAll).Routes {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "new" || names[1] != "api" {
		t.Errorf("routes %q, want [new api] in config order", names)
	}
	if got := api.view(winAll, false).Count(); got != 1 {
		t.Errorf("api lost its history: %d requests, want 1", got)
	}
	if got := api.latencySLO.Load(); got != int64(time.Second) {
		t.Errorf("SLO latency %d, want the reloaded 1s", got)
	}
}

// TestOnTick checks that each tick hands OnTick the route's last 10 s,
// with the service time's own sample count: requests refused before any
// attempt (here 30, shed) count as requests, not as service samples.
func TestOnTick(t *testing.T) {
	var got []time.Duration
	var samples, requests []int64
	reg, clock := newTestRegistry(t, RouteConfig{Name: "api", OnTick: func(s *Snapshot) {
		got = append(got, s.Quantile(Service, 0.95))
		samples, requests = append(samples, s.Samples(Service)), append(requests, s.Count())
	}})
	start := clock.Now()
	for i := range 100 {
		reg.Route("api").Record(uint64(i), ok(time.Duration(i+1)*time.Millisecond))
	}
	for i := range 30 {
		reg.Route("api").Record(uint64(100+i), Sample{Queue: time.Millisecond, Response: time.Millisecond, Status: 503})
	}
	reg.Tick(clock.set(start, time.Second))
	reg.Tick(clock.set(start, 11*time.Second))
	if len(got) != 2 || got[0] < 47*time.Millisecond || got[0] > 48*time.Millisecond || got[1] != 0 {
		t.Errorf("OnTick saw service p95 %v, want about 47.5ms then 0 (out of the window)", got)
	}
	if len(samples) != 2 || samples[0] != 100 || requests[0] != 130 || samples[1] != 0 || requests[1] != 0 {
		t.Errorf("OnTick saw %v service samples of %v requests, want [100 0] of [130 0]", samples, requests)
	}
}

// TestRunStops checks that Run ticks until its context is done, then
// returns.
func TestRunStops(t *testing.T) {
	var ticks atomic.Int32
	reg := NewRegistry(RegistryOptions{})
	reg.Configure([]RouteConfig{{Name: "api", OnTick: func(*Snapshot) { ticks.Add(1) }}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reg.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for ticks.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if ticks.Load() == 0 {
		t.Error("Run never ticked")
	}
}

func TestShardsRoundUp(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{1, 1}, {2, 2}, {3, 4}, {5, 8}, {16, 16}} {
		reg := NewRegistry(RegistryOptions{Shards: tt.in})
		reg.Configure([]RouteConfig{{Name: "r"}})
		if got := len(reg.Route("r").shards); got != tt.want {
			t.Errorf("Shards %d: %d shards, want %d", tt.in, got, tt.want)
		}
	}
}
