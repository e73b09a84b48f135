package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
	"github.com/prometheus/common/model"
)

// The unit types below implement goccy/go-yaml's NodeUnmarshaler rather than
// BytesUnmarshaler or InterfaceUnmarshaler: the decoder passes errors from
// those two on without a position, while a node lets the error keep its
// token (see valueError), so "FILE:LINE:COL" survives.

// Duration is a time.Duration written as a Go duration string ("2s",
// "500ms") in YAML and JSON, so files and the admin /config output stay
// readable. Days and weeks are accepted as Prometheus writes them ("30d",
// "1w", "1d12h"), and the plain integer 0. Negative values parse;
// Validate rejects them where they make no sense.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

const day = 24 * time.Hour

// String returns d as a Go duration string, e.g. "2s", or in days when it
// is a whole number of them, e.g. "30d".
func (d Duration) String() string {
	if d != 0 && d.D()%day == 0 {
		return strconv.FormatInt(int64(d.D()/day), 10) + "d"
	}
	return time.Duration(d).String()
}

// MarshalJSON writes d as a duration string, e.g. "2s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalYAML writes d as a duration string, e.g. "2s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string or the integer 0.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(n ast.Node) (time.Duration, error) {
	const want = "must be a duration like 2s or 500ms"
	s, isInt, ok := scalarText(n)
	switch {
	case !ok:
		return 0, valueErr(n, want)
	case isInt && isZero(s):
		return 0, nil
	case isInt:
		return 0, valueErr(n, want+" (a number needs a unit)")
	}
	if v, err := time.ParseDuration(s); err == nil {
		return v, nil
	}
	// Prometheus's form adds days, weeks and years ("30d"), which Go's
	// lacks; it takes no fractions or units below milliseconds, which
	// Go's form above already covers.
	v, err := model.ParseDurationAllowNegative(s)
	if err != nil {
		return 0, valueErr(n, fmt.Sprintf("invalid duration %q: %s", s, want))
	}
	return time.Duration(v), nil
}

func isZero(s string) bool {
	v, err := strconv.ParseInt(s, 10, 64)
	return err == nil && v == 0
}

// ByteSize is a number of bytes, written in YAML as a plain integer or with
// a unit: B, KiB, MiB, GiB (1024-based) or KB, MB, GB (1000-based). Units
// are case-sensitive, so "16kib" is an error rather than a guess. It is
// written back as the largest exact binary unit ("16KiB"), else in bytes
// ("1000B"). Negative values parse; Validate rejects them.
type ByteSize int64

// Int64 returns b as a plain number of bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

var binaryUnits = []struct {
	name string
	size int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// String returns b in the largest exact binary unit, e.g. "16KiB", else in
// bytes, e.g. "1000B".
func (b ByteSize) String() string {
	for _, u := range binaryUnits {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalJSON writes b as a string, e.g. "16KiB".
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// MarshalYAML writes b as a string, e.g. "16KiB".
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads an integer or a string with a unit, e.g. "16KiB".
func (b *ByteSize) UnmarshalYAML(n ast.Node) error {
	s, _, ok := scalarText(n)
	if !ok {
		return valueErr(n, "must be a size like 16KiB or 1048576")
	}
	v, msg := parseByteSize(s)
	if msg != "" {
		return valueErr(n, msg)
	}
	*b = v
	return nil
}

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
}

// parseByteSize returns the size s names, or a message saying why it
// names none.
func parseByteSize(s string) (ByteSize, string) {
	digits := strings.TrimPrefix(s, "-")
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(digits)
	}
	num, unit := s[:len(s)-len(digits)+end], strings.TrimSpace(digits[end:])
	mult, known := sizeUnits[unit]
	switch {
	case end == 0 || strings.HasPrefix(unit, "."):
		return 0, fmt.Sprintf("invalid size %q: must be a whole number of bytes, optionally with a unit, like 16KiB", s)
	case !known:
		return 0, fmt.Sprintf("invalid size %q: unknown unit %q (use B, KB, MB, GB, KiB, MiB or GiB)", s, unit)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mult || v < math.MinInt64/mult {
		return 0, fmt.Sprintf("invalid size %q: too large", s)
	}
	return ByteSize(v * mult), ""
}

// HedgeDelay is how long a hedged route waits before sending an extra
// attempt: either a fixed duration or a live percentile of the route's
// service time. In YAML it is a duration ("20ms") or "p90", "p95", "p99".
type HedgeDelay struct {
	// Fixed is the delay when Percentile is zero.
	Fixed time.Duration
	// Percentile, if non-zero, is 0.90, 0.95 or 0.99: the delay follows
	// that percentile of the route's recent service times.
	Percentile float64
}

var hedgePercentiles = map[string]float64{"p90": 0.90, "p95": 0.95, "p99": 0.99}

// String returns "p95" for a percentile delay, else the duration, e.g. "20ms".
func (h HedgeDelay) String() string {
	if h.Percentile == 0 {
		return h.Fixed.String()
	}
	for name, p := range hedgePercentiles {
		if p == h.Percentile {
			return name
		}
	}
	return "p" + strconv.FormatFloat(h.Percentile*100, 'g', -1, 64)
}

// MarshalJSON writes h as in YAML, e.g. "p95" or "20ms".
func (h HedgeDelay) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

// MarshalYAML writes h as it is read, e.g. "p95" or "20ms".
func (h HedgeDelay) MarshalYAML() (any, error) { return h.String(), nil }

// UnmarshalYAML reads a duration or one of p90, p95, p99.
func (h *HedgeDelay) UnmarshalYAML(n ast.Node) error {
	if s, isInt, ok := scalarText(n); ok && !isInt && strings.HasPrefix(s, "p") {
		p, known := hedgePercentiles[s]
		if !known {
			return valueErr(n, fmt.Sprintf("invalid delay %q: must be p90, p95, p99 or a duration like 20ms", s))
		}
		*h = HedgeDelay{Percentile: p}
		return nil
	}
	d, err := parseDuration(n)
	if err != nil {
		return err
	}
	*h = HedgeDelay{Fixed: d}
	return nil
}

// Concurrency is a concurrency limit: a fixed number, or Adaptive, which
// lets the limit follow measured latency. In YAML it is a positive integer
// or "adaptive".
type Concurrency struct {
	// Adaptive, if true, makes the limit adaptive and N unused.
	Adaptive bool
	// N is the fixed limit.
	N int
}

const adaptive = "adaptive"

// String returns "adaptive" or the number.
func (c Concurrency) String() string {
	if c.Adaptive {
		return adaptive
	}
	return strconv.Itoa(c.N)
}

// MarshalJSON writes "adaptive" or the number.
func (c Concurrency) MarshalJSON() ([]byte, error) {
	if c.Adaptive {
		return json.Marshal(adaptive)
	}
	return json.Marshal(c.N)
}

// MarshalYAML writes "adaptive" or the number.
func (c Concurrency) MarshalYAML() (any, error) {
	if c.Adaptive {
		return adaptive, nil
	}
	return c.N, nil
}

// UnmarshalYAML reads an integer or "adaptive".
func (c *Concurrency) UnmarshalYAML(n ast.Node) error {
	const want = `must be a positive integer or "adaptive"`
	s, isInt, ok := scalarText(n)
	switch {
	case ok && !isInt && s == adaptive:
		*c = Concurrency{Adaptive: true}
	case ok && isInt:
		v, err := strconv.Atoi(s)
		if err != nil {
			return valueErr(n, want)
		}
		*c = Concurrency{N: v}
	default:
		return valueErr(n, want)
	}
	return nil
}

// scalarText returns the text of a string node, or of an integer node as
// written; isInt tells which. ok is false for any other node.
func scalarText(n ast.Node) (s string, isInt, ok bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, false, true
	case *ast.IntegerNode:
		return v.Token.Value, true, true
	}
	return "", false, false
}

// valueError is a bad scalar found by an UnmarshalYAML method. It keeps the
// node's token so that the error can still be placed in the file when it
// comes back through the decoder.
type valueError struct {
	tok *token.Token
	msg string
	// sub, if set, is the path of the bad item below the value's own, e.g.
	// "[1]" for a list's second entry; tok is then the item's.
	sub string
}

func (e *valueError) Error() string { return e.msg }

func valueErr(n ast.Node, msg string) error {
	e := &valueError{msg: msg}
	if n != nil {
		e.tok = n.GetToken()
	}
	return e
}

// itemErr is a valueErr for item i of a list.
func itemErr(item ast.Node, i int, msg string) error {
	e := valueErr(item, msg).(*valueError)
	e.sub = "[" + strconv.Itoa(i) + "]"
	return e
}
