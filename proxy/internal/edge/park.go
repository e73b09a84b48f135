package edge

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Parking idle connections (issue 15): fasthttp serves a connection on a
// goroutine of its own for the connection's whole life, and while the
// connection waits for its next request that goroutine keeps the stack
// it grew serving the last one (8 KiB), the request context (2 KiB) and,
// since tailguard streams request bodies, the 16 KiB read buffer. A
// plain-TCP client connection that stays idle past parkAfter is
// therefore taken away from fasthttp instead: its Read fails with
// errParked, which fasthttp takes for a keep-alive connection ending and
// answers by releasing everything and closing it; the close parks the
// socket instead (parking.park). On Linux one goroutine per listener
// watches all its parked sockets for readiness through an epoll set
// (park_linux.go), so a parked connection holds no goroutine at all;
// elsewhere a small goroutine per parked connection waits (park_other.go).
// When the client's next request arrives the connection is handed back to
// fasthttp (Server.ServeConn) as if newly accepted; when its idle timeout
// passes first, or the client closes, it is closed. A connection over TLS
// is not parked: crypto/tls keeps its record buffers with the connection
// whoever holds it.

// parkAfter is how long a keep-alive connection waits on fasthttp's
// goroutine for its next request before it is parked: long enough that
// a busy connection never is (parking and waking cost a few µs and two
// syscalls), short enough that the memory of idle ones comes back soon.
const parkAfter = 500 * time.Millisecond

// errParked ends fasthttp's wait for a connection's next request when the
// connection is to be parked.
var errParked = errors.New("idle connection parked")

// ConnState is the fasthttp.Server's ConnState hook: it tells a client
// connection when it waits for its next request (StateIdle, set after a
// response and before fasthttp reads again) and when that request has
// begun (StateActive), so that only that wait is cut short to park it.
func ConnState(c net.Conn, s fasthttp.ConnState) {
	cc, ok := c.(*clientConn)
	if !ok {
		return
	}
	switch s {
	case fasthttp.StateIdle:
		cc.idle.Store(true)
	case fasthttp.StateActive:
		cc.idle.Store(false)
	}
}

// close closes the parked connections, and any parked later.
func (p *parking) close() {
	conns := p.stop()
	for _, c := range conns {
		_ = c.Close()
	}
}

// awaitIdle is clientConn.Read while fasthttp waits for the next request:
// it reads under a deadline of parkAfter (unless fasthttp's own idle
// deadline comes first) and, when that passes with nothing read, marks
// the connection for parking and fails with errParked.
//
// When the request's first bytes arrive, the idle deadline is not set
// back if there was one: fasthttp sets one (IdleTimeout, or ReadTimeout
// in its place) only when it will set the read deadline again itself as
// soon as this read returns, before it reads more (ReadTimeout from now,
// or none; fasthttp v1.78.0 serveConn, "ReadTimeout restarts at the
// first byte"). Setting it back would cost a timer update and, the kept
// deadline being a wall-clock time, two clock reads, for a deadline
// nothing reads under.
func (c *clientConn) awaitIdle(p []byte) (int, error) {
	if c.raw == nil || c.l.parking.serve == nil {
		return c.Conn.Read(p)
	}
	deadline, soon := c.deadline(), time.Now().Add(parkAfter)
	if !deadline.IsZero() && deadline.Before(soon) {
		return c.Conn.Read(p)
	}
	if err := c.Conn.SetReadDeadline(soon); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		c.parked.Store(true)
		return 0, errParked
	}
	if err == nil && !deadline.IsZero() {
		return n, nil
	}
	if derr := c.Conn.SetReadDeadline(deadline); err == nil {
		err = derr
	}
	return n, err
}

// deadline is the read deadline last set on c (zero: none).
func (c *clientConn) deadline() time.Time {
	if ns := c.readDeadline.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// SetReadDeadline implements net.Conn, and keeps the deadline for the
// wait of a parked connection.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.keepDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline implements net.Conn, and keeps the read deadline.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.keepDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *clientConn) keepDeadline(t time.Time) {
	if t.IsZero() {
		c.readDeadline.Store(0)
	} else {
		c.readDeadline.Store(t.UnixNano())
	}
}

// rawConn is the socket under a plain-TCP connection, for the readiness
// wait of a parked one; nil for TLS and other connections.
func rawConn(c net.Conn) syscall.RawConn {
	if lc, ok := c.(lingerConn); ok {
		return lc.raw
	}
	return nil
}
