package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// overheadTarget is one way to reach the upstream: directly or through a
// proxy process.
type overheadTarget struct {
	name string
	// start runs the proxy in front of upstream and returns its address
	// and process; nil for direct.
	start func(ctx context.Context, dir, upstream string) (string, *process, error)
}

// overheadRow is what one target measured: req/s, µs of CPU a request,
// MiB of RSS, and latency percentiles in ms.
type overheadRow struct {
	name            string
	rps, cpuUS, rss float64
	p50, p99, p999  float64
}

// runOverhead measures what a proxy costs: closed-loop throughput with
// 64 connections, the proxy's CPU time per request (user + system, from
// /proc), open-loop latency at a fixed rate, and memory, for the upstream
// reached directly and through tailguard, nginx and HAProxy, one after
// the other. Every program is a process of its own, so that its CPU and
// RSS can be read; with -pin the upstream and the proxy share CPU 0 (as
// a sidecar shares its pod's CPU) and the load generator has CPU 1. The
// targets take turns for -rounds rounds and each figure is the median of
// its rounds, so that one disturbance on a shared machine does not decide
// a comparison. -rate is the fixed rate (default 2000), -duration each
// measurement (default 4s), -rounds 3. With -pairs it compares builds
// instead, in pairs (runOverheadPairs), and with -peers also tailguard
// and its peers.
func runOverhead(ctx context.Context, e *Env) (*Outcome, error) {
	if e.Peers && e.Pairs <= 0 {
		return nil, errors.New("overhead: -peers is for -pairs N (the rounds measure the peers anyway)")
	}
	if e.Pairs > 0 {
		return runOverheadPairs(ctx, e)
	}
	rate, d := e.rate(2000, 200), e.span(4*time.Second, 500*time.Millisecond)
	b, err := e.newBed(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	defer b.close()
	rows, notes, err := e.overheadRounds(ctx, b.rounds, b.dir, b.upAddr, b.up, rate, d)
	if err != nil {
		return nil, err
	}
	return overheadOutcome(rows, rate, d, append(notes, b.notes...)), nil
}

// bed is what the scenarios that compare proxy processes share: a
// directory for their files, one upstream process on CPU 0, the rounds to
// take medians over, and notes on both.
type bed struct {
	dir, upAddr string
	up          *process
	rounds      int
	notes       []string
}

// newBed pins processes if it can (e.Pin), makes the directory and starts
// this binary's subcommand sub (args, then -listen ADDR) as the upstream,
// on CPU 0, where the proxies will run too (as a sidecar shares its pod's
// CPU). close undoes it.
func (e *Env) newBed(ctx context.Context, sub string, args ...string) (*bed, error) {
	b := &bed{rounds: e.Rounds}
	if b.rounds <= 0 {
		b.rounds = 3
		if e.Smoke {
			b.rounds = 1
		}
	}
	pin, why := canPin()
	e.Pin = e.Pin && pin
	if !e.Pin {
		b.notes = append(b.notes, "not pinned: "+cmp.Or(why, "-pin=false")+"; every process may use every CPU")
	}
	b.notes = append(b.notes, fmt.Sprintf("each figure is the median over %d round(s) in which the targets took turns", b.rounds))
	var err error
	if b.dir, err = os.MkdirTemp("", "tailguard-bench-"); err != nil {
		return nil, err
	}
	if b.upAddr, err = freeAddr(); err == nil {
		b.up, err = startProcess(sub, e.command(ctx, "0", sub, append(args, "-listen", b.upAddr)...))
	}
	if err == nil {
		_, err = ready(b.up, b.upAddr) // stops it if it does not listen
		if err != nil {
			b.up = nil
		}
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// close stops the upstream and removes the directory.
func (b *bed) close() {
	if b.up != nil {
		b.up.stop()
	}
	_ = os.RemoveAll(b.dir)
}

// overheadRounds measures every target rounds times, in turn, and returns
// each target's medians, and notes on the targets skipped.
func (e *Env) overheadRounds(ctx context.Context, rounds int, dir, upAddr string, up *process, rate float64, d time.Duration) ([]overheadRow, []string, error) {
	return takeTurns(rounds, overheadTargets(e), medianFigures[overheadRow], func(tg overheadTarget) (overheadRow, error) {
		return e.overheadTarget(ctx, tg, dir, upAddr, up, rate, d)
	})
}

// takeTurns measures every target rounds times, the targets taking turns
// in each round, and returns each target's median (as median makes it of
// its rounds) in the targets' order, and notes on the targets skipped.
func takeTurns[R any](rounds int, targets []overheadTarget, median func([]R) R, measure func(overheadTarget) (R, error)) ([]R, []string, error) {
	byTarget := map[string][]R{}
	var order, notes []string
	for r := range rounds {
		for _, tg := range targets {
			row, err := measure(tg)
			switch {
			case isSkipped(err):
				if r == 0 {
					notes = append(notes, fmt.Sprintf("%s: skipped: %v", tg.name, err))
				}
				continue
			case err != nil:
				return nil, nil, fmt.Errorf("%s: %w", tg.name, err)
			case r == 0:
				order = append(order, tg.name)
			}
			byTarget[tg.name] = append(byTarget[tg.name], row)
		}
	}
	rows := make([]R, 0, len(order))
	for _, name := range order {
		rows = append(rows, median(byTarget[name]))
	}
	return rows, notes, nil
}

func (r overheadRow) rowName() string { return r.name }

// figures are in overheadColumns' order.
func (r overheadRow) figures() []float64 {
	return []float64{r.rps, r.cpuUS, r.p50, r.p99, r.p999, r.rss}
}

func (r *overheadRow) setFigures(f []float64) {
	r.rps, r.cpuUS, r.p50, r.p99, r.p999, r.rss = f[0], f[1], f[2], f[3], f[4], f[5]
}

// overheadTargets are direct, tailguard, tailguard with every policy
// configured and none firing (policiesConfig), the bare fasthttp relay
// (the floor of what tailguard is built on), the event-loop relay (the
// same on one epoll loop, an experiment), nginx and HAProxy; the proxies
// run on CPU 0 with one worker each.
func overheadTargets(e *Env) []overheadTarget {
	targets := []overheadTarget{
		{name: "direct"},
		{name: "tailguard", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upstream}}, e.self())
		}},
		{name: "tailguard, policies", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, policiesConfig(upstream), e.self())
		}},
	}
	if e.Baseline != "" {
		targets = append(targets, overheadTarget{name: "tailguard baseline", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upstream}}, []string{e.Baseline})
		}})
	}
	return append(targets, []overheadTarget{
		{name: "fasthttp relay", start: func(ctx context.Context, _, upstream string) (string, *process, error) {
			return e.startRelay(ctx, "relay", upstream)
		}},
		{name: "event-loop relay", start: func(ctx context.Context, _, upstream string) (string, *process, error) {
			if runtime.GOOS != "linux" {
				return "", nil, &skipped{"epoll: Linux only"}
			}
			return e.startRelay(ctx, "evrelay", "http://"+upstream)
		}},
		{name: "nginx", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) { return e.startNginx(ctx, dir, listen, upstream, "0", nil) })
		}},
		{name: "HAProxy", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) {
				return e.startHAProxy(ctx, dir, listen, upstream, "0", haproxyOptions{threads: 1}, 30*time.Second)
			})
		}},
	}...)
}

// targetNamed is the target called name among targets; name must be one
// of them.
func targetNamed(targets []overheadTarget, name string) overheadTarget {
	return targets[slices.IndexFunc(targets, func(t overheadTarget) bool { return t.name == name })]
}

// startRelay runs `bench sub -listen ADDR -upstream upstream` (a floor
// arm: relay or evrelay) on CPU 0 and returns its address and process.
func (e *Env) startRelay(ctx context.Context, sub, upstream string) (string, *process, error) {
	return startPeer(func(listen string) (*process, error) {
		p, err := startProcess(sub, e.command(ctx, "0", "bench", sub, "-listen", listen, "-upstream", upstream))
		if err != nil {
			return nil, err
		}
		return ready(p, listen)
	})
}

// reach starts tg's proxy in front of the upstream up at upAddr, and
// returns the address to load, the process whose CPU counts (the proxy's,
// or the upstream's for direct) and what stops the proxy.
func (tg overheadTarget) reach(ctx context.Context, dir, upAddr string, up *process) (string, *process, func(), error) {
	if tg.start == nil {
		return upAddr, up, func() {}, nil
	}
	addr, proc, err := tg.start(ctx, dir, upAddr)
	if err != nil {
		return "", nil, nil, err
	}
	return addr, proc, proc.stop, nil
}

// startPeer starts a peer on a free loopback port.
func startPeer(start func(listen string) (*process, error)) (string, *process, error) {
	listen, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	p, err := start(listen)
	return listen, p, err
}

// startTailguardProcess runs the tailguard binary self (argv) as
// `run -config FILE` with cfg, and args after it (-tls-cert …), on CPU 0.
func (e *Env) startTailguardProcess(ctx context.Context, dir string, cfg proxyConfig, self []string, args ...string) (string, *process, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return "", nil, err
	}
	listen, admin := addrs[0], addrs[1]
	file := filepath.Join(dir, "tailguard.yaml")
	if err := os.WriteFile(file, []byte(cfg.yaml(listen, admin)), 0o600); err != nil {
		return "", nil, err
	}
	argv := append(append(append([]string{}, self...), "run", "-config", file), args...)
	p, err := startProcess("tailguard", pinned(ctx, e.Pin, "0", argv))
	if err != nil {
		return "", nil, err
	}
	p, err = ready(p, listen)
	return listen, p, err
}

// overheadTarget measures one target: warm-up, closed loop with the CPU
// read around it, open loop, then memory.
func (e *Env) overheadTarget(ctx context.Context, tg overheadTarget, dir, upAddr string, up *process, rate float64, d time.Duration) (overheadRow, error) {
	addr, proc, stop, err := tg.reach(ctx, dir, upAddr, up)
	if err != nil {
		return overheadRow{}, err
	}
	defer stop()
	url := "http://" + addr + "/"
	e.logf("overhead: %s at %s", tg.name, url)
	closed, err := e.closedLoop(ctx, proc, url, d)
	if err != nil {
		return overheadRow{}, err
	}
	open, err := e.generate(ctx, url, "-rate", fmt.Sprint(rate), "-duration", d.String())
	if err != nil {
		return overheadRow{}, err
	}
	rss, err := rssMiB(proc.pid())
	return overheadRow{
		name: tg.name, rps: closed.rps, rss: rss, cpuUS: closed.cpuUS,
		p50: open.LatencyMS.P50, p99: open.LatencyMS.P99, p999: open.LatencyMS.P999,
	}, err
}

// loopFigures are what a closed loop measured: requests a second, proc's
// CPU per request in µs, and the load generator's busy share.
type loopFigures struct{ rps, cpuUS, busy float64 }

// closedLoop measures proc behind url with the generator in closed loop
// (args added to its flags), as measureCPU does.
func (e *Env) closedLoop(ctx context.Context, proc *process, url string, d time.Duration, args ...string) (loopFigures, error) {
	args = append(args, "-closed")
	return measureCPU(proc, d, func(d time.Duration) (*Report, float64, error) {
		return e.generateBusy(ctx, url, append(args, "-duration", d.String())...)
	})
}

// measureCPU runs load for a warm-up of d/4, then for d with proc's CPU
// read around it; load returns its report and the generator's busy share.
func measureCPU(proc *process, d time.Duration, load func(time.Duration) (*Report, float64, error)) (loopFigures, error) {
	if _, _, err := load(d / 4); err != nil {
		return loopFigures{}, err
	}
	t0, err := cpuTicks(proc.pid())
	if err != nil {
		return loopFigures{}, err
	}
	r, busy, err := load(d)
	if err != nil {
		return loopFigures{}, err
	}
	t1, err := cpuTicks(proc.pid())
	return loopFigures{
		rps: r.Throughput, busy: busy,
		cpuUS: float64(t1-t0) / userHZ * 1e6 / float64(max(r.Requests, 1)),
	}, err
}

// generate runs the load generator as a process on CPU 1 and returns its
// JSON report.
func (e *Env) generate(ctx context.Context, url string, args ...string) (*Report, error) {
	r, _, err := e.generateBusy(ctx, url, args...)
	return r, err
}

// generateBusy is generate that also returns the generator's CPU time
// (user + system) as a share of the run's time: near 1 means that the
// generator, not the target, may have set the pace.
func (e *Env) generateBusy(ctx context.Context, url string, args ...string) (*Report, float64, error) {
	return e.runLoad(ctx, "200", append([]string{"-url", url, "-connections", "64", "-json", "-", "-quiet"}, args...))
}

// runLoad runs `bench argv…`, a load generator writing its JSON report to
// stdout, as a process on CPU 1, and returns the report and the
// generator's busy share. Every request must have ended as class ok.
func (e *Env) runLoad(ctx context.Context, ok string, argv []string) (*Report, float64, error) {
	cmd := e.command(ctx, "1", "bench", argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("load generator: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, 0, fmt.Errorf("load generator output: %w", err)
	}
	if n := r.Requests - r.Classes[ok].Count; n > 0 {
		return nil, 0, fmt.Errorf("load generator: %d of %d requests not %s (%v)", n, r.Requests, ok, r.Classes)
	}
	busy := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / max(r.ElapsedS, 1e-9)
	return &r, busy, nil
}
