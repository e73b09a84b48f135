package bench

import (
	"slices"
	"strings"
	"testing"
)

// TestBoundNote: a bound is shown only when the ratio's whole interval is
// on its side (at the limit counts), at most for ≤ and at least for ≥;
// an interval across the limit is not shown whatever its median, and
// without enough pairs there is no verdict.
func TestBoundNote(t *testing.T) {
	enough := func(low, high float64) ratioSummary {
		return ratioSummary{n: 20, median: (low + high) / 2, low: low, high: high, level: 0.9586}
	}
	for _, tt := range []struct {
		name string
		b    bound
		r    ratioInterval
		want string
	}{
		{"under", bound{limit: 1.3}, enough(1.1, 1.25), "x ≤ 1.30× shown (the 95% interval's top, 1.25×, ≤ 1.30×)"},
		{"top at the limit", bound{limit: 1.3}, enough(1.1, 1.3), "x ≤ 1.30× shown (the 95% interval's top, 1.30×, ≤ 1.30×)"},
		{"across", bound{limit: 1.3}, enough(1.2, 1.35), "x ≤ 1.30× not shown: the 95% interval's top is 1.35×"},
		{"above", bound{limit: 0.85, atLeast: true}, enough(0.86, 0.95), "x ≥ 0.850× shown (the 95% interval's bottom, 0.860×, ≥ 0.850×)"},
		{"bottom at the limit", bound{limit: 0.85, atLeast: true}, enough(0.85, 0.95), "x ≥ 0.850× shown"},
		{"bottom under", bound{limit: 0.85, atLeast: true}, enough(0.84, 1.2), "x ≥ 0.850× not shown: the 95% interval's bottom is 0.840×"},
		{"five pairs", bound{limit: 1}, ratioSummary{n: 5, low: 0.5, high: 0.6, level: 0.9375}, "x ≤ 1.00×: too few pairs for a verdict (5, need 6)"},
		{"no pairs", bound{limit: 1}, ratioSummary{}, "x ≤ 1.00×: too few pairs for a verdict (0, need 6)"},
		{"pooled", bound{limit: 1}, pooledRatio{n: 12, b: 4, ratio: 0.9, low: 0.8, high: 0.99}, "x ≤ 1.00× shown (the bootstrap interval's top, 0.990×, ≤ 1.00×)"},
		{"pooled, few", bound{limit: 1}, pooledRatio{n: 9, b: 4, ratio: 0.9, low: 0.8, high: 0.99}, "x ≤ 1.00×: too few pairs for a verdict (9, need 10)"},
	} {
		if got := tt.b.note("x", tt.r); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestMinIntervalPairs: minIntervalPairs is the fewest ratios whose
// median has a 95% interval.
func TestMinIntervalPairs(t *testing.T) {
	if medianIntervalLevel(minIntervalPairs, 1) < 0.95 || medianIntervalLevel(minIntervalPairs-1, 1) >= 0.95 {
		t.Errorf("minIntervalPairs %d: levels %v and %v", minIntervalPairs,
			medianIntervalLevel(minIntervalPairs-1, 1), medianIntervalLevel(minIntervalPairs, 1))
	}
}

// TestPooledVerdictWording: the A/B pooled note reads as it did before
// the peers' goals shared its wording.
func TestPooledVerdictWording(t *testing.T) {
	for _, tt := range []struct {
		r    pooledRatio
		want string
	}{
		{pooledRatio{n: 12, b: 4, low: 0.9, high: 1.04}, "pooled p99 new ÷ baseline ≤ 1.05× shown (the bootstrap interval's top, 1.04×, ≤ 1.05×)"},
		{pooledRatio{n: 12, b: 4, low: 0.9, high: 1.2}, "pooled p99 new ÷ baseline ≤ 1.05× not shown: the bootstrap interval's top is 1.20×"},
		{pooledRatio{n: 4}, "pooled p99 new ÷ baseline ≤ 1.05×: too few pairs for a verdict (4, need 10)"},
		{pooledRatio{n: 12}, "pooled p99 new ÷ baseline ≤ 1.05×: too few pairs for a verdict (no open-loop latency to pool)"},
	} {
		if got := pooledVerdict(tt.r); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

// TestPeerComparisonsTargets: every arm -peers compares is one of
// overhead's targets, so that it is started as the rounds start it.
func TestPeerComparisonsTargets(t *testing.T) {
	var names []string
	for _, tg := range overheadTargets(&Env{}) {
		names = append(names, tg.name)
	}
	for _, pc := range peerComparisons {
		if !slices.Contains(names, pc.a) || !slices.Contains(names, pc.b) {
			t.Errorf("%s ÷ %s: not both among overhead's targets %q", pc.a, pc.b, names)
		}
	}
}

// addPairs gives c n made-up pairs: a's and b's rows as made by row(i),
// with latency histograms drawn at scales la and lb.
func addPairs(c *comparison, n int, seed uint64, la, lb float64, row func(i int) (pairRow, pairRow)) {
	ha := syntheticPairs(seed, n, 1000, la, noDrift)
	hb := syntheticPairs(seed+1, n, 1000, lb, noDrift)
	for i := range n {
		ra, rb := row(i)
		ra.name, rb.name, ra.latency, rb.latency = c.a.name, c.b.name, ha[i], hb[i]
		c.a.rows, c.b.rows = append(c.a.rows, ra), append(c.b.rows, rb)
		c.pairs = append(c.pairs, [2]pairRow{ra, rb})
	}
}

// TestPairsOutcomePeers: from made-up pairs, the ratios table has a row
// per peer comparison between the A/B-less start and the A/A row, with
// the req/s ratio, and the notes a verdict per goal: tailguard ÷ nginx
// within 1.3× in CPU and over 0.85× in req/s but not within nginx's
// pooled p99 (1.5× its latency), tailguard ÷ the relay over the relay's
// CPU, and the policies arm, with 5 pairs, without a verdict.
func TestPairsOutcomePeers(t *testing.T) {
	self, again := &pairArm{name: "tailguard"}, &pairArm{name: "tailguard (second process)"}
	nginx, relay, policies := &pairArm{name: "nginx"}, &pairArm{name: "fasthttp relay"}, &pairArm{name: "tailguard, policies"}
	comps := []*comparison{
		peerComparisons[0].of(self, nginx),
		peerComparisons[1].of(self, relay),
		peerComparisons[2].of(policies, nginx),
		{name: "A/A: tailguard ÷ tailguard (second process)", a: self, b: again, aa: true},
	}
	addPairs(comps[0], 12, 10, 1.5, 1, func(i int) (pairRow, pairRow) {
		return pairRow{rps: 9000 + float64(i), cpuUS: 50, rateCPU: 60}, pairRow{rps: 10000, cpuUS: 40, rateCPU: 50}
	})
	addPairs(comps[1], 12, 20, 1, 1, func(i int) (pairRow, pairRow) {
		return pairRow{rps: 9000, cpuUS: 50 + float64(i)}, pairRow{rps: 9500, cpuUS: 45}
	})
	addPairs(comps[2], 5, 30, 1, 1, func(i int) (pairRow, pairRow) {
		return pairRow{rps: 8000, cpuUS: 60}, pairRow{rps: 10000, cpuUS: 40}
	})
	addPairs(comps[3], 12, 40, 1, 1, func(i int) (pairRow, pairRow) {
		return pairRow{rps: 9000, cpuUS: 50}, pairRow{rps: 9000, cpuUS: 50}
	})
	out := pairsOutcome([]*pairArm{self, again, nginx, relay, policies}, comps, &Env{Peers: true, Self: []string{"/new"}}, 2000, 0, nil)
	a, r := out.Tables[0], out.Tables[1]
	wantRows(t, a, "tailguard", "tailguard (second process)", "nginx", "fasthttp relay", "tailguard, policies")
	if !slices.Contains(a.Notes, peersNote) {
		t.Errorf("arms table lacks the peers' note:\n%s", strings.Join(a.Notes, "\n"))
	}
	wantRows(t, r, "tailguard ÷ nginx", "tailguard ÷ fasthttp relay", "tailguard, policies ÷ nginx", "A/A: tailguard ÷ tailguard (second process)")
	for _, row := range r.Rows {
		if len(row.Cells)+1 != len(r.Columns) {
			t.Fatalf("row %q has %d cells for %d columns", row.Name, len(row.Cells), len(r.Columns))
		}
	}
	if got := cell(t, r, "tailguard ÷ nginx", "req/s (closed loop)"); !near(got, 0.90055) {
		t.Errorf("req/s ratio %v, want 0.90055", got)
	}
	if got := cell(t, r, "tailguard ÷ nginx", "CPU per request (closed loop)"); got != 1.25 {
		t.Errorf("CPU ratio %v, want 1.25", got)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{
		"goal (issue): CPU per request (closed loop), tailguard ÷ nginx ≤ 1.30× shown",
		"goal (issue): req/s (closed loop), tailguard ÷ nginx ≥ 0.850× shown",
		"goal (issue): pooled p99 (open loop), tailguard ÷ nginx ≤ 1.00× not shown: the bootstrap interval's top is",
		"goal (issue): CPU per request (closed loop), tailguard ÷ fasthttp relay ≤ 1.00× not shown",
		"goal (issue): CPU per request (closed loop), tailguard, policies ÷ nginx ≤ 1.30×: too few pairs for a verdict (5, need 6)",
		"goal (issue): pooled p99 (open loop), tailguard, policies ÷ nginx ≤ 1.00×: too few pairs for a verdict (5, need 10)",
		"ABBA), every comparison's pairs interleaved",
		"A/A: the same binary differs from itself",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "new ÷ baseline") {
		t.Errorf("an A/B verdict without a -baseline arm:\n%s", notes)
	}
}

// TestPeersNeedPairs: -peers without -pairs is refused before anything
// starts; the rounds measure the peers already.
func TestPeersNeedPairs(t *testing.T) {
	_, err := RunScenario(t.Context(), "overhead", Env{Peers: true})
	if err == nil || !strings.Contains(err.Error(), "-peers is for -pairs") {
		t.Errorf("err %v, want -peers refused without -pairs", err)
	}
}
