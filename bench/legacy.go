package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// legacyApp is the kind of upstream the slow-client shield is for: like
// Python's http.server.HTTPServer (or one sync worker of Gunicorn or
// PHP-FPM) it serves one connection at a time. It reads a request, its
// body whole, writes the whole response (HTTP/1.0, then it closes the
// connection) and only then accepts the next; while a client takes its
// time over a response larger than the socket buffers, nobody else is
// served. /large answers largeSize bytes, any other path a small body.
type legacyApp struct {
	ln    net.Listener
	large []byte
	done  chan struct{}
	// largeServed counts /large responses written whole.
	largeServed atomic.Int64

	mu      sync.Mutex
	serving net.Conn // the connection being served, for close
	closed  bool
}

// legacyConnLimit bounds one connection's service, so that a client that
// never reads cannot keep the app past a scenario; far longer than any
// arm.
const legacyConnLimit = 5 * time.Minute

// startLegacyApp starts a legacyApp on a free loopback port.
func startLegacyApp(largeSize int) (*legacyApp, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("legacy app: %w", err)
	}
	a := &legacyApp{ln: ln, large: make([]byte, largeSize), done: make(chan struct{})}
	for i := range a.large {
		a.large[i] = 'x'
	}
	go a.serve()
	return a, nil
}

// addr is the app's host:port.
func (a *legacyApp) addr() string { return a.ln.Addr().String() }

// serve accepts and serves connections one after another until close.
func (a *legacyApp) serve() {
	defer close(a.done)
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			_ = c.Close()
			return
		}
		a.serving = c
		a.mu.Unlock()
		a.serveConn(c)
		a.mu.Lock()
		a.serving = nil
		a.mu.Unlock()
	}
}

// legacySmallBody is the answer to any path but /large.
var legacySmallBody = []byte("small\n")

// serveConn answers one request on c and closes it.
func (a *legacyApp) serveConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(legacyConnLimit))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		return
	}
	body := legacySmallBody
	if strings.HasPrefix(req.URL.Path, "/large") {
		body = a.large
	}
	if _, err := fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", len(body)); err != nil {
		return
	}
	if _, err := c.Write(body); err == nil && len(body) == len(a.large) {
		a.largeServed.Add(1)
	}
}

// close stops accepting, cuts the connection being served, and waits for
// the app to stop.
func (a *legacyApp) close() {
	a.mu.Lock()
	a.closed = true
	if a.serving != nil {
		_ = a.serving.Close()
	}
	a.mu.Unlock()
	_ = a.ln.Close()
	<-a.done
}

// A slow reader reads a response a few bytes at a time: it has a 4 KiB
// receive buffer, so that the window it offers stays small, and reads
// slowReadBytes every slowReadPause.
const (
	slowReadBytes = 64
	slowReadPause = 100 * time.Millisecond
)

// slowReaders are n slow readers of one URL path, each on a connection
// of its own, reading until stop.
type slowReaders struct {
	stopping chan struct{}
	wg       sync.WaitGroup
	// started counts readers that have the response's first bytes.
	started atomic.Int64
	errs    chan error
}

// startSlowReaders starts n slow readers of path at addr.
func startSlowReaders(addr, path string, n int) *slowReaders {
	s := &slowReaders{stopping: make(chan struct{}), errs: make(chan error, n)}
	for range n {
		s.wg.Go(func() {
			if err := s.read(addr, path); err != nil {
				s.errs <- err
			}
		})
	}
	return s
}

// read is one slow reader: it sends the request and reads the response
// slowly until stop or the response ends.
func (s *slowReaders) read(addr, path string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: legacy.test\r\n\r\n", path); err != nil {
		return err
	}
	buf := make([]byte, slowReadBytes)
	for got := false; ; {
		select {
		case <-s.stopping:
			return nil
		case <-time.After(slowReadPause):
		}
		_ = c.SetReadDeadline(time.Now().Add(slowReadPause))
		n, err := c.Read(buf)
		if n > 0 && !got {
			got = true
			s.started.Add(1)
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

// stop ends the readers and returns the first error one had, if any.
func (s *slowReaders) stop() error {
	close(s.stopping)
	s.wg.Wait()
	close(s.errs)
	return <-s.errs
}
