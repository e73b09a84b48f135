package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// grayProbation is the gray scenario's latency-induced probation: eject
// an endpoint whose p99 is at least 3× its peers', for long enough that a
// run sees one ejection, and at most one endpoint of three at a time.
const grayProbation = "outlier: {latency_factor: 3, ejection_time: 30s, max_ejected_percent: 34}"

// grayLatency is a healthy endpoint's service time in the gray scenario,
// and grayStragglers the gray one's: the same, but a fifth of its answers
// take 150 ms. It never fails, so failure-based ejection never sees it.
var (
	grayLatency    = Latency{Median: time.Millisecond, Sigma: 0.2}
	grayStragglers = Latency{Median: time.Millisecond, Sigma: 0.2, StragglerShare: 0.2, Straggler: 150 * time.Millisecond}
)

// grayArm is one balancing set-up of the gray scenario.
type grayArm struct {
	label string
	cfg   proxyConfig
}

// grayResult is what one gray arm measured: the first segment (from a
// cold start, while probation, if any, finds the gray endpoint) and the
// steady one after it.
type grayResult struct {
	first, steady *Result
	// grayFirst and grayAfter are the gray endpoint's requests in each
	// segment, allFirst and allAfter every endpoint's.
	grayFirst, allFirst, grayAfter, allAfter int64
	hedges                                   int64
	// ejections are tailguard's latency ejections over both segments.
	ejections uint64
}

// runGray compares, against three endpoints one of which is gray (20% of
// its answers at 150 ms, no errors), round robin, round robin with
// latency-induced probation, p2c, p2c with probation, and that with
// hedging at p95; and, for reference, p2c over the two healthy endpoints
// alone. Each arm starts
// cold and runs two open-loop segments: the first 10 s, in which
// probation has to find the gray endpoint, and -duration more (default
// 10s), whose percentiles the table shows. -rate is requests a second
// (default 1000).
func runGray(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(1000, 150), e.span(10*time.Second, 1500*time.Millisecond)
	settle := e.fixed(10*time.Second, 1500*time.Millisecond)
	ups, closeUps, err := startUpstreams(3, UpstreamOptions{Faults: Faults{Latency: grayLatency}})
	if err != nil {
		return nil, err
	}
	defer closeUps()
	gray := ups[2]
	if err := gray.SetFaults(Faults{Latency: grayStragglers}); err != nil {
		return nil, err
	}
	all := proxyConfig{endpoints: addrs(ups), route: []string{"timeout: 2s"}}
	with := func(upstream, route []string) proxyConfig {
		c := all
		c.upstream, c.route = upstream, append(route, all.route...)
		return c
	}
	healthy := all
	healthy.endpoints = addrs(ups[:2])
	arms := []grayArm{
		{"round robin", with([]string{"balance: round_robin"}, nil)},
		{"round robin + probation", with([]string{"balance: round_robin", grayProbation}, nil)},
		{"p2c", all},
		{"p2c + probation", with([]string{grayProbation}, nil)},
		{"p2c + probation + hedging", with([]string{grayProbation}, []string{hedgeRoute})},
		{"healthy endpoints alone (p2c)", healthy},
	}
	var runs []*grayResult
	var series []Series
	for _, a := range arms {
		r, err := e.runGrayArm(ctx, a, gray, ups, rate, settle, d)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
		series = append(series, Series{Label: a.label, Points: spectrum(r.steady.Latency)})
	}
	return &Outcome{Tables: []*Table{grayTable(rate, settle, d, arms, runs)}, Series: series}, nil
}

// runGrayArm starts tailguard for a, runs the two segments and stops it.
func (e *Env) runGrayArm(ctx context.Context, a grayArm, gray *Upstream, ups []*Upstream, rate float64, settle, d time.Duration) (r *grayResult, err error) {
	p, err := e.startProxy(ctx, a.cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.stop()) }()
	counts := func() (int64, int64) { return gray.Stats().Requests, upstreamRequests(ups) }
	segment := func(label string, span time.Duration) (*Result, error) {
		l := openLoad(rate, span)
		l.URL = p.url()
		e.logf("%s: %s", label, describeLoad(l))
		return e.load(ctx, label, l)
	}
	r = &grayResult{}
	g0, a0 := counts()
	if r.first, err = segment(a.label+", first "+settle.String(), settle); err != nil {
		return nil, err
	}
	g1, a1 := counts()
	if r.steady, err = segment(a.label, d); err != nil {
		return nil, err
	}
	g2, a2 := counts()
	r.grayFirst, r.allFirst, r.grayAfter, r.allAfter = g1-g0, a1-a0, g2-g1, a2-a1
	r.hedges = settledStats(ctx, p.admin, r.first.Count()+r.steady.Count()).Hedges.Sent
	r.ejections = latencyEjections(ctx, p.admin)
	return r, nil
}

// latencyEjections reads the latency ejections of tailguard's upstream
// from its admin /stats; 0 if it cannot.
func latencyEjections(ctx context.Context, admin string) uint64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/stats", nil)
	if err != nil {
		return 0
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var doc struct {
		Upstreams []struct {
			LatencyEjections uint64 `json:"latency_ejections"`
		} `json:"upstreams"`
	}
	if json.NewDecoder(resp.Body).Decode(&doc) != nil || len(doc.Upstreams) == 0 {
		return 0
	}
	return doc.Upstreams[0].LatencyEjections
}

// grayTable is the arms side by side, with the targets checked.
func grayTable(rate float64, settle, d time.Duration, arms []grayArm, runs []*grayResult) *Table {
	t := &Table{
		Title: fmt.Sprintf("Gray failure: three endpoints (~1 ms), one answering 20%% of its requests after 150 ms, no errors; %.0f/s open loop, a first %v from a cold start, then %v measured, per arm",
			rate, settle, d),
		Columns: []string{"arm", "requests", "p50", "p99", "p99.9", "gray share, first " + settle.String(), "gray share, after", "upstream load", "hedges sent", "latency ejections"},
	}
	share := func(g, all int64, inArm bool) Cell {
		if !inArm {
			return blank
		}
		return numCell(100*float64(g)/float64(max(all, 1)), unitPercent)
	}
	for i, a := range arms {
		r := runs[i]
		inArm := len(a.cfg.endpoints) == 3
		n := r.first.Count() + r.steady.Count()
		t.add(a.label, countCell(r.steady.Count()), msCell(r.steady.Quantile(0.5)), msCell(r.steady.Quantile(0.99)),
			msCell(r.steady.Quantile(0.999)), share(r.grayFirst, r.allFirst, inArm), share(r.grayAfter, r.allAfter, inArm),
			ratioCell(float64(r.allFirst+r.allAfter), float64(n)), countCell(r.hedges), countCell(int64(r.ejections)))
	}
	ref := float64(runs[len(runs)-1].steady.Quantile(0.99))
	t.note("percentiles are the client's response times over the measured %v (after the first %v); gray share is the gray endpoint's part of the requests the endpoints saw; upstream load is requests the endpoints saw ÷ requests sent, both segments", d, settle)
	t.note("probation: `%s`; hedging: `%s`", grayProbation, hedgeRoute)
	for i, a := range arms {
		if a.cfg.upstream == nil || a.cfg.upstream[len(a.cfg.upstream)-1] != grayProbation {
			continue
		}
		r := runs[i]
		share := 100 * float64(r.grayAfter) / float64(max(r.allAfter, 1))
		within := float64(r.steady.Quantile(0.99)) / max(ref, 1)
		t.note("issue 17 target, %s: the gray endpoint's share below 5%% after the first %v and the route's p99 within 1.5× the healthy endpoints'; got %.1f%% and %.2f×: %s",
			a.label, settle, share, within, metOrNot(share < 5 && within <= 1.5))
	}
	return t
}
