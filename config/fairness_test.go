package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestFairnessParse(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantShed  *ClientKey
		shedKeys  int
		wantLimit *RateLimit
	}{
		{"fair by client ip", "shed: {max_concurrency: 8, fair_by: client_ip}", &ClientKey{}, 10_000, nil},
		{"fair by header, bounded", "shed: {max_concurrency: 8, fair_by: 'header:X-Tenant', max_keys: 50}",
			&ClientKey{Header: "X-Tenant"}, 50, nil},
		{"rate limit defaults", "rate_limit: {rate: 100}", nil, 0,
			&RateLimit{Rate: 100, MaxKeys: 10_000}},
		{"rate limit, every key", "rate_limit: {rate: 0.5, burst: 3, key: 'header:X-Api-Key', max_keys: 20}", nil, 0,
			&RateLimit{Rate: 0.5, Burst: 3, Key: ClientKey{Header: "X-Api-Key"}, MaxKeys: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			rt := c.Routes[0]
			if rt.Shed != nil && (!reflect.DeepEqual(rt.Shed.FairBy, tt.wantShed) || rt.Shed.MaxKeys != tt.shedKeys) {
				t.Errorf("fair_by %+v max_keys %d, want %+v and %d", rt.Shed.FairBy, rt.Shed.MaxKeys, tt.wantShed, tt.shedKeys)
			}
			if !reflect.DeepEqual(rt.RateLimit, tt.wantLimit) {
				t.Errorf("rate_limit %+v, want %+v", rt.RateLimit, tt.wantLimit)
			}
		})
	}
}

func TestFairnessErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string // every error, in order
	}{
		{"rate limit ranges", "rate_limit: {rate: 0, burst: 0, max_keys: 2000000}", []string{
			`t.yaml:7:24: routes[0].rate_limit.rate: must be from 0.001 to 1e+09 requests per second`,
			`t.yaml:7:34: routes[0].rate_limit.burst: must be from 1 to 1000000`,
			`t.yaml:7:47: routes[0].rate_limit.max_keys: must be from 1 to 1000000`,
		}},
		{"rate missing", "rate_limit: {burst: 5}", []string{
			`t.yaml:7:5: routes[0].rate_limit.rate: must be from 0.001 to 1e+09 requests per second`,
		}},
		{"rate and burst too large", "rate_limit: {rate: 2000000000, burst: 2000000}", []string{
			`t.yaml:7:24: routes[0].rate_limit.rate: must be from 0.001 to 1e+09 requests per second`,
			`t.yaml:7:43: routes[0].rate_limit.burst: must be from 1 to 1000000`,
		}},
		{"max_keys without fair_by", "shed: {max_concurrency: 4, max_keys: 10}", []string{
			`t.yaml:7:42: routes[0].shed.max_keys: applies only with fair_by`,
		}},
		{"fair max_keys range", "shed: {max_concurrency: 4, fair_by: client_ip, max_keys: 0}", []string{
			`t.yaml:7:62: routes[0].shed.max_keys: must be from 1 to 1000000`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if want := strings.Join(tt.want, "\n"); err == nil || err.Error() != want {
				t.Errorf("got:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

// TestClientKeySchemaErrors: a bad key is caught as the file is read, at
// its place.
func TestClientKeySchemaErrors(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"unknown word", "shed: {max_concurrency: 4, fair_by: ip}",
			`t.yaml:7:41: routes[0].shed.fair_by: invalid value "ip": must be client_ip or "header:NAME"`},
		{"bad header name", "rate_limit: {rate: 1, key: 'header:X Key'}",
			`t.yaml:7:32: routes[0].rate_limit.key: invalid header name "X Key" in "header:X Key"`},
		{"empty header name", "rate_limit: {rate: 1, key: 'header:'}",
			`t.yaml:7:32: routes[0].rate_limit.key: invalid header name "" in "header:"`},
		{"a number", "rate_limit: {rate: 1, key: 5}",
			`t.yaml:7:32: routes[0].rate_limit.key: must be client_ip or "header:NAME", got an integer`},
		{"unknown rate limit key", "rate_limit: {rate: 1, period: 1s}",
			`t.yaml:7:27: routes[0].rate_limit.period: unknown key "period"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(withRouteKey(tt.give)))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestClientKeyWords(t *testing.T) {
	for _, k := range []ClientKey{{}, {Header: "X-Tenant"}} {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse("t.yaml", []byte(withRouteKey("rate_limit: {rate: 1, key: "+string(b)+"}")))
		if err != nil {
			t.Fatalf("%s does not read back: %v", b, err)
		}
		if got := c.Routes[0].RateLimit.Key; got != k {
			t.Errorf("%s read back as %+v", b, got)
		}
	}
}

func TestRateLimitBurstOrDefault(t *testing.T) {
	for _, c := range []struct {
		rl   RateLimit
		want int
	}{{RateLimit{Rate: 100}, 100}, {RateLimit{Rate: 0.5}, 1}, {RateLimit{Rate: 2.5}, 3}, {RateLimit{Rate: 10, Burst: 4}, 4},
		{RateLimit{Rate: 1e9}, 1_000_000}} {
		if got := c.rl.BurstOrDefault(); got != c.want {
			t.Errorf("%+v: %d, want %d", c.rl, got, c.want)
		}
	}
}

// TestFairnessCloned: Redacted's copy shares no fairness setting with the
// original.
func TestFairnessCloned(t *testing.T) {
	c, err := Parse("t.yaml", []byte(withRouteKey("shed: {max_concurrency: 4, fair_by: client_ip}\n    rate_limit: {rate: 1}")))
	if err != nil {
		t.Fatal(err)
	}
	cp := c.Redacted()
	cp.Routes[0].Shed.FairBy.Header = "X"
	cp.Routes[0].RateLimit.Rate = 2
	if c.Routes[0].Shed.FairBy.Header != "" || c.Routes[0].RateLimit.Rate != 1 {
		t.Error("the copy shares fairness settings with the original")
	}
}
