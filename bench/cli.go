package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Main is `tailguard bench`:
//
//	tailguard bench -url URL [flags]              one run of the load generator
//	tailguard bench scenario NAME [flags]         a reproducible comparison (NAME list: what there is)
//	tailguard bench plot -svg FILE REPORT.json…   the percentile spectra of saved runs
//	tailguard bench relay -upstream HOST:PORT     a bare fasthttp relay, overhead's floor arm
//	tailguard bench evrelay -upstream http://H:P  the same relay on one epoll event loop, an experiment (Linux)
//	tailguard bench policies -upstream HOST:PORT  prints overhead's "tailguard, policies" config (bench/pgo.sh profiles it)
//	tailguard bench wsecho -listen HOST:PORT      a WebSocket echo server, websocket's upstream
//	tailguard bench ws -url ws://HOST:PORT/       a closed loop of WebSocket echoes (JSON report)
//
// start runs tailguard in-process for the scenarios; main supplies it so
// that bench needs no proxy code. Main stops on SIGINT or SIGTERM.
func Main(ctx context.Context, args []string, stdout io.Writer, start Proxy) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := &cli{out: stdout, errOut: os.Stderr, proxy: start}
	if len(args) > 0 {
		switch args[0] {
		case "scenario":
			return c.scenario(ctx, args[1:])
		case "plot":
			return c.plot(args[1:])
		case "relay":
			return c.relay(ctx, args[1:])
		case "evrelay":
			return c.evrelay(ctx, args[1:])
		case "policies":
			return c.policies(args[1:])
		case "wsecho":
			return c.wsecho(ctx, args[1:])
		case "ws":
			return c.ws(ctx, args[1:])
		}
	}
	return c.run(ctx, args)
}

// cli is where Main writes: results to out, progress to errOut.
type cli struct {
	out, errOut io.Writer
	proxy       Proxy
	self        []string // how to run this binary; nil: os.Executable()
}

// runOutputs are where a run's results go besides the table.
type runOutputs struct {
	json, svg, label string
	quiet            bool
	hdr              bool // the JSON report carries the latency histogram
}

// run is one run of the load generator.
func (c *cli) run(ctx context.Context, args []string) error {
	l, o, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	if !o.quiet {
		l.Progress = func(p Progress) { fmt.Fprintln(c.errOut, progressLine(o.label, p)) }
	}
	// A run cut short by Ctrl-C still reports what it measured.
	res, err := l.Run(ctx)
	if res == nil {
		return err
	}
	rep := NewReport(o.label, l, res)
	if o.hdr {
		if err := rep.attachHistogram(res.Latency); err != nil {
			return err
		}
	}
	if o.json == "-" {
		return writeReportJSON(c.out, rep)
	}
	rep.WriteTable(c.out)
	if o.json != "" {
		err = writeFile(o.json, func(w io.Writer) error { return writeReportJSON(w, rep) })
	}
	if err == nil && o.svg != "" {
		err = writeFile(o.svg, func(w io.Writer) error {
			return WriteSpectrum(w, "latency: "+l.URL, []Series{{Label: cmp.Or(o.label, l.URL), Points: rep.Spectrum}})
		})
	}
	return err
}

// parseRunFlags reads a run's flags.
func parseRunFlags(args []string) (Load, runOutputs, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var l Load
	var o runOutputs
	var headers headerFlags
	var body string
	fs.StringVar(&l.URL, "url", "", "target, http://host:port/path or https://… (required)")
	fs.StringVar(&l.CAFile, "tls-ca", "", "https: PEM CA the target's certificate must be signed by (default: the system's roots)")
	fs.BoolVar(&l.Insecure, "insecure", false, "https: accept any certificate (sessions are never resumed either way)")
	fs.Var((*curveFlag)(&l.Curves), "tls-curves", "https: key exchanges to offer, comma-separated, e.g. X25519 (default: Go's, X25519MLKEM768 first)")
	fs.BoolVar(&l.NoKeepAlive, "no-keepalive", false, "Connection: close on every request: a new connection (over https, a full handshake) each")
	fs.Float64Var(&l.Rate, "rate", 1000, "open loop: requests a second")
	fs.BoolVar(&l.Closed, "closed", false, "closed loop: -connections workers as fast as the target answers (for throughput)")
	fs.DurationVar(&l.Duration, "duration", 10*time.Second, "how long to send (0: until -count)")
	fs.Int64Var(&l.Count, "count", 0, "how many requests to send (0: until -duration)")
	fs.IntVar(&l.Connections, "connections", 64, "most requests in flight (closed loop: workers)")
	fs.DurationVar(&l.Timeout, "timeout", 5*time.Second, "timeout of one request")
	fs.IntVar(&l.Fanout, "fanout", 1, "parallel calls per request; a request takes as long as its slowest call")
	fs.StringVar(&l.Method, "method", "GET", "request method")
	fs.StringVar(&body, "body", "", "request body")
	fs.Var(&headers, "H", `request header "Name: value" (repeatable), e.g. -H "X-Priority: sheddable"`)
	fs.StringVar(&o.json, "json", "", `write the JSON report to this file ("-": to stdout, instead of the table)`)
	fs.StringVar(&o.svg, "svg", "", "write the percentile spectrum to this SVG file")
	fs.StringVar(&o.label, "label", "", "name of the run in reports and plots")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&o.hdr, "hdr", false, "the JSON report also carries the whole latency histogram (latency_hdr: HdrHistogram's compressed encoding, µs), for merging runs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: tailguard bench -url URL [flags]   (also: bench scenario NAME | list, bench plot -svg FILE REPORT.json…)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return l, o, err
	}
	if fs.NArg() > 0 || l.URL == "" {
		fs.Usage()
		return l, o, fmt.Errorf("bench: need -url and no other arguments: %w", flag.ErrHelp)
	}
	l.Headers = headers
	if body != "" {
		l.Body = []byte(body)
	}
	return l, o, nil
}

// headerFlags collects -H flags.
type headerFlags []Header

func (h *headerFlags) String() string { return fmt.Sprint(*h) }

func (h *headerFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want \"Name: value\"", v)
	}
	*h = append(*h, Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	return nil
}

// curveFlag is -tls-curves: key exchanges by Go's names.
type curveFlag []tls.CurveID

func (c *curveFlag) String() string { return fmt.Sprint(*c) }

func (c *curveFlag) Set(v string) error {
	known := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	for name := range strings.SplitSeq(v, ",") {
		i := slices.IndexFunc(known, func(k tls.CurveID) bool { return strings.EqualFold(k.String(), strings.TrimSpace(name)) })
		if i < 0 {
			return fmt.Errorf("curve %q: want one of %v", name, known)
		}
		*c = append(*c, known[i])
	}
	return nil
}

// progressLine is a run's one line a second: the last second's rate and
// percentiles, and the count so far.
func progressLine(label string, p Progress) string {
	last := p.Last
	return fmt.Sprintf("%s t=%3.0fs  done %7d  last 1s: %5d  p50 %7s  p99 %7s  2xx %5d  other %4d",
		cmp.Or(label, "bench"), p.Elapsed.Seconds(), p.Total.Count(), last.Count(),
		fmtMS(msOf(last.Quantile(0.5))), fmtMS(msOf(last.Quantile(0.99))),
		last.CountOf(Is2xx), last.Count()-last.CountOf(Is2xx))
}

// plot draws saved JSON reports into one SVG.
func (c *cli) plot(args []string) error {
	fs := flag.NewFlagSet("bench plot", flag.ContinueOnError)
	svg := fs.String("svg", "", "SVG file to write (required)")
	title := fs.String("title", "percentile spectrum", "title of the plot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *svg == "" || fs.NArg() == 0 {
		return fmt.Errorf("bench plot: need -svg FILE and one or more JSON reports: %w", flag.ErrHelp)
	}
	var series []Series
	for _, f := range fs.Args() {
		rep, err := readReport(f)
		if err != nil {
			return err
		}
		series = append(series, Series{Label: cmp.Or(rep.Label, f), Points: rep.Spectrum})
	}
	return writeFile(*svg, func(w io.Writer) error { return WriteSpectrum(w, *title, series) })
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

func writeReportJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFile creates path and writes it with fn.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
