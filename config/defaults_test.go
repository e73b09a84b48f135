package config

import (
	"fmt"
	"strings"
	"testing"
)

// endpoints returns n distinct endpoints as a flow list's items.
func endpoints(n int) string {
	eps := make([]string, n)
	for i := range eps {
		eps[i] = fmt.Sprintf("'127.0.0.1:%d'", 1000+i)
	}
	return strings.Join(eps, ", ")
}

// parseWant parses give and checks the error text: wantErr "" means
// success, and the parsed Config is returned.
func parseWant(t *testing.T, give, wantErr string) *Config {
	t.Helper()
	c, err := Parse("t.yaml", []byte(give))
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case wantErr != "" && (err == nil || err.Error() != wantErr):
		t.Fatalf("got:\n%v\nwant:\n%s", err, wantErr)
	}
	return c
}

func TestDeadlineHeader(t *testing.T) {
	tests := []struct {
		name    string
		give    string // the deadline_header line, or "" for none
		want    string
		wantErr string
	}{
		{"absent: default", "", "X-Request-Timeout-Ms", ""},
		{"null: default", "deadline_header: ~", "X-Request-Timeout-Ms", ""},
		{"explicit", "deadline_header: X-Deadline-Ms", "X-Deadline-Ms", ""},
		{"explicit token characters", "deadline_header: \"x-grpc_timeout.ms~1\"", "x-grpc_timeout.ms~1", ""},
		{"empty: off", `deadline_header: ""`, "", ""},
		{"space", "deadline_header: 'X Deadline'", "",
			`t.yaml:3:18: deadline_header: invalid header name "X Deadline"`},
		{"colon", "deadline_header: X-Deadline:Ms", "",
			`t.yaml:3:18: deadline_header: invalid header name "X-Deadline:Ms"`},
		{"not ASCII", "deadline_header: X-Délai", "",
			`t.yaml:3:18: deadline_header: invalid header name "X-Délai"`},
		{"not a string", "deadline_header: [X-A]", "",
			`t.yaml:3:1: deadline_header: must be a string, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseWant(t, okUpstream+okRoute+tt.give+"\n", tt.wantErr)
			if tt.wantErr == "" && c.DeadlineHeader != tt.want {
				t.Errorf("DeadlineHeader = %q, want %q", c.DeadlineHeader, tt.want)
			}
		})
	}
}

func TestDeadlineHeaderInCode(t *testing.T) {
	c := Default()
	if c.DeadlineHeader != "X-Request-Timeout-Ms" {
		t.Errorf("Default().DeadlineHeader = %q", c.DeadlineHeader)
	}
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: []string{"127.0.0.1:1"}}}
	c.Routes = []*Route{{Name: "r", Upstream: "app"}}
	applyDefaults(c)
	c.DeadlineHeader = "Bad Header"
	if err := c.Validate(); err == nil || err.Error() != `deadline_header: invalid header name "Bad Header"` {
		t.Errorf("Validate = %v", err)
	}
	c.DeadlineHeader = ""
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with deadline_header off = %v", err)
	}
}

func TestBalance(t *testing.T) {
	tests := []struct {
		name    string
		give    string // the balance line, or "" for none
		want    Balance
		wantErr string
	}{
		{"absent: p2c", "", BalanceP2C, ""},
		{"null: p2c", "balance: ~", BalanceP2C, ""},
		{"p2c", "balance: p2c", BalanceP2C, ""},
		{"round_robin", "balance: round_robin", BalanceRoundRobin, ""},
		{"least_request", "balance: least_request", BalanceLeastRequest, ""},
		{"unknown", "balance: random", 0,
			`t.yaml:4:14: upstreams.app.balance: invalid value "random": must be one of p2c, round_robin, least_request`},
		{"empty", "balance: ''", 0,
			`t.yaml:4:14: upstreams.app.balance: invalid value "": must be one of p2c, round_robin, least_request`},
		{"upper case", "balance: P2C", 0,
			`t.yaml:4:14: upstreams.app.balance: invalid value "P2C": must be one of p2c, round_robin, least_request`},
		{"a list", "balance: [p2c]", 0,
			`t.yaml:4:5: upstreams.app.balance: must be one of p2c, round_robin, least_request, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseWant(t, withUpstreamKey(tt.give), tt.wantErr)
			if tt.wantErr == "" && c.Upstreams["app"].Balance != tt.want {
				t.Errorf("Balance = %v, want %v", c.Upstreams["app"].Balance, tt.want)
			}
		})
	}
	// A Config built in code gets the same default.
	c, err := Quick("http://127.0.0.1:1", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Upstreams["app"].Balance; got != BalanceP2C {
		t.Errorf("Quick: Balance = %v, want p2c", got)
	}
}

func TestMaxEndpoints(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{"1", "upstreams:\n  app:\n    endpoints: [" + endpoints(1) + "]\n" + okRoute, ""},
		{"64", "upstreams:\n  app:\n    endpoints: [" + endpoints(64) + "]\n" + okRoute, ""},
		{"65", "upstreams:\n  app:\n    endpoints: [" + endpoints(65) + "]\n" + okRoute,
			`t.yaml:3:5: upstreams.app.endpoints: at most 64 endpoints`},
		{"65 in a block list", "upstreams:\n  app:\n    max_connections: 8\n    endpoints:\n      - " +
			strings.ReplaceAll(endpoints(65), ", ", "\n      - ") + "\n" + okRoute,
			`t.yaml:4:5: upstreams.app.endpoints: at most 64 endpoints`},
		{"65 in the second upstream",
			"upstreams:\n  a: {endpoints: ['127.0.0.1:1']}\n  b:\n    endpoints: [" + endpoints(65) + "]\n" +
				"routes: [{name: a, upstream: a}]\n",
			`t.yaml:4:5: upstreams.b.endpoints: at most 64 endpoints`},
		{"65 with a bad one: both reported",
			"upstreams:\n  app:\n    endpoints: [" + endpoints(64) + ", 'x:0']\n" + okRoute,
			"t.yaml:3:5: upstreams.app.endpoints: at most 64 endpoints\n" +
				`t.yaml:3:1169: upstreams.app.endpoints[64]: invalid endpoint "x:0": port must be a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseWant(t, tt.give, tt.wantErr)
			if tt.wantErr == "" && len(c.Upstreams["app"].Endpoints) == 0 {
				t.Error("no endpoints")
			}
		})
	}
}

func TestMaxEndpointsInCode(t *testing.T) {
	c := Default()
	eps := make([]string, MaxEndpoints+1)
	for i := range eps {
		eps[i] = fmt.Sprintf("10.0.0.%d:80", i+1)
	}
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: eps}}
	c.Routes = []*Route{{Name: "r", Upstream: "app"}}
	applyDefaults(c)
	if err := c.Validate(); err == nil || err.Error() != "upstreams.app.endpoints: at most 64 endpoints" {
		t.Errorf("Validate = %v", err)
	}
	c.Upstreams["app"].Endpoints = eps[:MaxEndpoints]
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with 64 endpoints = %v", err)
	}
}

func TestBudgetDefaults(t *testing.T) {
	tests := []struct {
		name    string
		give    string // the route's policy lines, from line 7
		retry   float64
		hedge   float64
		noRetry bool
		noHedge bool
		wantErr string
	}{
		{name: "retry budget absent: 0.2", give: "retry: {attempts: 2}", retry: 0.2, noHedge: true},
		{name: "retry budget null: 0.2", give: "retry: {attempts: 2, budget: ~}", retry: 0.2, noHedge: true},
		{name: "retry budget 0 stays", give: "retry: {attempts: 2, budget: 0}", retry: 0, noHedge: true},
		{name: "retry budget 0.0 stays", give: "retry: {attempts: 2, budget: 0.0}", retry: 0, noHedge: true},
		{name: "retry budget explicit", give: "retry: {attempts: 3, budget: 0.5}", retry: 0.5, noHedge: true},
		{name: "retry budget 1", give: "retry: {attempts: 3, budget: 1}", retry: 1, noHedge: true},
		{name: "hedge budget absent: 0.05", give: "hedge: {delay: p95}", hedge: 0.05, noRetry: true},
		{name: "hedge budget null: 0.05", give: "hedge: {delay: 20ms, budget: ~}", hedge: 0.05, noRetry: true},
		{name: "hedge budget 0 stays", give: "hedge: {delay: p99, budget: 0}", hedge: 0, noRetry: true},
		{name: "hedge budget explicit", give: "hedge: {delay: p90, budget: 0.1}", hedge: 0.1, noRetry: true},
		{name: "both absent", give: "retry: {attempts: 2}\n    hedge: {delay: p95}", retry: 0.2, hedge: 0.05},
		{name: "both 0", give: "retry: {attempts: 2, budget: 0}\n    hedge: {delay: p95, budget: 0}"},
		{name: "neither policy", give: "timeout: 1s", noRetry: true, noHedge: true},
		{name: "retry budget out of range", give: "retry: {attempts: 2, budget: 1.5}",
			wantErr: `t.yaml:7:34: routes[0].retry.budget: must be from 0 to 1`},
		{name: "hedge budget negative", give: "hedge: {delay: p95, budget: -0.1}",
			wantErr: `t.yaml:7:33: routes[0].hedge.budget: must be from 0 to 1`},
		{name: "retry without attempts", give: "retry: {on: [reset]}",
			wantErr: `t.yaml:7:5: routes[0].retry.attempts: must be from 1 to 10`},
		{name: "retry with 11 attempts", give: "retry: {attempts: 11}",
			wantErr: `t.yaml:7:23: routes[0].retry.attempts: must be from 1 to 10`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseWant(t, withRouteKey(tt.give), tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			r := c.Routes[0]
			switch {
			case tt.noRetry != (r.Retry == nil):
				t.Errorf("retry = %+v, want nil: %v", r.Retry, tt.noRetry)
			case r.Retry != nil && r.Retry.Budget != tt.retry:
				t.Errorf("retry.budget = %v, want %v", r.Retry.Budget, tt.retry)
			}
			switch {
			case tt.noHedge != (r.Hedge == nil):
				t.Errorf("hedge = %+v, want nil: %v", r.Hedge, tt.noHedge)
			case r.Hedge != nil && r.Hedge.Budget != tt.hedge:
				t.Errorf("hedge.budget = %v, want %v", r.Hedge.Budget, tt.hedge)
			}
		})
	}
}

// TestBudgetDefaultsPerRoute checks that each route's budgets are
// defaulted by its own keys.
func TestBudgetDefaultsPerRoute(t *testing.T) {
	give := okUpstream + `routes:
  - {name: a, upstream: app, match: {path_prefix: /a}, retry: {attempts: 2, budget: 0}, hedge: {delay: p95}}
  - {name: b, upstream: app, retry: {attempts: 2}, hedge: {delay: p95, budget: 0}}
`
	c := parseWant(t, give, "")
	got := [][2]float64{
		{c.Routes[0].Retry.Budget, c.Routes[0].Hedge.Budget},
		{c.Routes[1].Retry.Budget, c.Routes[1].Hedge.Budget},
	}
	if want := [][2]float64{{0, 0.05}, {0.2, 0}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("budgets (retry, hedge) per route = %v, want %v", got, want)
	}
}

// TestBudgetDefaultsInCode checks a Config built in code, where a zero
// budget counts as absent.
func TestBudgetDefaultsInCode(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: []string{"127.0.0.1:1"}}}
	c.Routes = []*Route{
		{Name: "a", Upstream: "app", Match: Match{PathPrefix: "/a"},
			Retry: &Retry{Attempts: 2}, Hedge: &Hedge{Delay: HedgeDelay{Percentile: 0.95}}},
		{Name: "b", Upstream: "app", Retry: &Retry{Attempts: 2, Budget: 0.3}, Hedge: &Hedge{Delay: HedgeDelay{Percentile: 0.95}, Budget: 0.01}},
		{Name: "c", Upstream: "app", Match: Match{PathPrefix: "/c"}},
	}
	applyDefaults(c)
	if r := c.Routes[0]; r.Retry.Budget != 0.2 || r.Hedge.Budget != 0.05 {
		t.Errorf("routes[0]: retry.budget %v, hedge.budget %v; want 0.2, 0.05", r.Retry.Budget, r.Hedge.Budget)
	}
	if r := c.Routes[1]; r.Retry.Budget != 0.3 || r.Hedge.Budget != 0.01 {
		t.Errorf("routes[1]: retry.budget %v, hedge.budget %v; want 0.3, 0.01 kept", r.Retry.Budget, r.Hedge.Budget)
	}
	if r := c.Routes[2]; r.Retry != nil || r.Hedge != nil {
		t.Errorf("routes[2] gained policies: retry %+v, hedge %+v", r.Retry, r.Hedge)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

// TestPoliciesParse checks that each policy, once rejected as not
// implemented, parses and validates on its own.
func TestPoliciesParse(t *testing.T) {
	tests := []struct{ name, give string }{
		{"breaker", withUpstreamKey("breaker: {consecutive_failures: 5}")},
		{"outlier", withUpstreamKey("outlier: {consecutive_5xx: 5, ejection_time: 30s}")},
		{"health_check", withUpstreamKey("health_check: {path: /healthz, interval: 5s, timeout: 1s}")},
		{"least_request", withUpstreamKey("balance: least_request")},
		{"per_try_timeout", withRouteKey("per_try_timeout: 500ms")},
		{"retry", withRouteKey("retry: {attempts: 2, on: [reset, 503]}")},
		{"hedge", withRouteKey("hedge: {delay: p95}")},
		{"shed", withRouteKey("shed: {max_concurrency: adaptive}")},
		{"slo", withRouteKey("slo: {availability: 0.999}")},
		{"server_timing", withRouteKey("server_timing: true")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parseWant(t, tt.give, "")
		})
	}
}
