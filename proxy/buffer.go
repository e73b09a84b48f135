package proxy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/client"
)

// Buffering, the slow-client shield (routes[].buffering): a request body
// is collected before the request is admitted, so a slow sender holds no
// upstream connection and no admission slot; a response is read from the
// upstream as fast as it comes within the attempt, so the upstream's
// connection goes back to the pool when its last byte is read, and the
// client then takes it at its own pace. Bodies take room from the Server's
// spool.Store; one that does not fit streams as it would without
// buffering.

// spoolBody collects a request body too large or too unframed to take into
// x.body: whole into the spool, each read from the client bounded by the
// read timeout (a client that stops sending its body is answered 408 and
// the upstream never sees the request). The body then goes to the
// upstream with a Content-Length, and can be sent again for retries and
// hedges. If the room runs out, what was collected goes first and the
// rest streams from the client.
func (x *exchange) spoolBody(cl int) cause.Cause {
	ctx := x.ctx
	src := client.NewRequestBody(x.clientBody(), cl, x.route.maxBody)
	b, complete, err := x.srv.spool.Fill(src, int64(cl))
	switch {
	case err != nil:
		return x.bodyFailure(err)
	case complete:
		x.spooled = b
		x.setDeadline(x.now())
		return cause.None
	}
	// The room ran out (or the body was known not to fit): the rest
	// streams from the client behind what was collected, and the body
	// cannot be sent twice.
	rest := b.NewReader(src)
	b.Release()
	ctx.Request.SetBodyStream(client.NewRequestBody(rest, -1, -1), cl) // src holds length and limit
	return cause.None
}

// clientBody is the client's request body, each read bounded by the read
// timeout.
func (x *exchange) clientBody() io.Reader {
	x.client = clientBody{ctx: x.ctx, r: x.ctx.RequestBodyStream(), idle: x.srv.srv.ReadTimeout}
	return &x.client
}

// bodyFailure is the cause for a failure reading the client's body: it
// stopped sending (408), sent too much (413) or broke off (400).
func (x *exchange) bodyFailure(err error) cause.Cause {
	if x.client.timedOut {
		return cause.BodyTimeout
	}
	c, _ := client.Classify(err)
	if c == cause.BodyTooLarge {
		return c
	}
	return cause.BadRequest
}

// clientBody reads the client's request body with an idle timeout: each
// read must bring something within idle.
type clientBody struct {
	ctx      *fasthttp.RequestCtx
	r        io.Reader
	idle     time.Duration
	timedOut bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		_ = b.ctx.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut = true
	}
	return n, err
}

// sendSpooled gives an attempt's request the collected body, read from its
// start: every attempt, the retries and hedges too, sends all of it.
func (x *exchange) sendSpooled(req *fasthttp.Request) {
	if x.spooled != nil {
		req.SetBodyStream(x.spooled.NewReader(nil), int(x.spooled.Len()))
	}
}

// bufferResponse reads resp's streamed body into the spool, so that the
// upstream connection is free once its last byte is read: an error is the
// upstream's, and fails the attempt like any other. A small body is copied
// into resp whole; a larger one is held in the spool and written from it.
// A response that asks not to be buffered (server-sent events, long polls)
// or does not fit keeps streaming.
func (s *Server) bufferResponse(resp *fasthttp.Response) error {
	if !resp.IsBodyStream() || !buffers(&resp.Header) {
		return nil
	}
	stream, ok := resp.BodyStream().(client.Handover)
	if !ok {
		return nil
	}
	cl := resp.Header.ContentLength()
	b, complete, err := s.spool.Fill(stream, int64(cl))
	if err != nil {
		return err
	}
	if !complete {
		stream.HandOver() // it goes on behind the buffered part
		resp.SetBodyStream(b.NewReader(stream), cl)
		b.Release()
		return nil
	}
	if p, ok := b.Chunk(); ok {
		resp.ResetBody() // closes the stream: the connection goes back to the pool
		resp.SetBody(p)
		b.Release()
		return nil
	}
	resp.SetBodyStream(b.NewReader(nil), int(b.Len()))
	b.Release()
	return nil
}

// buffers reports whether a response may be buffered: not server-sent
// events, and not one whose upstream asked for streaming with nginx's
// X-Accel-Buffering: no (which respond, like nginx, keeps from the
// client).
func buffers(h *fasthttp.ResponseHeader) bool {
	if bytes.EqualFold(h.Peek(headerAccelBuffering), strNo) {
		return false
	}
	ct := h.ContentType()
	return len(ct) < len(strEventStream) || !bytes.EqualFold(ct[:len(strEventStream)], strEventStream)
}

const headerAccelBuffering = "X-Accel-Buffering"

var (
	strNo          = []byte("no")
	strEventStream = []byte("text/event-stream")
)
