package bench

import (
	"context"
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
	rows []overheadRow
}

// comparison is two arms measured in pairs: each pair measures both, one
// right after the other, and yields the ratios a ÷ b.
type comparison struct {
	name  string
	a, b  *pairArm
	aa    bool             // b is a second process of a's binary
	pairs [][2]overheadRow // a's row, b's row
}

// runOverheadPairs is overhead's paired mode (-pairs N): tailguard
// against the -baseline binary, and tailguard against a second process
// of itself (A/A), each compared in N pairs of short measurements. The
// three processes run at once on CPU 0 beside the one upstream; a pair
// measures its two arms back to back in ABBA order, each with a closed
// loop (CPU per request, req/s) and an open loop at -rate (p99). A
// pair's ratio cancels what the machine was doing during that pair,
// which the medians of a few long rounds cannot on a shared VM; the A/A
// comparison, measured the same way and interleaved, shows how large a
// difference the machine can resolve at all.
func runOverheadPairs(ctx context.Context, e *Env) (*Outcome, error) {
	if e.Rounds > 0 {
		return nil, fmt.Errorf("overhead: -pairs and -rounds: give one")
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
	for i := range e.Pairs {
		for _, c := range comps {
			if err := e.measurePair(ctx, c, i, rate, d); err != nil {
				return nil, err
			}
		}
	}
	// The bed's note on rounds is about medians over rounds, not pairs.
	notes := slices.DeleteFunc(b.notes, func(n string) bool { return strings.HasPrefix(n, "each figure is the median over") })
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
	var rows [2]overheadRow
	for _, j := range abba(i) {
		e.logf("overhead pairs: pair %d of %s: %s", i+1, c.name, arms[j].name)
		r, err := e.measureOverhead(ctx, arms[j].name, arms[j].addr, arms[j].proc, rate, d)
		if err != nil {
			return fmt.Errorf("pair %d, %s: %w", i+1, arms[j].name, err)
		}
		rows[j] = r
		arms[j].rows = append(arms[j].rows, r)
	}
	c.pairs = append(c.pairs, rows)
	return nil
}

// pairColumns are the ratios table's columns: each figure's median ratio
// over the pairs, and its interval.
var pairColumns = []string{"comparison", "pairs", "CPU per request", "95% interval", "p99", "95% interval", "req/s", "95% interval"}

// pairsOutcome tabulates each arm's medians over its measurements, then
// each comparison's paired ratios.
func pairsOutcome(arms []*pairArm, comps []*comparison, e *Env, rate float64, d time.Duration, notes []string) *Outcome {
	loops := fmt.Sprintf("closed loop (64 conns) for req/s and CPU, open loop at %.0f/s for latency, %v each after a %v warm-up", rate, d, d/4)
	t := &Table{Title: "Overhead in pairs: each arm's medians; " + loops, Columns: overheadColumns, Notes: notes}
	for _, a := range arms {
		m := medianFigures(a.rows)
		t.add(a.name, numCell(m.rps, unitPerSec), numCell(m.cpuUS, unitMicros), numCell(m.p50, unitMS),
			numCell(m.p99, unitMS), numCell(m.p999, unitMS), numCell(m.rss, unitMiB))
	}
	t.note("tailguard: %s; tailguard (second process): the same binary again, for the A/A comparison", strings.Join(e.self(), " "))
	if e.Baseline != "" {
		t.note("tailguard baseline: %s", e.Baseline)
	}
	t.note("the three run at once, each a process of its own with the default config (buffering on), on CPU 0 beside the upstream; CPU per request is the proxy's own")
	r := &Table{Title: fmt.Sprintf("Overhead in pairs: median of %d paired ratios (ABBA order)", e.Pairs), Columns: pairColumns}
	for _, c := range comps {
		cpu := c.summarize(func(r overheadRow) float64 { return r.cpuUS })
		p99 := c.summarize(func(r overheadRow) float64 { return r.p99 })
		rps := c.summarize(func(r overheadRow) float64 { return r.rps })
		r.add(c.name, countCell(int64(cpu.n)),
			numCell(cpu.median, unitRatio), textCell(cpu.interval()),
			numCell(p99.median, unitRatio), textCell(p99.interval()),
			numCell(rps.median, unitRatio), textCell(rps.interval()))
	}
	r.Notes = pairNotes(comps)
	return &Outcome{Tables: []*Table{t, r}}
}

// summarize is the ratios a ÷ b of one figure over c's pairs.
func (c *comparison) summarize(get func(overheadRow) float64) ratioSummary {
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
		cpu := c.summarize(func(r overheadRow) float64 { return r.cpuUS })
		p99 := c.summarize(func(r overheadRow) float64 { return r.p99 })
		if !c.aa {
			notes = append(notes, fmt.Sprintf("new ÷ baseline ≤ 1.05× shown (the 95%% interval's top ≤ 1.05×): CPU per request %s, p99 %s",
				cpu.within(1.05), p99.within(1.05)))
			continue
		}
		notes = append(notes, fmt.Sprintf("A/A: the same binary differs from itself by up to ±%.1f%% in CPU per request and ±%.1f%% in p99 (the interval's farther end): smaller differences are not resolved on this machine now",
			100*cpu.spread(), 100*p99.spread()))
	}
	return notes
}

// spread is how far the interval reaches from 1 (no difference), either
// way, as a fraction.
func (s ratioSummary) spread() float64 { return max(1-s.low, s.high-1, 0) }

// within says whether the ratios show the median ratio at most bound:
// "yes" when the whole 95% interval is, "no" when it is not, and "too few
// pairs" when there is no 95% interval.
func (s ratioSummary) within(bound float64) string {
	switch {
	case s.n == 0 || s.level < 0.95:
		return "too few pairs"
	case s.high <= bound:
		return "yes"
	default:
		return "no"
	}
}
