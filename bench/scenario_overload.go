package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// overloadService is the capacity-limited upstream's service time: each
// of its workers takes a fixed 10 ms, so workers × 100 is its capacity.
const overloadService = 10 * time.Millisecond

// overloadShed is the adaptive arm's admission: the limit follows the
// upstream's latency, a short queue, CoDel.
const overloadShed = "shed: {max_concurrency: adaptive, queue: 64, queue_timeout: 25ms}"

// overloadLevels are the offered loads, as multiples of capacity; the
// first is the unloaded reference.
var overloadLevels = []float64{0.25, 1, 2, 4}

// overloadArm is one way to face the overload.
type overloadArm struct {
	name  string
	start proxyStarter
	shed  bool // the arm issue 5's target is for
}

// overloadLevel is what one arm measured at one offered load.
type overloadLevel struct {
	x   float64 // offered, × capacity
	res *Result
}

// runOverload offers an upstream of fixed capacity 0.25×, 1×, 2× and 4×
// its capacity, open loop, through tailguard with adaptive shedding,
// tailguard without shedding (the upstream's own FIFO queue takes the
// excess) and HAProxy with static limits set to the known capacity.
// -rate is the capacity in requests a second (default 1600: 16 workers ×
// 10 ms), -duration each level's time (default 6s).
func runOverload(ctx context.Context, e *Env) (*Outcome, error) {
	capacity := e.rate(1600, 200)
	workers := max(int(capacity*overloadService.Seconds()+0.5), 1)
	capacity = float64(workers) / overloadService.Seconds()
	d := e.span(6*time.Second, 500*time.Millisecond)
	dir, err := os.MkdirTemp("", "tailguard-overload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t := overloadTable(workers, capacity, d)
	out := &Outcome{Tables: []*Table{t}}
	for _, a := range overloadArms(e, dir, workers) {
		levels, err := e.overloadArm(ctx, a, workers, capacity, d)
		if isSkipped(err) {
			t.note("%s: skipped: %v", a.name, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		addOverloadRows(t, a.name, capacity, levels)
		if a.shed {
			t.note("%s against the target: %s", a.name, overloadVerdict(levels, capacity))
		}
		out.Series = append(out.Series, Series{Label: a.name + " at 4×", Points: spectrum(levels[len(levels)-1].res.Latency)})
	}
	return out, ctx.Err()
}

// overloadArms are the three arms: tailguard with adaptive shedding,
// tailguard without, HAProxy with the best static limits for the known
// capacity (maxconn = workers) and a thread per CPU. All give up on a
// request after 1 s.
func overloadArms(e *Env, dir string, workers int) []overloadArm {
	lim := haproxyOptions{threads: runtime.NumCPU(), maxconn: workers, maxqueue: 64, queue: 25 * time.Millisecond}
	return []overloadArm{
		{name: "tailguard, adaptive shedding", start: e.tailguardStarter(overloadShed), shed: true},
		{name: "tailguard, no shedding", start: e.tailguardStarter()},
		{name: fmt.Sprintf("HAProxy maxconn %d maxqueue 64 timeout queue 25ms", workers), start: e.haproxyStarter(dir, lim)},
	}
}

// overloadArm runs every level through one arm, each against a drained
// upstream.
func (e *Env) overloadArm(ctx context.Context, a overloadArm, workers int, capacity float64, d time.Duration) (levels []overloadLevel, err error) {
	up, err := StartUpstream(UpstreamOptions{Workers: workers, Faults: Faults{Latency: Latency{Median: overloadService}}})
	if err != nil {
		return nil, err
	}
	defer up.Close()
	url, stop, err := a.start(ctx, up.Addr())
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()
	for _, x := range overloadLevels {
		// 0.25× is the unloaded reference, and a warm-up for the adaptive
		// limit.
		l := Load{URL: url, Rate: x * capacity, Duration: d, Connections: 2048, Timeout: 2 * time.Second}
		e.logf("%s: %.2g× capacity, %s", a.name, x, describeLoad(l))
		res, err := e.load(ctx, fmt.Sprintf("%s %.2g×", a.name, x), l)
		if err != nil {
			return nil, err
		}
		levels = append(levels, overloadLevel{x: x, res: res})
		waitIdle(ctx, []*Upstream{up}, 15*time.Second)
	}
	return levels, nil
}

func overloadTable(workers int, capacity float64, d time.Duration) *Table {
	t := &Table{
		Title: fmt.Sprintf("Overload: upstream of %d workers × %v = %.0f req/s, open loop, %v per level",
			workers, overloadService, capacity, d),
		Columns: []string{"arm", "offered", "requests", "2xx", "goodput (2xx/s)", "goodput ÷ capacity", "p99 of 2xx",
			"p99 2xx ÷ unloaded", "503", "504", "client errors", "other"},
	}
	t.note("goodput is 2xx responses ÷ the level's wall time (its sending time plus the tail of the last answers); unloaded = the same arm at 0.25× capacity")
	t.note("client timeout 2 s; tailguard's route timeout and HAProxy's server timeout 1 s; HAProxy runs a thread per CPU (%d), tailguard in the scenario's process", runtime.NumCPU())
	t.note("adaptive arm: `%s`; issue 5 target at each level: goodput ≥ 90%% of capacity and p99 of 2xx ≤ 3× unloaded", overloadShed)
	return t
}

// goodput is a level's 2xx a second, and p99 the 2xx's p99.
func (lv overloadLevel) goodput() float64 {
	return float64(lv.res.CountOf(Is2xx)) / lv.res.Elapsed.Seconds()
}

func (lv overloadLevel) p99() time.Duration { return quantile(lv.res.Of(Is2xx), 0.99) }

// addOverloadRows adds an arm's levels to t.
func addOverloadRows(t *Table, name string, capacity float64, levels []overloadLevel) {
	unloaded := float64(levels[0].p99())
	for _, lv := range levels {
		r := lv.res
		ok := r.CountOf(Is2xx)
		n503, n504, nErr := r.CountOf(IsStatus(503)), r.CountOf(IsStatus(504)), r.CountOf(IsError)
		t.add(fmt.Sprintf("%s, %.2g×", name, lv.x), numCell(lv.x*capacity, unitPerSec), countCell(r.Count()),
			countCell(ok), numCell(lv.goodput(), unitPerSec), numCell(100*lv.goodput()/capacity, unitPercent),
			msCell(lv.p99()), ratioCell(float64(lv.p99()), unloaded), countCell(n503), countCell(n504),
			countCell(nErr), countCell(r.Count()-ok-n503-n504-nErr))
	}
}

// overloadVerdict says, level by level above the reference, whether the
// levels meet issue 5's target.
func overloadVerdict(levels []overloadLevel, capacity float64) string {
	unloaded := float64(max(levels[0].p99(), time.Microsecond))
	var v []string
	for _, lv := range levels[1:] {
		good, p99 := lv.goodput()/capacity, float64(lv.p99())/unloaded
		v = append(v, fmt.Sprintf("%.2g× %s (goodput %.0f%%, p99 %.1f× unloaded)", lv.x, metOrNot(good >= 0.9 && p99 <= 3), 100*good, p99))
	}
	return strings.Join(v, "; ")
}
