package client

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRequestBodyEnds: a body of known length that ends short of it (the
// client closed its side mid-body, which fasthttp's stream reports as a
// plain end) is the client's failure, as is one over the limit; a whole
// body ends cleanly.
func TestRequestBodyEnds(t *testing.T) {
	tests := []struct {
		name    string
		sent    string
		length  int
		maxBody int64
		want    error // nil: read to a clean end
	}{
		{"whole, known length", "hello", 5, -1, nil},
		{"short of its length", "hel", 5, -1, errClientBody},
		{"empty, length owed", "", 5, -1, errClientBody},
		{"unknown length, within the limit", "hello", -1, 5, nil},
		{"unknown length, over the limit", "hello!", -1, 5, errBodyTooLarge},
		{"unknown length, no limit", "hello", -1, -1, nil},
		{"known length: the limit was checked before", "hello", 5, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewRequestBody(strings.NewReader(tt.sent), tt.length, tt.maxBody)
			_, err := io.ReadAll(b)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("read: %v, want %v", err, tt.want)
			}
			if tt.want != nil && !clientSide(b.err) {
				t.Errorf("remembered %v: not the client's failure", b.err)
			}
		})
	}
}
