package bench

import (
	"context"
	"syscall"
	"time"
)

// sleepUntil waits until t, or until ctx ends (then it returns false).
// It sleeps with nanosleep(2) on its own thread because Go's timers, when
// the process is otherwise idle, wake a goroutine about half a
// millisecond late (0.55–0.7 ms at the median on this project's 2-vCPU
// VM, against 0.11–0.15 ms for nanosleep): an open-loop generator records
// its own lateness as the target's latency, so it must be late as little
// as it can. Sleeps are cut into 50 ms slices so that ctx is noticed.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		if ctx.Err() != nil {
			return false
		}
		w := time.Until(t)
		if w <= 0 {
			return true
		}
		ts := syscall.NsecToTimespec(int64(min(w, 50*time.Millisecond)))
		_ = syscall.Nanosleep(&ts, nil)
	}
}
