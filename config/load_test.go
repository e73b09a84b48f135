package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func dur(d time.Duration) *Duration { v := Duration(d); return &v }
func size(n int64) *ByteSize        { v := ByteSize(n); return &v }

// sameConfig fails t unless got equals want, source locations aside.
func sameConfig(t *testing.T, got, want *Config) {
	t.Helper()
	want.src = got.src
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("config mismatch\ngot:  %s\nwant: %s", g, w)
	}
}

func TestLoadFull(t *testing.T) {
	got, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:         ":8080",
		Admin:          "127.0.0.1:9902",
		AdminToken:     "s3cret-token",
		DeadlineHeader: "X-Deadline-Ms",
		Log:            Log{Level: "debug", Access: "all"},
		Limits: Limits{
			MaxConnections:    5000,
			MaxHeaderBytes:    32 << 10,
			MaxBodyBytes:      1_000_000,
			ReadHeaderTimeout: Duration(5 * time.Second),
			IdleTimeout:       Duration(2 * time.Minute),
			BufferMemory:      64 << 20,
			BufferDisk:        1 << 30,
		},
		Drain: Drain{Delay: 0, Timeout: Duration(20 * time.Second)},
		Upstreams: map[string]*Upstream{
			"app": {
				Endpoints:      []string{"127.0.0.1:8080", "127.0.0.1:8081"},
				Balance:        BalanceRoundRobin,
				MaxConnections: 256,
				ConnectTimeout: Duration(250 * time.Millisecond),
			},
			"auth": {
				Endpoints:      []string{"auth.internal:9000"},
				Balance:        BalanceP2C,
				MaxConnections: 512,
				ConnectTimeout: Duration(time.Second),
			},
		},
		Routes: []*Route{
			{
				Name:         "api",
				Match:        Match{Host: "api.example.com", PathPrefix: "/api/", Methods: []string{"GET", "HEAD"}},
				Upstream:     "app",
				Timeout:      dur(2 * time.Second),
				MaxBodyBytes: size(0),
			},
			{Name: "events", Match: Match{PathPrefix: "/events"}, Upstream: "app", Timeout: dur(0)},
			{
				Name:         "login",
				Match:        Match{PathPrefix: "/login", Methods: []string{"POST"}},
				Upstream:     "auth",
				Timeout:      dur(30 * time.Second),
				MaxBodyBytes: size(64 << 10),
			},
			{Name: "default", Match: Match{PathPrefix: "/"}, Upstream: "app", Timeout: dur(30 * time.Second)},
		},
	}
	sameConfig(t, got, want)
	if got.File() != "testdata/full.yaml" {
		t.Errorf("File() = %q", got.File())
	}
}

func TestLoadMinimalGetsDefaults(t *testing.T) {
	got, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Upstreams = map[string]*Upstream{"app": {
		Endpoints: []string{"127.0.0.1:8080"}, Balance: BalanceP2C,
		MaxConnections: 512, ConnectTimeout: Duration(time.Second),
	}}
	want.Routes = []*Route{{Name: "default", Match: Match{PathPrefix: "/"}, Upstream: "app", Timeout: dur(30 * time.Second)}}
	sameConfig(t, got, want)
}

func TestDefault(t *testing.T) {
	want := &Config{
		Listen:         ":8000",
		Admin:          "127.0.0.1:9901",
		DeadlineHeader: "X-Request-Timeout-Ms",
		Log:            Log{Level: "info", Access: "errors"},
		Limits: Limits{
			MaxConnections:    10000,
			MaxHeaderBytes:    16 << 10,
			MaxBodyBytes:      10 << 20,
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(90 * time.Second),
			BufferMemory:      64 << 20,
			BufferDisk:        1 << 30,
		},
		Drain: Drain{Delay: Duration(5 * time.Second), Timeout: Duration(30 * time.Second)},
	}
	sameConfig(t, Default(), want)
}

// TestDesignExample checks that DESIGN.md's example, which sets every
// key, parses and validates cleanly, and that its policies come through
// as written.
func TestDesignExample(t *testing.T) {
	c, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadlineHeader != "X-Request-Timeout-Ms" {
		t.Errorf("deadline_header = %q, want the default", c.DeadlineHeader)
	}
	wantUpstream := &Upstream{
		Endpoints:      []string{"127.0.0.1:8080"},
		Balance:        BalanceP2C,
		MaxConnections: 512,
		ConnectTimeout: Duration(time.Second),
		Breaker: &Breaker{
			ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Interval: Duration(10 * time.Second), OpenTimeout: Duration(5 * time.Second), HalfOpenRequests: 3,
		},
		Outlier:     &Outlier{Consecutive5xx: 5, EjectionTime: Duration(30 * time.Second), MaxEjectedPercent: 50},
		HealthCheck: &HealthCheck{Path: "/healthz", Interval: Duration(5 * time.Second), Timeout: Duration(time.Second)},
	}
	if got := c.Upstreams["app"]; !reflect.DeepEqual(got, wantUpstream) {
		t.Errorf("upstreams.app:\ngot  %+v\nwant %+v", got, wantUpstream)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("%d routes, want 2", len(c.Routes))
	}
	api := c.Routes[0]
	wantAPI := &Route{
		Name:          "api",
		Match:         Match{PathPrefix: "/api/", Methods: []string{"GET", "HEAD"}},
		Upstream:      "app",
		Timeout:       dur(2 * time.Second),
		PerTryTimeout: ms(500),
		Retry: &Retry{
			Attempts: 2, On: retryOn(t, "connect_failure", "reset", "502", "503"),
			Budget: 0.2, Backoff: ms(25),
		},
		Hedge: &Hedge{
			Delay: HedgeDelay{Percentile: 0.95}, MinDelay: ms(2), MaxDelay: ms(500),
			MaxExtra: 1, Budget: 0.05,
		},
		Shed: &Shed{
			MaxConcurrency: Concurrency{Adaptive: true}, Queue: 128, QueueTimeout: ms(50),
			PriorityHeader: "X-Priority", PriorityDefault: PriorityDefault, Mode: ModeEnforce, Status: 503,
			CoDel: ShedCoDel{ms(5), ms(100)}, Limit: ShedLimit{4, 1000, 20},
		},
		SLO:          &SLO{Latency: ms(200), LatencyTarget: 0.99, Availability: 0.999, Period: Duration(30 * day)},
		ServerTiming: true,
	}
	if !reflect.DeepEqual(api, wantAPI) {
		g, _ := json.MarshalIndent(api, "", "  ")
		w, _ := json.MarshalIndent(wantAPI, "", "  ")
		t.Errorf("routes[0]:\ngot  %s\nwant %s", g, w)
	}
	def := c.Routes[1]
	if def.Retry != nil || def.Hedge != nil || def.Shed != nil || def.SLO != nil || def.ServerTiming || def.PerTryTimeout != 0 {
		t.Errorf("routes[1] has policies it does not set: %+v", def)
	}
}

func TestParseExplicitZeroVersusAbsent(t *testing.T) {
	const give = `
upstreams: {app: {endpoints: ["127.0.0.1:1"]}}
drain: {delay: 0}
routes:
  - {name: zero, upstream: app, timeout: 0, match: {path_prefix: /zero}}
  - {name: absent, upstream: app, match: {path_prefix: /absent}}
  - {name: nulled, upstream: app, timeout: ~}
`
	c, err := Parse("t.yaml", []byte(give))
	if err != nil {
		t.Fatal(err)
	}
	if c.Drain.Delay != 0 || c.Drain.Timeout.D() != 30*time.Second {
		t.Errorf("drain = %+v, want delay 0 kept and timeout defaulted", c.Drain)
	}
	for i, want := range []time.Duration{0, 30 * time.Second, 30 * time.Second} {
		if got := c.Routes[i].Timeout.D(); got != want {
			t.Errorf("routes[%d].timeout = %v, want %v", i, got, want)
		}
	}
}

func TestParseEmptyDocumentIsAllDefaults(t *testing.T) {
	for _, give := range []string{"", "# nothing\n", "---\n", "~\n"} {
		_, err := Parse("t.yaml", []byte(give))
		want := "t.yaml: upstreams: at least one upstream is required\nt.yaml: routes: at least one route is required"
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, want\n%s", give, err, want)
		}
	}
}

func TestParseAliases(t *testing.T) {
	const give = `
upstreams:
  a: &up {endpoints: ["127.0.0.1:1"], max_connections: 7}
  b: *up
routes:
  - {name: a, upstream: a, timeout: &t 0, match: {path_prefix: /a}}
  - {name: b, upstream: b, timeout: *t}
`
	c, err := Parse("t.yaml", []byte(give))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Upstreams["a"], c.Upstreams["b"]) || c.Upstreams["b"].MaxConnections != 7 {
		t.Errorf("aliased upstream = %+v, want a copy of %+v", c.Upstreams["b"], c.Upstreams["a"])
	}
	if *c.Routes[1].Timeout != 0 {
		t.Errorf("aliased explicit timeout 0 became %v", *c.Routes[1].Timeout)
	}
}

func TestParseAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("upstreams: {app: {endpoints: ['127.0.0.1:1']}}\nroutes:\n  - &r {name: r, upstream: app, match: {methods: [")
	b.WriteString(strings.Repeat("GET, ", 400))
	b.WriteString("GET]}}\n")
	for range 400 {
		b.WriteString("  - *r\n")
	}
	_, err := Parse("t.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "document too large") {
		t.Fatalf("err = %v, want document too large", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("err = %v, want %s: ... wrapping fs.ErrNotExist", err, path)
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("t.yaml", make([]byte, maxFileSize+1))
	if err == nil || err.Error() != "t.yaml: file is larger than 1MiB" {
		t.Errorf("err = %v", err)
	}
}
