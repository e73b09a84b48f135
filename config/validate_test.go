package config

import (
	"strings"
	"testing"
)

func TestShadowing(t *testing.T) {
	tests := []struct {
		name   string
		routes string // flow-style route list items
		want   string // "" for no error
	}{
		{"specific then catch-all is fine",
			"{name: a, upstream: app, match: {methods: [GET]}}, {name: b, upstream: app}", ""},
		{"different methods are fine",
			"{name: a, upstream: app, match: {methods: [GET]}}, {name: b, upstream: app, match: {methods: [POST]}}", ""},
		{"different hosts are fine",
			"{name: a, upstream: app, match: {host: a.example}}, {name: b, upstream: app, match: {host: b.example}}", ""},
		{"different prefixes are fine",
			"{name: a, upstream: app, match: {path_prefix: /a}}, {name: b, upstream: app}", ""},
		{"same method",
			"{name: a, upstream: app, match: {methods: [GET, HEAD]}}, {name: b, upstream: app, match: {methods: [POST, HEAD]}}",
			`routes[1].match: shadowed by routes[0] (same host and path_prefix; it matches "HEAD")`},
		{"host compared without case",
			"{name: a, upstream: app, match: {host: A.example}}, {name: b, upstream: app, match: {host: a.EXAMPLE}}",
			`routes[1].match: shadowed by routes[0] (same host and path_prefix; both match every method)`},
		{"catch-all then specific",
			"{name: a, upstream: app}, {name: b, upstream: app, match: {path_prefix: /, methods: [GET]}}",
			`routes[1].match: shadowed by routes[0] (same host and path_prefix; it matches every method)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(okUpstream+"routes: ["+tt.routes+"]\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestMatchHost(t *testing.T) {
	tests := []struct{ give, want string }{
		{"api.example.com", ""},
		{"API.Example.COM", ""},
		{"10.0.0.1", ""},
		{"::1", ""},
		{"[::1]", ""},
		{"http://a.example", "must be a host name without a scheme"},
		{"a.example/x", "must be a host name without a path"},
		{"a.example:80", "must be a host name without a port (the port is ignored when matching)"},
		{"*.example.com", "must be an exact host name (no wildcards or spaces)"},
		{"a b", "must be an exact host name (no wildcards or spaces)"},
	}
	for _, tt := range tests {
		if got := matchHostProblem(tt.give); got != tt.want {
			t.Errorf("matchHostProblem(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestMethods(t *testing.T) {
	tests := []struct{ give, want string }{
		{"GET", ""},
		{"PROPFIND", ""},
		{"VERSION-CONTROL", ""},
		{"CONNECT", "CONNECT is not supported: tailguard does not tunnel"},
		{"Get", `method "Get" must be upper case: GET`},
		{"", `invalid method "": must be an HTTP method token like GET`},
		{"GE T", `invalid method "GE T": must be an HTTP method token like GET`},
		{"GÉT", `invalid method "GÉT": must be an HTTP method token like GET`},
	}
	for _, tt := range tests {
		if got := methodProblem(tt.give); got != tt.want {
			t.Errorf("methodProblem(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestValidateNilEntriesAndNames(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]*Upstream{"": nil}
	c.Routes = []*Route{nil, {Upstream: ""}}
	want := strings.Join([]string{
		`upstreams."": upstream name is required`,
		`upstreams."": must not be empty: endpoints are required`,
		`routes[0]: must not be empty: name and upstream are required`,
		`routes[1].name: route name is required`,
		`routes[1].upstream: is required`,
		`routes[1].match.path_prefix: must start with /`,
	}, "\n")
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestConcurrencyString(t *testing.T) {
	if got := (Concurrency{N: 8}).String(); got != "8" {
		t.Errorf("String = %q", got)
	}
	if got := (Concurrency{Adaptive: true}).String(); got != "adaptive" {
		t.Errorf("String = %q", got)
	}
}
