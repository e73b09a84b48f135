package resilience

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// State is a breaker's state. Its numbers (0 closed, 1 half-open, 2 open)
// suit a gauge.
type State uint8

const (
	// Closed: requests flow and outcomes are counted.
	Closed State = iota
	// HalfOpen: after OpenTimeout, a few probe requests test the upstream.
	HalfOpen
	// Open: requests are refused at once without reaching the upstream.
	Open
)

// String returns the state's name as /stats and the logs spell it:
// "closed", "half_open" or "open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return "unknown"
}

// DefaultOpenTimeout is how long a breaker stays open when
// BreakerSettings.OpenTimeout is zero.
const DefaultOpenTimeout = 5 * time.Second

// BreakerSettings configures a breaker. Zero fields mean what each says;
// with both triggers zero the breaker never opens.
type BreakerSettings struct {
	// ConsecutiveFailures opens the breaker after that many failures in a
	// row; 0 disables this trigger.
	ConsecutiveFailures uint32
	// FailureRatio, in (0, 1], opens the breaker when that share of the
	// counted outcomes failed, once MinRequests were counted; 0 (or less)
	// disables this trigger.
	FailureRatio float64
	// MinRequests is how many counted outcomes FailureRatio needs; 0 means
	// from the first.
	MinRequests uint32
	// Interval is how often the closed breaker clears its counts (a fixed
	// window); 0 means counts are kept until the state changes.
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through; 0 (or less) means DefaultOpenTimeout.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probes may be in flight while half-open,
	// and how many must succeed in a row to close; 0 means 1.
	HalfOpenRequests uint32
}

// ErrOpen is returned by Breaker.Do when the breaker refused the request:
// it is open, or half-open with all its probes taken. The upstream was
// not contacted; the proxy answers 503 with X-Tailguard-Error:
// breaker_open.
var ErrOpen = errors.New("resilience: circuit breaker open")

// ErrWouldReject is returned by a shadow-mode Breaker's Do when it would
// have refused the request (ErrOpen in enforce mode) and called fn
// anyway: fn's Outcome is returned with it, and was not counted, as
// enforce mode would not have seen it.
var ErrWouldReject = errors.New("resilience: circuit breaker would have refused (shadow mode)")

// Sentinels that carry fn's Outcome through gobreaker's error-based API.
// They never leave Do.
var (
	errBreakerFailure  = errors.New("resilience: breaker: failure")
	errBreakerExcluded = errors.New("resilience: breaker: excluded")
)

// Breaker stops sending to an upstream that keeps failing, then lets a
// few probe requests test it before closing again. One Breaker guards one
// upstream. It wraps sony/gobreaker's CircuitBreaker; Do, Defer and Settle
// allocate nothing. Breaker is safe for concurrent use and must not be
// copied.
type Breaker struct {
	cb    *gobreaker.CircuitBreaker[struct{}]
	state atomic.Uint32 // a State: gobreaker's, as of its last decision
	// epoch counts the state changes, from 1: a Ticket names the state
	// its request was let through in.
	epoch  atomic.Uint64
	shadow atomic.Bool
}

// SetShadow switches the breaker between shadow (true) and enforce mode,
// keeping its state and counts. In shadow mode its state machine runs as
// in enforce mode, on the outcomes enforce mode would have counted, but
// it never refuses: Do calls fn whatever the state and reports
// ErrWouldReject where enforce mode would have refused, and Probing is
// false, so nothing sent changes. Safe for concurrent use; a nil Breaker
// ignores it.
func (b *Breaker) SetShadow(shadow bool) {
	if b != nil {
		b.shadow.Store(shadow)
	}
}

// NewBreaker builds a breaker named name (for logs and onChange). If
// onChange is not nil it is called on every state change, with the
// breaker's lock held: it must be quick and must not call the Breaker.
// Its from→to transitions are closed→open, open→half_open,
// half_open→closed and half_open→open.
func NewBreaker(name string, s BreakerSettings, onChange func(name string, from, to State)) *Breaker {
	b := &Breaker{}
	b.epoch.Store(1)
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: s.HalfOpenRequests,
		Interval:    s.Interval,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: breakerTrip(s),
		// gobreaker's default IsSuccessful (err == nil) counts Success.
		IsExcluded: func(err error) bool {
			return err == errBreakerExcluded
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.state.Store(uint32(breakerState(to)))
			b.epoch.Add(1)
			if onChange != nil {
				onChange(name, breakerState(from), breakerState(to))
			}
		},
	}
	if st.Timeout <= 0 {
		st.Timeout = DefaultOpenTimeout
	}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](st)
	return b
}

// breakerTrip returns gobreaker's ReadyToTrip for s: ConsecutiveFailures
// in a row, or FailureRatio of the counted outcomes once MinRequests were
// counted.
//
// The ratio's denominator is the completed, non-excluded outcomes
// (TotalSuccesses + TotalFailures). gobreaker's Requests − TotalExclusions
// also counts requests still in flight, which would dilute the ratio
// under concurrency: 20 requests started, 1 failed, 19 not yet back would
// read as 5% instead of 100%. The quotient (not a product) is compared so
// that 3 of 10 meets a ratio of 0.3 exactly.
func breakerTrip(s BreakerSettings) func(gobreaker.Counts) bool {
	return func(c gobreaker.Counts) bool {
		if s.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= s.ConsecutiveFailures {
			return true
		}
		counted := uint64(c.TotalSuccesses) + uint64(c.TotalFailures)
		return s.FailureRatio > 0 && counted > 0 && counted >= uint64(s.MinRequests) &&
			float64(c.TotalFailures)/float64(counted) >= s.FailureRatio
	}
}

// Do calls fn unless the breaker refuses (ErrOpen, fn not called, zero
// Outcome), and counts fn's Outcome: Failure against the upstream, Success
// for it, Excluded (or an invalid zero Outcome) for nothing. fn's Outcome
// is returned as is. A panic in fn counts as a failure and is re-raised.
// Do allocates nothing when fn's closure does not escape.
//
// In shadow mode (SetShadow) fn is always called: where Do would refuse,
// it calls fn outside the breaker and returns its Outcome with
// ErrWouldReject.
func (b *Breaker) Do(fn func() Outcome) (Outcome, error) {
	var out Outcome
	_, err := b.cb.Execute(func() (struct{}, error) {
		out = fn()
		return struct{}{}, breakerErr(out)
	})
	if err != nil && err != errBreakerFailure && err != errBreakerExcluded {
		if b.shadow.Load() {
			return fn(), ErrWouldReject
		}
		return 0, ErrOpen
	}
	return out, nil
}

// A Ticket is a request whose outcome Do did not count, to be counted by
// Settle once it is known. It is a value: deferring allocates nothing.
// The zero Ticket defers nothing.
type Ticket struct{ epoch uint64 }

// Defer, called from Do's fn, holds the request's outcome back: fn then
// returns Excluded, so that Do counts nothing, and the caller passes the
// Ticket with the outcome to Settle once it knows it. The proxy defers a
// response whose body still streams from the upstream: it may yet break
// off (issue 16).
//
// gobreaker's own two-step form (TwoStepCircuitBreaker.Allow) allocates
// its callback on every request, and its breaker is a separate one, so
// Do's fn cannot choose it once it sees the response streams; Defer and
// Settle give the same counts on the one CircuitBreaker Do uses.
func (b *Breaker) Defer() Ticket { return Ticket{epoch: b.epoch.Load()} }

// Settle counts out for a request Do let through and fn deferred (t),
// as a request of its own: counted, as gobreaker counts any outcome, only
// if the breaker is still in the state the request was let through in
// (an outcome from before the breaker opened, or closed, counts for
// nothing); while half-open, only if a probe's place is free. In shadow
// mode it counts what enforce mode would have. A zero Ticket is ignored.
func (b *Breaker) Settle(t Ticket, out Outcome) {
	if t.epoch == 0 {
		return
	}
	_, _ = b.cb.Execute(func() (struct{}, error) {
		if b.epoch.Load() != t.epoch {
			return struct{}{}, errBreakerExcluded
		}
		return struct{}{}, breakerErr(out)
	})
}

// Shadow reports whether the breaker is in shadow mode (SetShadow).
func (b *Breaker) Shadow() bool { return b.shadow.Load() }

// breakerErr maps an Outcome onto what gobreaker counts.
func breakerErr(o Outcome) error {
	switch o {
	case Success:
		return nil
	case Failure:
		return errBreakerFailure
	default:
		return errBreakerExcluded
	}
}

// State returns the breaker's current state, moving an open breaker whose
// OpenTimeout has passed to half-open.
func (b *Breaker) State() State { return breakerState(b.cb.State()) }

// Probing reports whether the breaker was half-open at its last decision;
// called from Do's fn, that is the decision that let this request through.
// The proxy then makes one attempt and no hedges, so that probes are not
// amplified. In shadow mode it is false: the probes are the requests
// enforce mode would have let through, and they go as they would without
// a breaker. It is one or two atomic loads (State takes gobreaker's lock
// and reads the clock).
func (b *Breaker) Probing() bool {
	return State(b.state.Load()) == HalfOpen && !b.shadow.Load()
}

// breakerState maps gobreaker's states onto ours.
func breakerState(s gobreaker.State) State {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}
