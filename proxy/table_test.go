package proxy

import (
	"testing"

	"tailguard/config"
	"tailguard/metrics"

	"go.uber.org/zap"
)

const tableConfig = `
upstreams:
  app: {endpoints: ["127.0.0.1:1"]}
routes:
  - {name: api-get, match: {host: API.example.com, path_prefix: /api/, methods: [GET, HEAD]}, upstream: app}
  - {name: api-write, match: {host: api.example.com, path_prefix: /api/}, upstream: app}
  - {name: api-v1, match: {host: api.example.com, path_prefix: /api/v1/}, upstream: app}
  - {name: any-api, match: {path_prefix: /api/}, upstream: app}
  - {name: static, match: {path_prefix: /static/, methods: [GET]}, upstream: app}
  - {name: default, match: {path_prefix: /}, upstream: app}
  - {name: v6, match: {host: "::1", path_prefix: /}, upstream: app}
`

func testTable(t testing.TB) *Table {
	t.Helper()
	cfg, err := config.Parse("table.yaml", []byte(tableConfig))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Build(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestMatch(t *testing.T) {
	tbl := testTable(t)
	tests := []struct {
		host, path, method string
		want               string // "" for no route
	}{
		{"api.example.com", "/api/x", "GET", "api-get"},
		{"API.Example.COM:8443", "/api/x", "HEAD", "api-get"},
		{"api.example.com", "/api/x", "POST", "api-write"},
		{"api.example.com", "/api/v1/x", "GET", "api-v1"}, // longest prefix beats method-specific
		{"api.example.com", "/other", "GET", "default"},   // host routes fall back to any-host routes
		{"other.example.com", "/api/x", "DELETE", "any-api"},
		{"", "/api/x", "GET", "any-api"},
		{"x", "/static/a.css", "GET", "static"},
		{"x", "/static/a.css", "POST", "default"},
		{"x", "/", "GET", "default"},
		{"[::1]:8000", "/", "GET", "v6"},
		{"api.example.com.evil", "/api/x", "GET", "any-api"},
	}
	for _, tt := range tests {
		r := tbl.Match([]byte(tt.host), []byte(tt.path), []byte(tt.method))
		got := ""
		if r != nil {
			got = r.name
		}
		if got != tt.want {
			t.Errorf("Match(%q, %q, %q) = %q, want %q", tt.host, tt.path, tt.method, got, tt.want)
		}
	}
}

func TestMatchNoCatchAll(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
upstreams: {app: {endpoints: ["127.0.0.1:1"]}}
routes: [{name: api, match: {path_prefix: /api/}, upstream: app}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Build(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := tbl.Match([]byte("x"), []byte("/ap"), []byte("GET")); r != nil {
		t.Errorf("matched %q", r.name)
	}
}

func TestStripPort(t *testing.T) {
	for give, want := range map[string]string{
		"example.com":     "example.com",
		"example.com:80":  "example.com",
		"[::1]:8000":      "::1",
		"[::1]":           "::1",
		"10.0.0.1:443":    "10.0.0.1",
		"":                "",
		"example.com:":    "example.com",
		"example.com:8a0": "example.com:8a0",
	} {
		if got := string(stripPort([]byte(give))); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", give, got, want)
		}
	}
}
