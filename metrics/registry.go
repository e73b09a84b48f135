package metrics

import (
	"context"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDigits is the histograms' default number of significant digits,
// chosen by measured memory (see the package doc): 2 digits give values
// within 1%, finer than any chart or alert needs.
const DefaultDigits = 2

// Gauges are a route's live state, owned by resilience and read by the
// admin side when it serves /stats or /metrics. Zero values mean the
// feature is off or not built yet.
type Gauges struct {
	// Breaker is the upstream breaker's state: "closed", "open",
	// "half_open", or "" when the route has no breaker.
	Breaker string
	// ConcurrencyLimit is the admission limit; 0 when there is none.
	ConcurrencyLimit int
	// InFlight is the number of requests admitted and not yet finished.
	InFlight int
	// Queued is the number of requests waiting for admission.
	Queued int
	// ShedByPriority counts admission refusals by priority since the
	// route's admission was built (in shadow mode, the refusals it would
	// have made); nil: no admission control.
	ShedByPriority map[string]uint64
	// Fair and RateLimit are the route's per-client-key tables: fair
	// admission's (shed.fair_by) and the rate limit's; nil: none.
	Fair, RateLimit *KeyGauges
}

// RouteConfig is what the registry needs to know about one configured
// route.
type RouteConfig struct {
	// Name identifies the route; state is kept by name across reloads.
	Name string
	// SLO is the route's objectives; nil: none.
	SLO *SLO
	// Gauges returns the route's live state; nil: none. It is called on
	// the admin side only, so it may take locks the hot path does not.
	Gauges func() Gauges
	// OnTick, if not nil, is called by the tick goroutine after each
	// rotation with the route's most recent 10s window (the hedge's live
	// delay reads it). The Snapshot is reused: do not keep it. OnTick must
	// return quickly; it delays every route's next rotation.
	OnTick func(*Snapshot)
}

// RegistryOptions tune a Registry. The zero value is ready for use.
type RegistryOptions struct {
	// Now is the clock; nil: time.Now. Tests inject one and call Tick.
	Now func() time.Time
	// Digits is the histograms' significant digits, 1 to 5; 0:
	// DefaultDigits.
	Digits int
	// Shards is the number of shards per route, rounded up to a power of
	// two; 0: the smallest power of two ≥ GOMAXPROCS.
	Shards int
}

// A Registry holds the recorders of the configured routes and rotates
// their windows. It is safe for concurrent use: the proxy calls Route,
// the tick goroutine calls Tick, the admin reads snapshots, and Configure
// may run at any time.
type Registry struct {
	now     func() time.Time
	digits  int
	nshards int
	start   time.Time

	mu     sync.RWMutex // guards routes and byName
	routes []*Route     // configured, in config order; replaced, never mutated
	byName map[string]*Route

	tickMu  sync.Mutex    // serializes Tick; guards delta and deltaEx
	delta   part          // one tick's records of one route, reused
	deltaEx exemplarSlots // one tick's exemplars of one route

	// server gets the figures outside routes; see SetServerGauges.
	server atomic.Pointer[func() ServerGauges]
}

// NewRegistry returns a Registry with no routes; call Configure.
func NewRegistry(o RegistryOptions) *Registry {
	r := &Registry{now: o.Now, digits: o.Digits, nshards: o.Shards, byName: map[string]*Route{}}
	if r.now == nil {
		r.now = time.Now
	}
	if r.digits == 0 {
		r.digits = DefaultDigits
	}
	r.digits = min(max(r.digits, 1), 5)
	if r.nshards <= 0 {
		r.nshards = runtime.GOMAXPROCS(0)
	}
	r.nshards = 1 << bits.Len(uint(r.nshards-1)) // round up to a power of two
	r.start = r.now()
	r.delta = newPart(r.digits)
	return r
}

// Configure sets the configured routes, in order. It is called at start
// and on every reload: a route keeps its recorder and history by name,
// and a route no longer configured disappears from /stats and /metrics
// (its state is dropped; a *Route still held records into nothing seen).
func (r *Registry) Configure(routes []RouteConfig) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make([]*Route, 0, len(routes))
	byName := make(map[string]*Route, len(routes))
	for _, c := range routes {
		if byName[c.Name] != nil {
			continue // config validation refuses repeated names; keep the first
		}
		rt := r.byName[c.Name]
		if rt == nil {
			rt = newRoute(c.Name, r.digits, r.nshards, now)
		}
		rt.configure(c)
		next = append(next, rt)
		byName[c.Name] = rt
	}
	r.routes, r.byName = next, byName
}

func (rt *Route) configure(c RouteConfig) {
	var latency time.Duration
	if c.SLO != nil {
		latency = c.SLO.Latency
	}
	rt.latencySLO.Store(int64(latency))
	rt.cfg.Store(&c)
}

// Route returns the recorder of a configured route; nil if none has that
// name. The same name gives the same *Route across Configure calls.
func (r *Registry) Route(name string) *Route {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byName[name]
}

// configured returns the configured routes, in order. The slice is never
// mutated.
func (r *Registry) configured() []*Route {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.routes
}

// uptime is the time since the registry was created.
func (r *Registry) uptime() time.Duration { return r.now().Sub(r.start) }

// Run rotates the windows every second until ctx is done. The caller
// starts it on its own goroutine and waits for it to return.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Tick(r.now())
		}
	}
}

// Tick is one rotation at time now: each route's shards are drained into
// the slot of the current second, which feeds 10s, 1m, 5m, 1h and all,
// and each route's OnTick is called. Run calls it every second; calls in
// the same second add to the same slot, and seconds without a call stay
// empty. Ticks are serialized.
func (r *Registry) Tick(now time.Time) {
	r.tickMu.Lock()
	defer r.tickMu.Unlock()
	sec := int64(now.Sub(r.start) / time.Second)
	for _, rt := range r.configured() {
		r.delta.reset()
		rt.drain(&r.delta, &r.deltaEx)
		rt.mu.Lock()
		rt.win.add(sec, now, &r.delta)
		rt.win.ex.add(&r.deltaEx, now)
		rt.mu.Unlock()
		rt.callOnTick()
	}
}

// callOnTick hands the route's last 10 s to its OnTick hook, if any.
func (rt *Route) callOnTick() {
	cfg := rt.cfg.Load()
	if cfg.OnTick == nil {
		return
	}
	if rt.tickSnap == nil {
		rt.tickSnap = newSnapshot(rt.digits, true)
	}
	rt.fill(rt.tickSnap, win10s)
	cfg.OnTick(rt.tickSnap)
}
