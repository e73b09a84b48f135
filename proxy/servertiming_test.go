package proxy

import (
	"testing"
	"time"
)

func TestServerTiming(t *testing.T) {
	tests := []struct {
		queue, upstream time.Duration
		want            string
	}{
		{12 * time.Microsecond, 3400 * time.Microsecond, "queue;dur=0.012, upstream;dur=3.4"},
		{0, 0, "queue;dur=0, upstream;dur=0"},
		{1500 * time.Nanosecond, 2 * time.Second, "queue;dur=0.001, upstream;dur=2000"},
		{-time.Millisecond, 1234567 * time.Nanosecond, "queue;dur=0, upstream;dur=1.234"},
		{100 * time.Microsecond, 10 * time.Microsecond, "queue;dur=0.1, upstream;dur=0.01"},
	}
	for _, tt := range tests {
		if got := string(appendServerTiming(nil, tt.queue, tt.upstream)); got != tt.want {
			t.Errorf("appendServerTiming(%v, %v) = %q, want %q", tt.queue, tt.upstream, got, tt.want)
		}
	}
}
