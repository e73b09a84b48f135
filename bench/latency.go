package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Distributions a Latency can draw from.
const (
	// Fixed: every request takes Median.
	Fixed = "fixed"
	// Uniform: a request takes a time drawn evenly from [Min, Max].
	Uniform = "uniform"
	// LogNormal: a request takes Median × e^(Sigma × N(0,1)); the shape of
	// most real services' service time, with a long right tail.
	LogNormal = "lognormal"
)

// Latency is an upstream's service-time distribution, plus a share of
// stragglers that take Straggler instead (a GC pause, a cold cache, a
// slow disk): the tail that hedging and per-route percentiles are about.
// The zero value answers at once.
type Latency struct {
	// Dist is Fixed, Uniform or LogNormal; empty means LogNormal when
	// Sigma > 0 and Fixed otherwise.
	Dist string
	// Median is the fixed time, or the log-normal median.
	Median time.Duration
	// Sigma is the log-normal shape (0.3 is a tight service, 1 a wild one).
	Sigma float64
	// Min and Max bound the uniform distribution.
	Min, Max time.Duration
	// StragglerShare, in [0, 1], is the share of requests that take
	// Straggler instead of a draw from the distribution.
	StragglerShare float64
	// Straggler is a straggler's service time.
	Straggler time.Duration
}

// dist is Dist with its default applied.
func (l Latency) dist() string {
	switch {
	case l.Dist != "":
		return l.Dist
	case l.Sigma > 0:
		return LogNormal
	default:
		return Fixed
	}
}

// Validate reports a distribution that cannot be drawn from.
func (l Latency) Validate() error {
	switch {
	case l.dist() != Fixed && l.dist() != Uniform && l.dist() != LogNormal:
		return fmt.Errorf("latency: dist %q: want fixed, uniform or lognormal", l.Dist)
	case l.Median < 0 || l.Min < 0 || l.Straggler < 0 || l.Sigma < 0:
		return fmt.Errorf("latency: times and sigma must be >= 0")
	case l.dist() == Uniform && l.Max < l.Min:
		return fmt.Errorf("latency: uniform max %v < min %v", l.Max, l.Min)
	case l.StragglerShare < 0 || l.StragglerShare > 1:
		return fmt.Errorf("latency: straggler share %v not in [0, 1]", l.StragglerShare)
	}
	return nil
}

// Sample draws one service time from r. It is the upstream's only use of
// the distribution, so tests check it by drawing, without sleeping.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	if l.StragglerShare > 0 && r.Float64() < l.StragglerShare {
		return l.Straggler
	}
	switch l.dist() {
	case Uniform:
		return l.Min + time.Duration(r.Int64N(int64(l.Max-l.Min)+1))
	case LogNormal:
		return time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
	default:
		return l.Median
	}
}

// Mean is the distribution's expected service time, stragglers included:
// with N workers an upstream serves about N / Mean requests a second.
func (l Latency) Mean() time.Duration {
	var m float64
	switch l.dist() {
	case Uniform:
		m = float64(l.Min+l.Max) / 2
	case LogNormal:
		m = float64(l.Median) * math.Exp(l.Sigma*l.Sigma/2)
	default:
		m = float64(l.Median)
	}
	return time.Duration(m*(1-l.StragglerShare) + float64(l.Straggler)*l.StragglerShare)
}

// latencyJSON is Latency on the wire, with durations as Go strings
// ("2ms") so that a person can type them.
type latencyJSON struct {
	Dist           string  `json:"dist,omitempty"`
	Median         string  `json:"median,omitempty"`
	Sigma          float64 `json:"sigma,omitempty"`
	Min            string  `json:"min,omitempty"`
	Max            string  `json:"max,omitempty"`
	StragglerShare float64 `json:"straggler_share,omitempty"`
	Straggler      string  `json:"straggler,omitempty"`
}

// MarshalJSON writes durations as strings like "2ms".
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{
		Dist: l.Dist, Median: durText(l.Median), Sigma: l.Sigma, Min: durText(l.Min), Max: durText(l.Max),
		StragglerShare: l.StragglerShare, Straggler: durText(l.Straggler),
	})
}

// UnmarshalJSON reads what MarshalJSON writes. Absent fields keep their
// values, so a PUT of {"straggler_share": 0} changes only that field.
func (l *Latency) UnmarshalJSON(b []byte) error {
	j := latencyJSON{Dist: l.Dist, Median: durText(l.Median), Sigma: l.Sigma, Min: durText(l.Min),
		Max: durText(l.Max), StragglerShare: l.StragglerShare, Straggler: durText(l.Straggler)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	next := Latency{Dist: j.Dist, Sigma: j.Sigma, StragglerShare: j.StragglerShare}
	for _, f := range []struct {
		dst *time.Duration
		s   string
	}{{&next.Median, j.Median}, {&next.Min, j.Min}, {&next.Max, j.Max}, {&next.Straggler, j.Straggler}} {
		d, err := parseDur(f.s)
		if err != nil {
			return err
		}
		*f.dst = d
	}
	*l = next
	return nil
}

func durText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDur(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("latency: %w", err)
	}
	return d, nil
}
