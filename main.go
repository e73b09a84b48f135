// Command tailguard is a sidecar reverse proxy that keeps one service's
// tail latency in check and shows, per route, where the time goes.
//
//	tailguard [run] -config FILE
//	tailguard -upstream http://127.0.0.1:8080 [-listen :8000] [-admin 127.0.0.1:9901] [-tls-cert F -tls-key F]
//	tailguard validate -config FILE
//	tailguard slo rules -config FILE
//	tailguard demo
//	tailguard version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

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
		return serve(src)
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
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		return nil
	case "slo":
		return sloCommand(args, stdout)
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
		return fmt.Errorf("unknown command %q (want run, validate, slo, demo or version): %w", cmd, flag.ErrHelp)
	}
}

// sloCommand runs "slo rules -config FILE": it writes the Prometheus
// recording and alerting rules for the routes' SLOs to stdout.
func sloCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "rules" {
		return fmt.Errorf("slo: want slo rules -config FILE: %w", flag.ErrHelp)
	}
	src, err := configFlags("slo rules", args[1:])
	if err != nil {
		return err
	}
	cfg, err := src.load()
	if err != nil {
		return err
	}
	routes := make([]metrics.RouteConfig, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = metrics.RouteConfig{Name: r.Name, SLO: proxy.SLO(r.SLO)}
	}
	_, err = stdout.Write(metrics.SLORules(routes))
	return err
}

// configFlags parses a subcommand's flags into where its config comes
// from: the file (or the -upstream quick form), then TAILGUARD_*
// environment, then flags.
func configFlags(name string, args []string) (configSource, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("config", os.Getenv("TAILGUARD_CONFIG"), "config file (YAML)")
	var o config.Overrides
	fs.StringVar(&o.Upstream, "upstream", "", "quick form: the one upstream, as http://host:port or https://host:port")
	fs.StringVar(&o.Listen, "listen", "", "proxy listen address (default :8000)")
	fs.StringVar(&o.Admin, "admin", "", "admin listen address (default 127.0.0.1:9901)")
	fs.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "terminate TLS with this PEM certificate chain (with -tls-key)")
	fs.StringVar(&o.TLSKey, "tls-key", "", "the PEM private key of -tls-cert")
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
