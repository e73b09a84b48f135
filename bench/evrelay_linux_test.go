//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// evTestBody is the body the test upstream sends for /n/SIZE.
func evTestBody(size int) []byte {
	return bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
}

// startEvRelay runs an event-loop relay in front of an upstream that
// answers /n/SIZE with SIZE bytes (Content-Length framed), and returns the
// relay's address and the count of connections the upstream accepted.
func startEvRelay(t *testing.T) (string, *httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		size, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/n/"))
		if err != nil {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if req.Method != http.MethodHead {
			_, _ = w.Write(evTestBody(size))
		}
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	r, err := newEvRelay("127.0.0.1:0", up.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return r.addr, up, &conns
}

// evClient is one keep-alive client connection.
type evClient struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialEv(t *testing.T, addr string) *evClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &evClient{conn: conn, br: bufio.NewReader(conn)}
}

// do sends one request and reads its response whole.
func (c *evClient) do(method, path, extra string) (*http.Response, []byte, error) {
	if _, err := fmt.Fprintf(c.conn, "%s %s HTTP/1.1\r\nHost: relay\r\n%s\r\n", method, path, extra); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// get checks that GET /n/size answers 200 with the body intact.
func (c *evClient) get(size int) error {
	resp, body, err := c.do("GET", fmt.Sprintf("/n/%d", size), "")
	switch {
	case err != nil:
		return fmt.Errorf("GET %d bytes: %w", size, err)
	case resp.StatusCode != http.StatusOK || resp.Close:
		return fmt.Errorf("GET %d bytes: %s, close %v; want 200 kept alive", size, resp.Status, resp.Close)
	case !bytes.Equal(body, evTestBody(size)):
		return fmt.Errorf("GET %d bytes: got %d bytes, not the upstream's", size, len(body))
	}
	return nil
}

// TestEvRelayKeepAlive sends keep-alive GETs of 0 B, 1 B and 64 KiB
// bodies, and a HEAD, over one connection and over several at once: each
// arrives intact and every connection stays open.
func TestEvRelayKeepAlive(t *testing.T) {
	addr, _, _ := startEvRelay(t)
	sizes := []int{0, 1, 64 << 10, 1, 0, 64 << 10}
	c := dialEv(t, addr)
	for _, size := range sizes {
		if err := c.get(size); err != nil {
			t.Fatal(err)
		}
	}
	resp, body, err := c.do("HEAD", "/n/65536", "")
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != 65536 || len(body) != 0 {
		t.Fatalf("HEAD: %v, %v, %d body bytes; want 200, Content-Length 65536, no body", resp, err, len(body))
	}
	if err := c.get(1); err != nil {
		t.Fatalf("after HEAD: %v", err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		c := dialEv(t, addr)
		wg.Go(func() {
			for range 5 {
				for _, size := range sizes {
					if err := c.get(size); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestEvRelayBackpressure relays an 8 MiB body, more than loopback's
// socket buffers hold, to a client that waits before it reads: the relay
// stops reading the upstream while the client's socket is full and
// resumes when it drains, and the body arrives intact.
func TestEvRelayBackpressure(t *testing.T) {
	addr, _, _ := startEvRelay(t)
	c := dialEv(t, addr)
	if _, err := fmt.Fprintf(c.conn, "GET /n/%d HTTP/1.1\r\nHost: relay\r\n\r\n", 8<<20); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the relay fills the client's socket meanwhile
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(body, evTestBody(8<<20)) {
		t.Fatalf("%d bytes, %v; want the upstream's 8 MiB", len(body), err)
	}
	if err := c.get(1); err != nil {
		t.Fatalf("after the large body: %v", err)
	}
}

// TestEvRelayRefusesPOST gets a 501 for a POST and a GET with a body, and
// the loop goes on serving.
func TestEvRelayRefusesPOST(t *testing.T) {
	addr, _, _ := startEvRelay(t)
	for _, req := range [][2]string{{"POST", "Content-Length: 3\r\n"}, {"GET", "Transfer-Encoding: chunked\r\n"}} {
		c := dialEv(t, addr)
		resp, _, err := c.do(req[0], "/n/1", req[1])
		if err != nil {
			t.Fatalf("%s %q: %v", req[0], req[1], err)
		}
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("%s %q: %s, want 501", req[0], req[1], resp.Status)
		}
	}
	if err := dialEv(t, addr).get(1); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

// TestEvRelaySurvivesUpstreamClose closes the upstream's idle connections
// between two requests on one client connection: the second still gets
// its 200, over a fresh upstream connection.
func TestEvRelaySurvivesUpstreamClose(t *testing.T) {
	addr, up, conns := startEvRelay(t)
	c := dialEv(t, addr)
	if err := c.get(1); err != nil {
		t.Fatal(err)
	}
	up.CloseClientConnections()
	if err := c.get(64 << 10); err != nil {
		t.Fatalf("after the upstream closed: %v", err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("upstream accepted %d connections, want 2", n)
	}
}
