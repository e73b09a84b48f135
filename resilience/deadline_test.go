package resilience

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// deadlineBase is an arbitrary fixed instant; tests never read the clock.
var deadlineBase = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func deadlineAt(ms int) time.Time { return deadlineBase.Add(time.Duration(ms) * time.Millisecond) }

func TestPerTry(t *testing.T) {
	var none time.Time
	tests := []struct {
		name    string
		start   time.Time
		overall time.Time
		perTry  time.Duration
		want    time.Time
	}{
		{"per-try first", deadlineAt(0), deadlineAt(2000), 500 * time.Millisecond, deadlineAt(500)},
		{"overall first", deadlineAt(1800), deadlineAt(2000), 500 * time.Millisecond, deadlineAt(2000)},
		{"equal", deadlineAt(1500), deadlineAt(2000), 500 * time.Millisecond, deadlineAt(2000)},
		{"no per-try", deadlineAt(0), deadlineAt(2000), 0, deadlineAt(2000)},
		{"negative per-try", deadlineAt(0), deadlineAt(2000), -time.Second, deadlineAt(2000)},
		{"no overall", deadlineAt(0), none, 500 * time.Millisecond, deadlineAt(500)},
		{"neither", deadlineAt(0), none, 0, none},
	}
	for _, tt := range tests {
		if got := PerTry(tt.start, tt.overall, tt.perTry); !got.Equal(tt.want) {
			t.Errorf("%s: PerTry = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEarliest(t *testing.T) {
	var none time.Time
	tests := []struct {
		a, b, want time.Time
	}{
		{deadlineAt(1), deadlineAt(2), deadlineAt(1)},
		{deadlineAt(2), deadlineAt(1), deadlineAt(1)},
		{deadlineAt(3), deadlineAt(3), deadlineAt(3)},
		{none, deadlineAt(2), deadlineAt(2)},
		{deadlineAt(2), none, deadlineAt(2)},
		{none, none, none},
	}
	for _, tt := range tests {
		if got := Earliest(tt.a, tt.b); !got.Equal(tt.want) {
			t.Errorf("Earliest(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseTimeoutMillis(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"250", 250 * time.Millisecond, true},
		{"007", 7 * time.Millisecond, true},
		{"999999999999", 999999999999 * time.Millisecond, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"5ms", 0, false},
		{"0x10", 0, false},
		{"9223372036854775808", 0, false},     // overflows int64
		{"9223372036855", 0, false},           // overflows Duration in ms
		{strings.Repeat("1", 4096), 0, false}, // bounded length
		{"\x00", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseTimeoutMillis([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseTimeoutMillis(%.20q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseTimeoutMillis(f *testing.F) {
	for _, s := range []string{"0", "250", "", "-1", "1.5", " 5", "999999999999", "9223372036855"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		d, ok := ParseTimeoutMillis(v)
		if !ok {
			if d != 0 {
				t.Fatalf("ParseTimeoutMillis(%q) = %v, false; want 0 when refused", v, d)
			}
			return
		}
		ms, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || d != time.Duration(ms)*time.Millisecond || d < 0 {
			t.Fatalf("ParseTimeoutMillis(%q) = %v, true; strconv says %d, %v", v, d, ms, err)
		}
	})
}

func TestAppendTimeoutMillis(t *testing.T) {
	tests := []struct {
		remaining time.Duration
		want      string
	}{
		{250 * time.Millisecond, "250"},
		{1500 * time.Microsecond, "1"}, // rounds down
		{2999 * time.Microsecond, "2"},
		{time.Microsecond, "1"}, // sub-ms: at least 1
		{0, "1"},
		{-time.Second, "1"},
		{30 * time.Second, "30000"},
	}
	for _, tt := range tests {
		got := AppendTimeoutMillis([]byte("x="), tt.remaining)
		if string(got) != "x="+tt.want {
			t.Errorf("AppendTimeoutMillis(%v) = %q, want %q", tt.remaining, got, "x="+tt.want)
		}
	}
}

func TestDeadlineAllocs(t *testing.T) {
	v := []byte("250")
	buf := make([]byte, 0, 32)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = ParseTimeoutMillis(v)
		buf = AppendTimeoutMillis(buf[:0], 1234*time.Millisecond)
	}); n != 0 {
		t.Errorf("ParseTimeoutMillis+AppendTimeoutMillis: %v allocs, want 0", n)
	}
}
