package resilience

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: the
// policies start none of their own, and tests that start some (concurrent
// breaker probes, budget races) must wait for them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
