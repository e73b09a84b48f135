package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// runClosed runs Connections workers that each send a request as soon as
// their previous one is answered, until Count requests were sent,
// Duration passed or ctx ended. Latency runs from each actual send: in a
// closed loop there is no intended start, which is why closed loops
// measure throughput, not latency. do makes one request and returns its
// class and calls (caller.do, or a WebSocket echo).
func runClosed(ctx context.Context, l Load, do func() (string, int), rec *recorder, start time.Time) {
	var sent atomic.Int64
	end := time.Time{}
	if l.Duration > 0 {
		end = start.Add(l.Duration)
	}
	var wg sync.WaitGroup
	for range l.Connections {
		wg.Go(func() {
			for ctx.Err() == nil && (end.IsZero() || time.Now().Before(end)) {
				if n := sent.Add(1); l.Count > 0 && n > l.Count {
					return
				}
				t := time.Now()
				class, calls := do()
				rec.record(class, time.Since(t), calls)
			}
		})
	}
	wg.Wait()
}
