package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
// measurement (default 4s), -rounds 3.
func runOverhead(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(2000, 200), e.span(4*time.Second, 500*time.Millisecond)
	rounds := e.Rounds
	if rounds <= 0 {
		rounds = 3
		if e.Smoke {
			rounds = 1
		}
	}
	pin, why := canPin()
	e.Pin = e.Pin && pin
	dir, err := os.MkdirTemp("", "tailguard-overhead-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	upAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	up, err := startProcess("upstream", e.command(ctx, "0", "upstream", "-listen", upAddr))
	if err != nil {
		return nil, err
	}
	defer up.stop()
	if _, err := ready(up, upAddr); err != nil {
		return nil, err
	}
	rows, notes, err := e.overheadRounds(ctx, rounds, dir, upAddr, up, rate, d)
	if err != nil {
		return nil, err
	}
	if !e.Pin {
		notes = append(notes, "not pinned: "+cmp.Or(why, "-pin=false")+"; every process may use every CPU")
	}
	notes = append(notes, fmt.Sprintf("each figure is the median over %d round(s) in which the targets took turns", rounds))
	return overheadOutcome(rows, rate, d, notes), nil
}

// overheadRounds measures every target rounds times, in turn, and returns
// each target's medians, and notes on the targets skipped.
func (e *Env) overheadRounds(ctx context.Context, rounds int, dir, upAddr string, up *process, rate float64, d time.Duration) ([]overheadRow, []string, error) {
	byTarget := map[string][]overheadRow{}
	var order, notes []string
	for r := range rounds {
		for _, tg := range overheadTargets(e) {
			row, err := e.overheadTarget(ctx, tg, dir, upAddr, up, rate, d)
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
	rows := make([]overheadRow, 0, len(order))
	for _, name := range order {
		rows = append(rows, medianRow(byTarget[name]))
	}
	return rows, notes, nil
}

// medianRow is each figure's median over rows of one target.
func medianRow(rows []overheadRow) overheadRow {
	m := overheadRow{name: rows[0].name}
	for _, f := range []struct {
		dst *float64
		get func(overheadRow) float64
	}{
		{&m.rps, func(r overheadRow) float64 { return r.rps }},
		{&m.cpuUS, func(r overheadRow) float64 { return r.cpuUS }},
		{&m.rss, func(r overheadRow) float64 { return r.rss }},
		{&m.p50, func(r overheadRow) float64 { return r.p50 }},
		{&m.p99, func(r overheadRow) float64 { return r.p99 }},
		{&m.p999, func(r overheadRow) float64 { return r.p999 }},
	} {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = f.get(r)
		}
		slices.Sort(v)
		*f.dst = v[len(v)/2]
	}
	return m
}

// overheadTargets are direct, tailguard, the bare fasthttp relay (the
// floor of what tailguard is built on), nginx and HAProxy; the proxies
// run on CPU 0 with one worker each.
func overheadTargets(e *Env) []overheadTarget {
	targets := []overheadTarget{
		{name: "direct"},
		{name: "tailguard", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, upstream, e.self())
		}},
	}
	if e.Baseline != "" {
		targets = append(targets, overheadTarget{name: "tailguard baseline", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, upstream, []string{e.Baseline})
		}})
	}
	return append(targets, []overheadTarget{
		{name: "fasthttp relay", start: func(ctx context.Context, _, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) {
				p, err := startProcess("relay", e.command(ctx, "0", "bench", "relay", "-listen", listen, "-upstream", upstream))
				if err != nil {
					return nil, err
				}
				return ready(p, listen)
			})
		}},
		{name: "nginx", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) { return e.startNginx(ctx, dir, listen, upstream, "0") })
		}},
		{name: "HAProxy", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) {
				return e.startHAProxy(ctx, dir, listen, upstream, "0", haproxyOptions{threads: 1}, 30*time.Second)
			})
		}},
	}...)
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
// `run -config FILE` in front of upstream, on CPU 0.
func (e *Env) startTailguardProcess(ctx context.Context, dir, upstream string, self []string) (string, *process, error) {
	listen, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := firstErr(err1, err2); err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, "tailguard.yaml")
	cfg := proxyConfig{endpoints: []string{upstream}}
	if err := os.WriteFile(file, []byte(cfg.yaml(listen, admin)), 0o600); err != nil {
		return "", nil, err
	}
	argv := append(append([]string{}, self...), "run", "-config", file)
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
	addr, proc := upAddr, up
	if tg.start != nil {
		var err error
		if addr, proc, err = tg.start(ctx, dir, upAddr); err != nil {
			return overheadRow{}, err
		}
		defer proc.stop()
	}
	url := "http://" + addr + "/"
	e.logf("overhead: %s at %s", tg.name, url)
	if _, err := e.generate(ctx, url, "-closed", "-duration", (d / 4).String()); err != nil {
		return overheadRow{}, err
	}
	t0, err := cpuTicks(proc.pid())
	if err != nil {
		return overheadRow{}, err
	}
	closed, err := e.generate(ctx, url, "-closed", "-duration", d.String())
	if err != nil {
		return overheadRow{}, err
	}
	t1, err := cpuTicks(proc.pid())
	if err != nil {
		return overheadRow{}, err
	}
	open, err := e.generate(ctx, url, "-rate", fmt.Sprint(rate), "-duration", d.String())
	if err != nil {
		return overheadRow{}, err
	}
	rss, err := rssMiB(proc.pid())
	return overheadRow{
		name: tg.name, rps: closed.Throughput, rss: rss,
		cpuUS: float64(t1-t0) / userHZ * 1e6 / float64(max(closed.Requests, 1)),
		p50:   open.LatencyMS.P50, p99: open.LatencyMS.P99, p999: open.LatencyMS.P999,
	}, err
}

// generate runs the load generator as a process on CPU 1 and returns its
// JSON report.
func (e *Env) generate(ctx context.Context, url string, args ...string) (*Report, error) {
	argv := append([]string{"-url", url, "-connections", "64", "-json", "-", "-quiet"}, args...)
	cmd := e.command(ctx, "1", "bench", argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("load generator: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load generator output: %w", err)
	}
	if n := r.Requests - r.Classes["200"].Count; n > 0 {
		return nil, fmt.Errorf("load generator: %d of %d requests not answered 200 (%v)", n, r.Requests, r.Classes)
	}
	return &r, nil
}
