package metrics

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is an injected clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// set moves the clock to start + d and returns the new time.
func (c *fakeClock) set(start time.Time, d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = start.Add(d)
	return c.t
}

// newTestRegistry returns a registry on a fake clock with the given
// routes configured.
func newTestRegistry(t testing.TB, routes ...RouteConfig) (*Registry, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	reg := NewRegistry(RegistryOptions{Now: clock.Now, Shards: 4})
	reg.Configure(routes)
	return reg, clock
}

// ok is a sample of a plain successful request.
func ok(d time.Duration) Sample {
	return Sample{Queue: d / 10, Service: d / 2, Response: d, Status: 200}
}
