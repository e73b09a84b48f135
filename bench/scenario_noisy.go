package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"time"
)

// The noisy-neighbor scenario (issue 18): one client floods a
// capacity-limited upstream while another sends politely, and the
// question is what the polite one gets.

// noisyService is each upstream worker's median service time, and
// noisyLatency the distribution around it: a tight log-normal, as a real
// service has. (With a fixed time, the flood's first burst fills every
// worker at once and the slots then free in step, all together once a
// service time, so that any request arriving at a full route waits up to
// a whole service time for one, however fair the queue.)
const noisyService = 20 * time.Millisecond

var noisyLatency = Latency{Median: noisyService, Sigma: 0.25}

// noisyHeader tells the two clients apart.
const noisyHeader = "X-Client"

// The clients' rates, as shares of the upstream's capacity.
const (
	noisyPoliteShare = 0.15
	noisyFloodShare  = 4
)

// noisyShed is the tailguard arms' admission: the limit is the upstream's
// workers, so nothing queues inside the upstream, with a queue in front.
func noisyShed(workers int, fair bool) string {
	s := fmt.Sprintf("shed: {max_concurrency: %d, queue: 64, queue_timeout: 100ms", workers)
	if fair {
		s += `, fair_by: "header:` + noisyHeader + `"`
	}
	return s + "}"
}

// noisyArm is one way to face the flood.
type noisyArm struct {
	name  string
	start proxyStarter
	// alone runs the polite client without the flood: the reference.
	alone bool
	// fair is the arm issue 18's target is for.
	fair bool
}

// noisyRun is what one arm measured: each client's results.
type noisyRun struct{ polite, flood *Result }

// runNoisyNeighbor runs a polite client at 15% of the upstream's capacity
// beside a flooding one at 4×, through tailguard with and without
// shed.fair_by and HAProxy with a static split of the upstream's
// connections between the two clients, plus the polite client alone
// (through the fair arm) for reference. -rate is the capacity in requests
// a second (default 400: 8 workers × 20 ms), -duration each arm's time
// (default 8s).
func runNoisyNeighbor(ctx context.Context, e *Env) (*Outcome, error) {
	capacity := e.rate(400, 200)
	workers := max(int(capacity*noisyService.Seconds()+0.5), 2)
	capacity = float64(workers) / noisyService.Seconds()
	d := e.span(8*time.Second, 500*time.Millisecond)
	dir, err := os.MkdirTemp("", "tailguard-noisy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	politeSlots := noisyPoliteSlots(workers)
	t := noisyTable(workers, capacity, d, politeSlots)
	out := &Outcome{Tables: []*Table{t}}
	var alone time.Duration
	for _, a := range noisyArms(e, dir, workers, politeSlots) {
		run, err := e.noisyArm(ctx, a, workers, capacity, d)
		if isSkipped(err) {
			t.note("%s: skipped: %v", a.name, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if a.alone {
			alone = run.politeP99()
		}
		addNoisyRow(t, a.name, run, alone, capacity)
		if a.fair {
			t.note("%s against the target: %s", a.name, noisyVerdict(run, alone, capacity))
		}
		out.Series = append(out.Series, Series{Label: a.name + ", polite", Points: spectrum(run.polite.Of(Is2xx))})
	}
	return out, ctx.Err()
}

// noisyPoliteSlots is HAProxy's static share for the polite client: the
// connections its rate needs on average, doubled, so that its bursts
// rarely queue.
func noisyPoliteSlots(workers int) int {
	return min(max(int(math.Ceil(2*noisyPoliteShare*float64(workers))), 1), workers-1)
}

// noisyArms are the arms: the polite client alone through tailguard with
// fair_by; with the flood through tailguard without and with fair_by;
// and through HAProxy routing each client to a backend of its own with a
// fixed share of the upstream's connections (HAProxy queues per backend
// or server, not per client, so a split known in advance is its best
// static answer). All give up on a request after 1 s.
func noisyArms(e *Env, dir string, workers, politeSlots int) []noisyArm {
	lim := haproxyOptions{threads: runtime.NumCPU(), maxconn: workers - politeSlots, maxqueue: 64, queue: 100 * time.Millisecond,
		frontend: []string{fmt.Sprintf("use_backend polite if { req.hdr(%s) -m str polite }", noisyHeader)},
		sections: fmt.Sprintf("backend polite\n  server s1 UPSTREAM maxconn %d maxqueue 64\n", politeSlots)}
	fair := e.tailguardStarter(noisyShed(workers, true))
	return []noisyArm{
		{name: "polite alone, tailguard fair_by", start: fair, alone: true},
		{name: "tailguard, shed without fair_by", start: e.tailguardStarter(noisyShed(workers, false))},
		{name: "tailguard, shed with fair_by", start: fair, fair: true},
		{name: fmt.Sprintf("HAProxy, backends per client: flood maxconn %d, polite maxconn %d", workers-politeSlots, politeSlots),
			start: e.haproxyStarter(dir, lim)},
	}
}

// noisyArm runs the clients through one arm, against a fresh upstream.
func (e *Env) noisyArm(ctx context.Context, a noisyArm, workers int, capacity float64, d time.Duration) (run noisyRun, err error) {
	up, err := StartUpstream(UpstreamOptions{Workers: workers, Faults: Faults{Latency: noisyLatency}})
	if err != nil {
		return run, err
	}
	defer up.Close()
	url, stop, err := a.start(ctx, up.Addr())
	if err != nil {
		return run, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	client := func(name string, share float64, conns int) Load {
		return Load{URL: url, Rate: share * capacity, Duration: d, Connections: conns, Timeout: 2 * time.Second,
			Headers: []Header{{Name: noisyHeader, Value: name}}}
	}
	var wg sync.WaitGroup
	var floodErr error
	if !a.alone {
		flood := client("flood", noisyFloodShare, 2048)
		e.logf("%s: flood %s", a.name, describeLoad(flood))
		wg.Go(func() { run.flood, floodErr = e.load(ctx, a.name+", flood", flood) })
	}
	polite := client("polite", noisyPoliteShare, 256)
	e.logf("%s: polite %s", a.name, describeLoad(polite))
	run.polite, err = e.load(ctx, a.name+", polite", polite)
	wg.Wait()
	return run, errors.Join(err, floodErr)
}

func noisyTable(workers int, capacity float64, d time.Duration, politeSlots int) *Table {
	t := &Table{
		Title: fmt.Sprintf("Noisy neighbor: upstream of %d workers × %v = %.0f req/s; polite client at %.0f%%, flood at %.0f× capacity, open loop, %v per arm",
			workers, noisyService, capacity, 100*noisyPoliteShare, float64(noisyFloodShare), d),
		Columns: []string{"arm", "polite sent", "polite 2xx share", "polite p50 of 2xx", "polite p99 of 2xx",
			"polite p99 ÷ alone", "flood goodput (2xx/s)", "flood refused", "service use (2xx/s ÷ capacity)"},
	}
	t.note("the clients are told apart by `%s`; tailguard's arms: `%s`, the fair arm adds `fair_by: \"header:%s\"`", noisyHeader, noisyShed(workers, false), noisyHeader)
	t.note("HAProxy: one backend per client on the same upstream, the polite one with %d of the %d connections (twice what its rate needs on average), both with maxqueue 64 and timeout queue 100ms", politeSlots, workers)
	t.note("service time log-normal, median %v, σ %.2g; client timeout 2 s; tailguard's route timeout and HAProxy's server timeout 1 s; goodput is 2xx ÷ the arm's wall time", noisyService, noisyLatency.Sigma)
	t.note("issue 18 target with fair_by: polite 2xx share ≥ 95%%, polite p99 ≤ 2× alone, service use ≥ 90%%")
	return t
}

// politeP99 is the polite client's p99 of 2xx.
func (r noisyRun) politeP99() time.Duration { return quantile(r.polite.Of(Is2xx), 0.99) }

// politeShare is the share of the polite client's requests answered 2xx.
func (r noisyRun) politeShare() float64 {
	return float64(r.polite.CountOf(Is2xx)) / float64(max(r.polite.Count(), 1))
}

// floodGoodput is the flood's 2xx a second (0 without a flood).
func (r noisyRun) floodGoodput() float64 {
	if r.flood == nil {
		return 0
	}
	return float64(r.flood.CountOf(Is2xx)) / r.flood.Elapsed.Seconds()
}

// use is the 2xx a second of both clients, as a share of capacity.
func (r noisyRun) use(capacity float64) float64 {
	polite := float64(r.polite.CountOf(Is2xx)) / r.polite.Elapsed.Seconds()
	return (polite + r.floodGoodput()) / capacity
}

func addNoisyRow(t *Table, name string, r noisyRun, alone time.Duration, capacity float64) {
	var refused int64
	if r.flood != nil {
		refused = r.flood.Count() - r.flood.CountOf(Is2xx)
	}
	t.add(name, countCell(r.polite.Count()), numCell(100*r.politeShare(), unitPercent),
		msCell(quantile(r.polite.Of(Is2xx), 0.5)), msCell(r.politeP99()),
		ratioCell(float64(r.politeP99()), float64(alone)), numCell(r.floodGoodput(), unitPerSec),
		countCell(refused), numCell(100*r.use(capacity), unitPercent))
}

// noisyVerdict says whether the fair arm meets issue 18's target.
func noisyVerdict(r noisyRun, alone time.Duration, capacity float64) string {
	share, p99, use := r.politeShare(), float64(r.politeP99())/float64(max(alone, time.Microsecond)), r.use(capacity)
	return fmt.Sprintf("%s (polite 2xx %.1f%%, p99 %.2f× alone, service use %.0f%%)",
		metOrNot(share >= 0.95 && p99 <= 2 && use >= 0.9), 100*share, p99, 100*use)
}
