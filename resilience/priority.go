package resilience

// A Priority says which requests an Admission refuses first when a route
// is overloaded: Sheddable before Default before Critical. The zero value
// is Default, so a request without a priority is an ordinary one; a value
// outside the three is treated as Default too.
type Priority uint8

const (
	// Default is an ordinary request, and the zero value.
	Default Priority = iota
	// Critical requests are served first from the queue and may take the
	// queue place of a waiting lower-priority request; they are refused
	// last.
	Critical
	// Sheddable requests (prefetches, batch work, retries by clients that
	// can wait) are refused first: they may not queue once the queue is
	// half full or the route is overloaded, and a higher-priority arrival
	// may take their queue place.
	Sheddable

	// numPriorities sizes arrays indexed by Priority.
	numPriorities = 3
)

// priorityRank orders priorities for service: rank 0 is served first.
var priorityRank = [numPriorities]uint8{Default: 1, Critical: 0, Sheddable: 2}

// priorityByRank is priorityRank's inverse.
var priorityByRank = [numPriorities]Priority{Critical, Default, Sheddable}

// valid returns p, or Default if p is not a known priority.
func (p Priority) valid() Priority {
	if p >= numPriorities {
		return Default
	}
	return p
}

// String returns "critical", "default" or "sheddable", the names the
// priority header, the config and metric labels use.
func (p Priority) String() string {
	switch p.valid() {
	case Critical:
		return "critical"
	case Sheddable:
		return "sheddable"
	}
	return "default"
}

// ParsePriority reads a priority header value: "critical", "default" or
// "sheddable" in any case, without surrounding spaces (fasthttp trims
// them). ok is false for anything else, in which case the route's default
// applies. It allocates nothing.
func ParsePriority(v []byte) (p Priority, ok bool) {
	for _, p := range priorityByRank {
		if asciiEqualFold(v, p.String()) {
			return p, true
		}
	}
	return Default, false
}

// asciiEqualFold reports whether b equals the lower-case ASCII word s,
// ignoring the case of b.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
