package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// tlsArm is one TLS-terminating process of tls's paired mode, started
// once and measured in every pair it is in.
type tlsArm struct {
	name, addr string
	proc       *process
	negotiated string
	rows       []tlsPairRow
}

// tlsPairRow is one keep-alive closed loop over TLS against an arm:
// requests a second, the arm's CPU per request (µs) and the load
// generator's busy share (%).
type tlsPairRow struct{ rps, cpuUS, busy float64 }

// tlsComparison is two arms measured in pairs, each pair yielding the
// ratios a ÷ b; aa marks the A/A comparison (b another process of a's
// binary).
type tlsComparison struct {
	name  string
	a, b  *tlsArm
	aa    bool
	pairs [][2]tlsPairRow
}

// runTLSPairs is tls's paired mode (-pairs N): tailguard and nginx, both
// terminating TLS with the same ECDSA P-256 certificate, and a second
// tailguard process for the A/A comparison, all running at once on CPU 0
// beside the upstream. Each pair measures tailguard then nginx, or nginx
// then tailguard (ABBA), with a short keep-alive closed loop each (-duration,
// 2s), and the A/A pairs are interleaved with them. A pair's ratio
// cancels what the shared machine did during that pair, which the
// medians of a few long rounds in turn cannot.
//
// The A/A comparison is tailguard ÷ a second tailguard rather than nginx
// ÷ a second nginx: tailguard's figures are the noisier of the two (a
// garbage-collected runtime, goroutines on one CPU), so its spread is
// the wider, conservative bound on what the machine can resolve, and it
// is the same A/A as overhead's paired mode, so the two spreads compare.
func runTLSPairs(ctx context.Context, e *Env) (*Outcome, error) {
	if e.Rounds > 0 {
		return nil, errors.New("tls: -pairs and -rounds: give one")
	}
	d := e.span(2*time.Second, 300*time.Millisecond)
	b, pki, pair, err := e.newTLSBed(ctx)
	if err != nil {
		return nil, err
	}
	defer b.close()
	arms, err := e.startTLSArms(ctx, b, pair, pki)
	defer func() {
		for _, a := range arms {
			a.proc.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	comps := tlsComparisons(arms)
	notes := slices.DeleteFunc(slices.Clone(b.notes), func(n string) bool { return strings.HasPrefix(n, "each figure is the median over") })
	notes, err = measurePairs(ctx, e.Pairs, comps, func(c *tlsComparison) string { return c.name },
		func(c *tlsComparison, i int) error { return e.measureTLSPair(ctx, c, i, pki, d) }, notes)
	if err != nil {
		return nil, err
	}
	return tlsPairsOutcome(arms, comps, d, notes), nil
}

// tlsPairCurves is the key exchange the generator offers every arm:
// X25519 alone, what nginx's OpenSSL picks anyway, so that the 64
// handshakes a loop makes before its clock starts, which fall inside the
// CPU read around it, cost tailguard no more than nginx (offered Go's
// default, tailguard picks the dearer X25519MLKEM768).
var tlsPairCurves = []tls.CurveID{tls.X25519}

// tlsPairArms are the names of the paired mode's arms, in the order
// startTLSArms starts them; with -baseline, tlsBaselineArm follows.
var tlsPairArms = []string{"tailguard", "nginx", "tailguard (second process)"}

// tlsBaselineArm is the -baseline binary's arm.
const tlsBaselineArm = "tailguard baseline"

// startTLSArms starts tailguard, nginx, a second tailguard and, with
// -baseline, that binary, each in a directory of its own under b's,
// terminating TLS with pair in front of b's upstream, and probes what
// each negotiates. It returns the arms it started even when one fails,
// for the caller to stop.
func (e *Env) startTLSArms(ctx context.Context, b *bed, pair tlsPair, pki *PKI) ([]*tlsArm, error) {
	targets := tlsTargets(e, pair)
	starts := []overheadTarget{targetNamed(targets, "tailguard"), targetNamed(targets, "nginx"), targetNamed(targets, "tailguard")}
	names := slices.Clone(tlsPairArms)
	if e.Baseline != "" {
		names = append(names, tlsBaselineArm)
		starts = append(starts, overheadTarget{start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upstream}}, []string{e.Baseline},
				"-tls-cert", pair.cert, "-tls-key", pair.key)
		}})
	}
	var arms []*tlsArm
	for i, name := range names {
		a, err := startTLSArm(ctx, filepath.Join(b.dir, fmt.Sprint("arm", i)), name, starts[i], b.upAddr, pki)
		if a != nil {
			arms = append(arms, a)
		}
		if err != nil {
			return arms, err
		}
	}
	return arms, nil
}

// startTLSArm starts tg's proxy as the arm called name, its files in
// dir, and probes what it negotiates; it returns the arm if the process
// started, even when the probe fails.
func startTLSArm(ctx context.Context, dir, name string, tg overheadTarget, upAddr string, pki *PKI) (*tlsArm, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	addr, proc, err := tg.start(ctx, dir, upAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a := &tlsArm{name: name, addr: addr, proc: proc}
	if a.negotiated, err = probeTLS(addr, pki, tlsPairCurves); err != nil {
		return a, fmt.Errorf("%s: %w", name, err)
	}
	return a, nil
}

// tlsComparisons are the paired mode's comparisons over arms (in
// startTLSArms' order): tailguard ÷ nginx, with a baseline arm tailguard
// ÷ that, and the A/A tailguard ÷ tailguard (second process).
func tlsComparisons(arms []*tlsArm) []*tlsComparison {
	comps := []*tlsComparison{{name: "tailguard ÷ nginx", a: arms[0], b: arms[1]}}
	if len(arms) > 3 {
		comps = append(comps, &tlsComparison{name: "A/B: tailguard ÷ " + tlsBaselineArm, a: arms[0], b: arms[3]})
	}
	return append(comps, &tlsComparison{name: "A/A: tailguard ÷ tailguard (second process)", a: arms[0], b: arms[2], aa: true})
}

// measureTLSPair measures c's two arms as pair i, in abba(i)'s order.
func (e *Env) measureTLSPair(ctx context.Context, c *tlsComparison, i int, pki *PKI, d time.Duration) error {
	arms := [2]*tlsArm{c.a, c.b}
	var rows [2]tlsPairRow
	for _, j := range abba(i) {
		e.logf("tls pairs: pair %d of %s: %s", i+1, c.name, arms[j].name)
		f, err := e.closedLoop(ctx, arms[j].proc, "https://"+arms[j].addr+"/", d, "-tls-ca", pki.CAFile, "-tls-curves", curveNames(tlsPairCurves))
		if err != nil {
			return fmt.Errorf("pair %d, %s: %w", i+1, arms[j].name, err)
		}
		rows[j] = tlsPairRow{rps: f.rps, cpuUS: f.cpuUS, busy: 100 * f.busy}
	}
	c.a.rows = append(c.a.rows, rows[0])
	c.b.rows = append(c.b.rows, rows[1])
	c.pairs = append(c.pairs, rows)
	return nil
}

// tlsPairArmColumns are the arms table's columns.
var tlsPairArmColumns = []string{"target", "req/s (keep-alive, 64 conns)", "CPU per request", "load CPU"}

// tlsPairColumns are the ratios table's columns: each figure's median
// paired ratio and its interval.
var tlsPairColumns = []string{"comparison", "pairs", "req/s (keep-alive)", "95% interval", "CPU per request", "95% interval"}

// tlsPairsOutcome tabulates each arm's medians over its measurements, then
// each comparison's paired ratios, with the goal's verdict and the A/A
// spread in the notes.
func tlsPairsOutcome(arms []*tlsArm, comps []*tlsComparison, d time.Duration, notes []string) *Outcome {
	t := &Table{
		Title:   fmt.Sprintf("TLS in pairs, each arm's medians: keep-alive closed loops of %v", d),
		Columns: tlsPairArmColumns, Notes: notes,
	}
	for _, a := range arms {
		if len(a.rows) == 0 {
			continue // every pair it was in dropped, as noted
		}
		t.add(a.name, numCell(medianOf(a.rows, tlsRPS), unitPerSec), numCell(medianOf(a.rows, tlsCPU), unitMicros),
			numCell(medianOf(a.rows, func(r tlsPairRow) float64 { return r.busy }), unitPercent))
		t.note("%s: %s", a.name, a.negotiated)
	}
	t.note("the arms run at once on CPU 0 beside the upstream, the generator (Go's TLS client, verifying the chain, offering X25519 alone) on CPU 1; each closed loop follows a %v warm-up and handshakes its 64 connections before its clock starts, inside the CPU read around it", d/4)
	t.note("nginx: ssl, TLSv1.2 TLSv1.3, HTTP/1.1 only, one worker without master; tailguard: `run -config` with -tls-cert/-tls-key; the same ECDSA P-256 certificate; both keep-alive plain HTTP to the upstream")
	t.note("CPU per request is the arm's user + system time over the loop's requests (/proc/PID/stat); load CPU is the generator's, one CPU = 100%%: near 100%% the generator may have set the pace")
	r := &Table{Title: "TLS in pairs: median of the paired ratios (ABBA order), keep-alive", Columns: tlsPairColumns}
	for _, c := range comps {
		rps, cpu := c.summaries()
		r.add(c.name, append(append([]Cell{countCell(int64(len(c.pairs)))}, rps.cells()...), cpu.cells()...)...)
	}
	r.Notes = tlsPairNotes(comps)
	return &Outcome{Tables: []*Table{t, r}}
}

func tlsRPS(r tlsPairRow) float64 { return r.rps }
func tlsCPU(r tlsPairRow) float64 { return r.cpuUS }

// summaries are the ratios a ÷ b over c's pairs of keep-alive req/s and
// CPU per request.
func (c *tlsComparison) summaries() (rps, cpu ratioSummary) {
	return summarizePairs(c.pairs, tlsRPS), summarizePairs(c.pairs, tlsCPU)
}

// tlsPairNotes say how the pairs were taken, the goal's verdict, and how
// large a difference the A/A comparison says the machine resolves.
func tlsPairNotes(comps []*tlsComparison) []string {
	notes := []string{
		"a pair measures its two arms back to back, A,B then B,A in the next pair (ABBA), the comparisons' pairs interleaved; a ratio is A's figure ÷ B's in one pair",
		"95% interval: the k-th smallest to k-th largest ratio, distribution-free (binomial) for the median ratio; a level under 95% is shown when there are too few pairs",
	}
	for _, c := range comps {
		rps, cpu := c.summaries()
		switch {
		case c.aa:
			notes = append(notes, fmt.Sprintf("A/A: the same binary differs from itself by up to %s in keep-alive req/s and %s in CPU per request (the 95%% interval's farther end from 1): smaller differences are not resolved on this machine at this load",
				spread(rps), spread(cpu)))
		case c.b.name == tlsBaselineArm:
			notes = append(notes, fmt.Sprintf("A/B: tailguard ÷ the -baseline binary: a change is shown only where the 95%% interval leaves out 1: keep-alive req/s %s, CPU per request %s",
				changeShown(rps), changeShown(cpu)))
		default:
			notes = append(notes, tlsVerdict(rps))
		}
	}
	return notes
}

// tlsVerdict says whether the paired ratios of keep-alive req/s, tailguard
// ÷ nginx, show the goal (≥ tlsGoal): shown only when the whole
// 95% interval is at or above it.
func tlsVerdict(rps ratioSummary) string {
	return bound{limit: tlsGoal, atLeast: true}.note("goal (issue): keep-alive req/s, tailguard ÷ nginx", rps)
}

// changeShown says which way, if any, paired ratios show a change: up or
// down when the whole 95% interval is above or below 1.
func changeShown(s ratioSummary) string {
	switch _, _, tooFew := s.ends(); {
	case tooFew != "":
		return "too few pairs"
	case s.low > 1:
		return "up"
	case s.high < 1:
		return "down"
	default:
		return "no change shown"
	}
}
