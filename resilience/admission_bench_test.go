package resilience

import (
	"testing"
	"time"
)

// Run with -cpu 1,2 here; -cpu 1,4,16 on bigger machines shows how the
// shared in-flight counter scales.

// BenchmarkAdmitRelease is the fast path on one goroutine: below the
// limit, nobody waiting, a deadline to check and a sample to add.
func BenchmarkAdmitRelease(b *testing.B) {
	a := newAdaptive()
	deadline := admAt(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		p, _ := a.Admit(admT0, deadline, Default)
		p.Release(time.Millisecond, true)
	}
}

// BenchmarkAdmitReleaseParallel is the fast path from all Ps at once: the
// in-flight counter and the RTT sums are shared.
func BenchmarkAdmitReleaseParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    AdmissionSettings
	}{
		{"fixed", AdmissionSettings{MaxConcurrency: 1 << 20}},
		{"adaptive", AdmissionSettings{Adaptive: true, LimitMin: 1 << 20}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := NewAdmission(bc.s)
			deadline := admAt(time.Second)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, _ := a.Admit(admT0, deadline, Default)
					p.Release(time.Millisecond, true)
				}
			})
		})
	}
}

// BenchmarkAdmitContended is the slow path: a limit of 1 shared by all
// goroutines, so most admissions queue and are handed a slot by a
// release. With -cpu 1 the queue is rarely used (nobody runs while the
// slot is held).
func BenchmarkAdmitContended(b *testing.B) {
	a := NewAdmission(AdmissionSettings{MaxConcurrency: 1, Queue: 64, QueueTimeout: time.Minute})
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := a.Admit(admT0, time.Time{}, Default)
			if err != nil {
				b.Error(err)
				return
			}
			p.Release(0, false)
		}
	})
}
