package resilience

import "testing"

func TestParsePriority(t *testing.T) {
	tests := []struct {
		give string
		want Priority
		ok   bool
	}{
		{"critical", Critical, true},
		{"CRITICAL", Critical, true},
		{"Default", Default, true},
		{"sheddable", Sheddable, true},
		{"sHeDdAbLe", Sheddable, true},
		{"", Default, false},
		{"high", Default, false},
		{" critical", Default, false},
		{"critica", Default, false},
		{"criticall", Default, false},
		{"\x00ritical", Default, false},
	}
	for _, tt := range tests {
		got, ok := ParsePriority([]byte(tt.give))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v, %v", tt.give, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPriorityString(t *testing.T) {
	for p, want := range map[Priority]string{Critical: "critical", Default: "default", Sheddable: "sheddable", 9: "default"} {
		if got := p.String(); got != want {
			t.Errorf("Priority(%d).String() = %q, want %q", p, got, want)
		}
		if back, ok := ParsePriority([]byte(want)); !ok || back != p.valid() {
			t.Errorf("ParsePriority(%q) = %v, %v", want, back, ok)
		}
	}
}

func BenchmarkParsePriority(b *testing.B) {
	v := []byte("Sheddable")
	b.ReportAllocs()
	for b.Loop() {
		ParsePriority(v)
	}
}
