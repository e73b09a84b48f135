//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"runtime"
	"strings"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// evrelay is `tailguard bench evrelay -listen ADDR -upstream http://HOST:PORT`:
// the fasthttp relay's work (parse each request head, forward it over a
// keep-alive upstream connection, parse the response head, pass the
// response back) done on one epoll event loop on one locked OS thread, as
// nginx's one worker does it, instead of on goroutines parked in Go's
// netpoller. It is an experiment for the design, an arm of the overhead
// scenario that answers how close to nginx's CPU per request a Go event
// loop gets; nothing in the product uses it. GET and HEAD with keep-alive
// only, responses framed by Content-Length only, IPv4, no timeouts.
// The loop is its own, on golang.org/x/sys/unix, rather than gnet's: a
// request already costs only the four reads and writes it must make, so a
// library could add buffers and callbacks but take nothing away.
func (c *cli) evrelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench evrelay", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	listen := fs.String("listen", "127.0.0.1:8001", "address to serve on")
	upstream := fs.String("upstream", "", "upstream http://host:port (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("bench evrelay: -upstream is required: %w", flag.ErrHelp)
	}
	r, err := newEvRelay(*listen, *upstream)
	if err != nil {
		return fmt.Errorf("bench evrelay: %w", err)
	}
	return r.run(ctx)
}

// Buffer sizes: a request head must fit in a client connection's buffer
// (fasthttp's default limit); a response is read through an upstream
// connection's buffer, head first.
const (
	evClientBuf   = 8 << 10
	evUpstreamBuf = 16 << 10
)

// Canned answers to what the relay refuses; each closes the connection.
var (
	evBadRequest     = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	evHeadTooLarge   = []byte("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	evNotImplemented = []byte("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	evBadGateway     = []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// evRelay is one event loop: the listening socket, the client and upstream
// connections and an eventfd that stops it, all in one epoll set, every
// socket non-blocking and registered once, edge-triggered for reading and
// writing (as nginx does), so that a request costs no epoll_ctl. Only run's
// goroutine may touch it.
type evRelay struct {
	epfd, lfd, wakefd int
	addr              string // where it listens, host:port
	upstream          unix.SockaddrInet4
	conns             []*evConn // by file descriptor
	idle              []*evConn // upstream connections free for a request, most recent last
	gen               uint32    // the last connection's generation (see evConn.gen)
	// One request or response head is parsed at a time, so the loop needs
	// one of each, read through a bufio.Reader over the connection's
	// buffer: no allocation per request.
	req  fasthttp.RequestHeader
	resp fasthttp.ResponseHeader
	src  bytes.Reader
	br   *bufio.Reader
}

// evConn is a client or an upstream connection. During an exchange the
// two are each other's peer: the client's buffers hold its request, the
// upstream's the response on its way back.
type evConn struct {
	fd       int    // -1 once closed
	gen      uint32 // tells this connection from an earlier one that had its fd, in a batch of events
	upstream bool
	peer     *evConn
	buf      []byte // what was read and not yet used: buf[:n]
	n        int
	pending  []byte // still to write: part of out or, for body bytes, of the upstream's buf
	out      []byte // a client's response head, serialized, with the first body bytes
	// readable: data or an EOF may wait (edge-triggered, so reads go on
	// until one comes back short). eof: the peer has shut down its side.
	readable, eof bool

	// A client's exchange.
	fwd        []byte // the request as sent upstream, kept for one retry on a fresh connection
	headReq    bool   // HEAD: the response has no body whatever its Content-Length
	closeAfter bool   // the client asked for Connection: close
	retried    bool

	// An upstream's exchange.
	connecting bool
	reused     bool // it has answered before: a failure before the first byte may be a stale connection
	headDone   bool
	keep       bool // may go back to the idle list
	remaining  int  // body bytes still to come
}

// newEvRelay listens on listen (IPv4 host:port) for a relay to upstream
// (http://host:port or host:port).
func newEvRelay(listen, upstream string) (*evRelay, error) {
	up, err := net.ResolveTCPAddr("tcp4", strings.TrimSuffix(strings.TrimPrefix(upstream, "http://"), "/"))
	if err != nil {
		return nil, fmt.Errorf("-upstream: %w", err)
	}
	la, err := net.ResolveTCPAddr("tcp4", listen)
	if err != nil {
		return nil, fmt.Errorf("-listen: %w", err)
	}
	r := &evRelay{lfd: -1, wakefd: -1, br: bufio.NewReaderSize(nil, evUpstreamBuf)}
	r.upstream.Port = up.Port
	copy(r.upstream.Addr[:], up.IP.To4())
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err = r.listen(la); err == nil {
		r.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err == nil {
		err = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, r.wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(r.wakefd)})
	}
	if err != nil {
		r.closeAll()
		return nil, err
	}
	return r, nil
}

// listen opens the listening socket and adds it to the epoll set,
// level-triggered: accept runs until accept4 says EAGAIN.
func (r *evRelay) listen(la *net.TCPAddr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	r.lfd = fd
	sa := &unix.SockaddrInet4{Port: la.Port}
	copy(sa.Addr[:], la.IP.To4())
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind %s: %w", la, err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	b := bound.(*unix.SockaddrInet4)
	r.addr = net.JoinHostPort(net.IP(b.Addr[:]).String(), fmt.Sprint(b.Port))
	return unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// run is the event loop, on a locked OS thread, until ctx ends; it closes
// every socket before it returns.
func (r *evRelay) run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer r.closeAll()
	stop := context.AfterFunc(ctx, func() {
		one := [8]byte{1} // an eventfd takes an 8-byte count; any nonzero one wakes
		_, _ = unix.Write(r.wakefd, one[:])
	})
	defer stop()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err == unix.EINTR { // the runtime's preemption signal
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case r.lfd:
				r.accept()
			case r.wakefd:
				return nil
			default:
				// A connection closed earlier in this batch may have
				// given its fd to a new one: the generation tells.
				if c := r.conns[fd]; c != nil && c.gen == uint32(ev.Pad) {
					r.event(c, ev.Events)
				}
			}
		}
	}
}

// accept takes every pending client connection.
func (r *evRelay) accept() {
	for {
		fd, _, err := unix.Accept4(r.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or a connection reset before it was taken
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if _, err := r.add(fd, false); err != nil {
			_ = unix.Close(fd)
		}
	}
}

// add registers fd, edge-triggered for reading and writing, as a new
// connection.
func (r *evRelay) add(fd int, upstream bool) (*evConn, error) {
	r.gen++
	c := &evConn{fd: fd, gen: r.gen, upstream: upstream}
	if upstream {
		c.buf = make([]byte, evUpstreamBuf)
	} else {
		c.buf = make([]byte, evClientBuf)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: int32(c.gen)}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return nil, err
	}
	for fd >= len(r.conns) {
		r.conns = append(r.conns, nil)
	}
	r.conns[fd] = c
	return c, nil
}

// event handles what epoll reported for c.
func (r *evRelay) event(c *evConn, ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.eof = true
	}
	switch {
	case c.upstream && c.peer == nil:
		// Idle: only a close (or bytes nobody asked for) wakes it.
		if c.readable {
			r.close(c)
		}
	case c.upstream:
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			r.upstreamWritable(c)
		}
		if c.fd >= 0 && c.peer != nil && c.readable {
			r.pump(c.peer)
		}
	case ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
		r.closeClient(c)
	case c.peer != nil:
		// Busy: the response may go on; a next request waits for it.
		if ev&unix.EPOLLOUT != 0 {
			r.pump(c)
		}
	case c.readable:
		r.clientRead(c)
	}
}

// clientRead reads c's request heads and starts an exchange for each,
// until c is busy, closed, or has nothing more to read.
func (r *evRelay) clientRead(c *evConn) {
	for c.fd >= 0 && c.peer == nil {
		if end := bytes.Index(c.buf[:c.n], crlfCRLF); end >= 0 {
			r.dispatch(c, end+len(crlfCRLF))
			continue
		}
		if !c.readable {
			return
		}
		if c.n == len(c.buf) {
			r.refuse(c, evHeadTooLarge)
			return
		}
		n, err := unix.Read(c.fd, c.buf[c.n:])
		if err == unix.EAGAIN {
			c.readable = false
			return
		}
		if err != nil || n == 0 {
			r.closeClient(c)
			return
		}
		c.readable = c.eof || n == len(c.buf)-c.n // a short read drained the socket
		c.n += n
	}
}

// crlfCRLF ends a head.
var crlfCRLF = []byte("\r\n\r\n")

// dispatch parses the request head that is c.buf[:end] and forwards it.
func (r *evRelay) dispatch(c *evConn, end int) {
	r.src.Reset(c.buf[:end])
	r.br.Reset(&r.src)
	if err := r.req.Read(r.br); err != nil {
		r.refuse(c, evBadRequest)
		return
	}
	if (!r.req.IsGet() && !r.req.IsHead()) || r.req.ContentLength() > 0 || r.req.ContentLength() == -1 {
		r.refuse(c, evNotImplemented)
		return
	}
	c.headReq = r.req.IsHead()
	c.closeAfter = r.req.ConnectionClose()
	r.req.ResetConnectionClose() // the upstream connection stays open either way
	c.fwd = r.req.AppendBytes(c.fwd[:0])
	c.n = copy(c.buf, c.buf[end:c.n])
	c.retried = false
	r.forward(c, false)
}

// forward sends c's request on an idle upstream connection, or on a new
// one if there is none or fresh is set.
func (r *evRelay) forward(c *evConn, fresh bool) {
	var u *evConn
	if n := len(r.idle); n > 0 && !fresh {
		u, r.idle = r.idle[n-1], r.idle[:n-1]
	} else {
		var err error
		if u, err = r.dial(); err != nil {
			r.refuse(c, evBadGateway)
			return
		}
	}
	c.peer, u.peer = u, c
	u.headDone, u.keep, u.remaining, u.n = false, true, 0, 0
	u.pending = c.fwd
	if !u.connecting {
		r.sendRequest(u)
	}
}

// dial opens a non-blocking connection to the upstream; connect(2)
// usually completes later, reported as writable.
func (r *evRelay) dial() (*evConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, &r.upstream)
	if err != nil && err != unix.EINPROGRESS {
		_ = unix.Close(fd)
		return nil, err
	}
	u, errAdd := r.add(fd, true)
	if errAdd != nil {
		_ = unix.Close(fd)
		return nil, errAdd
	}
	u.connecting = err != nil
	return u, nil
}

// upstreamWritable finishes a connect and sends what is pending.
func (r *evRelay) upstreamWritable(u *evConn) {
	if u.connecting {
		u.connecting = false
		if soerr, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
			r.upstreamFailed(u.peer)
			return
		}
	}
	if len(u.pending) > 0 {
		r.sendRequest(u)
	}
}

// sendRequest writes u's pending request.
func (r *evRelay) sendRequest(u *evConn) {
	if _, err := r.flush(u); err != nil && err != unix.EAGAIN {
		r.upstreamFailed(u.peer)
	}
}

// flush writes c.pending as far as the socket takes it and says whether
// all of it went; EAGAIN leaves the rest for the next writable edge.
// (x/sys returns EAGAIN as a preallocated error: no allocation. Raw
// system calls, without the scheduler's entersyscall and exitsyscall,
// measured no cheaper here.)
func (r *evRelay) flush(c *evConn) (bool, error) {
	for len(c.pending) > 0 {
		n, err := unix.Write(c.fd, c.pending)
		if err != nil {
			return false, err
		}
		c.pending = c.pending[n:]
	}
	return true, nil
}

// pump moves the response from c's upstream to c as far as both sockets
// allow: reads the head and relays it re-serialized, then relays the body
// straight out of the upstream's buffer, reading no more until the last
// read has been written (backpressure), and ends the exchange when the
// body is through.
func (r *evRelay) pump(c *evConn) {
	u := c.peer
	for {
		if len(c.pending) > 0 {
			done, err := r.flush(c)
			if err != nil && err != unix.EAGAIN {
				r.closeClient(c)
				return
			}
			if !done {
				return // the client's next writable edge resumes
			}
		}
		if u.headDone && u.remaining == 0 {
			r.finish(c)
			return
		}
		if !u.readable {
			return // the upstream's next readable edge resumes
		}
		n, err := unix.Read(u.fd, u.buf[u.n:])
		if err == unix.EAGAIN {
			u.readable = false
			return
		}
		if err != nil || n == 0 {
			r.upstreamFailed(c)
			return
		}
		u.readable = u.eof || n == len(u.buf)-u.n
		u.n += n
		if !u.headDone {
			if !r.responseHead(c, u) {
				return
			}
			continue
		}
		body := u.buf[:min(u.n, u.remaining)]
		u.keep = u.keep && u.n == len(body) // more than Content-Length: do not reuse
		u.remaining -= len(body)
		u.n = 0
		c.pending = body
	}
}

// responseHead parses u's response head once it is whole, and queues it
// for c with the body bytes that came with it. It returns false if the
// head is not whole yet or the exchange failed.
func (r *evRelay) responseHead(c, u *evConn) bool {
	end := bytes.Index(u.buf[:u.n], crlfCRLF)
	if end < 0 {
		if u.n == len(u.buf) {
			r.upstreamFailed(c)
		}
		return false
	}
	end += len(crlfCRLF)
	r.src.Reset(u.buf[:end])
	r.br.Reset(&r.src)
	if err := r.resp.Read(r.br); err != nil || r.resp.StatusCode() < 200 {
		r.upstreamFailed(c)
		return false
	}
	length := r.resp.ContentLength()
	switch code := r.resp.StatusCode(); {
	case c.headReq || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified:
		length = 0
	case length < 0: // chunked or until close: not this relay's
		r.upstreamFailed(c)
		return false
	}
	u.keep = !r.resp.ConnectionClose()
	r.resp.ResetConnectionClose()
	if c.closeAfter {
		r.resp.SetConnectionClose()
	}
	c.out = r.resp.AppendBytes(c.out[:0])
	body := u.buf[end:u.n]
	take := min(len(body), length)
	c.out = append(c.out, body[:take]...)
	u.keep = u.keep && take == len(body)
	u.headDone, u.remaining, u.n = true, length-take, 0
	c.pending = c.out
	return true
}

// finish ends c's exchange: the upstream connection goes back to the idle
// list if it can be reused, and c reads its next request.
func (r *evRelay) finish(c *evConn) {
	u := c.peer
	c.peer, u.peer = nil, nil
	if u.keep && !u.eof {
		u.reused = true
		r.idle = append(r.idle, u)
	} else {
		r.close(u)
	}
	if c.closeAfter {
		r.close(c)
		return
	}
	r.clientRead(c)
}

// upstreamFailed handles a connect, write or read failure, or a response
// the relay cannot pass on, of c's upstream: an idle connection that the
// upstream closed before the first response byte is retried once on a
// fresh one (GET and HEAD are idempotent); before the head went back, c
// gets a 502; mid-body, c is closed, as its response is cut short.
func (r *evRelay) upstreamFailed(c *evConn) {
	u := c.peer
	c.peer = nil
	r.close(u)
	switch {
	case u.headDone:
		r.closeClient(c)
	case u.reused && u.n == 0 && !c.retried:
		c.retried = true
		r.forward(c, true)
	default:
		r.refuse(c, evBadGateway)
	}
}

// refuse answers c with a canned response and closes it (and its upstream
// connection, if it has one).
func (r *evRelay) refuse(c *evConn, answer []byte) {
	c.pending = answer
	_, _ = r.flush(c) // small enough for any socket buffer: not waited for
	r.closeClient(c)
}

// closeClient closes c and, if an exchange is under way, its upstream
// connection, which is mid-response and cannot be reused.
func (r *evRelay) closeClient(c *evConn) {
	if c.peer != nil {
		c.peer.peer = nil
		r.close(c.peer)
		c.peer = nil
	}
	r.close(c)
}

// close closes one connection; closing the fd takes it out of the epoll
// set.
func (r *evRelay) close(c *evConn) {
	if c.fd < 0 {
		return
	}
	if c.upstream && c.peer == nil {
		for i, u := range r.idle {
			if u == c {
				r.idle = append(r.idle[:i], r.idle[i+1:]...)
				break
			}
		}
	}
	r.conns[c.fd] = nil
	_ = unix.Close(c.fd)
	c.fd = -1
}

// closeAll closes every connection, the listener, the eventfd and the
// epoll instance.
func (r *evRelay) closeAll() {
	for _, c := range r.conns {
		if c != nil {
			_ = unix.Close(c.fd)
		}
	}
	r.conns, r.idle = nil, nil
	for _, fd := range []int{r.lfd, r.wakefd, r.epfd} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}
