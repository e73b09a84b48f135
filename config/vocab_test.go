package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// retryOn builds a RetryOn from retry.on entries, failing t on a bad one.
func retryOn(t testing.TB, entries ...string) RetryOn {
	t.Helper()
	var o RetryOn
	for _, e := range entries {
		var err error
		if o, err = o.With(e); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// TestWords decodes every word of every enumeration and writes it back.
func TestWords(t *testing.T) {
	tests := []struct {
		give string
		got  func(string) (fmt.Stringer, error)
		want fmt.Stringer
	}{
		{"p2c", decodeAs[Balance], BalanceP2C},
		{"round_robin", decodeAs[Balance], BalanceRoundRobin},
		{"least_request", decodeAs[Balance], BalanceLeastRequest},
		{"default", decodeAs[Priority], PriorityDefault},
		{"critical", decodeAs[Priority], PriorityCritical},
		{"sheddable", decodeAs[Priority], PrioritySheddable},
		{"enforce", decodeAs[Mode], ModeEnforce},
		{"shadow", decodeAs[Mode], ModeShadow},
	}
	for _, tt := range tests {
		got, err := tt.got(tt.give)
		if err != nil || got != tt.want {
			t.Errorf("decode(%s) = %v, %v; want %v", tt.give, got, err, tt.want)
			continue
		}
		if j, y := marshal(t, got); j != `"`+tt.give+`"` || y != tt.give {
			t.Errorf("marshal(%v) = %s, %s; want %q", got, j, y, tt.give)
		}
	}
}

func decodeAs[T fmt.Stringer](text string) (fmt.Stringer, error) { return decode[T](text) }

func TestWordZeroValues(t *testing.T) {
	for _, tt := range []struct {
		zero fmt.Stringer
		want string
	}{
		{Balance(0), "p2c"},
		{Priority(0), "default"},
		{Mode(0), "enforce"},
		{RetryOn{}, "[]"},
	} {
		if got := tt.zero.String(); got != tt.want {
			t.Errorf("%T zero value = %q, want %q (the default)", tt.zero, got, tt.want)
		}
	}
}

// TestUnknownWordsInCode: a value made by converting a number names no
// word; Validate rejects it, so proxy.Build never sees one.
func TestUnknownWordsInCode(t *testing.T) {
	c := Default()
	c.Upstreams = map[string]*Upstream{"app": {Endpoints: []string{"127.0.0.1:1"}, Balance: 7}}
	c.Routes = []*Route{{Name: "r", Upstream: "app", Shed: &Shed{MaxConcurrency: Concurrency{N: 1}, PriorityDefault: 3, Mode: 2}}}
	applyDefaults(c)
	want := strings.Join([]string{
		"upstreams.app.balance: unknown value Balance(7)",
		"routes[0].shed.priority_default: unknown value Priority(3)",
		"routes[0].shed.mode: unknown value Mode(2)",
	}, "\n")
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
}

func TestRetryOn(t *testing.T) {
	tests := []struct {
		give     string
		reasons  []RetryReason
		statuses []int
		json     string
	}{
		{"[]", nil, nil, `[]`},
		{"[connect_failure, reset, timeout]", []RetryReason{RetryConnectFailure, RetryReset, RetryTimeout}, nil,
			`["connect_failure","reset","timeout"]`},
		{`["503", reset, 502, "400", "599"]`, []RetryReason{RetryReset}, []int{400, 502, 503, 599},
			`["reset","400","502","503","599"]`},
		{"[timeout, connect_failure]", []RetryReason{RetryConnectFailure, RetryTimeout}, nil,
			`["connect_failure","timeout"]`},
		{"\n  - reset\n  - '429'", []RetryReason{RetryReset}, []int{429}, `["reset","429"]`},
	}
	for _, tt := range tests {
		got, err := decode[RetryOn](tt.give)
		if err != nil {
			t.Errorf("decode(%s): %v", tt.give, err)
			continue
		}
		if r := slices.Collect(got.Reasons()); !slices.Equal(r, tt.reasons) {
			t.Errorf("decode(%s).Reasons() = %v, want %v", tt.give, r, tt.reasons)
		}
		if s := slices.Collect(got.Statuses()); !slices.Equal(s, tt.statuses) {
			t.Errorf("decode(%s).Statuses() = %v, want %v", tt.give, s, tt.statuses)
		}
		if j, _ := marshal(t, got); j != tt.json {
			t.Errorf("marshal(decode(%s)) = %s, want %s", tt.give, j, tt.json)
		}
		// Written back, it reads as the same set.
		_, y := marshal(t, got)
		if back, err := decode[RetryOn](strings.ReplaceAll("\n"+y, "\n", "\n  ")); err != nil || back != got {
			t.Errorf("decode(marshal(%v)) = %v, %v", got, back, err)
		}
	}
}

func TestRetryOnWith(t *testing.T) {
	for _, bad := range []string{"", "bogus", "Reset", "refused", "200", "399", "600", "5xx", "0503", "+50", "-50", " 503", "503 "} {
		if o, err := (RetryOn{}).With(bad); err == nil || o != (RetryOn{}) {
			t.Errorf("With(%q) = %v, %v; want an error and no change", bad, o, err)
		}
	}
	a := retryOn(t, "reset", "503")
	if b := retryOn(t, "503", "reset", "reset"); a != b {
		t.Errorf("the same entries in another order or repeated give another set: %v != %v", a, b)
	}
	if a == retryOn(t, "reset", "502") || a == retryOn(t, "timeout", "503") {
		t.Error("different sets compare equal")
	}
}

func TestRetryOnErrors(t *testing.T) {
	tests := []struct {
		name, give string
		want       []string
	}{
		{"bad entries, each placed", "retry: {attempts: 2, on: [sometimes, '200', reset]}", []string{
			`t.yaml:7:31: routes[0].retry.on[0]: invalid value "sometimes": must be connect_failure, reset, timeout or a 4xx/5xx status like "503"`,
			`t.yaml:7:42: routes[0].retry.on[1]: invalid value "200": must be connect_failure, reset, timeout or a 4xx/5xx status like "503"`,
		}},
		{"duplicates", "retry: {attempts: 2, on: [reset, '503', reset, 503]}", []string{
			`t.yaml:7:45: routes[0].retry.on[2]: duplicate value "reset"`,
			`t.yaml:7:52: routes[0].retry.on[3]: duplicate value "503"`,
		}},
		{"not a list", "retry: {attempts: 2, on: reset}", []string{
			`t.yaml:7:30: routes[0].retry.on: must be a list, got a string`,
		}},
		{"an entry not a string", "retry: {attempts: 2, on: [[reset]]}", []string{
			`t.yaml:7:31: routes[0].retry.on[0]: must be a string, got a list`,
		}},
		{"block list", "retry:\n      attempts: 2\n      on:\n        - reset\n        - 5xx", []string{
			`t.yaml:11:11: routes[0].retry.on[1]: invalid value "5xx": must be connect_failure, reset, timeout or a 4xx/5xx status like "503"`,
		}},
		{"other schema errors too", "retry: {attempts: x, on: [often]}", []string{
			`t.yaml:7:23: routes[0].retry.attempts: must be an integer, got a string`,
			`t.yaml:7:31: routes[0].retry.on[0]: invalid value "often": must be connect_failure, reset, timeout or a 4xx/5xx status like "503"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parseWant(t, withRouteKey(tt.give), strings.Join(tt.want, "\n"))
		})
	}
}
