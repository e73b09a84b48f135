package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
)

// TestShutdownBeforeServe: a Shutdown that comes before Serve (or before
// Serve has handed its listener to fasthttp) still stops it; Serve
// returns at once instead of accepting for ever.
func TestShutdownBeforeServe(t *testing.T) {
	cfg, err := config.Quick("http://127.0.0.1:1", config.Overrides{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range []string{"shutdown first", "at once"} {
		s, err := NewServer(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if order == "shutdown first" {
			_ = s.Shutdown(context.Background())
			go func() { done <- s.Serve(ln) }()
		} else {
			go func() { done <- s.Serve(ln) }()
			_ = s.Shutdown(context.Background())
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: serve: %v", order, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Serve still accepting 5s after Shutdown", order)
		}
	}
}
