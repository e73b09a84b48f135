package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
)

// UpstreamMain is `tailguard upstream`: it serves a fault-injecting
// upstream with the faults its flags describe until SIGINT, SIGTERM or
// the end of ctx.
func UpstreamMain(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseUpstreamFlags(args)
	if err != nil {
		return err
	}
	up, err := StartUpstream(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "upstream listening on %s", up.Addr())
	if a := up.AdminAddr(); a != "" {
		fmt.Fprintf(stdout, "  admin http://%s/faults  http://%s/stats", a, a)
	}
	fmt.Fprintln(stdout)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return up.Close()
}

// parseUpstreamFlags reads `tailguard upstream`'s flags.
func parseUpstreamFlags(args []string) (UpstreamOptions, error) {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	var o UpstreamOptions
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "listen address")
	fs.StringVar(&o.Admin, "admin", "", "admin address for GET/PUT /faults and GET /stats (default: none)")
	fs.IntVar(&o.Workers, "workers", 0, "capacity: requests served at once, the rest wait in FIFO order (0: no limit)")
	fs.IntVar(&o.Queue, "queue", 0, "most requests waiting for a worker; more get 503 (0: no bound)")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the random draws")
	f := &o.Faults
	l := &f.Latency
	fs.StringVar(&l.Dist, "dist", "", "service-time distribution: fixed, uniform or lognormal (default: lognormal if -sigma > 0, else fixed)")
	fs.DurationVar(&l.Median, "latency", 0, "median service time (fixed: the service time)")
	fs.Float64Var(&l.Sigma, "sigma", 0, "log-normal shape of the service time")
	fs.DurationVar(&l.Min, "min", 0, "uniform: least service time")
	fs.DurationVar(&l.Max, "max", 0, "uniform: greatest service time")
	fs.Float64Var(&l.StragglerShare, "straggler-share", 0, "share of requests that straggle")
	fs.DurationVar(&l.Straggler, "straggler", 0, "service time of a straggler")
	fs.Float64Var(&f.ErrorShare, "error-share", 0, "share of requests answered -error-status")
	fs.IntVar(&f.ErrorStatus, "error-status", 500, "status of an injected error")
	fs.Float64Var(&f.ResetShare, "reset-share", 0, "share of requests whose connection is reset")
	fs.Float64Var(&f.StallShare, "stall-share", 0, "share of requests never answered")
	fs.Float64Var(&f.StrayShare, "stray-share", 0, "share of responses followed by stray bytes")
	fs.IntVar(&f.BodyBytes, "body-bytes", 0, "size of a 200 body (0: a small JSON body)")
	fs.IntVar(&f.BodyRate, "body-rate", 0, "bytes a second a 200 body trickles at (0: at once)")
	faultsJSON := fs.String("faults", "", `faults as JSON, merged over the flags above, e.g. '{"paths":{"/slow":{"latency":{"median":"1s"}}}}'`)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("upstream: unexpected arguments %q: %w", fs.Args(), flag.ErrHelp)
	}
	if *faultsJSON != "" {
		if err := json.Unmarshal([]byte(*faultsJSON), f); err != nil {
			return o, fmt.Errorf("upstream: -faults: %w", err)
		}
	}
	return o, f.Validate()
}
