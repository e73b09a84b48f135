package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// scenario is `tailguard bench scenario NAME [flags]`.
func (c *cli) scenario(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "list" || strings.HasPrefix(args[0], "-") {
		c.listScenarios()
		if len(args) == 0 || args[0] != "list" {
			return fmt.Errorf("bench scenario: need a NAME: %w", flag.ErrHelp)
		}
		return nil
	}
	name := args[0]
	if _, err := findScenario(name); err != nil {
		return err
	}
	fs := flag.NewFlagSet("bench scenario "+name, flag.ContinueOnError)
	e := Env{Proxy: c.proxy, Self: c.self, Log: c.errOut}
	fs.Float64Var(&e.Rate, "rate", 0, "scale: requests a second (what it scales: see `scenario list`; 0: the scenario's default)")
	fs.DurationVar(&e.Duration, "duration", 0, "scale: length of each measured phase (0: the scenario's default)")
	fs.IntVar(&e.Rounds, "rounds", 0, "overhead: rounds to take each figure's median over (0: 3)")
	fs.IntVar(&e.Connections, "connections", 0, "idle: client connections to hold open (0: 10000, the quick form's cap)")
	fs.BoolVar(&e.Smoke, "smoke", false, "tiny scale, a few seconds: checks that it runs, not what it finds")
	ok, _ := canPin()
	fs.BoolVar(&e.Pin, "pin", ok, "overhead: pin proxy and upstream to CPU 0, the load to CPU 1 (taskset)")
	fs.StringVar(&e.Baseline, "baseline", "", "overhead (and tls with -pairs): also measure this tailguard binary (an earlier build), in the same rounds or pairs")
	fs.IntVar(&e.Pairs, "pairs", 0, "overhead: compare tailguard with -baseline and with itself, tls: with nginx and with itself, in this many alternating (ABBA) pairs of short loops, instead of rounds (0: rounds)")
	fs.BoolVar(&e.Peers, "peers", false, "overhead with -pairs: also compare tailguard with nginx and with the fasthttp relay (and tailguard, policies with nginx) in the same pairs, with verdicts on the overhead targets")
	jsonOut := fs.String("json", "", "also write the tables as JSON to this file")
	svgOut := fs.String("svg", "", "write the arms' percentile spectra to this SVG file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "## scenario %s\n\n`tailguard bench scenario %s`  \n%s\n\n", name, strings.Join(args, " "), machine())
	out, err := RunScenario(ctx, name, e)
	if out == nil {
		return err
	}
	for _, t := range out.Tables {
		t.Write(c.out)
	}
	if *jsonOut != "" {
		err = firstErr(err, writeFile(*jsonOut, func(w io.Writer) error { return writeReportJSON(w, out) }))
	}
	if *svgOut != "" && len(out.Series) > 0 {
		err = firstErr(err, writeFile(*svgOut, func(w io.Writer) error { return WriteSpectrum(w, "scenario "+name, out.Series) }))
	}
	return err
}

func (c *cli) listScenarios() {
	fmt.Fprintln(c.out, "tailguard bench scenario NAME [-rate R] [-duration D] [-rounds N] [-connections N] [-smoke] [-pin] [-baseline BIN] [-pairs N] [-peers] [-json FILE] [-svg FILE]")
	fmt.Fprintln(c.out, "(-rate and -duration scale each scenario as it says, with the defaults shown)")
	for _, s := range scenarios() {
		fmt.Fprintf(c.out, "  %-14s %s\n", s.name, s.about)
	}
}

// machine describes where the figures come from.
func machine() string {
	return fmt.Sprintf("%d CPUs, %s/%s, %s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), time.Now().Format("2006-01-02 15:04"))
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
