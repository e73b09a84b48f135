package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// The config's words (balance, retry.on, shed.priority_default, mode)
// are read into the types below when the file is parsed, like the units in
// units.go, so that a Config that parsed holds no word proxy.Build could
// fail to understand. Each enumeration's zero value is its default, so a
// Config built in code gets the default by leaving the field out, and
// each is written back as the word it was read from.

// MaxEndpoints is the most endpoints an upstream may have. The balancer,
// outlier detection and health checks keep a set of endpoints as the bits
// of one 64-bit word (resilience.MaxEndpoints); config cannot import
// resilience, so proxy's tests assert that the two agree.
const MaxEndpoints = 64

// Balance is how an upstream picks an endpoint per attempt. The zero value
// is BalanceP2C, the default.
type Balance uint8

const (
	// BalanceP2C ("p2c") is the power of two choices over peak-EWMA
	// latency × outstanding requests.
	BalanceP2C Balance = iota
	// BalanceRoundRobin ("round_robin") takes the endpoints in turn.
	BalanceRoundRobin
	// BalanceLeastRequest ("least_request") prefers the endpoint with the
	// fewest outstanding requests.
	BalanceLeastRequest
)

var balanceWords = []string{BalanceP2C: "p2c", BalanceRoundRobin: "round_robin", BalanceLeastRequest: "least_request"}

// String returns the word b is written as, e.g. "p2c".
func (b Balance) String() string { return wordOf(b, balanceWords, "Balance") }

// MarshalJSON writes b as its word, e.g. "p2c".
func (b Balance) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// MarshalYAML writes b as its word, e.g. "p2c".
func (b Balance) MarshalYAML() (any, error) { return b.String(), nil }

// UnmarshalYAML reads p2c, round_robin or least_request.
func (b *Balance) UnmarshalYAML(n ast.Node) error { return parseWord(n, b, balanceWords) }

// Priority is a request's priority when a route sheds load: sheddable
// requests are refused first, critical ones last. The zero value is
// PriorityDefault.
type Priority uint8

const (
	// PriorityDefault ("default") is an ordinary request.
	PriorityDefault Priority = iota
	// PriorityCritical ("critical") is served first and refused last.
	PriorityCritical
	// PrioritySheddable ("sheddable") is refused first.
	PrioritySheddable
)

var priorityWords = []string{PriorityDefault: "default", PriorityCritical: "critical", PrioritySheddable: "sheddable"}

// String returns the word p is written as, e.g. "default".
func (p Priority) String() string { return wordOf(p, priorityWords, "Priority") }

// MarshalJSON writes p as its word, e.g. "default".
func (p Priority) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// MarshalYAML writes p as its word, e.g. "default".
func (p Priority) MarshalYAML() (any, error) { return p.String(), nil }

// UnmarshalYAML reads default, critical or sheddable.
func (p *Priority) UnmarshalYAML(n ast.Node) error { return parseWord(n, p, priorityWords) }

// Mode says whether a policy acts or only counts what it would do: the
// `mode` key of shed, hedge, retry, breaker and outlier. The zero value
// is ModeEnforce.
type Mode uint8

const (
	// ModeEnforce ("enforce") acts: refuses, hedges, retries, opens,
	// ejects.
	ModeEnforce Mode = iota
	// ModeShadow ("shadow") decides and counts what the policy would
	// have done, and changes nothing in what is sent: for trying a policy
	// on production traffic before enforcing it.
	ModeShadow
)

var modeWords = []string{ModeEnforce: "enforce", ModeShadow: "shadow"}

// String returns the word m is written as, e.g. "enforce".
func (m Mode) String() string { return wordOf(m, modeWords, "Mode") }

// MarshalJSON writes m as its word, e.g. "enforce".
func (m Mode) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// MarshalYAML writes m as its word, e.g. "enforce".
func (m Mode) MarshalYAML() (any, error) { return m.String(), nil }

// UnmarshalYAML reads enforce or shadow.
func (m *Mode) UnmarshalYAML(n ast.Node) error { return parseWord(n, m, modeWords) }

// Switch turns a feature on or off. The zero value is SwitchOn: a Switch
// is used where the feature is on by default.
type Switch uint8

const (
	// SwitchOn ("on", or YAML true).
	SwitchOn Switch = iota
	// SwitchOff ("off", or YAML false).
	SwitchOff
)

var switchWords = []string{SwitchOn: "on", SwitchOff: "off"}

// On reports whether s is on.
func (s Switch) On() bool { return s == SwitchOn }

// String returns the word s is written as, "on" or "off".
func (s Switch) String() string { return wordOf(s, switchWords, "Switch") }

// MarshalJSON writes s as its word.
func (s Switch) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes s as its word.
func (s Switch) MarshalYAML() (any, error) { return s.String(), nil }

// UnmarshalYAML reads on or off, or a YAML boolean: a YAML 1.1 reader
// takes an unquoted on for true, and either spelling means the same.
func (s *Switch) UnmarshalYAML(n ast.Node) error {
	if b, ok := n.(*ast.BoolNode); ok {
		*s = SwitchOff
		if b.Value {
			*s = SwitchOn
		}
		return nil
	}
	return parseWord(n, s, switchWords)
}

// Upgrade is a protocol a route lets a request switch to (the Upgrade
// header). Only WebSocket: h2c is always refused.
type Upgrade uint8

const (
	// UpgradeWebSocket ("websocket"): RFC 6455.
	UpgradeWebSocket Upgrade = iota
)

var upgradeWords = []string{UpgradeWebSocket: "websocket"}

// String returns the word u is written as, e.g. "websocket".
func (u Upgrade) String() string { return wordOf(u, upgradeWords, "Upgrade") }

// MarshalJSON writes u as its word.
func (u Upgrade) MarshalJSON() ([]byte, error) { return json.Marshal(u.String()) }

// MarshalYAML writes u as its word.
func (u Upgrade) MarshalYAML() (any, error) { return u.String(), nil }

// UnmarshalYAML reads websocket.
func (u *Upgrade) UnmarshalYAML(n ast.Node) error { return parseWord(n, u, upgradeWords) }

// known reports whether v names one of words: a value built in code by
// conversion from a number may not, and Validate rejects it.
func known[T ~uint8](v T, words []string) bool { return int(v) < len(words) }

// wordOf returns the word for v, or "Type(n)" for a value with none.
func wordOf[T ~uint8](v T, words []string, typ string) string {
	if !known(v, words) {
		return typ + "(" + strconv.Itoa(int(v)) + ")"
	}
	return words[v]
}

// parseWord sets *v to the value whose word n holds, exactly (words are
// lower case; "Shadow" is an error, not a guess).
func parseWord[T ~uint8](n ast.Node, v *T, words []string) error {
	s, _, ok := scalarText(n)
	if !ok {
		return valueErr(n, fmt.Sprintf("must be one of %s, got %s", strings.Join(words, ", "), describe(n)))
	}
	i := slices.Index(words, s)
	if i < 0 {
		return valueErr(n, fmt.Sprintf("invalid value %q: must be one of %s", s, strings.Join(words, ", ")))
	}
	*v = T(i)
	return nil
}

// RetryReason is a way an attempt can fail without a response that
// retry.on may name. Its zero value is RetryConnectFailure.
type RetryReason uint8

const (
	// RetryConnectFailure ("connect_failure"): the dial failed; nothing
	// was sent.
	RetryConnectFailure RetryReason = iota
	// RetryReset ("reset"): the connection closed before a complete
	// response.
	RetryReset
	// RetryTimeout ("timeout"): the attempt's deadline passed.
	RetryTimeout
)

var retryReasonWords = []string{RetryConnectFailure: "connect_failure", RetryReset: "reset", RetryTimeout: "timeout"}

// String returns the word r is written as, e.g. "reset".
func (r RetryReason) String() string { return wordOf(r, retryReasonWords, "RetryReason") }

// Statuses retry.on may name: 4xx and 5xx.
const (
	retryMinStatus = 400
	retryMaxStatus = 599
)

// RetryOn is the set retry.on names: failure reasons and 4xx/5xx statuses.
// In YAML it is a list of words and three-digit statuses, e.g.
// [connect_failure, reset, "503"]; it is written back in a fixed order,
// reasons first, then statuses in ascending order. The zero value is the
// empty set: nothing is retried. RetryOn is comparable with ==, so a
// reload can tell whether it changed.
type RetryOn struct {
	reasons  uint8     // bit 1<<RetryReason
	statuses [4]uint64 // bit status-400, for 400..599
}

// retryEntryWant says what a retry.on entry may be.
const retryEntryWant = `must be connect_failure, reset, timeout or a 4xx/5xx status like "503"`

// With returns o with entry added: connect_failure, reset, timeout, or a
// 4xx/5xx status written as three digits, such as "503". An entry already
// in o leaves it unchanged. Anything else is an error.
func (o RetryOn) With(entry string) (RetryOn, error) {
	if i := slices.Index(retryReasonWords, entry); i >= 0 {
		o.reasons |= 1 << i
		return o, nil
	}
	status := 0
	for _, c := range []byte(entry) {
		if c < '0' || c > '9' {
			status = -1
			break
		}
		status = status*10 + int(c-'0')
	}
	if len(entry) != 3 || status < retryMinStatus || status > retryMaxStatus {
		return o, fmt.Errorf("invalid value %q: %s", entry, retryEntryWant)
	}
	i := status - retryMinStatus
	o.statuses[i/64] |= 1 << (i % 64)
	return o, nil
}

// Reasons yields the failure reasons in o, in RetryReason order.
func (o RetryOn) Reasons() iter.Seq[RetryReason] {
	return func(yield func(RetryReason) bool) {
		for r := range RetryReason(len(retryReasonWords)) {
			if o.reasons&(1<<r) != 0 && !yield(r) {
				return
			}
		}
	}
}

// Statuses yields the statuses in o, in ascending order.
func (o RetryOn) Statuses() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range retryMaxStatus - retryMinStatus + 1 {
			if o.statuses[i/64]&(1<<(i%64)) != 0 && !yield(retryMinStatus+i) {
				return
			}
		}
	}
}

// Strings returns o's entries as retry.on words, reasons first, then
// statuses in ascending order; never nil.
func (o RetryOn) Strings() []string {
	s := []string{}
	for r := range o.Reasons() {
		s = append(s, r.String())
	}
	for status := range o.Statuses() {
		s = append(s, strconv.Itoa(status))
	}
	return s
}

// String returns o's entries, e.g. "[reset 503]".
func (o RetryOn) String() string { return fmt.Sprint(o.Strings()) }

// MarshalJSON writes o as a list of strings, e.g. ["reset","503"].
func (o RetryOn) MarshalJSON() ([]byte, error) { return json.Marshal(o.Strings()) }

// MarshalYAML writes o as a list of strings, e.g. [reset, "503"].
func (o RetryOn) MarshalYAML() (any, error) { return o.Strings(), nil }

// UnmarshalYAML reads a list of retry.on entries (see With). Every bad or
// repeated entry is reported, each placed at its item, e.g.
// "routes[0].retry.on[1]".
func (o *RetryOn) UnmarshalYAML(n ast.Node) error {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return valueErr(n, "must be a list, got "+describe(n))
	}
	var set RetryOn
	var errs []error
	for i, item := range seq.Values {
		if item = unwrap(item); item == nil {
			continue
		}
		s, _, ok := scalarText(item)
		if !ok {
			errs = append(errs, itemErr(item, i, "must be a string, got "+describe(item)))
			continue
		}
		next, err := set.With(s)
		switch {
		case err != nil:
			errs = append(errs, itemErr(item, i, err.Error()))
		case next == set:
			errs = append(errs, itemErr(item, i, fmt.Sprintf("duplicate value %q", s)))
		}
		set = next
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*o = set
	return nil
}
