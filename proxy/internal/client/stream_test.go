package client

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

// decodeChunked runs streamBody's chunked decoder over raw bytes, outside
// any connection, and returns what it yields and whether it reached the
// body's end.
func decodeChunked(raw []byte) ([]byte, bool, error) {
	b := &streamBody{br: bufio.NewReaderSize(bytes.NewReader(raw), 4096), framing: framedChunked}
	out, err := io.ReadAll(onlyRead{b})
	return out, b.done, err
}

type onlyRead struct{ r io.Reader }

func (o onlyRead) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestChunkedDecoding(t *testing.T) {
	tests := []struct {
		name, give, want string
		ok               bool
	}{
		{"simple", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", true},
		{"extension", "5;name=value\r\nhello\r\n0\r\n\r\n", "hello", true},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", true},
		{"trailers dropped", "2\r\nhi\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", "hi", true},
		{"empty body", "0\r\n\r\n", "", true},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", "", false},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello", false},
		{"not hex", "zz\r\nhello\r\n0\r\n\r\n", "", false},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", "", false},
		{"overflow", "10000000000000000\r\n", "", false},
		{"truncated data", "5\r\nhel", "hel", false},
		{"no last chunk", "5\r\nhello\r\n", "hello", false},
		{"huge extension", "5;" + strings.Repeat("x", 8<<10) + "\r\nhello\r\n0\r\n\r\n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, done, err := decodeChunked([]byte(tt.give))
			if ok := err == nil && done; ok != tt.ok || string(got) != tt.want {
				t.Errorf("got %q, complete %v, err %v; want %q, complete %v", got, done, err, tt.want, tt.ok)
			}
		})
	}
}

// FuzzChunkedDecoding: the decoder never panics, never yields more bytes
// than it was given, and whatever it accepts as a complete body, net/http's
// own chunked reader decodes to the same bytes.
func FuzzChunkedDecoding(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n",
		"0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"ffffffffffffffff\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, done, err := decodeChunked(raw)
		if len(got) > len(raw) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(raw))
		}
		if err != nil || !done {
			return
		}
		want, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("accepted %q, which net/http refuses: %v", raw, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %q, net/http %q", got, want)
		}
	})
}
