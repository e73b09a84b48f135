package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"syscall"

	"github.com/valyala/fasthttp"
)

// caller makes a Load's requests: one call, or a fan-out of parallel
// calls, over a pool of keep-alive connections to the one target.
type caller struct {
	l      Load
	client *fasthttp.HostClient
	// warm holds the connections connect dialled before the run, handed
	// to the client as it opens new ones.
	warm chan net.Conn
}

// newCaller builds the client for l, whose URL defaults has checked.
func newCaller(l Load) (*caller, error) {
	u, _ := url.Parse(l.URL)
	c := &caller{l: l, warm: make(chan net.Conn, l.Connections*l.Fanout)}
	tc, err := clientTLS(l, u)
	if err != nil {
		return nil, err
	}
	c.client = &fasthttp.HostClient{
		IsTLS:     tc != nil,
		TLSConfig: tc,
		Addr:      u.Host,
		MaxConns:  cap(c.warm),
		Dial:      c.dial,
		// The most recently used idle connection first, as Go's
		// net/http does: the connections in use stay as few as the load
		// needs, and the warm ones beyond that wait untouched instead of
		// each waking a cold goroutine in the target in turn.
		ConnPoolStrategy: fasthttp.LIFO,
		// A request the generator times out is its own measurement: never
		// retried behind its back, never queued for a connection longer
		// than it may take.
		MaxIdemponentCallAttempts: 1,
		MaxConnWaitTimeout:        l.Timeout,
		NoDefaultUserAgentHeader:  true,
	}
	return c, nil
}

// clientTLS is the TLS configuration for an https target (nil for http):
// the target's host as the name to verify, l.CAFile's CAs or none
// verified (l.Insecure), and no session cache, so that no handshake is
// ever a resumption.
func clientTLS(l Load, u *url.URL) (*tls.Config, error) {
	if u.Scheme != "https" {
		return nil, nil
	}
	tc := &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: l.Insecure, CurvePreferences: l.Curves}
	if l.CAFile != "" {
		b, err := os.ReadFile(l.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate", l.CAFile)
		}
	}
	return tc, nil
}

// connect opens the run's connections before its clock starts, as wrk
// opens its -c connections before its first request. Dialled in the
// measured path, hundreds of connections opening at the onset of a load
// step (each the target's accept and new goroutine) stall generator and
// target alike on a small machine, and the stall, which a client with a
// warm pool never sees, would be charged to the first requests. It stops
// at the first failure: the client then dials on demand, and a target
// that refuses connections is measured by the run itself. Over TLS each
// is handshaken too, as wrk does; with NoKeepAlive there is nothing to
// open ahead, every request opening its own.
func (c *caller) connect(ctx context.Context) {
	if c.l.NoKeepAlive {
		return
	}
	var d net.Dialer
	for range cap(c.warm) {
		conn, err := d.DialContext(ctx, "tcp", c.client.Addr)
		if err != nil {
			return
		}
		if c.client.IsTLS {
			tc := tls.Client(conn, c.client.TLSConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return
			}
			conn = tc
		}
		c.warm <- conn
	}
}

// dial hands out a warm connection still fit for a request, or dials one
// if none is left. A TLS connection is handed out unchecked: its socket
// may hold the server's post-handshake messages (session tickets), which
// a peek cannot tell from a 408 or a close.
func (c *caller) dial(addr string) (net.Conn, error) {
	for {
		select {
		case conn := <-c.warm:
			if _, isTLS := conn.(*tls.Conn); isTLS || quiet(conn) {
				return conn, nil
			}
			_ = conn.Close()
		default:
			return fasthttp.DialTimeout(addr, c.l.Timeout)
		}
	}
}

// quiet reports whether the target has neither closed conn nor written on
// it while it waited unused: servers close a connection that sends
// nothing for a while (tailguard at read_header_timeout, nginx at
// client_header_timeout), and some write a 408 first. One non-blocking
// MSG_PEEK finds either.
func quiet(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var peekErr error
	if err := raw.Control(func(fd uintptr) {
		var b [1]byte
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); err != nil {
		return false
	}
	// Nothing to read is EAGAIN; a byte, or the close (0 bytes), is nil.
	return errors.Is(peekErr, syscall.EAGAIN)
}

// close closes the client's idle connections and the warm ones unused.
func (c *caller) close() {
	c.client.CloseIdleConnections()
	for {
		select {
		case conn := <-c.warm:
			_ = conn.Close()
		default:
			return
		}
	}
}

// do makes one request of the load: Fanout parallel calls. It returns
// the class of the worst call (an error before a 5xx before a 4xx before
// a success) and the number of calls.
func (c *caller) do() (string, int) {
	n := c.l.Fanout
	if n == 1 {
		return c.call(), 1
	}
	classes := make([]string, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { classes[i] = c.call() })
	}
	classes[0] = c.call()
	wg.Wait()
	worst := classes[0]
	for _, cl := range classes[1:] {
		if severity(cl) > severity(worst) {
			worst = cl
		}
	}
	return worst, n
}

// severity orders classes for a fan-out: its worst call is its outcome.
func severity(class string) int {
	switch {
	case IsError(class):
		return 3
	case class[0] == '5':
		return 2
	case class[0] == '4':
		return 1
	default:
		return 0
	}
}

// call makes one HTTP request and returns its class.
func (c *caller) call() string {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.l.URL)
	req.Header.SetMethod(c.l.Method)
	if c.l.NoKeepAlive {
		req.SetConnectionClose()
	}
	for _, h := range c.l.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	if c.l.Body != nil {
		req.SetBody(c.l.Body)
	}
	if err := c.client.DoTimeout(req, resp, c.l.Timeout); err != nil {
		return "error " + errorKind(err)
	}
	return classOf(resp.StatusCode(), resp.Header.Peek("X-Tailguard-Error"))
}

// errorKind names a failed request's failure.
func errorKind(err error) string {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	default:
		return "other"
	}
}
