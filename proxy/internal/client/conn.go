package client

import (
	"errors"
	"net"
	"syscall"
	"time"

	"tailguard/proxy/internal/peek"
)

// upstreamConn is a connection to one endpoint. It remembers its raw socket
// so that a pooled connection can be checked for bytes nobody asked for
// before it carries another request (ARCHITECTURE.md, "response desync").
type upstreamConn struct {
	*net.TCPConn
	raw    syscall.RawConn
	peekFn func(fd uintptr)
	// used is set when the connection is first handed out; a fresh one
	// needs no reuse check, as nothing has been sent on it yet.
	used bool
	// peeked is what the last peek saw.
	peeked peek.Result
}

// dialer dials endpoints with the upstream's connect timeout.
type dialer struct {
	connectTimeout time.Duration
}

// dial is a fasthttp.DialFuncWithTimeout. timeout is what is left of the
// attempt's deadline; the connect timeout caps it.
func (d dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	t := d.connectTimeout
	if timeout > 0 && timeout < t {
		t = timeout
	}
	c, err := net.DialTimeout("tcp", addr, t)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, errConnectTimeout
		}
		return nil, err
	}
	tc := c.(*net.TCPConn)
	raw, err := tc.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	uc := &upstreamConn{TCPConn: tc, raw: raw}
	uc.peekFn = uc.peekFD
	return uc, nil
}

// reusable reports whether nothing is waiting to be read on the idle
// connection. A byte waiting means the upstream wrote past its last
// response (the next request would read it as its own response); a
// zero-length read means the upstream closed the connection. Either way the
// connection must not be used. The check is one non-blocking recv with
// MSG_PEEK; it allocates nothing.
func (c *upstreamConn) reusable() bool {
	if err := c.raw.Control(c.peekFn); err != nil {
		return false
	}
	return c.peeked == peek.Clean
}

func (c *upstreamConn) peekFD(fd uintptr) { c.peeked = peek.Socket(fd) }
