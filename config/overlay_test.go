package config

import (
	"reflect"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"TAILGUARD_UPSTREAM":    "http://127.0.0.1:9000",
		"TAILGUARD_LISTEN":      ":7000",
		"TAILGUARD_ADMIN":       "127.0.0.1:7001",
		"TAILGUARD_ADMIN_TOKEN": "tok",
		"TAILGUARD_LOG_LEVEL":   "debug",
		"OTHER":                 "x",
	}
	got := EnvOverrides(func(k string) string { return env[k] })
	want := Overrides{Upstream: "http://127.0.0.1:9000", Listen: ":7000", Admin: "127.0.0.1:7001", AdminToken: "tok", LogLevel: "debug"}
	if got != want {
		t.Errorf("EnvOverrides = %+v, want %+v", got, want)
	}
}

func TestOverridesPrecedence(t *testing.T) {
	env := Overrides{Listen: ":7000", Admin: "127.0.0.1:7001", LogLevel: "warn"}
	flags := Overrides{Listen: ":6000", Upstream: "http://127.0.0.1:1"}
	got := flags.Over(env)
	want := Overrides{Listen: ":6000", Admin: "127.0.0.1:7001", LogLevel: "warn", Upstream: "http://127.0.0.1:1"}
	if got != want {
		t.Errorf("flags.Over(env) = %+v, want %+v", got, want)
	}

	// defaults < file < environment < flags.
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.Upstreams["app"].Endpoints = nil // only one upstream may be overridden
	delete(c.Upstreams, "auth")
	c.Routes = c.Routes[:2]
	if err := c.Apply(got); err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":6000" || c.Admin != "127.0.0.1:7001" || c.Log.Level != "warn" || c.Log.Access != "all" {
		t.Errorf("after Apply: listen %q admin %q log %+v", c.Listen, c.Admin, c.Log)
	}
	if eps := c.Upstreams["app"].Endpoints; !reflect.DeepEqual(eps, []string{"127.0.0.1:1"}) {
		t.Errorf("endpoints = %v", eps)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		give Overrides
		want string
	}{
		{"upstream with two upstreams", Overrides{Upstream: "http://127.0.0.1:1"},
			"upstream override: the config has 2 upstreams; it can replace only a single one"},
		{"bad listen", Overrides{Listen: "nope"},
			`listen: invalid address "nope": must be host:port (set by flag or environment)`},
		{"bad log level", Overrides{LogLevel: "loud"},
			`log.level: invalid value "loud": must be one of debug, info, warn, error (set by flag or environment)`},
		{"bad token", Overrides{AdminToken: "has space"},
			`admin_token: must be a Bearer token: letters, digits and -._~+/, optionally ending in = (set by flag or environment)`},
		{"listen equals admin", Overrides{Listen: "127.0.0.1:9902"},
			`testdata/full.yaml:5:8: admin: must differ from listen`},
		{"negative drain delay", Overrides{DrainDelay: new(Duration(-time.Second))},
			`drain.delay: must be >= 0 (set by flag or environment)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("testdata/full.yaml")
			if err != nil {
				t.Fatal(err)
			}
			before := c.clone()
			err = c.Apply(tt.give)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Apply = %v, want %s", err, tt.want)
			}
			sameConfig(t, c, before)
		})
	}
}

// TestApplyDrainDelay: a drain delay set in code replaces the file's, zero
// included (zero is a setting, not "unset"), and flags.Over keeps it.
func TestApplyDrainDelay(t *testing.T) {
	for _, give := range []time.Duration{0, 250 * time.Millisecond} {
		c, err := Parse("t.yaml", []byte(okUpstream+okRoute+"drain: {delay: 3s, timeout: 7s}\n"))
		if err != nil {
			t.Fatal(err)
		}
		o := Overrides{Listen: "127.0.0.1:0"}.Over(Overrides{DrainDelay: new(Duration(give))})
		if err := c.Apply(o); err != nil {
			t.Fatalf("Apply(drain delay %v): %v", give, err)
		}
		if c.Drain.Delay.D() != give || c.Drain.Timeout.D() != 7*time.Second || c.Listen != "127.0.0.1:0" {
			t.Errorf("after Apply(drain delay %v): drain %+v, listen %q; want the delay replaced, the timeout and the other override kept", give, c.Drain, c.Listen)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	tests := []struct {
		give, want, wantErr string
		tls                 bool
	}{
		{give: "http://127.0.0.1:8080", want: "127.0.0.1:8080"},
		{give: "http://127.0.0.1:8080/", want: "127.0.0.1:8080"},
		{give: "http://localhost", want: "localhost:80"},
		{give: "http://[::1]:81", want: "[::1]:81"},
		{give: "https://127.0.0.1", want: "127.0.0.1:443", tls: true},
		{give: "https://api.internal:8443/", want: "api.internal:8443", tls: true},
		{give: "ftp://127.0.0.1", wantErr: "upstream override: must be an http:// or https:// URL, like http://127.0.0.1:8080"},
		{give: "127.0.0.1:8080", wantErr: "upstream override: must be an http:// or https:// URL, like http://127.0.0.1:8080"},
		{give: "http://127.0.0.1:8080/app", wantErr: "upstream override: must not have a path: routes send the request path as received"},
		{give: "http://u:secret@127.0.0.1", wantErr: "upstream override: must not contain credentials"},
		{give: "http://127.0.0.1/?a=b", wantErr: "upstream override: must not have a query or fragment"},
		{give: "http://127.0.0.1:0", wantErr: "upstream override: port must be a number from 1 to 65535"},
		{give: "http://:80", wantErr: "upstream override: host is required"},
		{give: "http://a b", wantErr: "upstream override: must be an http:// or https:// URL, like http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		got, isTLS, err := upstreamEndpoint(tt.give)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("upstreamEndpoint(%q) = %q, %v; want error %q", tt.give, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || isTLS != tt.tls {
			t.Errorf("upstreamEndpoint(%q) = %q, %v, %v; want %q, %v", tt.give, got, isTLS, err, tt.want, tt.tls)
		}
	}
}

func TestQuick(t *testing.T) {
	got, err := Quick("http://127.0.0.1:8080", Overrides{Listen: ":9000", LogLevel: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen = ":9000"
	want.Log.Level = "debug"
	want.Upstreams = map[string]*Upstream{"app": {
		Endpoints: []string{"127.0.0.1:8080"}, Balance: BalanceP2C,
		MaxConnections: 512, ConnectTimeout: Duration(time.Second),
	}}
	want.Routes = []*Route{{Name: "default", Match: Match{PathPrefix: "/"}, Upstream: "app", Timeout: dur(30 * time.Second)}}
	sameConfig(t, got, want)
	if got.File() != "" {
		t.Errorf("File() = %q, want empty", got.File())
	}
}

// TestQuickHTTPS: an https:// upstream speaks TLS, verified against the
// system's roots and the endpoint's host, on port 443 by default.
func TestQuickHTTPS(t *testing.T) {
	got, err := Quick("https://api.example", Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	u := got.Upstreams["app"]
	if u.Endpoints[0] != "api.example:443" || u.TLS == nil || *u.TLS != (UpstreamTLS{}) {
		t.Errorf("endpoints %v, tls %+v", u.Endpoints, u.TLS)
	}
}

func TestQuickErrors(t *testing.T) {
	tests := []struct {
		url  string
		o    Overrides
		want string
	}{
		{"", Overrides{}, "upstream override: must be an http:// or https:// URL, like http://127.0.0.1:8080"},
		{"http://127.0.0.1", Overrides{Admin: "x"}, `admin: invalid address "x": must be host:port (set by flag or environment)`},
	}
	for _, tt := range tests {
		c, err := Quick(tt.url, tt.o)
		if c != nil || err == nil || err.Error() != tt.want {
			t.Errorf("Quick(%q, %+v) = %v, %v; want %s", tt.url, tt.o, c, err, tt.want)
		}
	}
}
