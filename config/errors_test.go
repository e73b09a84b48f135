package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// Fragments of valid YAML to build test files from. Columns in the test
// comments are 1-based, as editors count them.
const (
	okUpstream = "upstreams: {app: {endpoints: ['127.0.0.1:1']}}\n"
	okRoute    = "routes: [{name: a, upstream: app}]\n"
)

// withUpstreamKey returns a file whose upstream "app" has line as its line
// 4 (indented by 4, so a key in it starts at column 5).
func withUpstreamKey(line string) string {
	return "upstreams:\n  app:\n    endpoints: ['127.0.0.1:1']\n    " + line + "\n" + okRoute
}

// withRouteKey returns a file whose only route has line as its line 7
// (indented by 4, so a key in it starts at column 5).
func withRouteKey(line string) string {
	return okUpstream + "\n\nroutes:\n  - name: a\n    upstream: app\n    " + line + "\n"
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string // every error, in order, exactly
	}{
		{"unknown key at top level", "bogus: 1\n" + okUpstream + okRoute,
			[]string{`t.yaml:1:1: bogus: unknown key "bogus"`}},
		{"unknown key quoted in the path", okUpstream + okRoute + "\"a b\": 1\n",
			[]string{`t.yaml:3:1: "a b": unknown key "a b"`}},
		{"odd upstream name quoted in the path", "upstreams: {'a b': {endpoints: ['127.0.0.1:1']}}\n" + "routes: [{name: a, upstream: 'a b'}]\n",
			[]string{`t.yaml:1:13: upstreams."a b": upstream name "a b": use only letters, digits, '_', '.' and '-'`}},
		{"unknown key nested",
			okUpstream + "routes:\n  - {name: a, upstream: app}\n  - name: b\n    upstream: app\n    match:\n      path_prefix: /b\n      bogus: 1\n",
			[]string{`t.yaml:8:7: routes[1].match.bogus: unknown key "bogus"`}},
		{"unknown keys all reported in file order",
			okUpstream + okRoute + "limits: {max_conns: 1}\nlog: {lvl: x}\n",
			[]string{
				`t.yaml:3:10: limits.max_conns: unknown key "max_conns"`,
				`t.yaml:4:7: log.lvl: unknown key "lvl"`,
			}},
		{"wrong type: string for integer", okUpstream + okRoute + "limits: {max_connections: many}\n",
			[]string{`t.yaml:3:27: limits.max_connections: must be an integer, got a string`}},
		{"wrong type: fraction for integer", okUpstream + okRoute + "limits: {max_connections: 1.5}\n",
			[]string{`t.yaml:3:27: limits.max_connections: must be an integer, got a number`}},
		{"wrong type: octal integer", okUpstream + okRoute + "limits: {max_connections: 0100}\n",
			[]string{`t.yaml:3:27: limits.max_connections: must be a plain decimal integer, got 0100`}},
		{"wrong type: list for string", okUpstream + okRoute + "listen: [':80']\n",
			[]string{`t.yaml:3:1: listen: must be a string, got a list`}},
		{"wrong type: boolean for string", okUpstream + okRoute + "admin_token: true\n",
			[]string{`t.yaml:3:14: admin_token: must be a string, got a boolean`}},
		{"wrong type: string for boolean", withRouteKey("server_timing: yes"),
			[]string{`t.yaml:7:20: routes[0].server_timing: must be true or false, got a string`}},
		{"wrong type: scalar for mapping", okUpstream + okRoute + "drain: 5s\n",
			[]string{`t.yaml:3:8: drain: must be a mapping of keys to values, got a string`}},
		{"wrong type: mapping for list", okUpstream + "routes: {name: a}\n",
			[]string{`t.yaml:2:1: routes: must be a list, got a mapping`}},
		{"wrong type: document", "- a\n",
			[]string{`t.yaml:1:1: must be a mapping of keys to values, got a list`}},
		{"tag", okUpstream + okRoute + "listen: !!str 8000\n",
			[]string{`t.yaml:3:9: listen: YAML tags like "!!str" are not supported; quote the value instead`}},
		{"octal where a string belongs", okUpstream + okRoute + "admin_token: 0123\n",
			[]string{`t.yaml:3:14: admin_token: must be a string; quote the number to keep it as written`}},
		{"hex map key", "upstreams: {0x1F: {endpoints: ['127.0.0.1:1']}}\n" + okRoute,
			[]string{`t.yaml:1:13: upstreams: keys must be plain strings`}},
		{"not finite", withRouteKey("retry: {attempts: 1, budget: .inf}"),
			[]string{`t.yaml:7:34: routes[0].retry.budget: must be a plain finite number, got .inf`}},
		{"bad duration", okUpstream + okRoute + "drain: {timeout: soon}\n",
			[]string{`t.yaml:3:18: drain.timeout: invalid duration "soon": must be a duration like 2s or 500ms`}},
		{"bad size", okUpstream + okRoute + "limits:\n  max_body_bytes: 10mb\n",
			[]string{`t.yaml:4:19: limits.max_body_bytes: invalid size "10mb": unknown unit "mb" (use B, KB, MB, GB, KiB, MiB or GiB)`}},
		{"negative timeout", withRouteKey("timeout: -1s"),
			[]string{`t.yaml:7:14: routes[0].timeout: must be >= 0`}},
		{"missing upstream reference", okUpstream + "routes: [{name: a, upstream: x}]\n",
			[]string{`t.yaml:2:30: routes[0].upstream: unknown upstream "x"`}},
		{"missing upstream key", okUpstream + "routes:\n  - name: a\n",
			[]string{`t.yaml:3:5: routes[0].upstream: is required`}},
		{"duplicate route name",
			okUpstream + "routes:\n  - {name: a, upstream: app, match: {path_prefix: /a}}\n  - {name: a, upstream: app}\n",
			[]string{`t.yaml:4:12: routes[1].name: duplicate route name "a" (also routes[0])`}},
		{"shadowed route",
			okUpstream + "routes:\n  - {name: a, upstream: app}\n  - {name: b, upstream: app, match: {methods: [GET]}}\n",
			[]string{`t.yaml:4:30: routes[1].match: shadowed by routes[0] (same host and path_prefix; it matches every method)`}},
		{"bad endpoint",
			"upstreams:\n  app:\n    endpoints: ['http://127.0.0.1:1', '127.0.0.1:0', 'a:1', 'a:1']\n" + okRoute,
			[]string{
				`t.yaml:3:17: upstreams.app.endpoints[0]: invalid endpoint "http://127.0.0.1:1": must be host:port without a scheme`,
				`t.yaml:3:39: upstreams.app.endpoints[1]: invalid endpoint "127.0.0.1:0": port must be a number from 1 to 65535`,
				`t.yaml:3:61: upstreams.app.endpoints[3]: duplicate endpoint "a:1"`,
			}},
		{"bad methods", withRouteKey("match: {methods: [get, CONNECT]}"),
			[]string{
				`t.yaml:7:23: routes[0].match.methods[0]: method "get" must be upper case: GET`,
				`t.yaml:7:28: routes[0].match.methods[1]: CONNECT is not supported: tailguard does not tunnel`,
			}},
		{"bad match host", withRouteKey("match: {host: 'https://a.example'}"),
			[]string{`t.yaml:7:19: routes[0].match.host: invalid host "https://a.example": must be a host name without a scheme`}},
		{"duplicate key", okUpstream + okRoute + "listen: ':1'\nlisten: ':2'\n",
			[]string{`t.yaml:4:1: listen: duplicate key "listen" (first at line 3)`}},
		{"duplicate map key", "upstreams:\n  app: {endpoints: ['127.0.0.1:1']}\n  app: {endpoints: ['127.0.0.1:2']}\n" + okRoute,
			[]string{`t.yaml:3:3: upstreams.app: duplicate key "app" (first at line 2)`}},
		{"syntax error", okUpstream + "routes: [\n",
			[]string{`t.yaml:2:9: invalid YAML: sequence end token ']' not found`}},
		{"second document", okUpstream + okRoute + "---\nlisten: ':1'\n",
			[]string{`t.yaml:4:1: a config file holds one YAML document; remove the second`}},
		{"merge key", okUpstream + okRoute + "<<: {listen: ':1'}\n",
			[]string{`t.yaml:3:1: merge keys (<<) are not supported; repeat the keys or use an alias for the whole value`}},
		{"no upstreams or routes", "listen: ':1'\n",
			[]string{`t.yaml: upstreams: at least one upstream is required`, `t.yaml: routes: at least one route is required`}},
		{"validation errors in file order",
			"upstreams:\n  b: {endpoints: ['x:1'], connect_timeout: 0}\n  a: {endpoints: []}\n" + okRoute + "log: {level: loud}\n",
			[]string{
				`t.yaml:2:44: upstreams.b.connect_timeout: must be > 0`,
				`t.yaml:3:7: upstreams.a.endpoints: at least one endpoint is required`,
				`t.yaml:4:30: routes[0].upstream: unknown upstream "app"`,
				`t.yaml:5:14: log.level: invalid value "loud": must be one of debug, info, warn, error`,
			}},
		{"hedge range checks",
			withRouteKey("hedge: {delay: p95, min_delay: 2s, max_delay: 1s, budget: 2}"),
			[]string{
				`t.yaml:7:36: routes[0].hedge.min_delay: must be <= max_delay (1s)`,
				`t.yaml:7:63: routes[0].hedge.budget: must be from 0 to 1`,
			}},
		// Bad retry.on entries are schema errors: see TestRetryOnErrors.
		{"retry range checks", withRouteKey("retry: {attempts: 0, on: [reset], budget: -1, backoff: -1s}"),
			[]string{
				`t.yaml:7:23: routes[0].retry.attempts: must be from 1 to 10`,
				`t.yaml:7:47: routes[0].retry.budget: must be from 0 to 1`,
				`t.yaml:7:60: routes[0].retry.backoff: must be >= 0`,
			}},
		{"breaker range checks", withUpstreamKey("breaker: {failure_ratio: 0}"),
			[]string{
				`t.yaml:4:5: upstreams.app.breaker: set consecutive_failures or failure_ratio, or the breaker never opens`,
			}},
		{"outlier range checks", withUpstreamKey("outlier: {consecutive_5xx: 0, ejection_time: 0s, max_ejected_percent: 101}"),
			[]string{
				`t.yaml:4:32: upstreams.app.outlier.consecutive_5xx: must be > 0`,
				`t.yaml:4:50: upstreams.app.outlier.ejection_time: must be > 0`,
				`t.yaml:4:75: upstreams.app.outlier.max_ejected_percent: must be from 1 to 100`,
			}},
		{"outlier latency_factor at most 1", withUpstreamKey("outlier: {latency_factor: 1, ejection_time: 1s}"),
			[]string{
				`t.yaml:4:31: upstreams.app.outlier.latency_factor: must be > 1: an endpoint is ejected when its tail latency is at least this many times its peers'`,
			}},
		{"outlier with neither trigger", withUpstreamKey("outlier: {ejection_time: 1s}"),
			[]string{`t.yaml:4:5: upstreams.app.outlier.consecutive_5xx: must be > 0`}},
		{"outlier consecutive_5xx written 0 beside latency_factor", withUpstreamKey("outlier: {consecutive_5xx: 0, latency_factor: 3, ejection_time: 1s}"),
			[]string{`t.yaml:4:32: upstreams.app.outlier.consecutive_5xx: must be > 0`}},
		{"breaker mode", withUpstreamKey("breaker: {consecutive_failures: 1, mode: dry}"),
			[]string{`t.yaml:4:46: upstreams.app.breaker.mode: invalid value "dry": must be one of enforce, shadow`}},
		{"retry mode", withRouteKey("retry: {attempts: 2, mode: off}"),
			[]string{`t.yaml:7:32: routes[0].retry.mode: invalid value "off": must be one of enforce, shadow`}},
		{"health check range checks", withUpstreamKey("health_check: {path: healthz, interval: 1s, timeout: 2s}"),
			[]string{
				`t.yaml:4:26: upstreams.app.health_check.path: must start with /`,
				`t.yaml:4:58: upstreams.app.health_check.timeout: must be <= interval (1s)`,
			}},
		{"slo range checks", withRouteKey("slo: {latency: 200ms, availability: 1}"),
			[]string{
				`t.yaml:7:5: routes[0].slo: set latency and latency_target together`,
				`t.yaml:7:41: routes[0].slo.availability: must be between 0 and 1, exclusive`,
			}},
		{"slo period zero", withRouteKey("slo: {availability: 0.999, period: 0}"),
			[]string{`t.yaml:7:40: routes[0].slo.period: must be a whole number of hours (or days), like 720h or 30d`}},
		{"slo period not whole hours", withRouteKey("slo: {availability: 0.999, period: 90m}"),
			[]string{`t.yaml:7:40: routes[0].slo.period: must be a whole number of hours (or days), like 720h or 30d`}},
		{"slo period negative", withRouteKey("slo: {availability: 0.999, period: -30d}"),
			[]string{`t.yaml:7:40: routes[0].slo.period: must be a whole number of hours (or days), like 720h or 30d`}},
		{"slo period not a duration", withRouteKey("slo: {availability: 0.999, period: monthly}"),
			[]string{`t.yaml:7:40: routes[0].slo.period: invalid duration "monthly": must be a duration like 2s or 500ms`}},
		{"per_try_timeout above timeout", okUpstream + "routes: [{name: a, upstream: app, timeout: 1s, per_try_timeout: 2s}]\n",
			[]string{`t.yaml:2:65: routes[0].per_try_timeout: must be <= timeout (1s)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.give))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("config returned along with an error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				if _, ok := e.(*Error); !ok {
					t.Errorf("%T is not an *Error: %v", e, e)
				}
			}
		})
	}
}

// TestDesignErrorExample reproduces DESIGN's example error line exactly.
func TestDesignErrorExample(t *testing.T) {
	const give = `listen: ":8000"
upstreams:
  app:
    endpoints: ["127.0.0.1:8080"]
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: app
    timeout: 2s
  - name: default
    upstream: app
    timeout: -1s
`
	_, err := Parse("tailguard.yaml", []byte(give))
	const want = "tailguard.yaml:12:14: routes[1].timeout: must be >= 0"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || *e != (Error{File: "tailguard.yaml", Line: 12, Col: 14, Path: "routes[1].timeout", Msg: "must be >= 0"}) {
		t.Errorf("errors.As gave %+v", e)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		give Error
		want string
	}{
		{Error{File: "f", Line: 1, Col: 2, Path: "a.b", Msg: "bad"}, "f:1:2: a.b: bad"},
		{Error{File: "f", Path: "a", Msg: "bad"}, "f: a: bad"},
		{Error{File: "f", Line: 3, Col: 4, Msg: "bad"}, "f:3:4: bad"},
		{Error{Path: "a", Msg: "bad"}, "a: bad"},
		{Error{Line: 3, Col: 4, Msg: "bad"}, "3:4: bad"},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestValidateWithoutSource(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: []string{"127.0.0.1:1"}, Balance: BalanceRoundRobin, MaxConnections: 1, ConnectTimeout: 1}}
	c.Routes = []*Route{{Name: "r", Upstream: "nope", Match: Match{PathPrefix: "/"}}}
	err := c.Validate()
	if err == nil || err.Error() != `routes[0].upstream: unknown upstream "nope"` {
		t.Errorf("err = %v", err)
	}
}

// TestDecoderErrorsArePlacedAndNamed checks the conversion of the YAML
// decoder's own errors: one line, placed, and named by the path recorded
// at that place.
func TestDecoderErrorsArePlacedAndNamed(t *testing.T) {
	const give = "limits:\n  max_connections: 5\n"
	src := newSource("t.yaml")
	body, err := parseDocument(src, []byte(give))
	if err != nil {
		t.Fatal(err)
	}
	if errs := check(src, body); len(errs) > 0 {
		t.Fatal(errs)
	}
	var wrong struct {
		Limits struct {
			MaxConnections []int `yaml:"max_connections"`
		} `yaml:"limits"`
	}
	err = yaml.NodeToValue(body, &wrong)
	if err == nil {
		t.Fatal("decoding an integer into a list succeeded")
	}
	got := yamlError(src, err)
	if got.Line != 2 || got.Col != 20 || got.Path != "limits.max_connections" || strings.Contains(got.Error(), "\n") {
		t.Errorf("got %+v", got)
	}
}

func TestOneLine(t *testing.T) {
	if got, want := oneLine("a\n  b\x1bc\x00\td"), `a b\x1bc\x00 d`; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

// TestLatencyFactorWarning: latency_factor on an upstream of one endpoint
// is valid and does nothing, which validate says.
func TestLatencyFactorWarning(t *testing.T) {
	for _, tt := range []struct {
		endpoints string
		warn      bool
	}{{"['127.0.0.1:1']", true}, {"['127.0.0.1:1', '127.0.0.1:2']", false}} {
		c, err := Parse("t.yaml", []byte("upstreams: {app: {endpoints: "+tt.endpoints+", outlier: {latency_factor: 3, ejection_time: 30s}}}\nroutes: [{name: a, upstream: app}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Join(c.Warnings(), "\n")
		if got := strings.Contains(w, "upstreams.app.outlier.latency_factor: one endpoint has no peers"); got != tt.warn {
			t.Errorf("%s: warnings %q, want the latency_factor one: %v", tt.endpoints, w, tt.warn)
		}
	}
}
