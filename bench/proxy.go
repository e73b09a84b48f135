package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Proxy starts tailguard in-process from a complete YAML config (its
// listen and admin are replaced by ephemeral loopback ports, it logs
// warnings only and drains without delay) and returns the bound proxy and
// admin addresses and a stop function that drains it and returns its exit
// error. main supplies it, so bench needs no proxy code.
type Proxy func(ctx context.Context, yaml string) (proxyAddr, adminAddr string, stop func() error, err error)

// proxyConfig is a scenario's tailguard: one upstream "app" and one route
// "default" taking every path, with the policies the arm is about.
type proxyConfig struct {
	endpoints []string
	// upstream and route are YAML flow-style keys added to upstreams.app
	// and to the route, e.g. "breaker: {consecutive_failures: 5}".
	upstream, route []string
}

// yaml renders the config, listening on listen and admin.
func (p proxyConfig) yaml(listen, admin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %q\nadmin: %q\nlog: {level: warn, access: off}\ndrain: {delay: 0s, timeout: 2s}\n", listen, admin)
	fmt.Fprintf(&b, "upstreams:\n  app:\n    endpoints: [%s]\n", quoteAll(p.endpoints))
	for _, k := range p.upstream {
		fmt.Fprintf(&b, "    %s\n", k)
	}
	b.WriteString("routes:\n  - name: default\n    upstream: app\n")
	for _, k := range p.route {
		fmt.Fprintf(&b, "    %s\n", k)
	}
	return b.String()
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// runningProxy is an in-process tailguard.
type runningProxy struct {
	addr, admin string
	stop        func() error
}

// startProxy starts tailguard in-process with p.
func (e *Env) startProxy(ctx context.Context, p proxyConfig) (*runningProxy, error) {
	if e.Proxy == nil {
		return nil, fmt.Errorf("no tailguard to start (Env.Proxy is nil)")
	}
	addr, admin, stop, err := e.Proxy(ctx, p.yaml("127.0.0.1:0", "127.0.0.1:0"))
	if err != nil {
		return nil, fmt.Errorf("start tailguard: %w", err)
	}
	return &runningProxy{addr: addr, admin: admin, stop: stop}, nil
}

func (p *runningProxy) url() string { return "http://" + p.addr + "/" }

// routeStats is the part of tailguard's /stats a scenario reads, for its
// first route (DESIGN.md's shape).
type routeStats struct {
	WindowS          float64 `json:"window_s"`
	Requests         int64   `json:"requests"`
	RPS              float64 `json:"rps"`
	Shed             int64   `json:"shed"`
	Timeouts         int64   `json:"timeouts"`
	BreakerRejects   int64   `json:"breaker_rejects"`
	Breaker          string  `json:"breaker"`
	ConcurrencyLimit int     `json:"concurrency_limit"`
	InFlight         int     `json:"in_flight"`
	Queued           int     `json:"queued"`
	Hedges           struct {
		Sent int64 `json:"sent"`
		Won  int64 `json:"won"`
	} `json:"hedges"`
	LatencyMS struct {
		Queue, Service, Response struct {
			P50  float64 `json:"p50"`
			P99  float64 `json:"p99"`
			P999 float64 `json:"p999"`
		}
	} `json:"latency_ms"`
}

// adminClient reads tailguard's admin port.
var adminClient = &http.Client{Timeout: 2 * time.Second}

// fetchStats reads /stats?window=window from admin and returns its first
// route.
func fetchStats(ctx context.Context, admin, window string) (*routeStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/stats?window="+window, nil)
	if err != nil {
		return nil, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		Routes []routeStats `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("admin /stats: %w", err)
	}
	if len(doc.Routes) == 0 {
		return nil, fmt.Errorf("admin /stats: no routes")
	}
	return &doc.Routes[0], nil
}
