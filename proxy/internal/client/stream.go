package client

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// streamBody is an upstream response body that is too long, or not framed
// by a Content-Length, to be read into memory: the server copies it to the
// client as it arrives. It owns the upstream connection until the server
// closes it; then the connection goes back to the pool only if the body
// ended exactly where its framing said and nothing followed it.
//
// A streamBody is pooled; it is used by one goroutine at a time.
type streamBody struct {
	hc        *fasthttp.HostClient
	conn      connRef
	br        *bufio.Reader
	framing   framing
	remaining int64   // bytes left in a fixed body or the current chunk
	keepAlive bool    // the response allowed reuse of the connection
	upload    *upload // the request body still being written, or nil
	done      bool    // the body's end was read
	crlf      bool    // a chunk's data ended: its CRLF comes next
	err       error
	// handedOff makes the next CloseWithError a no-op: the body moved
	// from one response to another (a hedged attempt's to the client's, or
	// behind a buffered part), and only the second may close it.
	handedOff bool
}

type framing uint8

const (
	framedLength  framing = iota + 1 // Content-Length
	framedChunked                    // Transfer-Encoding: chunked
	framedClose                      // until the upstream closes
)

var streamBodyPool = sync.Pool{New: func() any { return new(streamBody) }}

// acquireStreamBody wraps the rest of a response on c. contentLength is
// fasthttp's: >= 0 a length, -1 chunked, -2 until close.
func acquireStreamBody(hc *fasthttp.HostClient, c connRef, br *bufio.Reader, contentLength int, keepAlive bool, up *upload) *streamBody {
	b := streamBodyPool.Get().(*streamBody)
	*b = streamBody{hc: hc, conn: c, br: br, keepAlive: keepAlive, upload: up}
	switch {
	case contentLength >= 0:
		b.framing, b.remaining = framedLength, int64(contentLength)
	case contentLength == -1:
		b.framing = framedChunked
	default:
		b.framing, b.keepAlive = framedClose, false
	}
	return b
}

// Read implements io.Reader. Each call reads at most once from the
// connection, so a slowly streamed body (server-sent events) is passed on as
// it comes.
func (b *streamBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	var n int
	switch b.framing {
	case framedLength:
		n, b.err = b.readFixed(p)
	case framedChunked:
		n, b.err = b.readChunked(p)
	default:
		n, b.err = b.br.Read(p)
		if b.err == io.EOF {
			b.done, b.err = true, nil
			if n == 0 {
				return 0, io.EOF
			}
		}
	}
	if b.err != nil {
		b.err = readErr(b.err)
	}
	return n, b.err
}

func (b *streamBody) readFixed(p []byte) (int, error) {
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.done = true
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// CloseWithError implements fasthttp.ReadCloserWithError. The server calls
// it once the response is written (err nil) or has failed. The connection
// is pooled again only after a complete, exactly framed body and a
// complete request.
func (b *streamBody) CloseWithError(err error) error {
	if b.handedOff {
		b.handedOff = false
		return nil
	}
	reuse := err == nil && b.err == nil && b.done && b.keepAlive && b.br.Buffered() == 0
	if b.upload != nil && b.upload.finish(b.conn.Conn().(*upstreamConn)) != nil {
		reuse = false
	}
	b.hc.ReleaseReader(b.br)
	if reuse {
		pooledConns.release(b.hc, b.conn)
	} else {
		pooledConns.close(b.hc, b.conn)
	}
	*b = streamBody{}
	streamBodyPool.Put(b)
	return nil
}

// HandOver makes the next CloseWithError a no-op, for a body moving from
// one fasthttp response to another: fasthttp closes the body stream of a
// response whose body is replaced.
func (b *streamBody) HandOver() { b.handedOff = true }

// ReadUntil bounds the rest of the body's reads by deadline (zero: none),
// in place of the attempt's: once the response's head is on its way to the
// client the try can no longer be retried, and the body is read at the
// client's pace, so only the request's deadline still applies to it.
func (b *streamBody) ReadUntil(deadline time.Time) {
	_ = b.conn.Conn().SetReadDeadline(deadline)
}

// A Handover is a body stream that can change hands between responses
// without being closed, and whose reads can be given the request's
// deadline when it goes to the client: the upstream's streamed body, a
// buffered one (spool.Reader).
type Handover interface {
	io.Reader
	HandOver()
	ReadUntil(deadline time.Time)
}

// Move makes src's response dst's: the head is copied, and a streamed
// body changes hands without being read (only dst may close it then).
// src keeps its head and is left without a body.
func Move(dst, src *fasthttp.Response) {
	src.Header.CopyTo(&dst.Header)
	if h, ok := src.BodyStream().(Handover); ok {
		h.HandOver()
		dst.SetBodyStream(h, src.Header.ContentLength())
		src.ResetBody() // lets go of the stream without closing it
		return
	}
	dst.SetBody(src.Body())
}
