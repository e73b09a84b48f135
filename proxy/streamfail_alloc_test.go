//go:build !race

package proxy

import (
	"strings"
	"testing"
)

// TestStreamedGETAllocatesNothing: a proxied GET whose response streams
// from the upstream (buffering off, a chunked body), with every policy
// configured, allocates nothing in steady state either: the outcome owed
// to the breaker and the upstream until the stream ends costs nothing.
func TestStreamedGETAllocatesNothing(t *testing.T) {
	for _, tt := range []struct{ name, cfg string }{
		{"plain", oneRoute},
		{"every policy", everyPolicy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := strings.TrimRight(tt.cfg, "\n") + "\n    buffering: {response: off}\n"
			allocsPerGET(t, cfg, startChunkedUpstream(t))
		})
	}
}
