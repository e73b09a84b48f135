package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestQuantilesMatchExact feeds known distributions and compares the
// snapshot's quantiles with exact quantiles of the sorted values, within
// HdrHistogram's precision.
func TestQuantilesMatchExact(t *testing.T) {
	const n = 50_000
	dists := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 1us-100ms", func(r *rand.Rand) time.Duration {
			return time.Duration(1+r.IntN(100_000)) * time.Microsecond
		}},
		{"log-normal median 5ms", func(r *rand.Rand) time.Duration {
			us := math.Exp(math.Log(5000) + 1.2*r.NormFloat64())
			return time.Duration(min(max(int64(us), 1), 600_000_000)) * time.Microsecond
		}},
	}
	for _, digits := range []int{2, 3} {
		for _, d := range dists {
			t.Run(fmt.Sprintf("%s/%d digits", d.name, digits), func(t *testing.T) {
				reg := NewRegistry(RegistryOptions{Digits: digits, Shards: 4})
				reg.Configure([]RouteConfig{{Name: "r"}})
				rt := reg.Route("r")
				r := rand.New(rand.NewPCG(1, uint64(digits)))
				var exact [numMetrics][]time.Duration
				for i := range n {
					s := Sample{Queue: d.gen(r), Service: d.gen(r), Status: 200}
					over := d.gen(r)
					s.Response = s.Queue + s.Service + over
					exact[Queue] = append(exact[Queue], s.Queue)
					exact[Service] = append(exact[Service], s.Service)
					exact[Response] = append(exact[Response], s.Response)
					exact[Overhead] = append(exact[Overhead], over)
					rt.Record(uint64(i), s)
				}
				reg.Tick(time.Now())
				snap := rt.view(winAll, true)
				if snap.Count() != n {
					t.Fatalf("count %d, want %d", snap.Count(), n)
				}
				tol := math.Pow(10, -float64(digits))
				for m := range numMetrics {
					slices.Sort(exact[m])
					for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
						want := exactQuantile(exact[m], q)
						got := snap.Quantile(m, q)
						if got < want || float64(got-want) > tol*float64(want) {
							t.Errorf("%s p%g = %v, want %v within %g", m, q*100, got, want, tol)
						}
					}
				}
			})
		}
	}
}

// exactQuantile is the q-quantile of sorted values, with HdrHistogram's
// rank: the value at position round(q·n), counting from 1.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int((q*100/100)*float64(len(sorted)) + 0.5)
	return sorted[min(max(rank, 1), len(sorted))-1]
}
