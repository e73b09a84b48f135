package proxy

import (
	"net/netip"
	"sort"
	"time"

	"tailguard/metrics"
	"tailguard/proxy/internal/cause"
	"tailguard/resilience"
)

// Table is the routing table built from one config. It is immutable: a new
// config builds a new Table, which the Server swaps in atomically, and a
// request keeps the *Route it matched until it ends. Match allocates
// nothing.
type Table struct {
	byHost  map[string]*hostRoutes // lower-case host without port
	anyHost hostRoutes             // routes without a host
	routes  []*Route               // config order
	// upstreams owns the connection pools the routes use.
	upstreams map[string]*Upstream
	// hedgeWorkers bounds the goroutines hedged routes may keep busy.
	hedgeWorkers int
}

// Route is one configured route at run time: its match, its upstream, and
// the policies built for it from config. A nil policy is off.
type Route struct {
	policies routePolicies // what its policies were built from; see carry.go
	name     string
	methods  []string // empty: any
	upstream *Upstream
	timeout  time.Duration // whole request; 0: none
	maxBody  int64         // request body limit; < 0: none
	errors   *cause.Bodies
	// perTry bounds one attempt; 0: only the request's deadline.
	perTry time.Duration
	// retry and hedge decide extra attempts; budget bounds them together.
	// In shadow mode (retryShadow, hedgeShadow) they decide and count, and
	// nothing extra is sent.
	retry                    *resilience.Retry
	hedge                    *resilience.Hedge
	budget                   *resilience.Budget
	retryShadow, hedgeShadow bool
	// admission is the route's concurrency limit and wait queue; fairBy
	// its client key when it is fair (shed.fair_by).
	admission *resilience.Admission
	fairBy    clientKey
	shed      shedAnswer
	// rateLimit is the route's per-client rate limit; nil: none.
	rateLimit *rateLimit
	// priorityHeader names the request header carrying a priority;
	// priorityDefault applies without one.
	priorityHeader  string
	priorityDefault resilience.Priority
	serverTiming    bool
	// bufferRequests and bufferResponses are routes[].buffering.
	bufferRequests, bufferResponses bool
	// websocket lets WebSocket upgrades through (routes[].upgrades).
	websocket bool
	metrics   *metrics.Route
	// trustedProxies are the peers whose X-Forwarded-Proto and -Host are
	// kept (config trusted_proxies); requestHeaders and responseHeaders
	// are the route's header rules (nil: none).
	trustedProxies                  []netip.Prefix
	requestHeaders, responseHeaders *headerRules
	// deadlineHeader carries the remaining deadline, in milliseconds, both
	// ways: from a client that has one, to the upstream on every attempt.
	deadlineHeader string
}

// shedAnswer is how a route refuses a request it sheds.
type shedAnswer struct {
	status     int    // 503, or 429 where the route asks for it
	retryAfter []byte // seconds, for Retry-After
}

type hostRoutes struct {
	prefixes []prefixRoutes // longest prefix first
}

type prefixRoutes struct {
	prefix string
	routes []*Route // config order; the first whose methods match wins
}

// maxHostLen bounds hosts looked up in byHost (DNS names are at most 253).
const maxHostLen = 255

// Match returns the route for a request, or nil: first among routes for
// the request's host, then among routes for any host; within each, the
// longest path prefix, then the first route whose methods include the
// request's.
func (t *Table) Match(host, path, method []byte) *Route {
	host = stripPort(host)
	if len(t.byHost) > 0 && len(host) <= maxHostLen {
		var buf [maxHostLen]byte
		lower := buf[:len(host)]
		for i, c := range host {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
		if hr := t.byHost[string(lower)]; hr != nil {
			if r := hr.match(path, method); r != nil {
				return r
			}
		}
	}
	return t.anyHost.match(path, method)
}

func (h *hostRoutes) match(path, method []byte) *Route {
	for i := range h.prefixes {
		p := &h.prefixes[i]
		if len(path) < len(p.prefix) || string(path[:len(p.prefix)]) != p.prefix {
			continue
		}
		for _, r := range p.routes {
			if r.allows(method) {
				return r
			}
		}
	}
	return nil
}

func (r *Route) allows(method []byte) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, m := range r.methods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// add files r under its host and prefix, keeping prefixes longest first.
func (h *hostRoutes) add(prefix string, r *Route) {
	for i := range h.prefixes {
		if h.prefixes[i].prefix == prefix {
			h.prefixes[i].routes = append(h.prefixes[i].routes, r)
			return
		}
	}
	h.prefixes = append(h.prefixes, prefixRoutes{prefix: prefix, routes: []*Route{r}})
	sort.SliceStable(h.prefixes, func(i, j int) bool {
		return len(h.prefixes[i].prefix) > len(h.prefixes[j].prefix)
	})
}

// stripPort removes a trailing ":port" from a Host value, and the
// brackets of an IPv6 literal ("[::1]:8000" is "::1").
func stripPort(host []byte) []byte {
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			host = host[:i]
			break
		}
		if host[i] < '0' || host[i] > '9' {
			break
		}
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		return host[1 : len(host)-1]
	}
	return host
}
