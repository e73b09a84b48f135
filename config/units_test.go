package config

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// decode reads "v: text" through goccy/go-yaml's decoder, as Parse's final
// step does, so these tests also cover the decoder calling UnmarshalYAML.
func decode[T any](text string) (T, error) {
	var v struct {
		V T `yaml:"v"`
	}
	err := yaml.Unmarshal([]byte("v: "+text), &v)
	return v.V, err
}

// marshal returns v as JSON and as YAML (without the trailing newline).
func marshal(t *testing.T, v any) (string, string) {
	t.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(j), strings.TrimSpace(string(y))
}

func TestDuration(t *testing.T) {
	tests := []struct {
		give     string
		want     time.Duration
		wantJSON string
	}{
		{"2s", 2 * time.Second, `"2s"`},
		{"500ms", 500 * time.Millisecond, `"500ms"`},
		{`"1m30s"`, 90 * time.Second, `"1m30s"`},
		{"0", 0, `"0s"`},
		{"-1s", -time.Second, `"-1s"`},
		{"30d", 30 * 24 * time.Hour, `"30d"`},
		{"720h", 30 * 24 * time.Hour, `"30d"`},
		{"1w", 7 * 24 * time.Hour, `"7d"`},
		{"1d12h", 36 * time.Hour, `"36h0m0s"`},
		{"-2d", -48 * time.Hour, `"-2d"`},
	}
	for _, tt := range tests {
		got, err := decode[Duration](tt.give)
		if err != nil || got.D() != tt.want {
			t.Errorf("decode(%s) = %v, %v; want %v", tt.give, got, err, tt.want)
			continue
		}
		j, y := marshal(t, got)
		if j != tt.wantJSON || y != strings.Trim(tt.wantJSON, `"`) {
			t.Errorf("marshal(%v) = %s, %s; want %s", got, j, y, tt.wantJSON)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		give string
		want int64
		show string
	}{
		{"1024", 1024, "1KiB"},
		{"16KiB", 16 << 10, "16KiB"},
		{`"10MiB"`, 10 << 20, "10MiB"},
		{"2GiB", 2 << 30, "2GiB"},
		{"1KB", 1000, "1000B"},
		{"3MB", 3_000_000, "3000000B"},
		{"1GB", 1_000_000_000, "1000000000B"},
		{"1536B", 1536, "1536B"},
		{"16 KiB", 16 << 10, "16KiB"},
		{"0", 0, "0B"},
		{"-1", -1, "-1B"},
	}
	for _, tt := range tests {
		got, err := decode[ByteSize](tt.give)
		if err != nil || got.Int64() != tt.want {
			t.Errorf("decode(%s) = %d, %v; want %d", tt.give, got, err, tt.want)
			continue
		}
		j, y := marshal(t, got)
		if j != `"`+tt.show+`"` || y != tt.show || got.String() != tt.show {
			t.Errorf("marshal(%d) = %s, %s; want %s", tt.want, j, y, tt.show)
		}
	}
}

func TestHedgeDelay(t *testing.T) {
	tests := []struct {
		give string
		want HedgeDelay
	}{
		{"20ms", HedgeDelay{Fixed: 20 * time.Millisecond}},
		{"p90", HedgeDelay{Percentile: 0.90}},
		{"p95", HedgeDelay{Percentile: 0.95}},
		{"p99", HedgeDelay{Percentile: 0.99}},
	}
	for _, tt := range tests {
		got, err := decode[HedgeDelay](tt.give)
		if err != nil || got != tt.want {
			t.Errorf("decode(%s) = %+v, %v; want %+v", tt.give, got, err, tt.want)
			continue
		}
		j, y := marshal(t, got)
		if j != `"`+tt.give+`"` || y != tt.give {
			t.Errorf("marshal(%+v) = %s, %s; want %s", got, j, y, tt.give)
		}
	}
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		give     string
		want     Concurrency
		wantJSON string
	}{
		{"64", Concurrency{N: 64}, "64"},
		{"adaptive", Concurrency{Adaptive: true}, `"adaptive"`},
	}
	for _, tt := range tests {
		got, err := decode[Concurrency](tt.give)
		if err != nil || got != tt.want {
			t.Errorf("decode(%s) = %+v, %v; want %+v", tt.give, got, err, tt.want)
			continue
		}
		j, y := marshal(t, got)
		if j != tt.wantJSON || y != tt.give {
			t.Errorf("marshal(%+v) = %s, %s; want %s", got, j, y, tt.wantJSON)
		}
	}
}

// TestUnitErrorsArePlaced checks that an UnmarshalYAML error coming back
// through the decoder still knows its line and column.
func TestUnitErrorsArePlaced(t *testing.T) {
	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"duration", func() error { _, err := decode[Duration]("soon"); return err },
			`1:4: invalid duration "soon": must be a duration like 2s or 500ms`},
		{"duration fraction of a day", func() error { _, err := decode[Duration]("1.5d"); return err },
			`1:4: invalid duration "1.5d": must be a duration like 2s or 500ms`},
		{"duration without unit", func() error { _, err := decode[Duration]("5"); return err },
			`1:4: must be a duration like 2s or 500ms (a number needs a unit)`},
		{"duration list", func() error { _, err := decode[Duration]("[1s]"); return err },
			`1:4: must be a duration like 2s or 500ms`},
		{"size unit case", func() error { _, err := decode[ByteSize]("16kib"); return err },
			`1:4: invalid size "16kib": unknown unit "kib" (use B, KB, MB, GB, KiB, MiB or GiB)`},
		{"size fraction", func() error { _, err := decode[ByteSize]("1.5MiB"); return err },
			`1:4: invalid size "1.5MiB": must be a whole number of bytes, optionally with a unit, like 16KiB`},
		{"size no number", func() error { _, err := decode[ByteSize]("KiB"); return err },
			`1:4: invalid size "KiB": must be a whole number of bytes, optionally with a unit, like 16KiB`},
		{"size overflow", func() error { _, err := decode[ByteSize]("9000000000GiB"); return err },
			`1:4: invalid size "9000000000GiB": too large`},
		{"size overflow digits", func() error { _, err := decode[ByteSize]("99999999999999999999"); return err },
			`1:4: invalid size "99999999999999999999": too large`},
		{"percentile", func() error { _, err := decode[HedgeDelay]("p50"); return err },
			`1:4: invalid delay "p50": must be p90, p95, p99 or a duration like 20ms`},
		{"concurrency", func() error { _, err := decode[Concurrency]("lots"); return err },
			`1:4: must be a positive integer or "adaptive"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			if err == nil {
				t.Fatal("no error")
			}
			if got := yamlError(nil, err).Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseByteSizeBounds(t *testing.T) {
	if v, msg := parseByteSize("8589934591GiB"); msg != "" || v != math.MaxInt64>>30<<30 {
		t.Errorf("largest GiB = %d, %q", v, msg)
	}
	if _, msg := parseByteSize("8589934592GiB"); msg == "" {
		t.Error("8589934592GiB overflows int64 but parsed")
	}
}
