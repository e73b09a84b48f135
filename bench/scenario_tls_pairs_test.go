package bench

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTLSVerdict: the goal is shown only when the whole 95% interval of
// the paired req/s ratios is at or above 0.8×; a median above it is not
// enough, and an interval under 95% shows nothing.
func TestTLSVerdict(t *testing.T) {
	for _, tt := range []struct {
		name   string
		s      ratioSummary
		prefix string
	}{
		{"no pairs", ratioSummary{}, "too few pairs"},
		{"under 95%", ratioSummary{n: 5, median: 0.95, low: 0.9, high: 1, level: 0.9375}, "too few pairs"},
		{"interval above", ratioSummary{n: 20, median: 0.9, low: 0.85, high: 0.95, level: 0.9586}, "keep-alive req/s, tailguard ÷ nginx ≥ 0.800× shown"},
		{"bottom at the goal", ratioSummary{n: 20, median: 0.9, low: 0.8, high: 0.95, level: 0.9586}, "keep-alive req/s, tailguard ÷ nginx ≥ 0.800× shown"},
		{"median above, bottom under", ratioSummary{n: 20, median: 0.85, low: 0.79, high: 0.95, level: 0.9586}, "keep-alive req/s, tailguard ÷ nginx ≥ 0.800× not shown"},
	} {
		got := tlsVerdict(tt.s)
		if !strings.Contains(got, tt.prefix) {
			t.Errorf("%s: %q, want it to say %q", tt.name, got, tt.prefix)
		}
	}
}

// TestTLSPairsOutcome: from made-up pairs, the arms table has each arm's
// medians, and the ratios table a row per comparison with its pair count,
// median paired ratios and intervals, the verdict and the A/A spread in
// its notes.
func TestTLSPairsOutcome(t *testing.T) {
	arms := []*tlsArm{{name: "tailguard"}, {name: "nginx"}, {name: "tailguard (second process)"}}
	comps := tlsComparisons(arms)
	for i := range 6 {
		f := float64(i)
		pair := func(c *tlsComparison, a, b tlsPairRow) {
			c.a.rows, c.b.rows = append(c.a.rows, a), append(c.b.rows, b)
			c.pairs = append(c.pairs, [2]tlsPairRow{a, b})
		}
		pair(comps[0], tlsPairRow{rps: 900 + f, cpuUS: 50, busy: 60}, tlsPairRow{rps: 1000, cpuUS: 40, busy: 70})
		pair(comps[1], tlsPairRow{rps: 1000, cpuUS: 40 + f, busy: 60}, tlsPairRow{rps: 1000, cpuUS: 40, busy: 60})
	}
	out := tlsPairsOutcome(arms, comps, 2*time.Second, []string{"a bed note"})
	if len(out.Tables) != 2 {
		t.Fatalf("%d tables, want the arms' and the ratios'", len(out.Tables))
	}
	a := out.Tables[0]
	wantRows(t, a, tlsPairArms...)
	if got := cell(t, a, "nginx", "req/s (keep-alive, 64 conns)"); got != 1000 {
		t.Errorf("nginx: median req/s %v, want 1000", got)
	}
	// tailguard is in both comparisons: 40…45 µs and six of 50 µs.
	if got := cell(t, a, "tailguard", "CPU per request"); got != 50 {
		t.Errorf("tailguard: median CPU %v, want 50", got)
	}
	r := out.Tables[1]
	wantRows(t, r, "tailguard ÷ nginx", "A/A: tailguard ÷ tailguard (second process)")
	if got := cell(t, r, "tailguard ÷ nginx", "pairs"); got != 6 {
		t.Errorf("%v pairs, want 6", got)
	}
	if got := cell(t, r, "tailguard ÷ nginx", "req/s (keep-alive)"); math.Abs(got-0.9025) > 1e-9 {
		t.Errorf("median req/s ratio %v, want 0.9025", got)
	}
	if c := r.Rows[0].Cells[2]; c.Text != "0.900–0.905×" {
		t.Errorf("req/s interval %q, want 0.900–0.905×", c.Text)
	}
	if got := cell(t, r, "tailguard ÷ nginx", "CPU per request"); got != 1.25 {
		t.Errorf("median CPU ratio %v, want 1.25", got)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"keep-alive req/s, tailguard ÷ nginx ≥ 0.800× shown", "A/A: the same binary differs from itself by up to ±0.0% in keep-alive req/s and ±12.5% in CPU per request"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes do not say %q:\n%s", want, notes)
		}
	}
	if !slices.Contains(a.Notes, "a bed note") {
		t.Errorf("the bed's notes are lost: %q", a.Notes)
	}
}

// TestScenarioTLSPairsSmoke: tls's paired mode runs tailguard, nginx and
// a second tailguard, all negotiating X25519, and yields a ratio with an
// interval per comparison.
func TestScenarioTLSPairsSmoke(t *testing.T) {
	skipShort(t)
	if _, err := findProgram("nginx"); err != nil {
		t.Skip(err)
	}
	out := runSmoke(t, "tls", func(e *Env) { e.Pairs = 2 })
	a := out.Tables[0]
	wantRows(t, a, tlsPairArms...)
	for _, n := range tlsPairArms {
		if cell(t, a, n, "req/s (keep-alive, 64 conns)") <= 0 || cell(t, a, n, "CPU per request") < 0 {
			t.Errorf("%s: no throughput", n)
		}
		if !slices.Contains(a.Notes, n+": TLS 1.3, TLS_AES_128_GCM_SHA256, X25519") {
			t.Errorf("%s: negotiated not noted as TLS 1.3 with X25519:\n%s", n, strings.Join(a.Notes, "\n"))
		}
	}
	r := out.Tables[1]
	for _, n := range rowNames(r) {
		if got := cell(t, r, n, "pairs"); got != 2 {
			t.Errorf("%s: %v pairs, want 2", n, got)
		}
		if c := r.Rows[slices.Index(rowNames(r), n)].Cells[2]; !strings.Contains(c.Text, "–") {
			t.Errorf("%s: req/s interval %q", n, c.Text)
		}
	}
}

// TestTLSComparisonsBaseline: with a -baseline arm, tailguard is compared
// with it too, between the comparison with nginx and the A/A one, and
// the note says which way the change goes only when the interval leaves
// out 1.
func TestTLSComparisonsBaseline(t *testing.T) {
	arms := []*tlsArm{{name: "tailguard"}, {name: "nginx"}, {name: "tailguard (second process)"}, {name: tlsBaselineArm}}
	comps := tlsComparisons(arms)
	var names []string
	for _, c := range comps {
		names = append(names, c.name)
	}
	want := []string{"tailguard ÷ nginx", "A/B: tailguard ÷ tailguard baseline", "A/A: tailguard ÷ tailguard (second process)"}
	if !slices.Equal(names, want) || comps[1].b != arms[3] || !comps[2].aa {
		t.Fatalf("comparisons %q, want %q", names, want)
	}
	for _, tt := range []struct {
		s    ratioSummary
		want string
	}{
		{ratioSummary{n: 3, low: 1.1, high: 1.2, level: 0.75}, "too few pairs"},
		{ratioSummary{n: 20, low: 1.01, high: 1.2, level: 0.9586}, "up"},
		{ratioSummary{n: 20, low: 0.8, high: 0.99, level: 0.9586}, "down"},
		{ratioSummary{n: 20, low: 0.99, high: 1.01, level: 0.9586}, "no change shown"},
	} {
		if got := changeShown(tt.s); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.s, got, tt.want)
		}
	}
}
