package resilience

import (
	"math"
	"testing"
	"time"
)

func TestLatencyBucket(t *testing.T) {
	tests := []struct {
		give time.Duration
		want int
	}{
		{-time.Second, 0},
		{0, 0},
		{999 * time.Nanosecond, 0},
		{time.Microsecond, 1},
		{7 * time.Microsecond, 7},
		{8 * time.Microsecond, 8},
		{9 * time.Microsecond, 9},
		{15 * time.Microsecond, 15},
		{16 * time.Microsecond, 16},
		{17 * time.Microsecond, 16}, // 16–17 µs: two per bucket from here
		{time.Millisecond, 7*8 + 7}, // 1000 µs = 2^9 × 1.95: 2^9's last eighth
		{150 * time.Millisecond, latencyBucket(150 * time.Millisecond)},
		{time.Hour, latencyBuckets - 1},
		{math.MaxInt64, latencyBuckets - 1},
	}
	for _, tt := range tests {
		if got := latencyBucket(tt.give); got != tt.want {
			t.Errorf("latencyBucket(%v) = %d, want %d", tt.give, got, tt.want)
		}
	}
	// Every bucket's top is the next bucket's first value, and a bucket is
	// at most an eighth of its values wide.
	for i := range latencyBuckets - 1 {
		top := latencyBucketTop(i)
		if latencyBucket(top-time.Microsecond) != i || latencyBucket(top) != i+1 {
			t.Fatalf("bucket %d: top %v does not bound it", i, top)
		}
		if low := latencyBucketTop(i - 1); i > 8 && float64(top-low)/float64(low) > 1.0/8+1e-9 {
			t.Errorf("bucket %d: %v–%v is wider than an eighth", i, low, top)
		}
	}
}

func TestLatencyHistogramTail(t *testing.T) {
	var h latencyHistogram
	for k := range 1000 {
		rtt := 2 * time.Millisecond
		if k%5 == 0 {
			rtt = 150 * time.Millisecond
		}
		h.add(rtt)
	}
	q, n := h.tail()
	if n != 1000 || q < 150*time.Millisecond || q > 150*time.Millisecond*9/8 {
		t.Errorf("tail = %v over %d, want about 150ms over 1000", q, n)
	}
	if _, n = h.tail(); n != 750 {
		t.Errorf("after one decay: %d samples, want 750", n)
	}
	for range 40 {
		h.tail()
	}
	if _, n = h.tail(); n >= latencyMinSamples || n < latencyMinSamples*3/4 {
		t.Errorf("after 40 decays: %d samples, want the decay to stop below the minimum, %d", n, latencyMinSamples)
	}
	h.reset()
	for range 50 {
		h.add(time.Millisecond)
	}
	for range 10 {
		h.tail()
	}
	if _, n = h.tail(); n != 50 {
		t.Errorf("50 samples, too few to judge, decayed to %d", n)
	}
}

func TestPeerMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		sorted []time.Duration
		own    time.Duration
		want   time.Duration
	}{
		{ms(2, 3), 3 * time.Millisecond, 2 * time.Millisecond},
		{ms(2, 3), 2 * time.Millisecond, 3 * time.Millisecond},
		{ms(2, 3, 150), 150 * time.Millisecond, 2 * time.Millisecond}, // lower median of 2, 3
		{ms(2, 3, 150), 2 * time.Millisecond, 3 * time.Millisecond},
		{ms(2, 3, 150), 3 * time.Millisecond, 2 * time.Millisecond},
		{ms(2, 2, 2, 150), 150 * time.Millisecond, 2 * time.Millisecond},
		{ms(2, 3, 100, 150), 150 * time.Millisecond, 3 * time.Millisecond},
		{ms(2, 3, 100, 150), 2 * time.Millisecond, 100 * time.Millisecond},
		{ms(1, 2, 3, 4, 5), 5 * time.Millisecond, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := peerMedian(tt.sorted, tt.own); got != tt.want {
			t.Errorf("peerMedian(%v, %v) = %v, want %v", tt.sorted, tt.own, got, tt.want)
		}
	}
}

// latencyTraffic sends, at each of the seconds from `from` (inclusive)
// to `to` (exclusive), perSecond attempts to each endpoint, Successes whose
// round trip rtt(i, k) gives for the k-th attempt on endpoint i; the
// first attempt of each second finds the comparison due. It returns how
// many of the calls ejected.
func latencyTraffic(o *Outlier, from, to, perSecond int, rtt func(i, k int) time.Duration) int {
	ejected := 0
	for s := from; s < to; s++ {
		for k := range perSecond {
			now := balancerAt(o.clock, time.Duration(s)*time.Second+time.Duration(k)*time.Microsecond)
			for i := range o.eps {
				if o.Observe(i, now, rtt(i, k), Success) {
					ejected++
				}
			}
		}
	}
	return ejected
}

// grayRTT is three endpoints' round trips: 2 ms, but one in five of
// endpoint gray's at 150 ms.
func grayRTT(gray int) func(i, k int) time.Duration {
	return func(i, k int) time.Duration {
		if i == gray && k%5 == 0 {
			return 150 * time.Millisecond
		}
		return 2 * time.Millisecond
	}
}

func TestOutlierLatencyProbation(t *testing.T) {
	slowAll := func(i, k int) time.Duration {
		if k%5 == 0 {
			return 150 * time.Millisecond
		}
		return 2 * time.Millisecond
	}
	tests := []struct {
		name      string
		n         int
		factor    float64
		perSecond int
		rtt       func(i, k int) time.Duration
		wantOut   uint64 // endpoints ejected after 3 s
	}{
		{"the gray endpoint goes", 3, 3, 200, grayRTT(2), 0b100},
		{"a factor it does not reach", 3, 100, 200, grayRTT(2), 0},
		{"too few samples to judge", 3, 3, 20, grayRTT(2), 0},
		{"all alike: nobody stands out", 3, 3, 200, slowAll, 0},
		{"one endpoint has no peers", 1, 3, 200, grayRTT(0), 0},
		{"fast tails never eject: 1ms against 0.2ms", 3, 3, 200, func(i, k int) time.Duration {
			if i == 1 {
				return time.Millisecond
			}
			return 200 * time.Microsecond
		}, 0},
		{"with two peers, the lower median", 4, 3, 200, func(i, k int) time.Duration {
			if i >= 2 && k%5 == 0 {
				return 150 * time.Millisecond
			}
			return 2 * time.Millisecond
		}, 0b1100}, // a gray one's peers: 2, 2 and 150 ms, median 2 ms
	}
	for _, tt := range tests {
		o := NewOutlier(OutlierSettings{LatencyFactor: tt.factor, EjectionTime: time.Minute, MaxEjectedPercent: 100}, tt.n)
		latencyTraffic(o, 0, 3, tt.perSecond, tt.rtt)
		now := balancerAt(o.clock, 3*time.Second)
		if got := o.all &^ o.Available(now); got != tt.wantOut {
			t.Errorf("%s: ejected %b, want %b", tt.name, got, tt.wantOut)
		}
		if got := o.LatencyEjections(); got != uint64(o.Ejected(now)) || o.Ejections() != got {
			t.Errorf("%s: latency ejections %d, ejections %d, want %d", tt.name, got, o.Ejections(), o.Ejected(now))
		}
	}
}

// TestOutlierLatencyAsEjection: a latency ejection obeys what a failure
// ejection does: it grows with repeats, respects MaxEjectedPercent, and
// the endpoint returns with an empty histogram.
func TestOutlierLatencyAsEjection(t *testing.T) {
	const base = 10 * time.Second
	o := NewOutlier(OutlierSettings{LatencyFactor: 3, EjectionTime: base, MaxEjectedPercent: 50}, 3)
	if latencyTraffic(o, 0, 2, 200, grayRTT(2)) != 1 {
		t.Fatal("the gray endpoint was not ejected once")
	}
	ejectedAt := o.eps[2].until.Load() - int64(base)
	back := o.clock.at(time.Duration(ejectedAt) + base)
	if o.Available(back.Add(-1)) != 0b011 || o.Available(back) != 0b111 {
		t.Fatalf("first ejection: want it to last %v", base)
	}
	// Back, still gray: judged again once it has enough samples, and out
	// for twice as long.
	from := int(time.Duration(ejectedAt+int64(base))/time.Second) + 1
	if latencyTraffic(o, from, from+3, 200, grayRTT(2)) != 1 {
		t.Fatal("the gray endpoint was not ejected again")
	}
	if d := time.Duration(o.eps[2].until.Load() - o.clock.nanos(o.clock.at(time.Duration(from)*time.Second))); d <= base {
		t.Errorf("second ejection ends %v after its second began, want about 2 × %v", d, base)
	}
	// Two gray endpoints out of three, and a cap of one (50% of 3).
	o = NewOutlier(OutlierSettings{LatencyFactor: 3, EjectionTime: base, MaxEjectedPercent: 50}, 3)
	latencyTraffic(o, 0, 3, 200, func(i, k int) time.Duration {
		if i > 0 && k%5 == 0 {
			return 150 * time.Millisecond
		}
		return 2 * time.Millisecond
	})
	if now := balancerAt(o.clock, 3*time.Second); o.Ejected(now) != 1 || o.Skipped() == 0 {
		t.Errorf("two gray, cap 1: %d ejected, %d skipped; want 1 and some", o.Ejected(now), o.Skipped())
	}
}

// TestOutlierLatencyOnly: with LatencyFactor and no Consecutive5xx,
// failures never eject; with both, either does.
func TestOutlierLatencyOnly(t *testing.T) {
	o := NewOutlier(OutlierSettings{LatencyFactor: 3}, 2)
	if outlierFail(o, 0, balancerAt(o.clock, 0), 1000) != 0 {
		t.Error("latency only: failures ejected")
	}
	o = NewOutlier(OutlierSettings{LatencyFactor: 3, Consecutive5xx: 3}, 2)
	if outlierFail(o, 0, balancerAt(o.clock, 0), 3) != 1 {
		t.Error("both: three failures did not eject")
	}
}

// TestOutlierShadow: in shadow mode the same decisions are made and
// counted, and nothing is ejected; switched to enforce, the decision in
// force is enforced for the rest of its time.
func TestOutlierShadow(t *testing.T) {
	s := OutlierSettings{Consecutive5xx: 2, LatencyFactor: 3, EjectionTime: time.Minute, MaxEjectedPercent: 100}
	shadow, enforce := NewOutlier(s, 3), NewOutlier(s, 3)
	shadow.SetShadow(true)
	for _, o := range []*Outlier{shadow, enforce} {
		latencyTraffic(o, 0, 3, 200, grayRTT(2))
		outlierFail(o, 0, balancerAt(o.clock, 3*time.Second), 2)
		outlierFail(o, 0, balancerAt(o.clock, 4*time.Second), 5) // ejected (or would be): ignored
	}
	now := balancerAt(shadow.clock, 5*time.Second)
	if shadow.WouldEject() != 2 || shadow.Ejections() != 0 || enforce.Ejections() != 2 || enforce.WouldEject() != 0 {
		t.Errorf("would eject %d (ejections %d) in shadow, ejections %d in enforce; want 2 (0), 2",
			shadow.WouldEject(), shadow.Ejections(), enforce.Ejections())
	}
	if shadow.Available(now) != 0b111 || shadow.Eligible(now, math.MaxUint64) != 0b111 || shadow.Ejected(now) != 0 {
		t.Error("shadow: an endpoint was left out")
	}
	shadow.SetShadow(false)
	if got := shadow.Available(now); got != 0b010 {
		t.Errorf("switched to enforce: available %b, want 010", got)
	}
}

// TestOutlierSlowStart: a returning endpoint is a candidate in a share of
// picks rising from 10% to 100% over one base ejection time, then always.
func TestOutlierSlowStart(t *testing.T) {
	const base = 10 * time.Second
	o := NewOutlier(OutlierSettings{Consecutive5xx: 1, EjectionTime: base, MaxEjectedPercent: 100}, 3)
	outlierFail(o, 1, balancerAt(o.clock, 0), 1)
	for _, tt := range []struct {
		since time.Duration // since the ejection ended
		want  float64       // share of picks with endpoint 1 a candidate
	}{
		{-time.Second, 0},
		{0, 0.1},
		{base / 2, 0.55},
		{base * 9 / 10, 0.91},
		{base, 1},
		{2 * base, 1},
	} {
		now := balancerAt(o.clock, base+tt.since)
		in := 0
		const picks = 20000
		for range picks {
			m := o.Eligible(now, math.MaxUint64)
			if m&0b101 != 0b101 {
				t.Fatalf("%v after return: the others were left out (%b)", tt.since, m)
			}
			if m&0b010 != 0 {
				in++
			}
		}
		if got := float64(in) / picks; math.Abs(got-tt.want) > 0.02 {
			t.Errorf("%v after return: a candidate in %.3f of picks, want %.2f", tt.since, got, tt.want)
		}
	}
	if o.ejected.Load() != 0 {
		t.Errorf("marks %b left after the slow start", o.ejected.Load())
	}
	// The only endpoint left warming stays in rather than let panic mode
	// pick an ejected one.
	o = NewOutlier(OutlierSettings{Consecutive5xx: 1, EjectionTime: base, MaxEjectedPercent: 100}, 2)
	outlierFail(o, 0, balancerAt(o.clock, 0), 1)
	outlierFail(o, 1, balancerAt(o.clock, base), 1)
	for range 1000 {
		if m := o.Eligible(balancerAt(o.clock, base), math.MaxUint64); m != 0b01 {
			t.Fatalf("eligible %b, want the warming endpoint alone", m)
		}
	}
	var none *Outlier
	if none.Eligible(balancerAt(o.clock, 0), 0b101) != 0b101 {
		t.Error("nil Outlier: want healthy as given")
	}
}

// TestOutlierLatencyStarved: an endpoint that gets a few samples a second
// (P2C steering away from it) is judged once it has gathered enough,
// however long that took, while its busy peers are judged on their last
// seconds.
func TestOutlierLatencyStarved(t *testing.T) {
	o := NewOutlier(OutlierSettings{LatencyFactor: 3, EjectionTime: time.Minute, MaxEjectedPercent: 100}, 3)
	for s := range 30 {
		for k := range 200 {
			now := balancerAt(o.clock, time.Duration(s)*time.Second+time.Duration(k)*time.Microsecond)
			o.Observe(k%2, now, 2*time.Millisecond, Success)
			if k < 8 { // endpoint 2: 8 a second, one in five at 150 ms
				rtt := 2 * time.Millisecond
				if (s*8+k)%5 == 0 {
					rtt = 150 * time.Millisecond
				}
				o.Observe(2, now, rtt, Success)
			}
		}
		if o.LatencyEjections() > 0 {
			if s < 12 {
				t.Errorf("ejected after %d s with %d samples: fewer than the minimum", s, s*8)
			}
			return
		}
	}
	t.Error("the starved gray endpoint was never judged")
}

// TestOutlierLatencyEveryPolicy drives a Balancer and an Outlier
// together, as proxy does, with each balance policy: three endpoints,
// the third answering one attempt in five after 150 ms. Within ten
// seconds of traffic the gray endpoint's share of the picks is below 5%
// whatever the policy, and after its ejection ends it comes back through
// its slow start (a share that grows, not a full third at once).
func TestOutlierLatencyEveryPolicy(t *testing.T) {
	const step = 2 * time.Millisecond // 500 attempts a second
	for _, p := range []Policy{RoundRobin, LeastRequest, P2C} {
		b := NewBalancer(p, 3, 0)
		o := NewOutlier(OutlierSettings{LatencyFactor: 3, EjectionTime: 20 * time.Second, MaxEjectedPercent: 34}, 3)
		origin := o.clock.at(balancerT0)
		k := 0
		// share runs traffic from `from` to `to` and returns the gray
		// endpoint's share of the picks in that span.
		share := func(from, to time.Duration) float64 {
			gray, n := 0, 0
			for d := from; d < to; d += step {
				now := origin.Add(d)
				i := b.Pick(now, o.Eligible(now, math.MaxUint64), -1)
				b.Start(i)
				rtt := time.Millisecond
				if i == 2 {
					gray++
					if k++; k%5 == 0 {
						rtt = 150 * time.Millisecond
					}
				}
				b.Done(i, now, rtt)
				o.Observe(i, now, rtt, Success)
				n++
			}
			return float64(gray) / float64(n)
		}
		first := share(0, 10*time.Second)
		after := share(10*time.Second, 20*time.Second)
		t.Logf("%v: gray share %.3f in the first 10 s, %.3f after", p, first, after)
		if after > 0.05 || (p != P2C && o.LatencyEjections() == 0) {
			t.Errorf("%v: gray share %.3f in the first 10 s, %.3f after, %d ejections; want under 5%% after, ejected",
				p, first, after, o.LatencyEjections())
		}
		if p == RoundRobin {
			// The ejection (20 s) ends within 21–30 s; then a slow start
			// of 20 s: in its first 2 s the share is well under a third.
			end := time.Duration(o.eps[2].until.Load()) - balancerT0
			share(20*time.Second, end)
			back := share(end, end+2*time.Second)
			t.Logf("round robin: back from ejection, share %.3f in its first 2 s", back)
			if back == 0 || back > 0.2 {
				t.Errorf("round robin: back from ejection, share %.3f in the first 2 s, want some, under 20%%", back)
			}
		}
	}
}
