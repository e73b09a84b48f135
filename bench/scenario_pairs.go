package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// pairArm is one process of a paired comparison (tailguard, or with
// -peers nginx or the relay), started once and measured many times: its
// name, the address to load and the process whose CPU counts.
type pairArm struct {
	name string
	addr string
	proc *process
	rows []pairRow
}

// pairRow is one measurement of an arm: closed-loop req/s and CPU per
// request (µs), CPU per request in the open loop at the fixed rate, and
// that loop's latency percentiles (ms) and whole histogram (µs, from
// each request's intended start), which the pooled comparison merges
// over pairs.
type pairRow struct {
	name                string
	rps, cpuUS, rateCPU float64
	p50, p99, p999      float64
	latency             *hdrhistogram.Histogram
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
	name string
	a, b *pairArm
	aa   bool // b is a second process of a's binary
	// goals are the targets for a comparison with a peer
	// (-peers); an A/B comparison (b the -baseline binary) has none.
	goals []peerGoal
	pairs [][2]pairRow // a's row, b's row
}

// runOverheadPairs is overhead's paired mode (-pairs N): tailguard
// against the -baseline binary, with -peers against nginx and the bare
// fasthttp relay (and tailguard with every policy against nginx), and
// tailguard against a second process of itself (A/A), each compared in N
// pairs of short measurements. The processes run at once on CPU 0 beside
// the one upstream; a pair measures its two arms back to back in ABBA
// order, each with a closed loop (CPU per request, req/s) and an open
// loop at -rate (CPU per request, p99, and the latency histogram that
// the pooled p99 merges). A pair's ratio cancels what the machine was
// doing during that pair, which the medians of a few long rounds cannot
// on a shared VM; the A/A comparison, measured the same way and
// interleaved, shows how large a difference the machine can resolve at
// all.
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
	s := newPairStarter(b, overheadTargets(e))
	defer s.stop()
	comps, err := s.comparisons(ctx, e.Baseline != "", e.Peers)
	if err != nil {
		return nil, err
	}
	// The bed's note on rounds is about medians over rounds, not pairs.
	notes := slices.DeleteFunc(b.notes, func(n string) bool { return strings.HasPrefix(n, "each figure is the median over") })
	notes, err = measurePairs(ctx, e.Pairs, comps, func(c *comparison) string { return c.name },
		func(c *comparison, i int) error { return e.measurePair(ctx, c, i, rate, d) }, append(notes, s.notes...))
	if err != nil {
		return nil, err
	}
	return pairsOutcome(s.arms, comps, e, rate, d, notes), nil
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
// proxy uses too little CPU in a few seconds for 10 ms ticks), its report
// carrying its latency histogram.
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
	open, err := e.generate(ctx, url, "-rate", fmt.Sprint(rate), "-duration", d.String(), "-hdr")
	if err != nil {
		return pairRow{}, err
	}
	t1, err := cpuNanos(a.proc.pid())
	if err != nil {
		return pairRow{}, err
	}
	lat, err := open.LatencyHistogram()
	return pairRow{
		name: a.name, rps: closed.rps, cpuUS: closed.cpuUS,
		rateCPU: float64(t1-t0) / 1e3 / float64(max(open.Requests, 1)),
		p50:     open.LatencyMS.P50, p99: open.LatencyMS.P99, p999: open.LatencyMS.P999,
		latency: lat,
	}, err
}

// pairArmColumns are the arms table's columns.
var pairArmColumns = []string{"target", "req/s (closed loop)", "CPU per request (closed loop)", "CPU per request (open loop)", "p50", "p99", "p99.9"}

// pairColumns are the ratios table's columns: each figure's median ratio
// over the pairs, and its interval; then the pooled p99 of each arm, the
// pooled ratios and their bootstrap intervals.
var pairColumns = []string{"comparison", "pairs", "req/s (closed loop)", "95% interval", "CPU per request (closed loop)", "95% interval", "CPU per request (open loop)", "95% interval", "p99", "95% interval",
	"pooled p99 A", "pooled p99 B", "pooled p99 A ÷ B", "95% interval (bootstrap)", "pooled p99.9 A ÷ B", "95% interval (bootstrap)"}

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
	t.note("the arms run at once, each a process of its own on CPU 0 beside the upstream, the tailguard arms with the default config (buffering on); CPU per request is the proxy's own: closed loop from /proc/PID/stat after a %v warm-up, open loop from each thread's schedstat", d/4)
	if e.Peers {
		t.note("%s", peersNote)
	}
	r := &Table{Title: fmt.Sprintf("Overhead in pairs: median of the paired ratios (ABBA order), and the pooled p99, open loop at %.0f/s", rate), Columns: pairColumns}
	sums := make([]pairSummary, len(comps))
	for i, c := range comps {
		sums[i] = c.summaries()
		r.add(c.name, sums[i].cells()...)
	}
	r.Notes = pairNotes(comps, sums)
	return &Outcome{Tables: []*Table{t, r}}
}

// pairSummary is what a comparison's pairs say: the median paired
// ratios a ÷ b of closed-loop req/s and CPU, open-loop CPU and p99, and
// the ratio of the arms' pooled open-loop p99 and p99.9.
type pairSummary struct {
	pairs                  int
	rps, cpu, rateCPU, p99 ratioSummary
	pooledP99              pooledRatio
	pooledP999             pooledRatio
}

// summaries are the ratios a ÷ b over c's pairs of the figures the
// ratios table shows.
func (c *comparison) summaries() pairSummary {
	a, b := c.pooledLatency()
	return pairSummary{
		pairs:      len(c.pairs),
		rps:        summarizePairs(c.pairs, func(r pairRow) float64 { return r.rps }),
		cpu:        summarizePairs(c.pairs, func(r pairRow) float64 { return r.cpuUS }),
		rateCPU:    summarizePairs(c.pairs, func(r pairRow) float64 { return r.rateCPU }),
		p99:        summarizePairs(c.pairs, func(r pairRow) float64 { return r.p99 }),
		pooledP99:  comparePooled(a, b, 0.99, bootstrapResamples, bootstrapSeed),
		pooledP999: comparePooled(a, b, 0.999, bootstrapResamples, bootstrapSeed),
	}
}

// cells are s's row of the ratios table, after the comparison's name.
func (s pairSummary) cells() []Cell {
	cells := []Cell{countCell(int64(s.pairs))}
	for _, cs := range [][]Cell{s.rps.cells(), s.cpu.cells(), s.rateCPU.cells(), s.p99.cells(),
		s.pooledP99.armCells(), s.pooledP99.cells(), s.pooledP999.cells()} {
		cells = append(cells, cs...)
	}
	return cells
}

// pooledLatency holds each arm's open-loop histograms over c's pairs,
// pair by pair, for the pooled comparison.
func (c *comparison) pooledLatency() (a, b *pooledLatency) {
	var ha, hb []*hdrhistogram.Histogram
	for _, p := range c.pairs {
		ha, hb = append(ha, p[0].latency), append(hb, p[1].latency)
	}
	return poolLatency(ha), poolLatency(hb)
}

// pairNotes say how the pairs were taken and how to read the ratios: a
// change is shown within a bound only when the whole interval is, and
// the A/A interval is the smallest difference the machine can tell; a
// comparison with a peer gets a verdict per goal. sums[i] is comps[i]'s
// summary.
func pairNotes(comps []*comparison, sums []pairSummary) []string {
	interleaved := "the A/B and A/A pairs"
	if slices.ContainsFunc(comps, func(c *comparison) bool { return len(c.goals) > 0 }) {
		interleaved = "every comparison's pairs"
	}
	notes := []string{
		fmt.Sprintf("a pair measures its two arms back to back, A,B then B,A in the next pair (ABBA), %s interleaved; a ratio is A's figure ÷ B's in one pair", interleaved),
		"95% interval: the k-th smallest to k-th largest ratio, distribution-free (binomial) for the median ratio; a level under 95% is shown when there are too few pairs",
		fmt.Sprintf("pooled p99: each arm's open-loop latency histograms of all the comparison's pairs merged, so p99 rests on all their requests, not on one loop's; its 95%% interval is a percentile bootstrap over pairs (%d resamples of the pair indices with replacement, both arms alike, fixed seed: the same data give the same interval; a verdict needs %d pairs)",
			bootstrapResamples, minBootstrapPairs),
	}
	for i, c := range comps {
		s := sums[i]
		switch {
		case len(c.goals) > 0:
			notes = append(notes, c.goalNotes(s)...)
		case !c.aa:
			notes = append(notes, fmt.Sprintf("new ÷ baseline ≤ 1.05× shown (the 95%% interval's top ≤ 1.05×): CPU per request %s (closed loop), %s (open loop); p99 %s",
				s.cpu.within(1.05), s.rateCPU.within(1.05), s.p99.within(1.05)),
				pooledVerdict(s.pooledP99))
		default:
			notes = append(notes, fmt.Sprintf("A/A: the same binary differs from itself by up to %s in CPU per request (closed loop), %s (open loop), %s in p99 and %s in pooled p99 (the interval's farther end from 1): smaller differences are not resolved on this machine at this load",
				spread(s.cpu), spread(s.rateCPU), spread(s.p99), spread(s.pooledP99)))
		}
	}
	return notes
}

// pooledVerdict is the note on the pooled p99 bound: shown only when the
// whole bootstrap interval is at or under 1.05×.
func pooledVerdict(r pooledRatio) string {
	return bound{limit: 1.05}.note("pooled p99 new ÷ baseline", r)
}
