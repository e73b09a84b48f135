package resilience

// An Outcome is how one attempt, or one request, ended, from the
// upstream's point of view. The zero value is invalid so that an
// unclassified result is caught in tests.
type Outcome uint8

const (
	// Success: a response the service meant (1xx–4xx).
	Success Outcome = iota + 1
	// Failure: a 5xx, a timeout, a refused or reset connection, a
	// malformed response. Counts against the breaker and outlier
	// detection; may be retried.
	Failure
	// Excluded: the request never reached the upstream through no fault of
	// its own (client went away, tailguard refused it, the pool was full).
	// Counts for nothing.
	Excluded
)

// Reason says why an attempt failed. Retry.On is a set of reasons plus
// status codes.
type Reason uint8

const (
	// ReasonNone: the attempt got a response (its status says the rest).
	ReasonNone Reason = iota
	// ConnectFailure: the dial was refused or timed out; nothing was sent.
	ConnectFailure
	// Reset: the connection closed or reset before a complete response.
	Reset
	// Timeout: the per-try or route deadline passed.
	Timeout
	// BadResponse: the upstream's response was malformed.
	BadResponse
	// Refused: tailguard did not send the attempt (pool full, client gone).
	Refused
)

// Classify maps an attempt's end to its Outcome: a response by its status
// (5xx fail), no response by its reason.
func Classify(status int, why Reason) Outcome {
	switch why {
	case ReasonNone:
		if status >= 500 {
			return Failure
		}
		return Success
	case Refused:
		return Excluded
	default:
		return Failure
	}
}
