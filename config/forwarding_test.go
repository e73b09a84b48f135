package config

import (
	"strings"
	"testing"
)

// TestForwardingKeys: trusted_proxies parse as networks, header rules
// refuse what tailguard manages itself, and each error names its place.
func TestForwardingKeys(t *testing.T) {
	tests := []struct {
		name string
		give string // YAML after the upstream
		want string // "" for no error
	}{
		{"CIDRs and addresses", "trusted_proxies: [10.0.0.0/8, 192.168.1.7, \"::1\", \"fd00::/8\"]\n" + okRoute, ""},
		{"bad CIDR", "trusted_proxies: [10.0.0.0/33]\n" + okRoute, `t.yaml:2:19: trusted_proxies[0]: invalid CIDR "10.0.0.0/33"`},
		{"not an address", "trusted_proxies: [lb.internal]\n" + okRoute, `invalid CIDR "lb.internal"`},
		{"rules", "routes: [{name: r, upstream: app, request_headers: {set: {X-Env: prod}, remove: [Cookie]}, response_headers: {set: {Strict-Transport-Security: max-age=63072000}, remove: [Server]}}]\n", ""},
		{"set a framing header", "routes: [{name: r, upstream: app, request_headers: {set: {Content-Length: \"0\"}}}]\n",
			"routes[0].request_headers.set.Content-Length: Content-Length is managed by tailguard"},
		{"remove a hop-by-hop header", "routes: [{name: r, upstream: app, response_headers: {remove: [connection]}}]\n",
			"routes[0].response_headers.remove[0]: connection is managed by tailguard"},
		{"set Host", "routes: [{name: r, upstream: app, request_headers: {set: {HOST: x}}}]\n", "HOST is managed by tailguard"},
		{"set Upgrade", "routes: [{name: r, upstream: app, request_headers: {set: {Upgrade: websocket}}}]\n", "Upgrade is managed by tailguard"},
		{"name not a token", "routes: [{name: r, upstream: app, request_headers: {remove: [\"X A\"]}}]\n", `invalid header name "X A"`},
		{"value with a line break", "routes: [{name: r, upstream: app, request_headers: {set: {X-A: \"a\\r\\nX-B: b\"}}}]\n", "invalid header value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(okUpstream+tt.give))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

// TestTrustedProxiesParse: a bare address is a network of one; a CIDR is
// kept masked.
func TestTrustedProxiesParse(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(okUpstream+"trusted_proxies: [10.1.2.3/8, 192.168.1.7, \"::ffff:10.0.0.1\"]\n"+okRoute))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cfg.TrustedProxies {
		got = append(got, c.String())
	}
	if want := "10.0.0.0/8 192.168.1.7/32 10.0.0.1/32"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
