package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Recorded values are whole microseconds in [lowestMicros, highestMicros].
// A value outside is clamped before RecordValue, so the histogram's
// allocating error path never runs: a response slower than an hour is
// recorded as an hour, and anything under a microsecond as 1 µs.
const (
	lowestMicros  = 1
	highestMicros = int64(time.Hour / time.Microsecond)
)

// cacheLine is the padding that keeps data written by different shards off
// one cache line.
const cacheLine = 64

// newHistogram returns an empty histogram of the recorder's geometry.
func newHistogram(digits int) *hdr.Histogram {
	return hdr.New(lowestMicros, highestMicros, digits)
}

// micros converts a duration to a recordable value.
func micros(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), lowestMicros), highestMicros)
}

// A Route is one route's recorder: the value the proxy calls Record on,
// once per request. It keeps its state across config reloads (the
// Registry hands out the same *Route for the same name).
//
// Record is safe for concurrent use and is the only method the hot path
// calls; everything else belongs to the Registry's tick and admin sides.
type Route struct {
	name   string
	digits int
	shards []shard
	mask   uint64
	// latencySLO is the SLO latency in nanoseconds (0: none), read on the
	// hot path to count latency-good requests.
	latencySLO atomic.Int64
	cfg        atomic.Pointer[RouteConfig]

	mu  sync.RWMutex // guards win: the tick writes, the admin reads
	win windows

	// tickSnap is the Snapshot handed to OnTick, reused every tick. It is
	// owned by the goroutine calling Registry.Tick.
	tickSnap *Snapshot

	// tunnels counts the route's upgraded connections (WebSocket): open
	// now, and opened since the process started.
	tunnelsActive atomic.Int64
	tunnelsTotal  atomic.Uint64

	// labels are the route's label pairs in /metrics, shared by every
	// scrape.
	labels routeLabels
}

// TunnelOpened counts a connection the route upgraded (a 101 relayed);
// TunnelClosed must follow when it closes. A tunnel is counted here, not
// as a request's latency: it lasts as long as its two ends want.
func (r *Route) TunnelOpened() {
	r.tunnelsActive.Add(1)
	r.tunnelsTotal.Add(1)
}

// TunnelClosed counts the close of a tunnel TunnelOpened counted.
func (r *Route) TunnelClosed() { r.tunnelsActive.Add(-1) }

// Tunnels returns the route's open tunnels and those opened since start.
func (r *Route) Tunnels() (active int64, total uint64) {
	return r.tunnelsActive.Load(), r.tunnelsTotal.Load()
}

// A shard is one mutex-guarded pair of tallies. Writers record into hot;
// the tick swaps hot and cold under the lock (a pointer swap) and drains
// cold outside it.
type shard struct {
	mu        sync.Mutex
	hot, cold *tally
	// ex are the exemplars recorded since the last tick; the lock guards
	// them, and the tick takes the fresh ones under it.
	ex exemplarSlots
	_  [cacheLine]byte
}

// A tally is what a shard records between two ticks. The shard's lock
// guards the hot tally; the cold one belongs to the tick.
type tally struct {
	h [numMetrics]*hdr.Histogram
	c counters
	_ [cacheLine]byte // tallies of neighbouring shards may be allocated side by side
}

func newRoute(name string, digits, nshards int, born time.Time) *Route {
	rt := &Route{name: name, digits: digits, shards: make([]shard, nshards), mask: uint64(nshards - 1),
		labels: newRouteLabels(name)}
	for i := range rt.shards {
		rt.shards[i].hot = newTally(digits)
		rt.shards[i].cold = newTally(digits)
	}
	rt.win.init(digits, born)
	return rt
}

func newTally(digits int) *tally {
	t := &tally{}
	for m := range t.h {
		t.h[m] = newHistogram(digits)
	}
	return t
}

// Record records one request. It takes one shard lock, chosen by
// shard & (S−1): pass fasthttp's ctx.ConnID(), so requests on one
// connection, which run one after another, share a shard and different
// connections rarely collide. It allocates nothing.
func (rt *Route) Record(shard uint64, s Sample) {
	slo := time.Duration(rt.latencySLO.Load())
	good := slo > 0 && s.Response <= slo
	var v [numMetrics]int64
	sh := &rt.shards[shard&rt.mask]
	sh.mu.Lock()
	sh.hot.record(&s, &v, good)
	if len(s.TraceID)+len(s.RequestID) > 0 {
		sh.ex.keep(&s, &v)
	}
	sh.mu.Unlock()
}

// record adds one sample, and sets v to the values recorded, in
// microseconds. Service is recorded, and not 0 in v, only when an attempt
// was made.
func (t *tally) record(s *Sample, v *[numMetrics]int64, latencyGood bool) {
	v[Queue] = micros(s.Queue)
	v[Response] = micros(s.Response)
	v[Overhead] = micros(s.overhead())
	if s.Service > 0 {
		v[Service] = micros(s.Service)
	}
	for m := range v {
		if v[m] > 0 {
			_ = t.h[m].RecordValue(v[m]) // in range: cannot fail
		}
	}
	t.c.count(s, v, latencyGood)
}

func (t *tally) reset() {
	for _, h := range t.h {
		h.Reset()
	}
	t.c = counters{}
}

// drain moves everything recorded since the last drain into d, and the
// exemplars into ex. Only the tick calls it.
func (rt *Route) drain(d *part, ex *exemplarSlots) {
	for i := range rt.shards {
		sh := &rt.shards[i]
		sh.mu.Lock()
		sh.hot, sh.cold = sh.cold, sh.hot
		if sh.ex.fresh != 0 {
			ex.take(&sh.ex)
		}
		sh.mu.Unlock()
		if sh.cold.c.requests == 0 {
			continue
		}
		d.addTally(sh.cold)
		sh.cold.reset()
	}
}
