package resilience

import "testing"

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		why    Reason
		want   Outcome
	}{
		{200, ReasonNone, Success},
		{304, ReasonNone, Success},
		{404, ReasonNone, Success},
		{429, ReasonNone, Success},
		{499, ReasonNone, Success},
		{500, ReasonNone, Failure},
		{503, ReasonNone, Failure},
		{0, ConnectFailure, Failure},
		{0, Reset, Failure},
		{0, Timeout, Failure},
		{0, BadResponse, Failure},
		{0, Refused, Excluded},
	}
	for _, tt := range tests {
		if got := Classify(tt.status, tt.why); got != tt.want {
			t.Errorf("Classify(%d, %d) = %d, want %d", tt.status, tt.why, got, tt.want)
		}
	}
}
