package proxy

import (
	"bytes"
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

// clientKey is how a route tells clients apart (config.ClientKey): by
// the client's address, or by a request header's value.
type clientKey struct {
	header string // "": the client's IP address
}

func clientKeyOf(k config.ClientKey) clientKey { return clientKey{header: k.Header} }

// of returns the request's key, without allocating: the header's value
// (nil without one: such requests share a key), or the client's address
// as text. The client is the connection's peer or, when the peer is one of
// the trusted proxies (a load balancer in front, which appends the address
// it saw), the last X-Forwarded-For entry. Only that one hop is trusted:
// behind two proxies, key on a header. A peer's address is written into
// buf[:0], and buf returned as grown; the key is valid until the handler
// returns or buf is written again. The other keys point into the request:
// never append to them.
func (k clientKey) of(ctx *fasthttp.RequestCtx, trusted []netip.Prefix, buf []byte) (key, grown []byte) {
	if k.header != "" {
		return ctx.Request.Header.Peek(k.header), buf
	}
	ip := ctx.RemoteIP()
	if trustedPeer(ip, trusted) {
		if v := lastForwardedFor(&ctx.Request.Header); len(v) > 0 {
			return v, buf
		}
	}
	buf = appendIP(buf[:0], ip)
	return buf, buf
}

// lastForwardedFor is the last entry of the request's X-Forwarded-For
// headers, without spaces; nil if there is none.
func lastForwardedFor(h *fasthttp.RequestHeader) []byte {
	all := h.PeekAll(fasthttp.HeaderXForwardedFor)
	if len(all) == 0 {
		return nil
	}
	v := all[len(all)-1]
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.TrimSpace(v)
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
	var key []byte
	key, x.scratch = rl.key.of(x.ctx, x.route.trustedProxies, x.scratch)
	x.rate = rl.limiter.Allow(key, now)
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
	var key []byte
	key, x.scratch = x.route.fairBy.of(x.ctx, x.route.trustedProxies, x.scratch)
	return key
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
		fair = keyGaugesOf(s)
	}
	if rl := r.rateLimit; rl != nil {
		rate = keyGaugesOf(rl.limiter.Stats(metrics.TopKeys))
	}
	return fair, rate
}

func keyGaugesOf(s resilience.KeyStats) *metrics.KeyGauges {
	return &metrics.KeyGauges{Tracked: s.Tracked, MaxKeys: s.MaxKeys,
		TopAdmitted: keyCounts(s.TopAdmitted), TopRefused: keyCounts(s.TopRefused)}
}

func keyCounts(top []resilience.KeyCount) []metrics.KeyCount {
	out := make([]metrics.KeyCount, len(top))
	for i, c := range top {
		out[i] = metrics.KeyCount{Key: c.Key, Admitted: c.Admitted, Refused: c.Refused}
	}
	return out
}
