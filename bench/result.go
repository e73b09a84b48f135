package bench

import (
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxLatency is the longest latency a histogram tracks; longer ones are
// recorded as this.
const maxLatency = 10 * time.Minute

// newHistogram returns a latency histogram in microseconds, 3
// significant digits.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatency.Microseconds(), 3)
}

// Result is what a run measured. Latencies are in microseconds, from each
// request's intended start in open loop and from its send in closed loop.
// A Result is not safe for concurrent use.
type Result struct {
	// Latency holds every request, answered or failed.
	Latency *hdrhistogram.Histogram
	// Classes holds each outcome's latencies separately, keyed by class:
	// the status ("200"), the status and tailguard's X-Tailguard-Error
	// ("503 shed", "503 breaker_open", "504 timeout"), or "error KIND"
	// for a request that got no response (KIND: timeout, reset, refused,
	// other).
	Classes map[string]*hdrhistogram.Histogram
	// Calls is the backend calls made: requests × fan-out.
	Calls int64
	// Elapsed is the run's wall time, from the first intended start to
	// the last answer.
	Elapsed time.Duration
}

func newResult() *Result {
	return &Result{Latency: newHistogram(), Classes: map[string]*hdrhistogram.Histogram{}}
}

// record adds one request's outcome.
func (r *Result) record(class string, lat time.Duration, calls int) {
	v := min(max(lat.Microseconds(), 1), maxLatency.Microseconds())
	_ = r.Latency.RecordValue(v)
	h := r.Classes[class]
	if h == nil {
		h = newHistogram()
		r.Classes[class] = h
	}
	_ = h.RecordValue(v)
	r.Calls += int64(calls)
}

// add merges o into r.
func (r *Result) add(o *Result) {
	r.Latency.Merge(o.Latency)
	for c, h := range o.Classes {
		if r.Classes[c] == nil {
			r.Classes[c] = newHistogram()
		}
		r.Classes[c].Merge(h)
	}
	r.Calls += o.Calls
	r.Elapsed += o.Elapsed
}

// Count is the number of requests completed (answered or failed).
func (r *Result) Count() int64 { return r.Latency.TotalCount() }

// Quantile is the latency at q (0 < q <= 1) over all requests.
func (r *Result) Quantile(q float64) time.Duration { return quantile(r.Latency, q) }

func quantile(h *hdrhistogram.Histogram, q float64) time.Duration {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.Max()) * time.Microsecond
	}
	return time.Duration(h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Of merges the classes match accepts: Of(Is2xx) is the latency of the
// requests that succeeded. It is never nil.
func (r *Result) Of(match func(class string) bool) *hdrhistogram.Histogram {
	h := newHistogram()
	for c, ch := range r.Classes {
		if match(c) {
			h.Merge(ch)
		}
	}
	return h
}

// CountOf is the number of requests in the classes match accepts.
func (r *Result) CountOf(match func(class string) bool) int64 {
	var n int64
	for c, h := range r.Classes {
		if match(c) {
			n += h.TotalCount()
		}
	}
	return n
}

// Is2xx matches the classes of successful responses.
func Is2xx(class string) bool { return strings.HasPrefix(class, "2") }

// IsError matches the classes of requests that got no response.
func IsError(class string) bool { return strings.HasPrefix(class, "error ") }

// IsCause returns a matcher for the responses tailguard itself gave with
// X-Tailguard-Error: cause (shed, breaker_open, timeout, …).
func IsCause(cause string) func(string) bool {
	return func(class string) bool { return strings.HasSuffix(class, " "+cause) && !IsError(class) }
}

// IsStatus returns a matcher for one status code, whatever its cause.
func IsStatus(code int) func(string) bool {
	p := strconv.Itoa(code)
	return func(class string) bool { return class == p || strings.HasPrefix(class, p+" ") }
}

// classOf names a response's class: its status, and tailguard's cause if
// it gave one.
func classOf(status int, cause []byte) string {
	if len(cause) == 0 {
		return statusText(status)
	}
	return statusText(status) + " " + string(cause)
}

// statusTexts caches the common statuses' class names so that a plain
// response costs no allocation.
var statusTexts = func() []string {
	s := make([]string, 600)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func statusText(status int) string {
	if status >= 0 && status < len(statusTexts) {
		return statusTexts[status]
	}
	return strconv.Itoa(status)
}
