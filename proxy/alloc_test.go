//go:build !race

package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestProxiedGETAllocatesNothing: a proxied GET, end to end (fasthttp
// client → tailguard → fasthttp upstream, over loopback TCP), allocates
// nothing in steady state. The count is process-wide, so it holds for
// tailguard's part whatever the client and upstream do.
func TestProxiedGETAllocatesNothing(t *testing.T) {
	client, req, resp := proxiedGET(t)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per proxied GET = %v, want 0", allocs)
	}
}

// proxiedGET starts a fasthttp upstream and tailguard in front of it, and
// returns a client and a request for a GET through tailguard.
func proxiedGET(t testing.TB) (*fasthttp.HostClient, *fasthttp.Request, *fasthttp.Response) {
	up := startFastUpstream(t)
	addr := startProxy(t, oneRoute, up)
	client := &fasthttp.HostClient{Addr: addr, MaxIdemponentCallAttempts: 1}
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + "/api/items?id=42")
	req.Header.Set("Accept", "application/json")
	resp := fasthttp.AcquireResponse()
	t.Cleanup(func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		client.CloseIdleConnections()
	})
	for range 100 { // warm pools
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
	}
	return client, req, resp
}
