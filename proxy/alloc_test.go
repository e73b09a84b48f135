//go:build !race

package proxy

import (
	"strings"
	"testing"
)

// TestProxiedGETAllocatesNothing: a proxied GET, end to end (fasthttp
// client → tailguard → fasthttp upstream, over loopback TCP), allocates
// nothing in steady state. The count is process-wide, so it holds for
// tailguard's part whatever the client and upstream do.
//
// Buffering is on (the default) in each case; the chunked one's response
// is read through the spool.
func TestProxiedGETAllocatesNothing(t *testing.T) {
	for _, tt := range []struct {
		name, cfg string
		upstream  func(testing.TB) string
	}{
		{"plain", oneRoute, startFastUpstream},
		{"every policy", everyPolicy, startFastUpstream},
		{"every policy in shadow mode", everyPolicyShadow, startFastUpstream},
		{"chunked response, buffered", oneRoute, startChunkedUpstream},
	} {
		t.Run(tt.name, func(t *testing.T) { allocsPerGET(t, tt.cfg, tt.upstream(t)) })
	}
}

func allocsPerGET(t *testing.T, cfg, up string) {
	client, req, resp := proxiedGETFrom(t, cfg, up, nil)
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocs per proxied GET = %v, want 0", allocs)
	}
}

// TestProxiedSmallPOSTAllocates: a POST whose body fasthttp has already
// read (up to prereadBytes) is taken whole on any route, so it needs no
// streamed body and no upload goroutine (6 allocations a request when it
// streamed). One allocation remains, and it is fasthttp's: after the
// handler its server discards what is left of the request stream with
// io.CopyN, whose io.LimitReader escapes.
func TestProxiedSmallPOSTAllocates(t *testing.T) {
	client, req, resp := proxiedGET(t, oneRoute)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.SetBody([]byte(`{"items":[` + strings.Repeat(`{"id":42,"name":"widget"},`, 40) + `{}]}`))
	for range 100 { // warm the pools for POST
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	})
	if allocs > 1 {
		t.Errorf("allocs per proxied small POST = %v, want at most fasthttp's 1", allocs)
	}
}
