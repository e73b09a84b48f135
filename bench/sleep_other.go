//go:build !linux

package bench

import (
	"context"
	"time"
)

// sleepUntil waits until t, or until ctx ends (then it returns false).
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
