package metrics

import (
	"slices"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Exemplars: each latency histogram bucket of /metrics may carry the id
// of a recent request in it, so that a slow bucket in Grafana links to a
// trace (its W3C trace id) or a log line (its X-Request-Id).
//
// Recording one allocates nothing and takes no lock of its own: each
// shard keeps one exemplar per classic bucket of the response time, a
// fixed array overwritten under the shard lock Record already holds. The
// tick copies the slots written since the last tick to the route, stamped
// with the tick's time (so an exemplar's timestamp is at most a tick
// late); a scrape copies the route's. Slots are chosen by the response
// time; the queue and service histograms show the same requests, each in
// the bucket of its own queue or service time (the newest one a bucket
// holds).

// maxExemplarID is the longest id kept, in bytes: a trace id is 32 hex
// digits, a UUID request id 36. A longer id is not kept (cut, it would
// link to nothing).
const maxExemplarID = 48

// Exemplar label names: Grafana links each to its own data source (a
// tracing backend for trace_id, logs for request_id).
const (
	traceIDLabel   = "trace_id"
	requestIDLabel = "request_id"
)

// An exemplar is one request's id and its recorded latencies.
type exemplar struct {
	id      [maxExemplarID]byte
	idLen   uint8
	isTrace bool                 // id is a W3C trace id, else an X-Request-Id
	micros  [Response + 1]uint32 // queue, service, response as recorded; service 0: none
}

// exemplarSlots are one exemplar per classic bucket of the response time
// (the last one for +Inf), and which of them were written since they
// were last taken.
type exemplarSlots struct {
	slot  [len(bucketMicros) + 1]exemplar
	fresh uint32 // bit i: slot i was written
}

// keep records sample s, whose recorded values are v, in the slot of its
// response time, if it has an id that fits. The caller holds the shard
// lock; it allocates nothing.
func (x *exemplarSlots) keep(s *Sample, v *[numMetrics]int64) {
	id, isTrace := s.TraceID, true
	if len(id) == 0 {
		id, isTrace = s.RequestID, false
	}
	if len(id) == 0 || len(id) > maxExemplarID {
		return
	}
	i := classicBucket(v[Response])
	e := &x.slot[i]
	e.idLen = uint8(copy(e.id[:], id))
	e.isTrace = isTrace
	e.micros = [...]uint32{uint32(v[Queue]), uint32(v[Service]), uint32(v[Response])} // ≤ highestMicros < 2^32
	x.fresh |= 1 << i
}

// take moves o's fresh slots to x (a newer one replaces x's) and leaves
// o with none fresh.
func (x *exemplarSlots) take(o *exemplarSlots) {
	for i := range x.slot {
		if o.fresh&(1<<i) != 0 {
			x.slot[i] = o.slot[i]
		}
	}
	x.fresh |= o.fresh
	o.fresh = 0
}

// classicBucket is the index of the classic bucket that counts a value
// of micros: the first bound at or above it, len(bucketMicros) for +Inf.
func classicBucket(micros int64) int {
	i, _ := slices.BinarySearch(bucketMicros[:], micros)
	return i
}

// A stampedExemplar is an exemplar and the tick that took it; a zero
// time: none yet.
type stampedExemplar struct {
	exemplar
	at time.Time
}

// routeExemplars are a route's newest exemplars, one per classic bucket
// of the response time.
type routeExemplars [len(bucketMicros) + 1]stampedExemplar

// add stamps x's fresh slots with the time of the tick that took them and
// keeps them, and leaves x with none fresh.
func (r *routeExemplars) add(x *exemplarSlots, now time.Time) {
	for i := range r {
		if x.fresh&(1<<i) != 0 {
			r[i] = stampedExemplar{exemplar: x.slot[i], at: now}
		}
	}
	x.fresh = 0
}

// forMetric returns, for each classic bucket of metric m, the newest
// exemplar whose m value falls in it, as the exposition carries it; nil
// where none does. An id that is not UTF-8 (an X-Request-Id may be any
// bytes) is left out: the exposition's label values must be.
func (r *routeExemplars) forMetric(m Metric) (out [len(bucketMicros) + 1]*dto.Exemplar) {
	var at [len(bucketMicros) + 1]time.Time
	for i := range r {
		e := &r[i]
		v := int64(e.micros[m])
		id := e.id[:e.idLen]
		if e.at.IsZero() || v == 0 || !utf8.Valid(id) {
			continue
		}
		b := classicBucket(v)
		if out[b] != nil && !e.at.After(at[b]) {
			continue
		}
		label := requestIDLabel
		if e.isTrace {
			label = traceIDLabel
		}
		seconds := float64(v) / 1e6
		out[b] = &dto.Exemplar{
			Label:     []*dto.LabelPair{{Name: &label, Value: new(string(id))}},
			Value:     &seconds,
			Timestamp: timestamppb.New(e.at),
		}
		at[b] = e.at
	}
	return out
}

// TraceparentID returns the trace id of a W3C traceparent header value
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"): a sub-slice
// of it, or nil if the value is not a valid traceparent (wrong length or
// separators, not lowercase hex, an all-zero trace id, version ff). A
// version above 00 may append fields after the flags, as the spec says a
// parser must accept. It allocates nothing, for the proxy's hot path.
func TraceparentID(traceparent []byte) []byte {
	const n = len("00-") + 32 + len("-") + 16 + len("-") + 2
	b := traceparent
	if len(b) < n || b[2] != '-' || b[35] != '-' || b[52] != '-' ||
		!lowerHex(b[:2]) || !lowerHex(b[3:35]) || !lowerHex(b[36:52]) || !lowerHex(b[53:55]) {
		return nil
	}
	if string(b[:2]) == "ff" || (string(b[:2]) == "00" && len(b) != n) || (len(b) > n && b[n] != '-') {
		return nil
	}
	id := b[3:35]
	for _, c := range id {
		if c != '0' {
			return id
		}
	}
	return nil // all zeros: invalid
}

// lowerHex reports whether b is all lowercase hexadecimal digits.
func lowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
