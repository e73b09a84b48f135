package edge

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
)

// Client connections: tailguard caps how many are open at once
// (limits.max_connections) itself rather than through fasthttp's
// Server.Concurrency, whose refusal is a fixed 503 without
// X-Tailguard-Error; and it meters the bytes a chunked request body costs
// on the wire, which fasthttp's decoder does not bound (chunk extensions).

// Stats are the client edge's figures for /stats and /metrics: the
// client connections open now (and how many of them are parked), and the
// connections and requests refused
// before a route was chosen, by cause. The listener and the request path
// write them with single atomic operations; the admin side reads them at
// scrape time. Safe for concurrent use; the zero value is ready. Stats
// must not be copied.
type Stats struct {
	open, parked atomic.Int64
	refused      cause.Counts
}

// Open is the number of client connections open now.
func (s *Stats) Open() int64 { return s.open.Load() }

// Parked is the number of open client connections parked now, idle and
// waiting for their next request without a goroutine (park.go).
func (s *Stats) Parked() int64 { return s.parked.Load() }

// Refuse counts a connection or request refused for c before a route was
// chosen.
func (s *Stats) Refuse(c cause.Cause) { s.refused.Add(c) }

// Refused is the number of connections and requests refused for c.
func (s *Stats) Refused(c cause.Cause) uint64 { return s.refused.Get(c) }

// EachRefused calls f for every cause with its number of refusals.
func (s *Stats) EachRefused(f func(cause.Cause, uint64)) { s.refused.Each(f) }

// clientListener caps the client connections open at once. A connection
// over the cap is answered 503 connection_limit, with Retry-After, and
// closed before any of it is read. Safe for concurrent use.
type clientListener struct {
	net.Listener
	max int64
	// stats holds the open count the cap is checked against, and counts
	// refusals.
	stats  *Stats
	refuse []byte // the whole 503 response, built once
	// lingering bounds the goroutines draining refused connections.
	lingering chan struct{}
	// parking holds the idle connections parked (park.go).
	parking parking
}

const (
	// refuseLingerTime and refuseLingerBytes bound what is read and dropped
	// from a refused connection so that its client reads the 503 rather
	// than a reset.
	refuseLingerTime  = time.Second
	refuseLingerBytes = 64 << 10
	maxRefuseLingers  = 64
)

// NewListener wraps ln, a TCP listener, with the client edge's connection
// handling: a lingering close, TLS if tc is not nil (its records corked,
// cork.go), at most maxConns
// connections open at once, and the chunk meter. The cap and the meter sit
// above TLS, so that a refusal reaches a TLS client as a response it can
// read and the meter counts the body's own framing, not TLS records.
// stats keeps the open count and counts refusals; listeners sharing it
// share the cap. serve, fasthttp.Server.ServeConn, serves a parked idle
// connection again when its next request comes (park.go); nil: idle
// connections are not parked.
func NewListener(ln net.Listener, maxConns int, tc *tls.Config, stats *Stats, serve func(net.Conn) error) net.Listener {
	ln = lingerListener{ln}
	if tc != nil {
		ln = tls.NewListener(corkListener{ln}, tc)
	}
	c := cause.ConnLimit
	body := cause.Unrouted.Of(c)
	refuse := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"%s: %s\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		c.Status(), fasthttp.StatusMessage(c.Status()), cause.Header, c, len(body), body)
	return &clientListener{Listener: ln, max: int64(maxConns), stats: stats, refuse: refuse,
		lingering: make(chan struct{}, maxRefuseLingers), parking: parking{serve: serve}}
}

// Close implements net.Listener; it closes the parked connections too.
func (l *clientListener) Close() error {
	l.parking.close()
	return l.Listener.Close()
}

// Accept implements net.Listener: it returns the next connection under the
// cap, refusing those over it on the way.
func (l *clientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.stats.open.Add(1) <= l.max {
			return &clientConn{Conn: c, l: l, raw: rawConn(c), cork: corkOf(c)}, nil
		}
		l.stats.open.Add(-1)
		l.stats.Refuse(cause.ConnLimit)
		l.refuseConn(c)
	}
}

// refuseConn writes the 503 and closes c, on a goroutine of its own (a
// TLS connection must be handshaken first, which the accept loop must not
// wait for); what the client sends meanwhile is read and dropped for a
// bounded time and size, so that it reads the 503 rather than a reset.
// Refusals under way are bounded: past maxRefuseLingers, a connection is
// closed without a word.
func (l *clientListener) refuseConn(c net.Conn) {
	select {
	case l.lingering <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.lingering }()
		_ = c.SetDeadline(time.Now().Add(refuseLingerTime))
		_, err := c.Write(l.refuse)
		if cw, ok := c.(interface{ CloseWrite() error }); err == nil && ok && cw.CloseWrite() == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(c, refuseLingerBytes))
		}
		_ = c.Close()
	}()
}

// clientConn is one client connection under the cap. It also meters the
// wire bytes of a chunked request body (see chunkMeter).
type clientConn struct {
	net.Conn
	l      *clientListener
	closed atomic.Bool
	// raw is the socket of a plain-TCP connection, which can be parked
	// while idle; nil for TLS.
	raw syscall.RawConn
	// cork is the socket under a TLS connection, whose writes it corks
	// (cork.go); nil for plain TCP.
	cork *corkConn
	// idle is set while fasthttp waits for the next request, parked once
	// that wait has been cut short to park the connection (park.go).
	idle, parked atomic.Bool
	// spot is the connection's place in its listener's parking while
	// parked.
	spot parkSpot
	// readDeadline is the read deadline last set, in Unix nanoseconds
	// (0: none): a parked connection's idle timeout.
	readDeadline atomic.Int64
	// spoke is set once the client has sent a byte: a connection that
	// times out before it ever does is closed without an answer, and
	// over TLS the handshake is over, so writes may be corked. Atomic:
	// a tunnel writes from another goroutine than the one reading.
	spoke atomic.Bool
	// lastRead is the size of the last unmetered read: the one that
	// completed the request head, when a chunked body is metered.
	lastRead int
	// metering is set while the body decoder reads through meter; allow is
	// the wire bytes it may still read then.
	metering bool
	allow    int64
	meter    chunkMeter
}

// Close implements net.Conn; the connection leaves the count once. A
// connection fasthttp lets go of to be parked is parked instead; a parked
// one leaves the parking before its socket closes.
func (c *clientConn) Close() error {
	if c.parked.CompareAndSwap(true, false) {
		return c.l.parking.park(c)
	}
	if c.closed.CompareAndSwap(false, true) {
		c.l.stats.open.Add(-1)
	}
	c.l.parking.unpark(c) // after closed is set: see parking.add
	if c.cork != nil {
		c.cork.interrupt()
	}
	return c.Conn.Close()
}

// corkOf is the cork under a TLS connection; nil for others.
func corkOf(c net.Conn) *corkConn {
	if tc, ok := c.(*tls.Conn); ok {
		cc, _ := tc.NetConn().(*corkConn)
		return cc
	}
	return nil
}

// Write implements net.Conn; over TLS, once the handshake is over, the
// records of p leave in one system call (cork.go).
func (c *clientConn) Write(p []byte) (int, error) {
	if c.cork == nil || !c.spoke.Load() {
		return c.Conn.Write(p)
	}
	return c.cork.corkWrite(c.Conn, p)
}

// CloseWrite shuts the write side of the connection under it (TCP, or a
// TLS close_notify): a tunnel passes its upstream's half close on.
func (c *clientConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// errChunkOverhead fails a chunked request body that spends too many wire
// bytes on framing (chunk extensions, tiny chunks) for the data it carries.
var errChunkOverhead = errors.New("chunked request body: too much framing for its data")

// Read implements net.Conn.
func (c *clientConn) Read(p []byte) (int, error) {
	if !c.metering {
		var n int
		var err error
		if c.idle.Load() {
			n, err = c.awaitIdle(p)
		} else {
			n, err = c.Conn.Read(p)
		}
		if n > 0 {
			if !c.spoke.Load() {
				c.spoke.Store(true)
			}
			c.lastRead = n
		}
		return n, err
	}
	if c.allow <= 0 {
		return 0, errChunkOverhead
	}
	if int64(len(p)) > c.allow {
		p = p[:c.allow]
	}
	n, err := c.Conn.Read(p)
	c.allow -= int64(n)
	return n, err
}

// A chunkMeter bounds the wire bytes a chunked request body may cost
// beyond its data, as Go's net/http does since CVE-2023-39326: fasthttp
// skips chunk extensions byte by byte without a bound, so one chunk line
// could carry gigabytes that count against no limit (the body limit counts
// decoded bytes). Each read of decoded data earns 3 wire bytes per data
// byte (the data and twice as much framing) plus 16 (one small chunk
// line); beyond that, chunkSlack is all the framing a body may spend.
// A body over it fails like any broken client body: 400 bad_request if the
// response has not begun, and the connection closes.
//
// The bytes that arrived with the head, which fasthttp's reader holds
// before the meter is installed (up to limits.max_header_bytes), are
// charged at once (see meterChunkedBody): left free, they let a chunk
// extension of that size more through than chunkSlack says.
//
// The meter lives in its clientConn (nothing is allocated per request); it
// is used by one goroutine at a time: installed by the handler before the
// body is read, then read by whoever streams the body upstream.
type chunkMeter struct {
	c *clientConn
	r io.Reader               // the decoded body from fasthttp
	h *fasthttp.RequestHeader // where fasthttp puts the trailers
}

// chunkSlack is Go's net/http's bound on a chunked body's excess framing.
const chunkSlack = 16 << 10

// MeterChunkedBody puts a chunked request body in ctx behind its
// connection's meter, and reports whether the body is chunked. Requests on
// other connections (in-memory listeners in tests) are not metered.
func MeterChunkedBody(ctx *fasthttp.RequestCtx) bool {
	req := &ctx.Request
	if req.Header.ContentLength() != -1 || !req.IsBodyStream() {
		return false
	}
	c, ok := ctx.Conn().(*clientConn)
	if !ok || req.BodyStream() == &c.meter {
		return true
	}
	c.meter = chunkMeter{c: c, r: req.BodyStream(), h: &req.Header}
	c.allow = chunkSlack - int64(max(c.lastRead-headLen(&req.Header), 0))
	req.SetBodyStream(&c.meter, -1)
	return true
}

// headLen is the wire size of a request head that passed checkRequest:
// the request line (method SP target SP version CRLF) and the raw header
// block, its blank line included. The read that completed the head held
// its end and then the start of the body, which fasthttp's reader holds
// unread: lastRead - headLen is that start, exactly when the head came in
// that one read. A head split across reads makes it smaller by the
// head's earlier bytes, and since head and held body share the reader's
// buffer, the body's framing gets at most half of max_header_bytes more;
// a read that also held an earlier, pipelined request makes it larger,
// and the body gets that request's size less.
func headLen(h *fasthttp.RequestHeader) int {
	return len(h.Method()) + len(h.RequestURI()) + len(h.Protocol()) + 4 + len(h.RawHeaders())
}

// errBadTrailer fails a chunked request body whose trailer section holds
// a field that could not be forwarded as it was meant (see checkTrailers).
var errBadTrailer = errors.New("chunked request body: malformed trailer field")

// Read implements io.Reader. At the body's end, fasthttp has parsed the
// trailer section into the request header; it is checked before the end
// is passed on (and the trailers forwarded). The allowance is checked
// there too: a body that ended within the bytes read with its head made
// no metered read that could have refused it.
func (m *chunkMeter) Read(p []byte) (int, error) {
	m.c.metering = true
	n, err := m.r.Read(p)
	m.c.metering = false
	m.c.allow += 3*int64(n) + 16
	if err == io.EOF {
		switch {
		case m.c.allow < 0:
			err = errChunkOverhead
		case !checkTrailers(m.h.TrailerHeader()):
			err = errBadTrailer
		}
	}
	return n, err
}

// checkTrailers reports whether every field of a trailer section, as
// fasthttp serialises it ("name: value" lines, a blank line), has a token
// for a name: fasthttp's trailer parser accepts names with spaces.
func checkTrailers(block []byte) bool {
	for len(block) > 2 {
		i := bytes.Index(block, crlf)
		if i < 0 {
			return false
		}
		line := block[:i]
		block = block[i+2:]
		colon := bytes.IndexByte(line, ':')
		if colon < 0 || !isToken(line[:colon]) {
			return false
		}
	}
	return true
}

var crlf = []byte("\r\n")

// Silent reports whether conn is a client connection on which the client
// has never sent a byte: one that times out then had no request to answer.
func Silent(conn net.Conn) bool {
	c, ok := conn.(*clientConn)
	return ok && !c.spoke.Load()
}
