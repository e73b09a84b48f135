package resilience

import (
	"math"
	"sync"
	"testing"
	"time"
)

// balancerT0 is where tests start on a Balancer's or an Outlier's clock:
// 54 years after its origin, so the tick arithmetic sees large values.
const balancerT0 = 1_700_000_000 * time.Second

// balancerAt is the instant d after balancerT0 on c.
func balancerAt(c clock, d time.Duration) time.Time { return c.at(balancerT0 + d) }

// balancerCounts picks k times and counts the endpoints chosen. Nothing
// is started, so costs do not change.
func balancerCounts(b *Balancer, k int, available uint64, avoid int) map[int]int {
	got := map[int]int{}
	now := balancerAt(b.clock, 0)
	for range k {
		got[b.Pick(now, available, avoid)]++
	}
	return got
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		give Policy
		want string
	}{
		{P2C, "p2c"},
		{RoundRobin, "round_robin"},
		{LeastRequest, "least_request"},
		{Policy(9), "Policy(9)"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("Policy(%d).String() = %q, want %q", uint8(tt.give), got, tt.want)
		}
	}
}

func TestBalancerCandidates(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		available uint64
		avoid     int
		want      []int // every one of these is picked, nothing else
	}{
		{"one endpoint", 1, 1, -1, []int{0}},
		{"one endpoint, panic mode", 1, 0, -1, []int{0}},
		{"one endpoint, avoid it: nothing else", 1, 1, 0, []int{0}},
		{"mask honoured", 4, 0b0110, -1, []int{1, 2}},
		{"mask 0: panic mode, all", 4, 0, -1, []int{0, 1, 2, 3}},
		{"bits beyond n ignored: panic mode", 4, 1 << 10, -1, []int{0, 1, 2, 3}},
		{"avoid honoured", 4, 0b0110, 1, []int{2}},
		{"avoid the only available one", 4, 0b0100, 2, []int{2}},
		{"avoid in panic mode", 4, 0, 3, []int{0, 1, 2}},
		{"avoid out of range ignored", 3, 0, 99, []int{0, 1, 2}},
		{"avoid negative ignored", 3, 0, -5, []int{0, 1, 2}},
		{"endpoint 63", 64, 1 << 63, -1, []int{63}},
		{"63 and 0", 64, 1<<63 | 1, -1, []int{0, 63}},
		{"n above 64 clamped", 100, 0, -1, nil},
		{"n = 0", 0, 0, -1, []int{-1}},
		{"n < 0", -3, 1, 0, []int{-1}},
	}
	for _, p := range []Policy{P2C, RoundRobin, LeastRequest} {
		for _, tt := range tests {
			b := NewBalancer(p, tt.n, 0)
			got := balancerCounts(b, 2000, tt.available, tt.avoid)
			if tt.want == nil { // clamped: every pick within 0..63
				for i := range got {
					if i < 0 || i >= MaxEndpoints {
						t.Errorf("%v %s: picked %d", p, tt.name, i)
					}
				}
				continue
			}
			for _, i := range tt.want {
				if got[i] == 0 {
					t.Errorf("%v %s: %d never picked (%v)", p, tt.name, i, got)
				}
				delete(got, i)
			}
			if len(got) != 0 {
				t.Errorf("%v %s: picked outside %v: %v", p, tt.name, tt.want, got)
			}
		}
	}
}

func TestBalancerOutOfRangeIgnored(t *testing.T) {
	b := NewBalancer(P2C, 2, 0)
	now := balancerAt(b.clock, 0)
	for _, i := range []int{-1, 2, 64, math.MaxInt} {
		b.Start(i)
		b.Done(i, now, time.Millisecond)
		if c, l, o := b.Cost(i, now), b.Latency(i, now), b.Outstanding(i); c != 0 || l != 0 || o != 0 {
			t.Errorf("endpoint %d: Cost %v Latency %v Outstanding %d, want zeros", i, c, l, o)
		}
	}
}

// p2cSimulate sends picks attempts at a fixed rate (one every gap) through
// b to endpoints answering in rtts, completing each at its send time plus
// its rtt, and returns how many each endpoint got.
func p2cSimulate(b *Balancer, rtts []time.Duration, gap time.Duration, picks int) []int {
	pending := make([][]time.Time, len(rtts)) // completion times, in order per endpoint
	counts := make([]int, len(rtts))
	for k := range picks {
		now := balancerAt(b.clock, time.Duration(k)*gap)
		for i := range pending {
			for len(pending[i]) > 0 && !pending[i][0].After(now) {
				b.Done(i, pending[i][0], rtts[i])
				pending[i] = pending[i][1:]
			}
		}
		i := b.Pick(now, 0, -1)
		b.Start(i)
		counts[i]++
		pending[i] = append(pending[i], now.Add(rtts[i]))
	}
	return counts
}

// TestP2CAvoidsSlowEndpoint: endpoint 0 answers in 100 ms, the others in
// 1 ms; 10,000 attempts at a fixed rate.
func TestP2CAvoidsSlowEndpoint(t *testing.T) {
	const fast, slow = time.Millisecond, 100 * time.Millisecond
	tests := []struct {
		name string
		rtts []time.Duration
		gap  time.Duration
	}{
		{"2 endpoints, 100/s for 100 s", []time.Duration{slow, fast}, 10 * time.Millisecond},
		{"2 endpoints, 1k/s", []time.Duration{slow, fast}, time.Millisecond},
		{"2 endpoints, 10k/s", []time.Duration{slow, fast}, 100 * time.Microsecond},
		{"2 endpoints, 100k/s", []time.Duration{slow, fast}, 10 * time.Microsecond},
		{"5 endpoints, 10k/s", []time.Duration{slow, fast, fast, fast, fast}, 100 * time.Microsecond},
	}
	const picks = 10_000
	for _, tt := range tests {
		counts := p2cSimulate(NewBalancer(P2C, len(tt.rtts), 0), tt.rtts, tt.gap, picks)
		share := float64(counts[0]) / picks
		t.Logf("%s: slow endpoint got %d of %d attempts (%.2f%%)", tt.name, counts[0], picks, 100*share)
		if share >= 0.01 {
			t.Errorf("%s: slow endpoint got %.2f%%, want < 1%%", tt.name, 100*share)
		}
	}
}

func TestP2COutstandingLoses(t *testing.T) {
	b := NewBalancer(P2C, 2, 0)
	now := balancerAt(b.clock, 0)
	for i := range 2 {
		b.Start(i)
		b.Done(i, now, time.Millisecond)
	}
	for range 5 {
		b.Start(0)
	}
	if c0, c1 := b.Cost(0, now), b.Cost(1, now); c0 != 6*c1 {
		t.Errorf("Cost = %v, %v; want the busy one 6× (5 outstanding + 1)", c0, c1)
	}
	if got := balancerCounts(b, 1000, 0, -1); got[1] != 1000 {
		t.Errorf("picks %v, want all on the idle endpoint 1", got)
	}
}

func TestP2CNewEndpoint(t *testing.T) {
	b := NewBalancer(P2C, 2, 0)
	b.Start(0)
	b.Done(0, balancerAt(b.clock, 0), time.Millisecond)
	if got := balancerCounts(b, 100, 0, -1); got[1] != 100 {
		t.Fatalf("new idle endpoint: picks %v, want all on it (cost 0)", got)
	}
	b.Start(1) // its first attempt is out, not answered
	if c := b.Cost(1, balancerAt(b.clock, 0)); c != p2cPenalty+1 {
		t.Errorf("unanswered endpoint costs %v, want the penalty 2^47+1", c)
	}
	if got := balancerCounts(b, 100, 0, -1); got[0] != 100 {
		t.Errorf("unanswered endpoint: picks %v, want none on it", got)
	}
	b.Done(1, balancerAt(b.clock, time.Millisecond), time.Millisecond)
	if o := b.Outstanding(1); o != 0 {
		t.Errorf("Outstanding = %d, want 0", o)
	}
}

// TestPeakEWMA follows one endpoint's estimate with explicit times: decay
// 10 s, 1 ms before a 100 ms spike at 0.
func TestPeakEWMA(t *testing.T) {
	const ms = float64(time.Millisecond)
	tests := []struct {
		name  string
		spike time.Duration // sample at 0 after the 1 ms one
		every time.Duration // then 1 ms samples this often until read (0: none)
		read  time.Duration
		want  float64 // ms
	}{
		{"a higher sample replaces it at once", 100 * time.Millisecond, 0, 0, 100},
		{"a lower one at once moves it nothing", 500 * time.Microsecond, 0, 0, 1},
		{"read decays with the time constant", 100 * time.Millisecond, 0, 10 * time.Second, 100 / math.E},
		{"and is near zero after 5 of them", 100 * time.Millisecond, 0, 50 * time.Second, 100 * math.Exp(-5)},
		{"1 ms samples pull it back: after 10 s", 100 * time.Millisecond, 100 * time.Millisecond, 10 * time.Second, 1 + 99/math.E},
		{"after 30 s", 100 * time.Millisecond, 100 * time.Millisecond, 30 * time.Second, 1 + 99*math.Exp(-3)},
		{"after 50 s", 100 * time.Millisecond, 100 * time.Millisecond, 50 * time.Second, 1 + 99*math.Exp(-5)},
	}
	for _, tt := range tests {
		b := NewBalancer(P2C, 1, 10*time.Second)
		b.Done(0, balancerAt(b.clock, 0), time.Millisecond)
		b.Done(0, balancerAt(b.clock, 0), tt.spike)
		for at := tt.every; tt.every > 0 && at <= tt.read; at += tt.every {
			b.Done(0, balancerAt(b.clock, at), time.Millisecond)
		}
		got := float64(b.Latency(0, balancerAt(b.clock, tt.read))) / ms
		if math.Abs(got-tt.want) > 0.005*tt.want {
			t.Errorf("%s: Latency = %.4f ms, want %.4f", tt.name, got, tt.want)
		}
		if c := b.Cost(0, balancerAt(b.clock, tt.read)) / ms; math.Abs(c-got) > 1e-6*got {
			t.Errorf("%s: idle Cost = %.4f, want Latency %.4f", tt.name, c, got)
		}
	}
}

func TestRoundRobinEvenSpread(t *testing.T) {
	tests := []struct {
		n         int
		available uint64
		want      map[int]int
	}{
		{4, 0, map[int]int{0: 1000, 1: 1000, 2: 1000, 3: 1000}},
		{5, 0b10101, map[int]int{0: 1000, 2: 1000, 4: 1000}},
		{64, 1<<63 | 1<<31 | 1<<7 | 1, map[int]int{0: 1000, 7: 1000, 31: 1000, 63: 1000}},
	}
	for _, tt := range tests {
		b := NewBalancer(RoundRobin, tt.n, 0)
		got := balancerCounts(b, 1000*len(tt.want), tt.available, -1)
		for i, w := range tt.want {
			if got[i] != w {
				t.Errorf("n=%d mask %b: counts %v, want %v", tt.n, tt.available, got, tt.want)
				break
			}
		}
	}
}

func TestLeastRequest(t *testing.T) {
	tests := []struct {
		name string
		load []int
		best int     // must get at least minShare of the picks
		min  float64 // P(best among two distinct random candidates)
		none int     // must never be picked (-1: no check)
	}{
		{"two: exact", []int{3, 1}, 1, 1, 0},
		{"two, tie broken randomly", []int{2, 2}, 0, 0.4, -1},
		{"four: least loaded wins its pairs", []int{9, 1, 2, 3}, 1, 0.45, 0},
		{"four: idle one", []int{5, 5, 5, 0}, 3, 0.45, -1},
	}
	for _, tt := range tests {
		b := NewBalancer(LeastRequest, len(tt.load), 0)
		for i, k := range tt.load {
			for range k {
				b.Start(i)
			}
		}
		got := balancerCounts(b, 10_000, 0, -1)
		if share := float64(got[tt.best]) / 10_000; share < tt.min {
			t.Errorf("%s: endpoint %d got %.3f of picks, want ≥ %.2f (%v)", tt.name, tt.best, share, tt.min, got)
		}
		if tt.none >= 0 && got[tt.none] != 0 {
			t.Errorf("%s: most loaded endpoint %d picked %d times", tt.name, tt.none, got[tt.none])
		}
	}
}

// TestBalancerConcurrent runs Pick, Start and Done from many goroutines;
// run it with -race. Every attempt ends, so nothing stays outstanding.
func TestBalancerConcurrent(t *testing.T) {
	const goroutines, attempts, n = 8, 2000, 5
	for _, p := range []Policy{P2C, RoundRobin, LeastRequest} {
		b := NewBalancer(p, n, 0)
		var wg sync.WaitGroup
		var bad sync.Map
		for g := range goroutines {
			wg.Go(func() {
				for k := range attempts {
					now := balancerAt(b.clock, time.Duration(k)*time.Millisecond)
					i := b.Pick(now, 0b11011, g%n)
					if i < 0 || i >= n || i == 2 {
						bad.Store(i, true)
						continue
					}
					b.Start(i)
					b.Done(i, now, time.Duration(1+k%7)*time.Millisecond)
				}
			})
		}
		wg.Wait()
		bad.Range(func(i, _ any) bool {
			t.Errorf("%v: picked %v, outside the available set", p, i)
			return true
		})
		for i := range n {
			if o := b.Outstanding(i); o != 0 {
				t.Errorf("%v: endpoint %d has %d outstanding after all Done", p, i, o)
			}
		}
	}
}

// BenchmarkBalancer runs Pick, Start and Done with time moving 1 µs per
// attempt, in steps of benchStep so that the loop's own time.Time.Add
// (about 10 ns on a slow virtual clock) is not what gets measured.
func BenchmarkBalancer(b *testing.B) {
	for _, p := range []Policy{P2C, RoundRobin, LeastRequest} {
		b.Run(p.String(), func(b *testing.B) {
			bl := NewBalancer(p, 8, 0)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				now := balancerAt(bl.clock, 0)
				for k := 0; pb.Next(); k++ {
					if k%benchStep == 0 {
						now = now.Add(benchStep * time.Microsecond)
					}
					i := bl.Pick(now, 0b11110111, -1)
					bl.Start(i)
					bl.Done(i, now, time.Millisecond)
				}
			})
		})
	}
}
