//go:build !race

package proxy

import "testing"

// TestProxiedGETAllocatesNothing: a proxied GET, end to end (fasthttp
// client → tailguard → fasthttp upstream, over loopback TCP), allocates
// nothing in steady state. The count is process-wide, so it holds for
// tailguard's part whatever the client and upstream do.
func TestProxiedGETAllocatesNothing(t *testing.T) {
	for name, cfg := range map[string]string{"plain": oneRoute, "every policy": everyPolicy} {
		t.Run(name, func(t *testing.T) { allocsPerGET(t, cfg) })
	}
}

func allocsPerGET(t *testing.T, cfg string) {
	client, req, resp := proxiedGET(t, cfg)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per proxied GET = %v, want 0", allocs)
	}
}
