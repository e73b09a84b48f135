package resilience

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// budgetT0 is where tests start on a Budget's clock: an arbitrary
// instant long after its origin, mid-second.
const budgetT0 = 1_700_000_000*time.Second + 300*time.Millisecond

// budgetAt is the instant d after budgetT0 on b's clock.
func budgetAt(b *Budget, d time.Duration) time.Time { return b.clock.at(budgetT0 + d) }

func budgetDeposit(b *Budget, now time.Time, n int) {
	for range n {
		b.Request(now)
	}
}

// budgetDrain withdraws extras until refused (or limit) and returns how
// many were allowed.
func budgetDrain(b *Budget, now time.Time, ratio float64, limit int) int {
	n := 0
	for n < limit && b.TryExtra(now, ratio) {
		n++
	}
	return n
}

func TestBudgetArithmetic(t *testing.T) {
	tests := []struct {
		name         string
		window       time.Duration
		minPerSecond int
		requests     int
		ratio        float64
		want         int // extras allowed at the same instant
	}{
		{"floor only", 10 * time.Second, 10, 0, 0.2, 100},
		{"floor beats ratio", 10 * time.Second, 10, 100, 0.2, 100},
		{"ratio beats floor", 10 * time.Second, 1, 1000, 0.2, 200},
		{"ratio alone", 10 * time.Second, 0, 1000, 0.2, 200},
		{"ratio rounds down", 10 * time.Second, 0, 99, 0.2, 19},
		{"float product 0.29×100", 10 * time.Second, 0, 100, 0.29, 29},
		{"no floor, no requests", 10 * time.Second, 0, 0, 0.2, 0},
		{"zero ratio keeps the floor", 10 * time.Second, 2, 1000, 0, 20},
		{"negative ratio", 10 * time.Second, 0, 1000, -1, 0},
		{"NaN ratio", 10 * time.Second, 1, 1000, math.NaN(), 10},
		{"ratio 1", 10 * time.Second, 0, 50, 1, 50},
		{"window rounds up to 2 s", 1500 * time.Millisecond, 10, 0, 0, 20},
		{"default window", 0, 10, 0, 0, 100},
		{"window capped at a minute", time.Hour, 1, 0, 0, 60},
		{"negative floor", 10 * time.Second, -5, 0, 0.5, 0},
	}
	for _, tt := range tests {
		b := NewBudget(tt.window, tt.minPerSecond)
		now := budgetAt(b, 0)
		budgetDeposit(b, now, tt.requests)
		if got := budgetDrain(b, now, tt.ratio, 10_000); got != tt.want {
			t.Errorf("%s: %d extras allowed, want %d", tt.name, got, tt.want)
		}
		if req, ext := b.Counts(now); req != uint64(tt.requests) || ext != uint64(tt.want) {
			t.Errorf("%s: Counts = %d, %d; want %d, %d", tt.name, req, ext, tt.requests, tt.want)
		}
	}
}

func TestBudgetWindowSlides(t *testing.T) {
	b := NewBudget(10*time.Second, 0)
	budgetDeposit(b, budgetAt(b, 0), 1000) // second 0 of the window

	// Half the allowance now, the rest 9 s later: the requests still count.
	if got := budgetDrain(b, budgetAt(b, 0), 0.1, 50); got != 50 {
		t.Fatalf("at 0 s: %d extras, want 50", got)
	}
	if got := budgetDrain(b, budgetAt(b, 9*time.Second), 0.1, 1000); got != 50 {
		t.Fatalf("at 9 s: %d extras, want the remaining 50", got)
	}
	// 10 s later the requests of second 0 have left the window.
	if b.TryExtra(budgetAt(b, 10*time.Second), 0.1) {
		t.Fatal("at 10 s: extra allowed with no requests left in the window")
	}
	// New requests at 10 s: the extras taken at 0 s are gone too, but the
	// 50 taken at 9 s still count against 0.1 × 1000.
	budgetDeposit(b, budgetAt(b, 10*time.Second), 1000)
	if got := budgetDrain(b, budgetAt(b, 10*time.Second), 0.1, 1000); got != 50 {
		t.Errorf("at 10 s: %d extras, want 50 (100 less the 50 from 9 s)", got)
	}
	if req, ext := b.Counts(budgetAt(b, 19*time.Second)); req != 1000 || ext != 50 {
		t.Errorf("at 19 s: Counts = %d, %d; want 1000, 50", req, ext)
	}
	if req, ext := b.Counts(budgetAt(b, 20*time.Second)); req != 0 || ext != 0 {
		t.Errorf("at 20 s: Counts = %d, %d; want 0, 0", req, ext)
	}
}

// TestBudgetLongGap reuses buckets after idle periods far longer than the
// window (bucket words from old seconds must read as empty).
func TestBudgetLongGap(t *testing.T) {
	b := NewBudget(10*time.Second, 0)
	for _, gap := range []time.Duration{0, time.Hour, 24 * time.Hour, 400 * 24 * time.Hour} {
		now := budgetAt(b, gap)
		budgetDeposit(b, now, 100)
		if got := budgetDrain(b, now, 0.2, 1000); got != 20 {
			t.Errorf("after %v: %d extras, want 20", gap, got)
		}
	}
}

// TestBudgetBeforeOrigin: an instant from before the Budget was built
// (a request that arrived while it was being built) counts in its first
// second instead of wrapping to a second 136 years away.
func TestBudgetBeforeOrigin(t *testing.T) {
	b := NewBudget(10*time.Second, 0)
	budgetDeposit(b, b.clock.at(-time.Hour), 100)
	if req, _ := b.Counts(b.clock.at(9 * time.Second)); req != 100 {
		t.Errorf("at 9 s: %d requests in the window, want the 100 from before the origin", req)
	}
	if got := budgetDrain(b, b.clock.at(-time.Millisecond), 0.2, 1000); got != 20 {
		t.Errorf("before the origin: %d extras, want 20", got)
	}
	if req, ext := b.Counts(b.clock.at(10 * time.Second)); req != 0 || ext != 0 {
		t.Errorf("at 10 s: Counts = %d, %d; want 0, 0", req, ext)
	}
}

// TestBudgetSharedRatios: hedges at 5% and retries at 20% draw on one
// budget; hedges stop first, retries go on to their own bound, and
// extras of both kinds count against both.
func TestBudgetSharedRatios(t *testing.T) {
	b := NewBudget(10*time.Second, 0)
	now := budgetAt(b, 0)
	budgetDeposit(b, now, 1000)
	const hedge, retry = 0.05, 0.2
	if got := budgetDrain(b, now, hedge, 1000); got != 50 {
		t.Fatalf("hedges: %d allowed, want 50", got)
	}
	if got := budgetDrain(b, now, retry, 100); got != 100 {
		t.Fatalf("retries after the hedges: %d allowed, want 100", got)
	}
	if b.TryExtra(now, hedge) {
		t.Error("hedge allowed at 150 extras of 1000 requests, over 5%")
	}
	if got := budgetDrain(b, now, retry, 1000); got != 50 {
		t.Errorf("retries: %d more allowed, want 50 (200 in all)", got)
	}
}

// TestBudgetConcurrent races withdrawals, with and without concurrent
// deposits, and checks the bound is never exceeded (run with -race).
func TestBudgetConcurrent(t *testing.T) {
	const workers, tries = 8, 200
	t.Run("fixed requests", func(t *testing.T) {
		b := NewBudget(10*time.Second, 0)
		now := budgetAt(b, 0)
		budgetDeposit(b, now, 1000)
		var allowed atomic.Int64
		budgetRace(workers, func() {
			for range tries {
				if b.TryExtra(now, 0.2) {
					allowed.Add(1)
				}
			}
		})
		if got := allowed.Load(); got != 200 {
			t.Errorf("%d extras allowed, want exactly 200", got)
		}
	})
	t.Run("with deposits", func(t *testing.T) {
		b := NewBudget(10*time.Second, 1)
		now := budgetAt(b, 0)
		var allowed atomic.Int64
		budgetRace(workers, func() {
			for range tries {
				b.Request(now)
				if b.TryExtra(now, 0.2) {
					allowed.Add(1)
				}
			}
		})
		bound := max(10, int64(0.2*workers*tries))
		if got := allowed.Load(); got > bound || got < bound*9/10 {
			t.Errorf("%d extras allowed, want at most %d and close to it", got, bound)
		}
		if req, ext := b.Counts(now); req != workers*tries || int64(ext) != allowed.Load() {
			t.Errorf("Counts = %d, %d; want %d, %d", req, ext, workers*tries, allowed.Load())
		}
	})
}

// budgetRace runs fn on n goroutines released together and waits for all.
func budgetRace(n int, fn func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			fn()
		})
	}
	close(start)
	wg.Wait()
}

func TestBudgetAllocs(t *testing.T) {
	b := NewBudget(10*time.Second, 10)
	now := budgetAt(b, 0)
	if n := testing.AllocsPerRun(100, func() {
		b.Request(now)
		_ = b.TryExtra(now, 0.2)
	}); n != 0 {
		t.Errorf("Request+TryExtra: %v allocs, want 0", n)
	}
}

// BenchmarkBudgetTryExtra deposits one request and withdraws one extra per
// operation, all goroutines in one second's bucket: the worst contention.
// go test -run=^$ -bench=Budget -cpu 1,2 (bigger machines: -cpu 1,4,16).
func BenchmarkBudgetTryExtra(b *testing.B) {
	bg := NewBudget(10*time.Second, 10)
	now := budgetAt(bg, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bg.Request(now)
			_ = bg.TryExtra(now, 0.2)
		}
	})
}
