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
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
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
		src, err := configFlags("run", args)
		if err != nil {
			return err
		}
		return serve(context.Background(), src, nil)
	case "validate":
		src, err := configFlags("validate", args)
		if err != nil {
			return err
		}
		cfg, err := src.load()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok (%d upstreams, %d routes)\n", cfg.File(), len(cfg.Upstreams), len(cfg.Routes))
		return nil
	case "demo":
		return bench.DemoMain(context.Background(), args, stdout, demoProxy)
	case "bench":
		return bench.Main(context.Background(), args, stdout, demoProxy)
	case "upstream":
		return bench.UpstreamMain(context.Background(), args, stdout)
	case "version":
		fmt.Fprintln(stdout, version())
		return nil
	default:
		return fmt.Errorf("unknown command %q (want run, validate, demo or version): %w", cmd, flag.ErrHelp)
	}
}

// configSource is where the config comes from: a file (or the -upstream
// quick form) with TAILGUARD_* environment and flags over it, or a config
// built in code. A reload reads it again the same way.
type configSource struct {
	file string
	o    config.Overrides
	cfg  *config.Config // built in code; never reloaded
}

// load builds the config from its source.
func (c configSource) load() (*config.Config, error) {
	switch {
	case c.cfg != nil:
		return c.cfg, nil
	case c.file != "":
		cfg, err := config.Load(c.file)
		if err != nil {
			return nil, err
		}
		return cfg, cfg.Apply(c.o)
	default:
		return config.Quick(c.o.Upstream, c.o)
	}
}

// configFlags parses a subcommand's flags into where its config comes
// from: the file (or the -upstream quick form), then TAILGUARD_*
// environment, then flags.
func configFlags(name string, args []string) (configSource, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", os.Getenv("TAILGUARD_CONFIG"), "config file (YAML)")
	var o config.Overrides
	fs.StringVar(&o.Upstream, "upstream", "", "quick form: the one upstream, as http://host:port")
	fs.StringVar(&o.Listen, "listen", "", "proxy listen address (default :8000)")
	fs.StringVar(&o.Admin, "admin", "", "admin listen address (default 127.0.0.1:9901)")
	fs.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return configSource{}, err
	}
	if fs.NArg() > 0 {
		return configSource{}, fmt.Errorf("%s: unexpected arguments %q: %w", name, fs.Args(), flag.ErrHelp)
	}
	o = o.Over(config.EnvOverrides(os.Getenv))
	if *file == "" && o.Upstream == "" {
		return configSource{}, fmt.Errorf("%s: need -config FILE or -upstream URL: %w", name, flag.ErrHelp)
	}
	return configSource{file: *file, o: o}, nil
}

// demoProxy runs tailguard in-process for the demo and the bench
// scenarios: the config is the YAML they give, on ephemeral loopback
// ports, warnings only, no drain delay.
func demoProxy(ctx context.Context, yaml string) (string, string, func() error, error) {
	cfg, err := config.Parse("scenario.yaml", []byte(yaml))
	if err != nil {
		return "", "", nil, err
	}
	if err := cfg.Apply(config.Overrides{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", LogLevel: "warn"}); err != nil {
		return "", "", nil, err
	}
	cfg.Drain.Delay = 0
	ctx, cancel := context.WithCancel(ctx)
	type addrs struct{ proxy, admin string }
	up := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, configSource{cfg: cfg}, func(p, a string) { up <- addrs{p, a} })
	}()
	select {
	case a := <-up:
		return a.proxy, a.admin, func() error { cancel(); return <-done }, nil
	case err := <-done:
		cancel()
		return "", "", nil, err
	}
}

// serve runs the proxy and admin servers for the config from src until
// SIGTERM or SIGINT (or ctx ends), then drains: /readyz fails at once, the
// listener stays open for drain.delay so load balancers notice, then
// closes, and requests under way get drain.timeout to finish. A config
// file is reloaded on SIGHUP, when it changes, and on POST /reload. If
// started is not nil it is called with the bound proxy and admin addresses
// once both listen.
func serve(ctx context.Context, src configSource, started func(proxyAddr, adminAddr string)) error {
	cfg, err := src.load()
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	memLimit := setMemoryLimit(os.Getenv("GOMEMLIMIT"), cgroupMemoryFiles)
	reg := metrics.NewRegistry(metrics.RegistryOptions{})
	srv, err := proxy.NewServer(cfg, reg, log)
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
	reloads := &metrics.Reloads{}
	reload := func(trigger string) error { return reloadConfig(src, srv, reloads, log, trigger) }
	admin := &http.Server{
		Handler: metrics.NewAdmin(metrics.AdminOptions{
			Token:   cfg.AdminToken,
			Ready:   func() bool { return !draining.Load() && srv.Ready() },
			Config:  func() any { return srv.Config().Redacted() },
			Stats:   reg,
			Reload:  func() error { return reload("POST /reload") },
			Reloads: reloads,
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
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	watchDone := watchConfig(ctx, src, reload, log)
	defer func() { <-watchDone }()
	logStart(log, cfg, ln.Addr(), adminLn.Addr(), memLimit)
	if started != nil {
		started(ln.Addr().String(), adminLn.Addr().String())
	}
	select {
	case err = <-errc:
		stop()
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

// watchConfig reloads the config on SIGHUP and, for a config file, when
// the file changes, until ctx ends; the returned channel closes when it
// has stopped. (SIGHUP is taken even without a file, so that it never
// kills the process.)
func watchConfig(ctx context.Context, src configSource, reload func(string) error, log *zap.Logger) <-chan struct{} {
	done := make(chan struct{})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = reload("SIGHUP")
			}
		}
	}()
	if src.file != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := config.Watch(ctx, src.file, 250*time.Millisecond, func() { _ = reload("file change") })
			if err != nil {
				log.Error("config file watch stopped; reload with SIGHUP or POST /reload", zap.Error(err))
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// reloadConfig reads the config again and applies it; a config that does
// not load, validate or apply is refused with its errors logged, counted
// (tailguard_config_reload_failures_total), and the running one keeps
// serving.
func reloadConfig(src configSource, srv *proxy.Server, reloads *metrics.Reloads, log *zap.Logger, trigger string) error {
	if src.file == "" {
		return errors.New("no config file to reload (the config was given on the command line)")
	}
	cfg, err := src.load()
	if err == nil {
		err = srv.Reload(cfg)
	}
	reloads.Count(err)
	if err != nil {
		log.Error("config reload refused; the running config keeps serving", zap.String("trigger", trigger), zap.Error(err))
		return err
	}
	log.Info("config reloaded", zap.String("trigger", trigger), zap.Strings("routes", routeNames(cfg)))
	return nil
}

func routeNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	return names
}

// cgroupMemoryFiles hold a container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// setMemoryLimit gives the Go runtime a soft memory limit (GOMEMLIMIT) of
// 90% of the container's cgroup memory limit, unless GOMEMLIMIT was set
// (env) or there is no limit, so that the GC works harder before the
// kernel's OOM killer acts. It returns the limit in force (0: none).
// GOMAXPROCS needs no such help: since Go 1.25 the runtime follows the
// cgroup CPU limit itself.
func setMemoryLimit(env string, files []string) int64 {
	if env != "" {
		return debug.SetMemoryLimit(-1) // the runtime already applied it
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" (a huge number)
			return 0
		}
		limit := n / 10 * 9
		debug.SetMemoryLimit(limit)
		return limit
	}
	return 0
}

// logStart writes the one start-up line: listeners, routes, and the CPU
// and memory the runtime will use.
func logStart(log *zap.Logger, cfg *config.Config, proxyAddr, adminAddr net.Addr, memLimit int64) {
	routes := routeNames(cfg)
	log.Info("tailguard started",
		zap.String("version", version()),
		zap.String("config", cfg.File()),
		zap.Stringer("listen", proxyAddr),
		zap.Stringer("admin", adminAddr),
		zap.Strings("routes", routes),
		zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
		zap.Int64("gomemlimit", memLimit),
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
