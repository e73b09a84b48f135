package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/config"
	"tailguard/metrics"
	"tailguard/proxy/internal/cause"
	"tailguard/resilience"
)

// Per-client fairness on the request path (DESIGN.md, "Fairness"): a
// route's rate limit, checked first, then its fair admission, both keyed
// by a clientKey. The decisions are resilience's (RateLimiter, Admission);
// what is here is the key and the headers.

// clientKey is how a route tells clients apart (config.ClientKey): by the
// connection's peer address, or by a request header's value.
type clientKey struct {
	header string // "": the peer's IP address
}

func clientKeyOf(k config.ClientKey) clientKey { return clientKey{header: k.Header} }

// of returns the request's key, without allocating: the header's value
// (nil without one: such requests share a key), or the peer's address in
// its 4 or 16 bytes. The bytes are the request's; they are valid until
// the handler returns.
func (k clientKey) of(ctx *fasthttp.RequestCtx) []byte {
	if k.header != "" {
		return ctx.Request.Header.Peek(k.header)
	}
	ip := ctx.RemoteIP()
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// display turns a key as the tables keep it into what /stats shows: an
// address as text, a header's value as it is.
func (k clientKey) display(key string) string {
	if k.header == "" && (len(key) == net.IPv4len || len(key) == net.IPv6len) {
		if a, ok := netip.AddrFromSlice([]byte(key)); ok {
			return a.String()
		}
	}
	return key
}

// rateLimit is a route's per-client rate limit at run time.
type rateLimit struct {
	limiter *resilience.RateLimiter
	key     clientKey
	// policy is the RateLimit-Policy value, and name the policy's name
	// (the route's, quoted), which the RateLimit value repeats.
	policy, name []byte
}

// The IETF rate limit headers (draft-ietf-httpapi-ratelimit-headers).
const (
	headerRateLimitPolicy = "RateLimit-Policy"
	headerRateLimit       = "RateLimit"
)

// newRateLimit builds a route's rate limit from its config; prev, the
// running route of that name (nil if none), lends its limiter, with every
// key's state, when neither the settings nor the key changed.
func newRateLimit(route string, rl *config.RateLimit, s optional[resilience.RateLimitSettings], prev *Route) *rateLimit {
	r := &rateLimit{key: clientKeyOf(rl.Key), name: strconv.AppendQuote(nil, route)}
	if prev != nil && prev.rateLimit != nil && prev.policies.rateLimit == s && prev.rateLimit.key == r.key {
		r.limiter = prev.rateLimit.limiter
	} else {
		r.limiter = resilience.NewRateLimiter(s.v)
	}
	// The quota is the burst, over the time the limit takes to earn it
	// back (whole seconds, as the field's syntax wants, at least 1).
	window := max(ceilSeconds(r.limiter.Window()), 1)
	r.policy = append(append([]byte(nil), r.name...), ";q="...)
	r.policy = strconv.AppendInt(r.policy, int64(r.limiter.Burst()), 10)
	r.policy = append(r.policy, ";w="...)
	r.policy = strconv.AppendInt(r.policy, window, 10)
	return r
}

// rateLimitSettings maps a route's rate limit config to the limiter's
// settings (for routePoliciesOf).
func rateLimitSettings(rl *config.RateLimit) optional[resilience.RateLimitSettings] {
	if rl == nil {
		return optional[resilience.RateLimitSettings]{}
	}
	return some(resilience.RateLimitSettings{Rate: rl.Rate, Burst: rl.BurstOrDefault(), MaxKeys: rl.MaxKeys})
}

// buildFairness sets up the route's rate limit and fair admission key
// from rc; prev is the running route of that name, or nil.
func (r *Route) buildFairness(rc *config.Route, prev *Route) {
	if rc.RateLimit != nil {
		r.rateLimit = newRateLimit(rc.Name, rc.RateLimit, r.policies.rateLimit, prev)
	}
	if rc.Shed != nil && rc.Shed.FairBy != nil {
		r.fairBy = clientKeyOf(*rc.Shed.FairBy)
	}
}

// limitRate checks the request against the route's rate limit at now,
// keeping the decision for the response's headers.
func (x *exchange) limitRate(now time.Time) cause.Cause {
	rl := x.route.rateLimit
	if rl == nil {
		return cause.None
	}
	x.rate = rl.limiter.Allow(rl.key.of(x.ctx), now)
	if !x.rate.Allowed {
		return cause.RateLimited
	}
	return cause.None
}

// fairKey is the request's key for the route's fair admission; nil when
// the admission is not fair (it then ignores the key).
func (x *exchange) fairKey() []byte {
	if !x.route.policies.admission.v.Fair {
		return nil
	}
	return x.route.fairBy.of(x.ctx)
}

// setRateLimitHeaders adds the rate limit headers to the response of a
// request the rate limit decided on, whatever answered it: RateLimit-Policy
// and RateLimit ("name";r=remaining;t=seconds until the full quota is
// back), and on a refusal Retry-After, in whole seconds, at least 1. A
// request refused before the check (a body too large, say) gets none.
func (x *exchange) setRateLimitHeaders() {
	rl := x.route.rateLimit
	if rl == nil || !x.rate.Allowed && x.cause != cause.RateLimited {
		return
	}
	h := &x.ctx.Response.Header
	h.SetBytesV(headerRateLimitPolicy, rl.policy)
	b := append(x.scratch[:0], rl.name...)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(x.rate.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(x.rate.Reset), 10)
	h.SetBytesV(headerRateLimit, b)
	if !x.rate.Allowed {
		b = strconv.AppendInt(b[:0], max(ceilSeconds(x.rate.RetryAfter), 1), 10)
		h.SetBytesV(fasthttp.HeaderRetryAfter, b)
	}
	x.scratch = b
}

// ceilSeconds is d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// keyGauges are the route's per-key tables for /stats and /metrics.
func (r *Route) keyGauges() (fair, rate *metrics.KeyGauges) {
	if s, ok := r.admission.KeyStats(metrics.TopKeys); ok {
		fair = keyGaugesOf(s, r.fairBy)
	}
	if rl := r.rateLimit; rl != nil {
		rate = keyGaugesOf(rl.limiter.Stats(metrics.TopKeys), rl.key)
	}
	return fair, rate
}

func keyGaugesOf(s resilience.KeyStats, k clientKey) *metrics.KeyGauges {
	return &metrics.KeyGauges{Tracked: s.Tracked, MaxKeys: s.MaxKeys,
		TopAdmitted: keyCounts(s.TopAdmitted, k), TopRefused: keyCounts(s.TopRefused, k)}
}

func keyCounts(top []resilience.KeyCount, k clientKey) []metrics.KeyCount {
	out := make([]metrics.KeyCount, len(top))
	for i, c := range top {
		out[i] = metrics.KeyCount{Key: k.display(c.Key), Admitted: c.Admitted, Refused: c.Refused}
	}
	return out
}
