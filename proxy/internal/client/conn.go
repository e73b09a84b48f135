package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/peek"
)

// upstreamConn is a connection to one endpoint. It remembers its raw socket
// so that a pooled connection can be checked for bytes nobody asked for
// before it carries another request (ARCHITECTURE.md, "response desync").
type upstreamConn struct {
	net.Conn // the TCP connection, or TLS over it
	raw      syscall.RawConn
	// tls is the TLS layer over the socket; nil for plain HTTP.
	tls    *tls.Conn
	peekFn func(fd uintptr)
	// used is set when the connection is first handed out; a fresh one
	// needs no reuse check, as nothing has been sent on it yet.
	used bool
	// peeked is what the last peek saw.
	peeked peek.Result
	// sendFn is sendFD bound once (a method value allocates); the fields
	// after it are send's state, set for the length of one send.
	sendFn   func(fd uintptr) bool
	sendStep sendStep
	sendErr  error
	sendReq  *fasthttp.Request
	sendBy   *Endpoint
}

// dialer dials endpoints with the upstream's connect timeout, and
// handshakes TLS when tls is set, within the same time.
type dialer struct {
	connectTimeout time.Duration
	tls            *tls.Config
}

// dial is a fasthttp.DialFuncWithTimeout. timeout is what is left of the
// attempt's deadline; the connect timeout caps it.
func (d dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	t := d.connectTimeout
	if timeout > 0 && timeout < t {
		t = timeout
	}
	start := time.Now()
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
	uc := &upstreamConn{Conn: tc, raw: raw}
	uc.peekFn, uc.sendFn = uc.peekFD, uc.sendFD
	if d.tls != nil {
		uc.tls = tls.Client(&recordConn{TCPConn: tc}, d.tls)
		uc.Conn = uc.tls
		if err := handshake(uc.tls, start.Add(t)); err != nil {
			_ = tc.Close()
			return nil, err
		}
	}
	return uc, nil
}

// handshake runs the TLS handshake by deadline. A handshake that runs out
// of time is a connect timeout; one the upstream's certificate fails is
// errTLS, answered with a cause of its own.
func handshake(c *tls.Conn, deadline time.Time) error {
	_ = c.SetDeadline(deadline)
	err := c.Handshake()
	var ne net.Error
	switch {
	case err == nil:
		return c.SetDeadline(time.Time{})
	case errors.As(err, &ne) && ne.Timeout():
		return errConnectTimeout
	default:
		return fmt.Errorf("%w: %w", errTLS, err)
	}
}

// socketIdle reports whether nothing is waiting to be read on the idle
// connection's socket. A byte waiting means the upstream wrote past its
// last response (the next request would read it as its own response); a
// zero-length read means the upstream closed the connection. Either way the
// connection must not be used. The check is one non-blocking recv with
// MSG_PEEK; it allocates nothing. Over TLS, a stray record or a
// close_notify waits on the socket too, and the TLS layer's own buffers
// are checked by tlsIdle.
func (c *upstreamConn) socketIdle() bool {
	return c.raw.Control(c.peekFn) == nil && c.peeked == peek.Clean
}

// tlsIdle reports whether the TLS layer holds nothing it has read from
// the socket but not handed out: record bytes read ahead, or plaintext of
// a record only partly read. A read with a deadline already passed
// returns such bytes if there are any, and otherwise fails at once,
// without a system call and without harming the connection (a timeout is
// not a TLS error).
func tlsIdle(c *tls.Conn) bool {
	var b [1]byte
	_ = c.SetReadDeadline(aLongTimeAgo)
	n, err := c.Read(b[:])
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// recordConn is the socket under an upstream TLS connection. It hands the
// TLS layer no byte past the end of the record it is reading: left to
// itself, the TLS layer reads ahead whatever the socket holds, and a stray
// record read ahead in part would be invisible to both the socket peek and
// tlsIdle, and read as the next response. Stopping at record boundaries
// costs a second read per record: the header, then the rest.
type recordConn struct {
	*net.TCPConn
	head  [recordHeaderLen]byte
	headN int // header bytes read of the next record
	left  int // bytes left in the current record's body
}

const recordHeaderLen = 5 // type, version (2), length (2)

// Read implements net.Conn.
func (c *recordConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		p = p[:min(len(p), recordHeaderLen-c.headN)]
		n, err := c.TCPConn.Read(p)
		c.headN += copy(c.head[c.headN:], p[:n])
		if c.headN == recordHeaderLen {
			c.left, c.headN = int(c.head[3])<<8|int(c.head[4]), 0
		}
		return n, err
	}
	n, err := c.TCPConn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

func (c *upstreamConn) peekFD(fd uintptr) { c.peeked = peek.Socket(fd) }

// send writes req on c and returns once the response has begun to arrive
// (or the deadline set on c has passed). pooled says whether c carried a
// request before: then a socket that is not idle (socketIdle) is errStale,
// found before anything is written.
//
// It saves the read that would find nothing: a request written and then
// read at once, with the upstream on the same CPU, finds an empty socket
// (EAGAIN) and only then waits for the poller. Here the write happens
// inside the poller's wait (syscall.RawConn.Read): the wait is armed
// before the request leaves, so the response's arrival cannot be missed,
// and the read that follows finds it. Bytes that arrived before the wait
// was armed would wake nothing, so the socket is peeked inside the wait
// first, on a fresh connection too (an upstream that speaks before it is
// asked, or closes at once, is then answered for, not waited on). A round
// trip costs three system calls (the peek, the write, the read) where it
// cost four.
//
// Over TLS the reuse check's second half (tlsIdle) must run before send:
// it reads through the TLS layer, which would wait for the read lock the
// raw wait holds.
func (c *upstreamConn) send(e *Endpoint, req *fasthttp.Request, pooled bool) error {
	c.sendStep, c.sendErr, c.sendBy, c.sendReq = stepFresh, nil, e, req
	if pooled {
		c.sendStep = stepPooled
	}
	err := c.raw.Read(c.sendFn)
	if err != nil {
		err = netErr(err, errReset) // the deadline passed, or c was closed
	} else {
		err = c.sendErr
	}
	c.sendBy, c.sendReq, c.sendErr = nil, nil, nil
	return err
}

// sendStep is where send is: what sendFD does on its next call.
type sendStep uint8

const (
	stepFresh  sendStep = iota // peek, then write
	stepPooled                 // peek (the reuse check), then write
	stepWait                   // the request is out: the socket is readable
)

// sendFD is send's step on the socket, called by the poller: true ends the
// wait, false waits until the socket is readable.
func (c *upstreamConn) sendFD(fd uintptr) bool {
	if c.sendStep == stepWait {
		return true
	}
	switch peek.Socket(fd) {
	case peek.Clean:
	case peek.Stray:
		c.sendErr = errBadResponse // bytes nobody asked for
	default:
		c.sendErr = errReset
	}
	if c.sendErr != nil {
		if c.sendStep == stepPooled {
			c.sendErr = errStale
		}
		return true
	}
	c.sendStep = stepWait
	c.sendErr = c.sendBy.write(c, c.sendReq)
	return c.sendErr != nil
}
