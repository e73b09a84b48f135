package client

import (
	"fmt"
	"io"
	"testing"

	"tailguard/proxy/internal/cause"
	"tailguard/resilience"
)

// TestClassify: each round-trip error, also wrapped, gets its cause and
// its reason; anything else is a reset.
func TestClassify(t *testing.T) {
	tests := []struct {
		err   error
		cause cause.Cause
		why   resilience.Reason
	}{
		{nil, cause.None, resilience.ReasonNone},
		{errPoolFull, cause.PoolFull, resilience.Refused},
		{errConnectFailure, cause.ConnectFailure, resilience.ConnectFailure},
		{errConnectTimeout, cause.ConnectTimeout, resilience.ConnectFailure},
		{fmt.Errorf("%w: x509: unknown authority", errTLS), cause.TLSFailure, resilience.ConnectFailure},
		{fmt.Errorf("dial: %w", errTimeout), cause.Timeout, resilience.Timeout},
		{errBodyTooLarge, cause.BodyTooLarge, resilience.Refused},
		{errClientBody, cause.BadRequest, resilience.Refused},
		{errBadResponse, cause.BadResponse, resilience.BadResponse},
		{errChunkSyntax, cause.BadResponse, resilience.BadResponse},
		{errReset, cause.UpstreamReset, resilience.Reset},
		{errUploadAborted, cause.UpstreamReset, resilience.Reset},
		{io.ErrUnexpectedEOF, cause.UpstreamReset, resilience.Reset},
	}
	for _, tt := range tests {
		if c, why := Classify(tt.err); c != tt.cause || why != tt.why {
			t.Errorf("Classify(%v) = %s, %v; want %s, %v", tt.err, c, why, tt.cause, tt.why)
		}
	}
}
