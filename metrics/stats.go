package metrics

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// statsDoc is /stats: DESIGN.md's shape, plus window_s, in_flight,
// queued and latency_ms.overhead.
type statsDoc struct {
	UptimeS float64      `json:"uptime_s"`
	Window  string       `json:"window"`
	Routes  []routeStats `json:"routes"`
	// Listener and Upstreams are live state and counts since start, not
	// over the window.
	Listener  listenerStats   `json:"listener"`
	Upstreams []upstreamStats `json:"upstreams"`
	Buffers   bufferStats     `json:"buffers"`
}

// bufferStats are the buffered bodies' figures (BufferGauges).
type bufferStats struct {
	MemoryBytes int64  `json:"memory_bytes"`
	DiskBytes   int64  `json:"disk_bytes"`
	Spills      uint64 `json:"spills"`
	Fallbacks   uint64 `json:"fallbacks"`
}

// listenerStats are the client listener's figures: connections open now
// and how many of them are parked, refusals before routing by cause.
type listenerStats struct {
	Connections int64             `json:"connections"`
	Parked      int64             `json:"parked"`
	Errors      map[string]uint64 `json:"errors"`
}

type upstreamStats struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"`
	// Ejections, LatencyEjections and WouldEject are UpstreamGauges':
	// since the upstream was built.
	Ejections        uint64          `json:"ejections"`
	LatencyEjections uint64          `json:"latency_ejections"`
	WouldEject       uint64          `json:"would_eject"`
	Endpoints        []endpointStats `json:"endpoints"`
}

type endpointStats struct {
	Address       string  `json:"address"`
	Healthy       bool    `json:"healthy"`
	Ejected       bool    `json:"ejected"`
	Outstanding   int64   `json:"outstanding"`
	LatencyEWMAMS float64 `json:"latency_ewma_ms"`
	Requests      uint64  `json:"requests"`
	Failures      uint64  `json:"failures"`
}

type routeStats struct {
	Name string `json:"name"`
	// WindowS is the span the window covers: less than its nominal length
	// while the route is young, and the route's age for "all".
	WindowS        float64          `json:"window_s"`
	Requests       int64            `json:"requests"`
	RPS            float64          `json:"rps"`
	Status         map[string]int64 `json:"status"`
	Shed           int64            `json:"shed"`
	RateLimited    int64            `json:"rate_limited"`
	Timeouts       int64            `json:"timeouts"`
	BreakerRejects int64            `json:"breaker_rejects"`
	Retries        int64            `json:"retries"`
	Hedges         hedgeStats       `json:"hedges"`
	// WouldRetry, WouldHedge and WouldReject are what shadow-mode retry,
	// hedge and breaker policies decided and did not do.
	WouldRetry       int64       `json:"would_retry"`
	WouldHedge       int64       `json:"would_hedge"`
	WouldReject      int64       `json:"would_reject"`
	Tunnels          tunnelStats `json:"tunnels"`
	Breaker          string      `json:"breaker"`
	ConcurrencyLimit int         `json:"concurrency_limit"`
	InFlight         int         `json:"in_flight"`
	Queued           int         `json:"queued"`
	// ShedByPriority is Gauges.ShedByPriority: since the admission was
	// built, not over the window.
	ShedByPriority map[string]uint64 `json:"shed_by_priority,omitempty"`
	// Fair and RateLimit are Gauges.Fair and Gauges.RateLimit: live.
	Fair      *KeyGauges   `json:"fair,omitempty"`
	RateLimit *KeyGauges   `json:"rate_limit,omitempty"`
	LatencyMS latencyStats `json:"latency_ms"`
	SLO       *sloReport   `json:"slo"` // null without an SLO
}

// tunnelStats are a route's upgraded connections: open now, and opened
// since start (not over the window: a tunnel is not a request).
type tunnelStats struct {
	Active int64  `json:"active"`
	Total  uint64 `json:"total"`
}

type hedgeStats struct {
	Sent int64 `json:"sent"`
	Won  int64 `json:"won"`
}

type latencyStats struct {
	Queue    quantiles `json:"queue"`
	Service  quantiles `json:"service"`
	Response quantiles `json:"response"`
	Overhead quantiles `json:"overhead"`
}

// quantiles are one metric's percentiles in milliseconds.
type quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// stats builds /stats for window k.
func (r *Registry) stats(k window) *statsDoc {
	doc := &statsDoc{UptimeS: r.uptime().Seconds(), Window: k.String(), Routes: []routeStats{}}
	for _, rt := range r.configured() {
		doc.Routes = append(doc.Routes, rt.stats(k))
	}
	g := r.serverGauges()
	doc.Listener = listenerStats{Connections: g.Listener.Connections, Parked: g.Listener.Parked, Errors: make(map[string]uint64, len(g.Listener.Errors))}
	for _, e := range g.Listener.Errors {
		doc.Listener.Errors[e.Cause] = e.Count
	}
	doc.Buffers = bufferStats(g.Buffers)
	doc.Upstreams = make([]upstreamStats, 0, len(g.Upstreams))
	for _, u := range g.Upstreams {
		us := upstreamStats{Name: u.Name, Breaker: u.Breaker, Ejections: u.Ejections, LatencyEjections: u.LatencyEjections,
			WouldEject: u.WouldEject, Endpoints: make([]endpointStats, 0, len(u.Endpoints))}
		for _, e := range u.Endpoints {
			us.Endpoints = append(us.Endpoints, endpointStats{
				Address: e.Address, Healthy: e.Healthy, Ejected: e.Ejected, Outstanding: e.Outstanding,
				LatencyEWMAMS: ms(e.LatencyEWMA), Requests: e.Requests, Failures: e.Failures,
			})
		}
		doc.Upstreams = append(doc.Upstreams, us)
	}
	return doc
}

func (rt *Route) stats(k window) routeStats {
	s := rt.view(k, true)
	cfg := rt.cfg.Load()
	rs := routeStats{
		Name: rt.name, WindowS: s.seconds, Requests: s.c.requests, RPS: s.rps(),
		Status: make(map[string]int64, numClasses),
		Shed:   s.c.shed, RateLimited: s.c.rateLimited, Timeouts: s.c.timeouts, BreakerRejects: s.c.breakerRejects, Retries: s.c.retries,
		Hedges:     hedgeStats{Sent: s.c.hedgesSent, Won: s.c.hedgesWon},
		WouldRetry: s.c.wouldRetry, WouldHedge: s.c.wouldHedge, WouldReject: s.c.wouldReject,
		LatencyMS: latencyStats{
			Queue: s.quantiles(Queue), Service: s.quantiles(Service),
			Response: s.quantiles(Response), Overhead: s.quantiles(Overhead),
		},
	}
	for i, name := range classNames {
		rs.Status[name] = s.c.status[i]
	}
	rs.Tunnels.Active, rs.Tunnels.Total = rt.Tunnels()
	if cfg.Gauges != nil {
		g := cfg.Gauges()
		rs.Breaker, rs.ConcurrencyLimit, rs.InFlight, rs.Queued = g.Breaker, g.ConcurrencyLimit, g.InFlight, g.Queued
		rs.ShedByPriority, rs.Fair, rs.RateLimit = g.ShedByPriority, g.Fair, g.RateLimit
	}
	if cfg.SLO != nil {
		rs.SLO = cfg.SLO.report(&s.c, &rt.view(win5m, false).c, &rt.view(win1h, false).c)
	}
	return rs
}

func (s *Snapshot) quantiles(m Metric) quantiles {
	return quantiles{
		P50: ms(s.Quantile(m, 0.50)), P90: ms(s.Quantile(m, 0.90)), P99: ms(s.Quantile(m, 0.99)),
		P999: ms(s.Quantile(m, 0.999)), Max: ms(s.max(m)),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeText writes doc as an aligned table for a terminal.
func (doc *statsDoc) writeText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "tailguard  window %s  uptime %.1fs  latency in ms\n\n", doc.Window, doc.UptimeS); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\trps\tqueue p50\tp99\tp999\tservice p50\tp99\tp999\tresponse p50\tp99\tp999\t5xx\tshed\tbreaker\t")
	for _, r := range doc.Routes {
		l := r.LatencyMS
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%d\t%d\t%s\t\n", r.Name, r.RPS,
			l.Queue.text(), l.Service.text(), l.Response.text(), r.Status["5xx"], r.Shed, breakerText(r.Breaker))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	return doc.writeServerText(w)
}

// writeServerText writes the listener's line and the endpoints' table;
// nothing for a registry without server gauges.
func (doc *statsDoc) writeServerText(w io.Writer) error {
	if len(doc.Listener.Errors) == 0 && len(doc.Upstreams) == 0 {
		return nil
	}
	errs := make([]string, 0, len(doc.Listener.Errors))
	for c, n := range doc.Listener.Errors {
		if n > 0 {
			errs = append(errs, fmt.Sprintf("%s %d", c, n))
		}
	}
	slices.Sort(errs)
	if _, err := fmt.Fprintf(w, "\nlistener  connections %d (%d parked)  refused before routing: %s\n\n",
		doc.Listener.Connections, doc.Listener.Parked, cmp.Or(strings.Join(errs, ", "), "none")); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "upstream\tbreaker\tendpoint\thealthy\tejected\toutstanding\tewma ms\trequests\tfailures\t")
	for _, u := range doc.Upstreams {
		for _, e := range u.Endpoints {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%d\t%.3f\t%d\t%d\t\n", u.Name, breakerText(u.Breaker),
				e.Address, e.Healthy, e.Ejected, e.Outstanding, e.LatencyEWMAMS, e.Requests, e.Failures)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	return nil
}

// text is the p50, p99 and p999 columns of a row.
func (q quantiles) text() string { return fmt.Sprintf("%.3f\t%.3f\t%.3f", q.P50, q.P99, q.P999) }

func breakerText(state string) string {
	if state == "" {
		return "-"
	}
	return state
}
