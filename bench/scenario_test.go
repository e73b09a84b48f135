package bench

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// Smoke runs of every scenario: tiny scale, tailguard as a real process.
// They check structure and sanity (the arms are there, the cells are
// numbers, the counts add up), never timings.

func runSmoke(t *testing.T, name string, opts ...func(*Env)) *Outcome {
	t.Helper()
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log strings.Builder
	e := Env{Proxy: binaryProxy(t), Self: []string{tailguardBin}, Smoke: true, Log: &log}
	for _, o := range opts {
		o(&e)
	}
	out, err := RunScenario(ctx, name, e)
	if err != nil {
		t.Fatalf("scenario %s: %v\nlog:\n%s", name, err, log.String())
	}
	if out.Scenario != name || len(out.Tables) == 0 {
		t.Fatalf("outcome %+v", out)
	}
	for _, tb := range out.Tables {
		var b strings.Builder
		tb.Write(&b)
		t.Log("\n" + b.String())
	}
	return out
}

// cell is the value in table tb, row, column; the test fails if there is
// none or it is not a number.
func cell(t *testing.T, tb *Table, row, column string) float64 {
	t.Helper()
	col := -1
	for i, c := range tb.Columns {
		if c == column {
			col = i - 1
		}
	}
	for _, r := range tb.Rows {
		if r.Name == row && col >= 0 && col < len(r.Cells) {
			c := r.Cells[col]
			if c.Text != "" || math.IsNaN(c.Value) || math.IsInf(c.Value, 0) {
				t.Fatalf("%q: row %q, column %q: %q is not a number", tb.Title, row, column, c.String())
			}
			return c.Value
		}
	}
	t.Fatalf("%q: no row %q with column %q", tb.Title, row, column)
	return 0
}

// rowNames are the names of tb's rows.
func rowNames(tb *Table) []string {
	var n []string
	for _, r := range tb.Rows {
		n = append(n, r.Name)
	}
	return n
}

// comparedRows returns tb's row names, failing the test unless they start
// with first and then have the peers (nginx, HAProxy) or a note that some
// were skipped.
func comparedRows(t *testing.T, tb *Table, peers int, first ...string) []string {
	t.Helper()
	names := rowNames(tb)
	if len(names) < len(first) || !slices.Equal(names[:len(first)], first) {
		t.Fatalf("rows %q; want %q first", names, first)
	}
	if len(names) < len(first)+peers && !strings.Contains(strings.Join(tb.Notes, " "), "skipped") {
		t.Errorf("rows %q, and no peer noted as skipped", names)
	}
	return names
}

// wantRows fails unless tb's rows are exactly want.
func wantRows(t *testing.T, tb *Table, want ...string) {
	t.Helper()
	if got := strings.Join(rowNames(tb), "|"); got != strings.Join(want, "|") {
		t.Fatalf("%q: rows %q, want %q", tb.Title, rowNames(tb), want)
	}
}

func TestScenarioHedgingSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "hedging")
	if len(out.Tables) != 2 || len(out.Series) != 2 {
		t.Fatalf("%d tables, %d series; want 2 and 2", len(out.Tables), len(out.Series))
	}
	tb := out.Tables[0]
	wantRows(t, tb, "no hedge", "hedge p95", "no hedge ÷ hedge")
	for _, arm := range []string{"no hedge", "hedge p95"} {
		n := cell(t, tb, arm, "requests")
		if n != 300 || cell(t, tb, arm, "upstream load") < 1 || cell(t, tb, arm, "p99") < cell(t, tb, arm, "p50") {
			t.Errorf("%s: %v requests (want 300), upstream load below 1, or p99 below p50", arm, n)
		}
	}
	if cell(t, tb, "no hedge", "hedges sent") != 0 {
		t.Error("the arm without hedging hedged")
	}
	cell(t, tb, "no hedge ÷ hedge", "p99")
	wantRows(t, out.Tables[1], "no hedge", "hedge p95 (configured)")
}

func TestScenarioGraySmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "gray")
	tb := out.Tables[0]
	arms := []string{"round robin", "round robin + probation", "p2c", "p2c + probation", "p2c + probation + hedging", "healthy endpoints alone (p2c)"}
	wantRows(t, tb, arms...)
	for _, arm := range arms {
		if n := cell(t, tb, arm, "requests"); n == 0 || cell(t, tb, arm, "upstream load") < 1 ||
			cell(t, tb, arm, "p99") < cell(t, tb, arm, "p50") {
			t.Errorf("%s: %v requests, upstream load below 1, or p99 below p50", arm, n)
		}
	}
	if share := cell(t, tb, "round robin", "gray share, after"); share < 20 || share > 47 {
		t.Errorf("round robin sent the gray endpoint %.1f%%, want about a third", share)
	}
	if cell(t, tb, "p2c", "hedges sent") != 0 || cell(t, tb, "round robin", "latency ejections") != 0 {
		t.Error("an arm without hedging hedged, or one without probation ejected")
	}
}

func TestScenarioOverloadSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "overload")
	tb := out.Tables[0]
	arms := []string{"tailguard, adaptive shedding", "tailguard, no shedding"}
	if len(tb.Rows) == 12 {
		arms = append(arms, strings.Split(tb.Rows[8].Name, ",")[0])
	} else if len(tb.Rows) != 8 || !strings.Contains(strings.Join(tb.Notes, " "), "HAProxy") {
		t.Fatalf("rows %q; want 4 levels × 3 arms, or HAProxy noted as skipped", rowNames(tb))
	}
	for _, arm := range arms {
		for _, x := range []string{"0.25×", "1×", "2×", "4×"} {
			row := arm + ", " + x
			sum := cell(t, tb, row, "2xx") + cell(t, tb, row, "503") + cell(t, tb, row, "504") +
				cell(t, tb, row, "client errors") + cell(t, tb, row, "other")
			if n := cell(t, tb, row, "requests"); n == 0 || sum != n {
				t.Errorf("%s: outcomes add up to %v of %v requests", row, sum, n)
			}
			cell(t, tb, row, "p99 of 2xx")
		}
	}
}

func TestScenarioBreakerSmoke(t *testing.T) {
	skipShort(t)
	tb := runSmoke(t, "breaker").Tables[0]
	wantRows(t, tb, "breaker", "no breaker")
	for _, arm := range []string{"breaker", "no breaker"} {
		n := cell(t, tb, arm, "requests")
		if got := cell(t, tb, arm, "503 breaker_open") + cell(t, tb, arm, "500 from upstream"); n != 100 || got != n {
			t.Errorf("%s: %v breaker rejections + upstream errors of %v requests (want 100)", arm, got, n)
		}
	}
	// An open breaker lets nothing through: a count, not a timing.
	if up := cell(t, tb, "breaker", "reached upstream"); up != 0 {
		t.Errorf("%v requests reached the upstream with the breaker open", up)
	}
	if up := cell(t, tb, "no breaker", "reached upstream"); up != 100 {
		t.Errorf("without a breaker %v of 100 requests reached the upstream", up)
	}
}

func TestScenarioTimeoutSmoke(t *testing.T) {
	skipShort(t)
	tb := runSmoke(t, "timeout").Tables[0]
	wantRows(t, tb, "timeout 250ms", "no timeout")
	for _, arm := range []string{"timeout 250ms", "no timeout"} {
		sum := cell(t, tb, arm, "2xx") + cell(t, tb, arm, "504 timeout") + cell(t, tb, arm, "client timeouts") + cell(t, tb, arm, "other")
		if n := cell(t, tb, arm, "requests"); n != 100 || sum != n {
			t.Errorf("%s: outcomes add up to %v of %v requests (want 100)", arm, sum, n)
		}
	}
	if cell(t, tb, "no timeout", "504 timeout") != 0 {
		t.Error("504s without a route timeout")
	}
}

func TestScenarioSlowClientsSmoke(t *testing.T) {
	skipShort(t)
	tb := runSmoke(t, "slowclients").Tables[0]
	names := comparedRows(t, tb, 1, "tailguard, buffering on (default)", "tailguard, buffering off")
	for _, arm := range names {
		n, ok := cell(t, tb, arm, "normal requests"), cell(t, tb, arm, "200")
		if n != 20 || ok > n || cell(t, tb, arm, "goodput") != 100*ok/n {
			t.Errorf("%s: %v requests (want 20), %v answered 200, goodput %v", arm, n, ok, cell(t, tb, arm, "goodput"))
		}
		if cell(t, tb, arm, "p99") < cell(t, tb, arm, "p50") || cell(t, tb, arm, "slow readers served") > 2 ||
			cell(t, tb, arm, "proxy peak RSS") <= 0 {
			t.Errorf("%s: p99 below p50, more than the 2 slow readers served, or no peak RSS", arm)
		}
		cell(t, tb, arm, "large responses the app finished")
	}
}

func TestScenarioFanoutSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "fanout")
	tb := out.Tables[0]
	wantRows(t, tb, "1", "10")
	for n, want := range map[string]float64{"1": 300, "10": 30} {
		if got := cell(t, tb, n, "requests"); got != want {
			t.Errorf("N=%s: %v requests, want %v", n, got, want)
		}
		cell(t, tb, n, "p99 hedge")
	}
	if len(out.Series) != 4 {
		t.Errorf("%d series, want 4", len(out.Series))
	}
}

func TestScenarioOverheadSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "overhead")
	tb := out.Tables[0]
	names := comparedRows(t, tb, 2, "direct", "tailguard", "tailguard, policies", "fasthttp relay")
	for _, n := range names {
		if cell(t, tb, n, "req/s (closed loop, 64 conns)") <= 0 || cell(t, tb, n, "RSS") <= 0 {
			t.Errorf("%s: no throughput or no RSS", n)
		}
		cell(t, tb, n, "CPU per request")
		cell(t, tb, n, "p99")
	}
	if len(out.Tables) < 2 || out.Tables[1].Title != "Overhead as a ratio to direct" {
		t.Fatalf("no ratio table")
	}
	if r := cell(t, out.Tables[1], "direct", "p50"); r != 1 {
		t.Errorf("direct ÷ direct = %v", r)
	}
}

// TestScenarioOverheadPairsSmoke: overhead's paired mode, with the same
// binary as its baseline, has a row of medians per arm and a row of
// paired ratios per comparison, each a number with an interval.
func TestScenarioOverheadPairsSmoke(t *testing.T) {
	out := runSmoke(t, "overhead", func(e *Env) { e.Pairs, e.Baseline = 2, tailguardBin })
	if len(out.Tables) != 2 {
		t.Fatalf("%d tables, want the arms' and the ratios'", len(out.Tables))
	}
	wantRows(t, out.Tables[0], "tailguard", "tailguard baseline", "tailguard (second process)")
	for _, n := range rowNames(out.Tables[0]) {
		if cell(t, out.Tables[0], n, "CPU per request (closed loop)") <= 0 || cell(t, out.Tables[0], n, "CPU per request (open loop)") <= 0 ||
			cell(t, out.Tables[0], n, "p99") <= 0 {
			t.Errorf("%s: no CPU or no p99", n)
		}
	}
	r := out.Tables[1]
	wantRows(t, r, "A/B: tailguard ÷ tailguard baseline", "A/A: tailguard ÷ tailguard (second process)")
	for _, n := range rowNames(r) {
		if got := cell(t, r, n, "pairs"); got != 2 {
			t.Errorf("%s: %v pairs, want 2", n, got)
		}
		if cell(t, r, n, "CPU per request (closed loop)") <= 0 || cell(t, r, n, "CPU per request (open loop)") <= 0 || cell(t, r, n, "p99") <= 0 {
			t.Errorf("%s: a ratio is not positive", n)
		}
		if c := r.Rows[slices.Index(rowNames(r), n)].Cells[2]; !strings.Contains(c.Text, "–") {
			t.Errorf("%s: CPU interval %q", n, c.Text)
		}
	}
}

// TestMissingPeerIsSkipped: a peer that is not installed skips its arm
// with a reason instead of failing the scenario.
func TestMissingPeerIsSkipped(t *testing.T) {
	_, err := findProgram("no-such-proxy-tailguard-test")
	if !isSkipped(err) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("got %v, want a skip saying the program is not found", err)
	}
}

func TestScenarioTLSSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "tls")
	tb := out.Tables[0]
	names := comparedRows(t, tb, 1, "direct (plain HTTP)", "tailguard", tlsX25519)
	notes := strings.Join(tb.Notes, "\n")
	for _, n := range names {
		if cell(t, tb, n, "req/s (keep-alive, 64 conns)") <= 0 || cell(t, tb, n, "handshakes/s (new conn each, 64 conns)") <= 0 {
			t.Errorf("%s: no throughput in an arm", n)
		}
		cell(t, tb, n, "CPU per request")
		cell(t, tb, n, "CPU per handshake")
		cell(t, tb, n, "load CPU (handshakes)")
	}
	if !strings.Contains(notes, "tailguard: TLS 1.3") || !strings.Contains(notes, tlsX25519+": TLS 1.3, TLS_AES_128_GCM_SHA256, X25519") {
		t.Errorf("notes do not say what tailguard negotiated:\n%s", notes)
	}
	if len(names) == 4 {
		if !strings.Contains(notes, "goal (issue)") || out.Tables[1].Title != "TLS as a ratio to nginx" {
			t.Fatalf("no goal note or no ratio table to nginx")
		}
		if r := cell(t, out.Tables[1], "nginx", "CPU per handshake"); r != 1 {
			t.Errorf("nginx ÷ nginx = %v", r)
		}
	}
}

func TestScenarioWebSocketSmoke(t *testing.T) {
	skipShort(t)
	out := runSmoke(t, "websocket")
	tb := out.Tables[0]
	wantRows(t, tb, "direct, 64 B", "tailguard, 64 B", "direct, 16 KiB", "tailguard, 16 KiB")
	for _, n := range rowNames(tb) {
		if cell(t, tb, n, "messages/s (64 conns)") <= 0 || cell(t, tb, n, "p50 (1 conn)") <= 0 ||
			cell(t, tb, n, "p99 (1 conn)") < cell(t, tb, n, "p50 (1 conn)") {
			t.Errorf("%s: no throughput, no latency, or p99 below p50", n)
		}
		cell(t, tb, n, "CPU per message")
	}
	cell(t, tb, "tailguard, 16 KiB", "added p99")
	wantRows(t, out.Tables[1], "tailguard, 64 B", "tailguard, 16 KiB")
}
