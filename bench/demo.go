package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"
)

// demoReplica is each of the demo service's two replicas: 4 workers, a
// log-normal service time around 4 ms, and 2% stragglers at 120 ms.
var demoReplica = UpstreamOptions{Workers: 4, Faults: Faults{Latency: Latency{
	Median: 4 * time.Millisecond, Sigma: 0.5, StragglerShare: 0.02, Straggler: 120 * time.Millisecond}}}

// demoRoute is the demo's tailguard: hedging at the live p95 and adaptive
// shedding with a short queue.
var demoRoute = []string{
	"timeout: 2s",
	"hedge: {delay: p95, min_delay: 5ms, max_delay: 500ms, max_extra: 1}",
	"shed: {max_concurrency: adaptive, queue: 64, queue_timeout: 50ms}",
	"server_timing: true",
}

// demoPhase is a share of the demo's time at a load, as a multiple of
// the service's capacity.
type demoPhase struct{ share, load float64 }

// demoPhases rise into overload and back: 30% → 80% → 150% → 80% → 30%.
var demoPhases = []demoPhase{{0.2, 0.3}, {0.15, 0.8}, {0.3, 1.5}, {0.15, 0.8}, {0.2, 0.3}}

// DemoMain is `tailguard demo [-duration D]`.
func DemoMain(ctx context.Context, args []string, stdout io.Writer, start Proxy) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	d := fs.Duration("duration", 50*time.Second, "how long the demo runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *d <= 0 {
		return fmt.Errorf("demo: want only -duration > 0: %w", flag.ErrHelp)
	}
	return Demo(ctx, stdout, start, *d)
}

// Demo starts a service of two replicas with a capacity and stragglers,
// tailguard in front of it with hedging and adaptive shedding, and an
// open-loop load that rises to 150% of capacity and back. It prints the
// dashboard's URL and a line a second (the client's p99 beside
// tailguard's queue and service p99, hedges and shedding), then a summary
// per phase. It stops by itself after d, or on Ctrl-C.
func Demo(ctx context.Context, out io.Writer, start Proxy, d time.Duration) (err error) {
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	ups, closeUps, err := startUpstreams(2, demoReplica)
	if err != nil {
		return fmt.Errorf("demo upstream: %w", err)
	}
	defer closeUps()
	e := &Env{Proxy: start, Log: io.Discard}
	p, err := e.startProxy(ctx, proxyConfig{endpoints: addrs(ups), route: demoRoute})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, p.stop()) }()
	capacity := 2 * float64(demoReplica.Workers) / demoReplica.Faults.Latency.Mean().Seconds()
	demoIntro(out, p, capacity, d)
	live := newDemoLive(out, p.admin, capacity, d)
	l := Load{URL: p.url(), Phases: live.phases, Connections: 1024, Timeout: 5 * time.Second, Progress: live.line}
	if _, err := l.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	live.summary()
	return nil
}

func demoIntro(out io.Writer, p *runningProxy, capacity float64, d time.Duration) {
	l := demoReplica.Faults.Latency
	fmt.Fprintf(out, "tailguard demo: a service of 2 replicas × %d workers, service time ~%v with %.0f%% stragglers at %v: capacity ≈ %.0f req/s\n",
		demoReplica.Workers, l.Median, 100*l.StragglerShare, l.Straggler, capacity)
	fmt.Fprintf(out, "tailguard in front: hedging at the live p95, adaptive concurrency limit with a 64-deep queue (CoDel)\n\n")
	fmt.Fprintf(out, "  dashboard  http://%s/            <- open it: queueing vs service time, hedges, shedding, live\n", p.admin)
	fmt.Fprintf(out, "  stats      http://%s/stats?format=text&window=10s\n", p.admin)
	fmt.Fprintf(out, "  proxy      http://%s/\n\n", p.addr)
	fmt.Fprintf(out, "load: 30%% → 80%% → 150%% → 80%% → 30%% of capacity over %v, open loop; Ctrl-C stops\n\n", d)
	fmt.Fprintf(out, "%5s %9s %11s | %9s %10s %12s %9s %8s %6s\n", "t", "offered", "client p99",
		"served", "queue p99", "service p99", "hedges/s", "shed/s", "limit")
}
