package edge

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHeadLen: headLen is the wire size of the head fasthttp parsed, so
// that the body bytes read with it are charged to the chunk meter exactly.
func TestHeadLen(t *testing.T) {
	for _, head := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a/b?c=%2F&d HTTP/1.1\r\nHost: example.test:8080\r\nX-A:  b \r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
		"PUT http://example.test/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(head + "1\r\nx\r\n0\r\n\r\n"))); err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		if got := headLen(&h); got != len(head) {
			t.Errorf("headLen(%q) = %d, want %d", head, got, len(head))
		}
	}
}
