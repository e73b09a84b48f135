package proxy

import (
	"errors"
	"io"
	"time"

	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
)

// sentBody is a response body stream on its way to the client. fasthttp
// writes a body stream after the handler has returned and closes it when
// it is written (or the write failed): that close is when the response
// has reached the client connection, so sentBody records the request
// then, and response time runs to the last byte. For a buffered body,
// which holds no upstream connection, each read gives the client a fresh
// limits.idle_timeout to take the next piece: a slow reader is served at
// its pace, one that stops is cut off. Any other stream keeps the
// request's deadline respond set, so that a client that stops reading
// cannot pin the upstream connection behind it.
//
// A stream from the upstream is read at the client's pace, so its reads
// are bounded by the request's deadline, not the attempt's: the head has
// gone to the client and the try can no longer be retried, and a client
// that takes longer than per_try_timeout to read a large body is no fault
// of the upstream's. On a route with timeout 0 (none: long polls, big
// transfers) the body is then unbounded, as the route asked; a route
// without per_try_timeout already reads under the request's deadline.
//
// A read that fails is the upstream's failure (a reset, a stall past the
// deadline, a short or malformed body), not the client's: sentBody notes
// it, and the request ends with cause.MidBodyFailure. fasthttp then closes
// the client connection, the only way left to tell the client that the
// response is incomplete. A write that fails (the client went away), or a
// read the client's pace delayed past the deadline, is not the upstream's.
type sentBody struct {
	x      *exchange
	r      client.Handover
	idle   time.Duration // 0: no deadline of its own
	stream bool          // read from the upstream, until x.deadline
	failed bool          // a read failed
}

// errClientLate ends a stream whose next read would start after the
// request's deadline: the client took the body too slowly, and the
// upstream is not blamed for a read it was never given time for.
var errClientLate = errors.New("client read the response past the deadline")

// watch puts sentBody between the response's body stream, if it has one,
// and fasthttp, and reports whether it did: the exchange is then finished
// by Close, not by the caller.
func (b *sentBody) watch(x *exchange) bool {
	resp := &x.ctx.Response
	r, ok := resp.BodyStream().(client.Handover)
	if !ok {
		return false
	}
	*b = sentBody{x: x, r: r, stream: streamsUpstream(resp)}
	if b.stream {
		if x.route.perTry > 0 {
			r.ReadUntil(x.deadline)
		}
	} else {
		b.idle = x.srv.srv.IdleTimeout
	}
	r.HandOver()
	resp.SetBodyStream(b, resp.Header.ContentLength())
	return true
}

// Read implements io.Reader.
func (b *sentBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.x.ctx.SetWriteDeadline(b.x.now().Add(b.idle))
	}
	if b.stream && !b.x.deadline.IsZero() && !b.x.now().Before(b.x.deadline) {
		return 0, errClientLate
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.failed = true
	}
	return n, err
}

// CloseWithError implements fasthttp.ReadCloserWithError: the body is
// written (err nil) or the write failed. It closes the stream it read and
// finishes the exchange, failed if a read failed.
func (b *sentBody) CloseWithError(err error) error {
	x := b.x
	if x == nil {
		return nil
	}
	if b.failed {
		x.cause = cause.MidBodyFailure
	}
	var cerr error
	switch c := b.r.(type) {
	case interface{ CloseWithError(error) error }:
		cerr = c.CloseWithError(err)
	case io.Closer:
		cerr = c.Close()
	}
	*b = sentBody{}
	x.srv.finish(x, x.now())
	return cerr
}
