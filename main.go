// Command tailguard is a sidecar reverse proxy that keeps one service's
// tail latency in check and shows, per route, where the time goes.
//
//	tailguard [run] -config FILE
//	tailguard -upstream http://127.0.0.1:8080 [-listen :8000] [-admin 127.0.0.1:9901]
//	tailguard validate -config FILE
//	tailguard demo
//	tailguard version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"tailguard/bench"
	"tailguard/config"
	"tailguard/metrics"
	"tailguard/proxy"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tailguard:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run dispatches a subcommand; "run" is the default.
func run(args []string, stdout io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		cfg, err := loadConfig("run", args)
		if err != nil {
			return err
		}
		return serve(context.Background(), cfg, nil)
	case "validate":
		cfg, err := loadConfig("validate", args)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d upstreams, %d routes)\n", cfg.File(), len(cfg.Upstreams), len(cfg.Routes))
		return nil
	case "demo":
		return bench.Demo(context.Background(), stdout, demoProxy)
	case "bench":
		return runBench(args, stdout)
	case "upstream":
		return runUpstream(args, stdout)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	default:
		return fmt.Errorf("unknown command %q (want run, validate, demo or version): %w", cmd, flag.ErrHelp)
	}
}

// loadConfig parses a subcommand's flags and builds its config: the file
// (or the -upstream quick form), then TAILGUARD_* environment, then flags.
func loadConfig(name string, args []string) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", os.Getenv("TAILGUARD_CONFIG"), "config file (YAML)")
	var o config.Overrides
	fs.StringVar(&o.Upstream, "upstream", "", "quick form: the one upstream, as http://host:port")
	fs.StringVar(&o.Listen, "listen", "", "proxy listen address (default :8000)")
	fs.StringVar(&o.Admin, "admin", "", "admin listen address (default 127.0.0.1:9901)")
	fs.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected arguments %q: %w", name, fs.Args(), flag.ErrHelp)
	}
	o = o.Over(config.EnvOverrides(os.Getenv))
	switch {
	case *file != "":
		cfg, err := config.Load(*file)
		if err != nil {
			return nil, err
		}
		return cfg, cfg.Apply(o)
	case o.Upstream != "":
		return config.Quick(o.Upstream, o)
	default:
		return nil, fmt.Errorf("%s: need -config FILE or -upstream URL: %w", name, flag.ErrHelp)
	}
}

// runBench is the open-loop load generator: a constant rate for a bounded
// time, latency from each request's intended start.
func runBench(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	l := bench.Load{}
	fs.StringVar(&l.URL, "url", "", "target, http://host:port/path")
	fs.Float64Var(&l.Rate, "rate", 1000, "requests per second")
	fs.DurationVar(&l.Duration, "duration", 10*time.Second, "how long to send")
	fs.IntVar(&l.MaxInFlight, "connections", 64, "most requests in flight (and connections)")
	fs.DurationVar(&l.Timeout, "timeout", 5*time.Second, "timeout of one request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := l.Run(ctx, nil)
	if res != nil {
		res.WriteTable(stdout)
	}
	return err
}

// runUpstream serves a test upstream with a latency distribution until
// SIGINT or SIGTERM.
func runUpstream(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:8080", "listen address")
	var lat bench.Latency
	fs.DurationVar(&lat.Median, "latency", 0, "median service time")
	fs.Float64Var(&lat.Sigma, "sigma", 0, "log-normal shape of the service time (0: fixed)")
	fs.Float64Var(&lat.StragglerShare, "straggler-share", 0, "share of requests that straggle")
	fs.DurationVar(&lat.Straggler, "straggler", 0, "service time of a straggler")
	if err := fs.Parse(args); err != nil {
		return err
	}
	up, err := bench.StartUpstream(*addr, lat, 1)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "upstream listening on %s\n", up.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return up.Close()
}

// demoProxy runs tailguard for the demo: the quick form in front of the
// demo's upstream, on ephemeral loopback ports, warnings only, no drain
// delay.
func demoProxy(ctx context.Context, upstream string) (string, string, func() error, error) {
	cfg, err := config.Quick("http://"+upstream, config.Overrides{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", LogLevel: "warn"})
	if err != nil {
		return "", "", nil, err
	}
	cfg.Drain.Delay = 0
	ctx, cancel := context.WithCancel(ctx)
	type addrs struct{ proxy, admin string }
	up := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, func(p, a string) { up <- addrs{p, a} })
	}()
	select {
	case a := <-up:
		return a.proxy, a.admin, func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return "", "", nil, err
	}
}

// serve runs the proxy and admin servers for cfg until SIGTERM or SIGINT
// (or ctx ends), then drains: /readyz fails at once, the listener stays
// open for drain.delay so load balancers notice, then closes, and requests
// under way get drain.timeout to finish. If started is not nil it is
// called with the bound proxy and admin addresses once both listen.
func serve(ctx context.Context, cfg *config.Config, started func(proxyAddr, adminAddr string)) error {
	log, err := newLogger(cfg.Log.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	reg := metrics.NewRegistry(metrics.RegistryOptions{})
	table, err := proxy.Build(cfg, reg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	var draining atomic.Bool
	srv := proxy.NewServer(cfg, table, log)
	admin := &http.Server{
		Handler: metrics.NewAdmin(metrics.AdminOptions{
			Token:  cfg.AdminToken,
			Ready:  func() bool { return !draining.Load() && srv.Ready() },
			Config: func() any { return cfg.Redacted() },
			Stats:  reg,
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	tickCtx, stopTicks := context.WithCancel(context.Background())
	ticks := make(chan struct{})
	go func() { reg.Run(tickCtx); close(ticks) }()
	defer func() { stopTicks(); <-ticks }()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- ignoreClosed(admin.Serve(adminLn)) }()
	logStart(log, cfg, table, ln.Addr(), adminLn.Addr())
	if started != nil {
		started(ln.Addr().String(), adminLn.Addr().String())
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	select {
	case err = <-errc:
		_ = admin.Close()
		_ = srv.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	log.Info("draining", zap.Duration("delay", cfg.Drain.Delay.D()), zap.Duration("timeout", cfg.Drain.Timeout.D()))
	time.Sleep(cfg.Drain.Delay.D())
	dctx, cancel := context.WithTimeout(context.Background(), cfg.Drain.Timeout.D())
	defer cancel()
	err = srv.Shutdown(dctx)
	_ = admin.Close()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	log.Info("stopped")
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// newLogger builds the JSON logger. Its sampler keeps a burst of failing
// requests from flooding the log: per message and second, the first 100
// lines, then one in 100.
func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.Sampling = &zap.SamplingConfig{Initial: 100, Thereafter: 100}
	return zc.Build()
}

// logStart writes the one start-up line: listeners and routes.
func logStart(log *zap.Logger, cfg *config.Config, t *proxy.Table, proxyAddr, adminAddr net.Addr) {
	routes := make([]string, 0, len(t.Routes()))
	for _, r := range t.Routes() {
		routes = append(routes, r.Name())
	}
	log.Info("tailguard started",
		zap.String("version", version()),
		zap.String("config", cfg.File()),
		zap.Stringer("listen", proxyAddr),
		zap.Stringer("admin", adminAddr),
		zap.Strings("routes", routes),
		zap.Int("upstreams", len(cfg.Upstreams)))
}

// version reports the module version and VCS revision from build info.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "tailguard (unknown)"
	}
	v := "tailguard " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v + " " + bi.GoVersion
}
