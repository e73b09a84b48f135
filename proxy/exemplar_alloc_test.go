//go:build !race

package proxy

import "testing"

// TestProxiedGETWithTraceparentAllocatesNothing: reading a request's
// trace id for its exemplar allocates nothing.
func TestProxiedGETWithTraceparentAllocatesNothing(t *testing.T) {
	client, req, resp := proxiedGET(t, oneRoute)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per proxied GET with a traceparent = %v, want 0", allocs)
	}
}
