package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Env is what a scenario runs with: where tailguard comes from, the
// scale, and where progress goes. Zero scale fields mean the scenario's
// defaults, which finish in under about two minutes on 2 vCPUs.
type Env struct {
	// Proxy starts tailguard in-process.
	Proxy Proxy
	// Self runs this binary's subcommands as processes of their own
	// (Self + "upstream" …, "run" …, "bench" …), for scenarios that read
	// a process's CPU and memory; nil means os.Executable().
	Self []string
	// Rate and Duration scale the scenario; each says what they mean.
	Rate     float64
	Duration time.Duration
	// Smoke runs a tiny scale, a few seconds, for tests: structure, not
	// figures.
	Smoke bool
	// Rounds repeats overhead's measurements, each figure the median of
	// its rounds; 0 means the scenario's default.
	Rounds int
	// Connections is how many client connections idle holds open; 0
	// means its default.
	Connections int
	// Pin pins processes with taskset, as overhead documents.
	Pin bool
	// Baseline, if set, is another tailguard binary (an earlier build)
	// that overhead measures as a target of its own, in the same rounds as
	// this one, so that a change's cost is a ratio taken side by side.
	Baseline string
	// Pairs, if positive, switches overhead to its paired mode: this
	// build against Baseline and against a second process of itself,
	// in Pairs alternating pairs of short measurements, reported as
	// median paired ratios with 95% intervals and the pooled p99 with a
	// bootstrap interval (runOverheadPairs); and tls to its own,
	// tailguard against nginx and itself (runTLSPairs); 0 keeps the
	// rounds.
	Pairs int
	// Peers adds to overhead's paired mode the comparisons with its
	// peers, tailguard ÷ nginx and ÷ the bare fasthttp relay (and
	// tailguard with every policy ÷ nginx), in the same pairs, with
	// verdicts on the targets (peerComparisons).
	Peers bool
	// Log gets progress lines; nil discards them.
	Log io.Writer
}

// Outcome is what a scenario found: tables to print, and the percentile
// spectra of its arms for a plot.
type Outcome struct {
	Scenario string   `json:"scenario"`
	Tables   []*Table `json:"tables"`
	Series   []Series `json:"-"`
}

// scenario is one reproducible comparison.
type scenario struct {
	name, about string
	run         func(ctx context.Context, e *Env) (*Outcome, error)
}

// scenarios lists them in the order `scenario list` prints.
func scenarios() []scenario {
	return []scenario{
		{"overhead", "direct vs tailguard (plain, and with every policy configured, none firing) vs a bare fasthttp relay vs an event-loop relay vs nginx vs HAProxy: req/s and CPU per request (closed loop), p50/p99/p99.9 at -rate (2000), RSS; -duration 4s per measurement, median of -rounds 3; with -pairs N, tailguard vs -baseline and vs itself in N ABBA pairs of 2s loops, median paired ratios and pooled p99 with 95% intervals; -pairs N -peers adds tailguard vs nginx and vs the fasthttp relay (and tailguard, policies vs nginx) to the pairs, with verdicts on the overhead targets", runOverhead},
		{"hedging", "two endpoints, 3% of requests 100 ms: hedging at p95 vs none, p99/p99.9 and extra load, then the hand-off cost; -rate 1000, -duration 15s per arm", runHedging},
		{"overload", "upstream of capacity -rate (1600 req/s) offered 0.25/1/2/4×: adaptive shedding vs none vs HAProxy static limits; -duration 6s per level", runOverload},
		{"breaker", "upstream hard down (always 500): breaker-open rejections vs no breaker, requests reaching the upstream; -rate 500, -duration 5s", runBreaker},
		{"timeout", "2% of requests stall: route timeout vs none; -rate 200, -duration 10s per arm", runTimeout},
		{"tls", "TLS termination, tailguard vs nginx on one ECDSA P-256 certificate vs plain direct: keep-alive req/s and CPU per request, full handshakes/s and CPU per handshake (closed loops, 64 conns); -duration 4s per measurement, median of -rounds 3; with -pairs N, tailguard vs nginx and vs itself in N ABBA pairs of 2s keep-alive loops, median paired ratios with 95% intervals", runTLS},
		{"websocket", "WebSocket echo of 64 B and 16 KiB messages through tailguard's tunnel vs direct: messages/s and CPU per message (64 conns), round-trip p50/p99 on one connection and what the tunnel adds; -duration 4s per measurement, median of -rounds 3", runWebSocket},
		{"slowclients", "a one-worker app, 8 slow readers of its 32 MiB response: normal requests' goodput and p50/p99 through tailguard with buffering on and off and nginx; -rate 50, -duration 10s per arm", runSlowClients},
		{"fanout", "a request fans out to N = 1, 10, 100 calls, with and without hedging; -rate 2000 calls/s, -duration 8s per N and arm", runFanout},
		{"noisy-neighbor", "a polite client at 15% of an upstream of capacity -rate (400 req/s) beside a flood at 4×: tailguard with and without shed.fair_by vs HAProxy with a backend per client; -duration 8s per arm", runNoisyNeighbor},
		{"idle", "-connections (10000) keep-alive connections, each used for one GET, then idle: tailguard's RSS, Go heap and stacks fresh, idle and after GCs, and their growth per idle connection", runIdle},
		{"gray", "three endpoints, one with 20% of answers at 150 ms: round robin and p2c, each with and without latency-induced probation, and p2c + probation + hedging, p50/p99/p99.9, the gray endpoint's share, extra load; -rate 1000, a first 10s then -duration 10s per arm", runGray},
	}
}

// RunScenario runs the scenario called name.
func RunScenario(ctx context.Context, name string, e Env) (*Outcome, error) {
	s, err := findScenario(name)
	if err != nil {
		return nil, err
	}
	if e.Log == nil {
		e.Log = io.Discard
	}
	out, err := s.run(ctx, &e)
	if out != nil {
		out.Scenario = name
	}
	return out, err
}

func findScenario(name string) (scenario, error) {
	for _, s := range scenarios() {
		if s.name == name {
			return s, nil
		}
	}
	return scenario{}, fmt.Errorf("no scenario %q (want %s)", name, strings.Join(scenarioNames(), ", "))
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	return names
}

// rate is e.Rate, or def (smoke: the smoke value).
func (e *Env) rate(def, smoke float64) float64 {
	switch {
	case e.Rate > 0:
		return e.Rate
	case e.Smoke:
		return smoke
	default:
		return def
	}
}

// span is e.Duration, or def (smoke: the smoke value).
func (e *Env) span(def, smoke time.Duration) time.Duration {
	if e.Duration > 0 {
		return e.Duration
	}
	return e.fixed(def, smoke)
}

// fixed is def, or smoke in a smoke run: a time -duration does not scale
// (a warm-up).
func (e *Env) fixed(def, smoke time.Duration) time.Duration {
	if e.Smoke {
		return smoke
	}
	return def
}

func (e *Env) logf(format string, args ...any) { fmt.Fprintf(e.Log, format+"\n", args...) }

// load runs l, with a progress line a second on long runs.
func (e *Env) load(ctx context.Context, label string, l Load) (*Result, error) {
	if !e.Smoke {
		l.Progress = func(p Progress) { e.logf("%s", progressLine(label, p)) }
	}
	return l.Run(ctx)
}

// command returns the command that runs this binary's subcommand sub
// with args, pinned to cpu with taskset when e.Pin ("" : not pinned).
func (e *Env) command(ctx context.Context, cpu, sub string, args ...string) *exec.Cmd {
	argv := append(append(e.self(), sub), args...)
	return pinned(ctx, e.Pin, cpu, argv)
}

func (e *Env) self() []string {
	if len(e.Self) > 0 {
		return e.Self
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}

// pinned builds argv as a command, under taskset -c cpu if pin and cpu
// are set.
func pinned(ctx context.Context, pin bool, cpu string, argv []string) *exec.Cmd {
	if pin && cpu != "" {
		argv = append([]string{"taskset", "-c", cpu}, argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// canPin reports whether processes can be pinned one CPU apart.
func canPin() (bool, string) {
	if runtime.NumCPU() < 2 {
		return false, "fewer than 2 CPUs"
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return false, "taskset not found"
	}
	return true, ""
}

// describeLoad says what l sends, for progress lines.
func describeLoad(l Load) string {
	if l.Closed {
		return fmt.Sprintf("closed loop, %d connections, %v", l.Connections, l.Duration)
	}
	return fmt.Sprintf("open loop %.0f/s for %v (%d requests)", l.Rate, l.Duration, openCount(l))
}
