package proxy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echo is an upstream that returns the request body, framed by a
// Content-Length or (with ?chunked) streamed in chunks.
func echo(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("chunked") {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			panic(err)
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
			if err != nil {
				if err != io.EOF {
					panic(http.ErrAbortHandler)
				}
				return
			}
		}
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// onlyReader hides everything but Read, so net/http sends the body
// chunked.
type onlyReader struct{ io.Reader }

func TestBodiesStreamBothWays(t *testing.T) {
	up := startHTTP(t, http.HandlerFunc(echo))
	const cfg = `
listen: "127.0.0.1:0"
limits: {max_body_bytes: 16MiB}
upstreams:
  app: {endpoints: ["%s"]}
routes:
  - {name: default, match: {path_prefix: /}, upstream: app}
`
	addr := startProxy(t, cfg, up)
	tests := []struct {
		name    string
		size    int
		chunked bool // request body sent chunked
		query   string
	}{
		{"small", 100, false, ""},
		{"10 MiB with length", 10 << 20, false, ""},
		{"10 MiB with length, chunked reply", 10 << 20, false, "?chunked"},
		{"5 MiB chunked upload", 5 << 20, true, ""},
		{"5 MiB chunked both ways", 5 << 20, true, "?chunked"},
		{"empty", 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := randomBytes(tt.size)
			var r io.Reader = bytes.NewReader(body)
			if tt.chunked {
				r = onlyReader{r}
			}
			resp, err := http.Post("http://"+addr+"/echo"+tt.query, "application/octet-stream", r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, err %v", resp.StatusCode, err)
			}
			if sha256.Sum256(got) != sha256.Sum256(body) {
				t.Fatalf("echo differs: %d bytes back for %d", len(got), len(body))
			}
		})
	}
}

func TestChunkedBodyOverRouteLimit(t *testing.T) {
	complete := make(chan int, 10)
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err == nil {
			complete <- int(n)
		}
	}))
	const cfg = `
listen: "127.0.0.1:0"
upstreams:
  app: {endpoints: ["%s"]}
routes:
  - {name: upload, match: {path_prefix: /}, upstream: app, max_body_bytes: 1MiB}
`
	addr := startProxy(t, cfg, up)
	resp, err := http.Post("http://"+addr+"/", "application/octet-stream", onlyReader{bytes.NewReader(randomBytes(3 << 20))})
	if err != nil {
		// The proxy may close before the client has sent everything.
		if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
			t.Fatal(err)
		}
	} else {
		resp.Body.Close()
		if resp.StatusCode != 413 || resp.Header.Get("X-Tailguard-Error") != "body_too_large" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"))
		}
	}
	select {
	case n := <-complete:
		t.Fatalf("the upstream received a complete %d-byte body", n)
	default:
	}
}

// TestEarlyUpstreamAnswer: an upstream that refuses an upload from its
// head alone, without reading the body, has its answer passed on. The
// upstream closes as a careful server does (write side first, then it
// drains), and tailguard closes the client's connection the same way.
func TestEarlyUpstreamAnswer(t *testing.T) {
	up := startRaw(t, func(c net.Conn, _ int, _ string) {
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope")
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, c)
	})
	addr := startProxy(t, oneRoute, up.addr())
	resp, err := http.Post("http://"+addr+"/", "application/octet-stream", onlyReader{bytes.NewReader(randomBytes(8 << 20))})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || resp.Header.Get("X-Tailguard-Error") != "" || string(b) != "nope" {
		t.Fatalf("got %d %q %q, want the upstream's own 413", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), b)
	}
}
