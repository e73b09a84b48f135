package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// pairArm is one tailguard process of a paired comparison, started once
// and measured many times.
type pairArm struct {
	name string
	addr string
	proc *process
	rows []pairRow
}

// pairRow is one measurement of an arm: closed-loop req/s and CPU per
// request (µs), CPU per request in the open loop at the fixed rate, and
// that loop's latency percentiles (ms).
type pairRow struct {
	name                string
	rps, cpuUS, rateCPU float64
	p50, p99, p999      float64
}

func (r pairRow) rowName() string { return r.name }

// figures are in pairArmColumns' order.
func (r pairRow) figures() []float64 {
	return []float64{r.rps, r.cpuUS, r.rateCPU, r.p50, r.p99, r.p999}
}

func (r *pairRow) setFigures(f []float64) {
	r.rps, r.cpuUS, r.rateCPU, r.p50, r.p99, r.p999 = f[0], f[1], f[2], f[3], f[4], f[5]
}

// comparison is two arms measured in pairs: each pair measures both, one
// right after the other, and yields the ratios a ÷ b.
type comparison struct {
	name  string
	a, b  *pairArm
	aa    bool         // b is a second process of a's binary
	pairs [][2]pairRow // a's row, b's row
}

// runOverheadPairs is overhead's paired mode (-pairs N): tailguard
// against the -baseline binary, and tailguard against a second process
// of itself (A/A), each compared in N pairs of short measurements. The
// three processes run at once on CPU 0 beside the one upstream; a pair
// measures its two arms back to back in ABBA order, each with a closed
// loop (CPU per request, req/s) and an open loop at -rate (CPU per
// request, p99). A
// pair's ratio cancels what the machine was doing during that pair,
// which the medians of a few long rounds cannot on a shared VM; the A/A
// comparison, measured the same way and interleaved, shows how large a
// difference the machine can resolve at all.
func runOverheadPairs(ctx context.Context, e *Env) (*Outcome, error) {
	if e.Rounds > 0 {
		return nil, errors.New("overhead: -pairs and -rounds: give one")
	}
	rate, d := e.rate(2000, 200), e.span(2*time.Second, 300*time.Millisecond)
	b, err := e.newBed(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	defer b.close()
	var started []*pairArm
	defer func() {
		for _, a := range started {
			a.proc.stop()
		}
	}()
	start := func(name, bin string) (*pairArm, error) {
		a, err := e.startPairArm(ctx, filepath.Join(b.dir, fmt.Sprint(len(started))), name, bin, b.upAddr)
		if err == nil {
			started = append(started, a)
		}
		return a, err
	}
	self, err := start("tailguard", "")
	if err != nil {
		return nil, err
	}
	var comps []*comparison
	if e.Baseline != "" {
		base, err := start("tailguard baseline", e.Baseline)
		if err != nil {
			return nil, err
		}
		comps = append(comps, &comparison{name: "A/B: tailguard ÷ tailguard baseline", a: self, b: base})
	}
	again, err := start("tailguard (second process)", "")
	if err != nil {
		return nil, err
	}
	comps = append(comps, &comparison{name: "A/A: tailguard ÷ tailguard (second process)", a: self, b: again, aa: true})
	// The bed's note on rounds is about medians over rounds, not pairs.
	notes := slices.DeleteFunc(b.notes, func(n string) bool { return strings.HasPrefix(n, "each figure is the median over") })
	// A pair that fails (a request timing out on an overloaded machine)
	// is dropped and noted rather than losing the run, up to half of them.
	dropped := 0
	for i := range e.Pairs {
		for _, c := range comps {
			err := e.measurePair(ctx, c, i, rate, d)
			if err == nil {
				continue
			}
			if dropped++; ctx.Err() != nil || dropped > e.Pairs*len(comps)/2 {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			notes = append(notes, fmt.Sprintf("dropped: %s, %v", c.name, err))
		}
	}
	return pairsOutcome(started, comps, e, rate, d, notes), nil
}

// startPairArm starts tailguard (bin, or this binary if "") with the
// plain overhead config, its files in dir.
func (e *Env) startPairArm(ctx context.Context, dir, name, bin, upAddr string) (*pairArm, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	self := e.self()
	if bin != "" {
		self = []string{bin}
	}
	addr, proc, err := e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upAddr}}, self)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &pairArm{name: name, addr: addr, proc: proc}, nil
}

// measurePair measures c's two arms as pair i, in abba(i)'s order.
func (e *Env) measurePair(ctx context.Context, c *comparison, i int, rate float64, d time.Duration) error {
	arms := [2]*pairArm{c.a, c.b}
	var rows [2]pairRow
	for _, j := range abba(i) {
		e.logf("overhead pairs: pair %d of %s: %s", i+1, c.name, arms[j].name)
		r, err := e.measureArm(ctx, arms[j], rate, d)
		if err != nil {
			return fmt.Errorf("pair %d, %s: %w", i+1, arms[j].name, err)
		}
		rows[j] = r
	}
	c.a.rows = append(c.a.rows, rows[0])
	c.b.rows = append(c.b.rows, rows[1])
	c.pairs = append(c.pairs, rows)
	return nil
}

// measureArm measures a once: a closed loop (after a warm-up) with the
// CPU read in ticks around it, as overhead's rounds do, then an open loop
// at rate with the CPU read to the nanosecond around it (at 2,000 req/s a
// proxy uses too little CPU in a few seconds for 10 ms ticks).
func (e *Env) measureArm(ctx context.Context, a *pairArm, rate float64, d time.Duration) (pairRow, error) {
	url := "http://" + a.addr + "/"
	closed, err := e.closedLoop(ctx, a.proc, url, d)
	if err != nil {
		return pairRow{}, err
	}
	t0, err := cpuNanos(a.proc.pid())
	if err != nil {
		return pairRow{}, err
	}
	open, err := e.generate(ctx, url, "-rate", fmt.Sprint(rate), "-duration", d.String())
	if err != nil {
		return pairRow{}, err
	}
	t1, err := cpuNanos(a.proc.pid())
	return pairRow{
		name: a.name, rps: closed.rps, cpuUS: closed.cpuUS,
		rateCPU: float64(t1-t0) / 1e3 / float64(max(open.Requests, 1)),
		p50:     open.LatencyMS.P50, p99: open.LatencyMS.P99, p999: open.LatencyMS.P999,
	}, err
}

// pairArmColumns are the arms table's columns.
var pairArmColumns = []string{"target", "req/s (closed loop)", "CPU per request (closed loop)", "CPU per request (open loop)", "p50", "p99", "p99.9"}

// pairColumns are the ratios table's columns: each figure's median ratio
// over the pairs, and its interval.
var pairColumns = []string{"comparison", "pairs", "CPU per request (closed loop)", "95% interval", "CPU per request (open loop)", "95% interval", "p99", "95% interval"}

// pairsOutcome tabulates each arm's medians over its measurements, then
// each comparison's paired ratios.
func pairsOutcome(arms []*pairArm, comps []*comparison, e *Env, rate float64, d time.Duration, notes []string) *Outcome {
	t := &Table{
		Title:   fmt.Sprintf("Overhead in pairs, each arm's medians: closed loop (64 conns) for req/s and CPU, open loop at %.0f/s for CPU and latency, %v each", rate, d),
		Columns: pairArmColumns, Notes: notes,
	}
	for _, a := range arms {
		if len(a.rows) == 0 {
			continue // every pair it was in dropped, as noted
		}
		m := medianFigures(a.rows)
		t.add(a.name, numCell(m.rps, unitPerSec), numCell(m.cpuUS, unitMicros), numCell(m.rateCPU, unitMicros),
			numCell(m.p50, unitMS), numCell(m.p99, unitMS), numCell(m.p999, unitMS))
	}
	t.note("tailguard: %s; tailguard (second process): the same binary again, for the A/A comparison", strings.Join(e.self(), " "))
	if e.Baseline != "" {
		t.note("tailguard baseline: %s", e.Baseline)
	}
	t.note("the arms run at once, each a process of its own with the default config (buffering on), on CPU 0 beside the upstream; CPU per request is the proxy's own: closed loop from /proc/PID/stat after a %v warm-up, open loop from each thread's schedstat", d/4)
	r := &Table{Title: fmt.Sprintf("Overhead in pairs: median of the paired ratios (ABBA order), open loop at %.0f/s", rate), Columns: pairColumns}
	for _, c := range comps {
		cpu, rateCPU, p99 := c.summaries()
		r.add(c.name, append(append(append([]Cell{countCell(int64(len(c.pairs)))},
			cpu.cells()...), rateCPU.cells()...), p99.cells()...)...)
	}
	r.Notes = pairNotes(comps)
	return &Outcome{Tables: []*Table{t, r}}
}

// summaries are the ratios a ÷ b over c's pairs of the figures the
// ratios table shows: closed-loop CPU, open-loop CPU and p99.
func (c *comparison) summaries() (cpu, rateCPU, p99 ratioSummary) {
	return c.summarize(func(r pairRow) float64 { return r.cpuUS }),
		c.summarize(func(r pairRow) float64 { return r.rateCPU }),
		c.summarize(func(r pairRow) float64 { return r.p99 })
}

// summarize is the ratios a ÷ b of one figure over c's pairs.
func (c *comparison) summarize(get func(pairRow) float64) ratioSummary {
	ratios := make([]float64, 0, len(c.pairs))
	for _, p := range c.pairs {
		if b := get(p[1]); b > 0 {
			ratios = append(ratios, get(p[0])/b)
		}
	}
	return summarizeRatios(ratios)
}

// pairNotes say how the pairs were taken and how to read the ratios: a
// change is shown within a bound only when the whole interval is, and
// the A/A interval is the smallest difference the machine can tell.
func pairNotes(comps []*comparison) []string {
	notes := []string{
		"a pair measures its two arms back to back, A,B then B,A in the next pair (ABBA), the A/B and A/A pairs interleaved; a ratio is A's figure ÷ B's in one pair",
		"95% interval: the k-th smallest to k-th largest ratio, distribution-free (binomial) for the median ratio; a level under 95% is shown when there are too few pairs",
	}
	for _, c := range comps {
		cpu, rateCPU, p99 := c.summaries()
		if !c.aa {
			notes = append(notes, fmt.Sprintf("new ÷ baseline ≤ 1.05× shown (the 95%% interval's top ≤ 1.05×): CPU per request %s (closed loop), %s (open loop); p99 %s",
				cpu.within(1.05), rateCPU.within(1.05), p99.within(1.05)))
			continue
		}
		notes = append(notes, fmt.Sprintf("A/A: the same binary differs from itself by up to ±%.1f%% in CPU per request (closed loop), ±%.1f%% (open loop) and ±%.1f%% in p99 (the 95%% interval's farther end from 1): smaller differences are not resolved on this machine at this load",
			100*cpu.spread(), 100*rateCPU.spread(), 100*p99.spread()))
	}
	return notes
}
