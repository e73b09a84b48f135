package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ClientKey is what tells one client from another for fair admission
// (shed.fair_by) and rate limits (rate_limit.key): the client's IP
// address, "client_ip", or a request header's value, "header:NAME" (an
// API key, a tenant). The zero value is client_ip.
type ClientKey struct {
	// Header names the request header whose value is the key; "" means
	// the client's IP address: the connection's peer or, behind a peer in
	// trusted_proxies, the last X-Forwarded-For entry.
	Header string
}

// clientIP is ClientKey's word for the client's IP address; headerPrefix
// starts the other form.
const (
	clientIP     = "client_ip"
	headerPrefix = "header:"
)

// String returns the word k is written as: "client_ip" or "header:NAME".
func (k ClientKey) String() string {
	if k.Header == "" {
		return clientIP
	}
	return headerPrefix + k.Header
}

// MarshalJSON writes k as its word.
func (k ClientKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// MarshalYAML writes k as its word.
func (k ClientKey) MarshalYAML() (any, error) { return k.String(), nil }

// UnmarshalYAML reads client_ip or header:NAME, NAME an HTTP header name.
func (k *ClientKey) UnmarshalYAML(n ast.Node) error {
	const want = `must be client_ip or "header:NAME"`
	s, isInt, ok := scalarText(n)
	if !ok || isInt {
		return valueErr(n, want+", got "+describe(n))
	}
	if s == clientIP {
		*k = ClientKey{}
		return nil
	}
	name, isHeader := strings.CutPrefix(s, headerPrefix)
	switch {
	case !isHeader:
		return valueErr(n, fmt.Sprintf("invalid value %q: %s", s, want))
	case !isToken(name):
		return valueErr(n, fmt.Sprintf("invalid header name %q in %q", name, s))
	}
	*k = ClientKey{Header: name}
	return nil
}

// RateLimit limits each client key of a route to a rate, with a burst:
// requests over it are answered 429 rate_limited with Retry-After and the
// IETF RateLimit-Policy and RateLimit headers.
type RateLimit struct {
	// Rate is the requests per second one key may make in the long run;
	// from 0.001 (one in 1,000 s) to 1e9. Required.
	Rate float64 `yaml:"rate" json:"rate"`
	// Burst is how many requests a key that has been quiet may make at
	// once; 1 to 1,000,000. The zero value means Rate rounded up: one
	// second's worth (see BurstOrDefault).
	Burst int `yaml:"burst" json:"burst,omitempty"`
	// Key tells the clients apart. The zero value is client_ip.
	Key ClientKey `yaml:"key" json:"key"`
	// MaxKeys bounds the keys whose state is kept at once; a new key past
	// it takes the place of an idle one, or shares one with the other
	// newcomers. 1 to 1,000,000; default 10,000.
	MaxKeys int `yaml:"max_keys" json:"max_keys"`
}

// Bounds of the per-key tables: the default, and the most a route may
// keep (about 100 bytes a key).
const (
	defaultMaxKeys = 10_000
	maxMaxKeys     = 1_000_000
	// minRate and maxRate bound rate_limit.rate, and maxBurst its burst,
	// so that a client's state fits the limiter's int64 nanoseconds
	// (resilience.MinRate and MaxBurst; config imports no package of
	// tailguard's): above one request per nanosecond is no limit.
	minRate  = 0.001
	maxRate  = 1e9
	maxBurst = 1_000_000
)

func validateRateLimit(r *report, p string, rl *RateLimit) {
	r.check(rl.Rate >= minRate && rl.Rate <= maxRate, p+".rate", "must be from %g to %g requests per second", minRate, maxRate)
	r.check(rl.Burst >= 1 && rl.Burst <= maxBurst || !r.written(p+".burst", rl.Burst != 0), p+".burst",
		"must be from 1 to %d", maxBurst)
	validateMaxKeys(r, p+".max_keys", rl.MaxKeys)
	validateClientKey(r, p+".key", rl.Key)
}

// validateFairBy checks shed.fair_by and shed.max_keys, which applies only
// with it.
func validateFairBy(r *report, p string, s *Shed) {
	if s.FairBy == nil {
		r.check(!r.written(p+".max_keys", s.MaxKeys != 0), p+".max_keys", "applies only with fair_by")
		return
	}
	validateClientKey(r, p+".fair_by", *s.FairBy)
	validateMaxKeys(r, p+".max_keys", s.MaxKeys)
}

func validateMaxKeys(r *report, p string, n int) {
	r.check(n >= 1 && n <= maxMaxKeys, p, "must be from 1 to %d", maxMaxKeys)
}

// validateClientKey checks a ClientKey built in code (a parsed one is
// checked as it is read).
func validateClientKey(r *report, p string, k ClientKey) {
	r.check(k.Header == "" || isToken(k.Header), p, "invalid header name %q", k.Header)
}

// BurstOrDefault is Burst, or for the zero value Rate rounded up (at
// least 1).
func (rl *RateLimit) BurstOrDefault() int {
	if rl.Burst > 0 {
		return rl.Burst
	}
	return max(1, int(math.Ceil(min(rl.Rate, maxBurst))))
}

// rateLimitDefaults fills in a route's rate limit defaults.
func rateLimitDefaults(s *source, p string, rl *RateLimit) {
	setDefault(s, &rl.MaxKeys, p+"max_keys", defaultMaxKeys)
}
