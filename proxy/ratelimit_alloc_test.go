//go:build !race

package proxy

import (
	"strings"
	"testing"
)

// fairPolicy is everyPolicy with fair admission and a rate limit the
// benchmark's one client never reaches.
var fairPolicy = strings.Replace(everyPolicy,
	"priority_header: X-Priority}",
	"priority_header: X-Priority, fair_by: client_ip}\n    rate_limit: {rate: 1000000, key: \"header:Accept\"}", 1)

// TestProxiedGETFairAllocatesNothing: fair admission and a rate limit,
// configured and not limiting, add no allocation to a proxied GET.
func TestProxiedGETFairAllocatesNothing(t *testing.T) {
	if !strings.Contains(fairPolicy, "fair_by") {
		t.Fatal("fairPolicy lost its fair_by")
	}
	allocsPerGET(t, fairPolicy, startFastUpstream(t))
}

// BenchmarkProxiedGETFair is BenchmarkProxiedGET on a route with fair_by
// and rate_limit configured and not limiting.
func BenchmarkProxiedGETFair(b *testing.B) {
	client, req, resp := proxiedGET(b, fairPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("status %d, err %v", resp.StatusCode(), err)
		}
	}
}
