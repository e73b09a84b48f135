package proxy

import (
	"errors"
	"net"
	"syscall"
	"time"
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
	// peeked is what the last peek saw: peekStray, peekClosed or peekClean.
	peeked peekResult
}

type peekResult uint8

const (
	peekClean  peekResult = iota // nothing pending: safe to reuse
	peekStray                    // bytes the upstream sent after its response
	peekClosed                   // the upstream closed (FIN) or reset the connection
)

// dialer dials endpoints with the upstream's connect timeout.
type dialer struct {
	connectTimeout time.Duration
}

// errConnectTimeout marks a dial that ran out of time, so that it is
// answered 504 rather than 502.
var errConnectTimeout = errors.New("connect timeout")

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
	return c.peeked == peekClean
}

func (c *upstreamConn) peekFD(fd uintptr) { c.peeked = peekSocket(fd) }

// peekSocket looks, without blocking or consuming anything, at what waits
// on the socket: nothing, bytes, or the peer's close (or an error).
func peekSocket(fd uintptr) peekResult {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		return peekClean
	case err != nil, n == 0:
		return peekClosed
	default:
		return peekStray
	}
}
