package client

import (
	"bufio"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// bodyBufferLimit is the largest response body read whole into memory;
	// longer or unframed (chunked, until-close) bodies stream through.
	bodyBufferLimit = 64 << 10
	// maxInterim bounds 1xx responses skipped before the final one.
	maxInterim = 8
)

// RoundTrip sends req to the endpoint and reads the response head into
// resp, with deadline (zero: none) bounding the dial, the write and every
// read, including a streamed body's. A body of at most bodyBufferLimit
// bytes with a Content-Length is read whole and the connection goes back to
// the pool at once; any other body is left to stream: resp's body stream
// owns the connection until the server has written it to the client.
//
// A connection is pooled again only when the upstream's framing was exact:
// no byte beyond the response, no Connection: close. Before a pooled
// connection is reused, it is checked for bytes that arrived since
// (upstreamConn.send, socketIdle), so a response can never be read by the wrong
// request. No request is ever sent twice: a connection found unusable is
// replaced before anything is written to it.
func (e *Endpoint) RoundTrip(req *fasthttp.Request, resp *fasthttp.Response, start, deadline time.Time) error {
	_, err := e.roundTrip(req, resp, start, deadline, false)
	return err
}

// Upgrade is RoundTrip for a request asking to switch protocols
// (WebSocket): if the upstream answers 101, the connection is handed over
// as an Upgraded, which the caller owns until it closes it; any other
// answer is a response like RoundTrip's, and the Upgraded is nil.
func (e *Endpoint) Upgrade(req *fasthttp.Request, resp *fasthttp.Response, start, deadline time.Time) (*Upgraded, error) {
	return e.roundTrip(req, resp, start, deadline, true)
}

func (e *Endpoint) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, start, deadline time.Time, upgrade bool) (*Upgraded, error) {
	c, uc, up, err := e.send(req, start, deadline)
	if err != nil {
		return nil, err
	}
	br := e.hc.AcquireReader(uc)
	err = readHead(br, req, resp, upgrade)
	if err == nil && resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		return e.upgraded(c, uc, br)
	}
	cl := resp.Header.ContentLength()
	bodyless := resp.SkipBody || !bodyAllowed(resp.StatusCode())
	if err == nil && !bodyless && (cl < 0 || cl > bodyBufferLimit) {
		resp.SetBodyStream(acquireStreamBody(e.hc, c, br, cl, !resp.ConnectionClose(), up), max(cl, -1))
		return nil, nil
	}
	if err == nil && !bodyless {
		err = readErr(resp.ReadBody(br, bodyBufferLimit))
	}
	keepAlive := err == nil && !resp.ConnectionClose() && br.Buffered() == 0
	if up != nil {
		if uerr := up.finish(uc); uerr != nil {
			keepAlive = false
			if err != nil && clientSide(uerr) {
				err = uerr
			}
		}
	}
	e.hc.ReleaseReader(br)
	if keepAlive {
		pooledConns.release(e.hc, c)
	} else {
		pooledConns.close(e.hc, c)
	}
	return nil, err
}

// send takes a connection and writes req on it: a pooled connection that
// is safe to use, or one dialled within what the deadline leaves after
// start, the attempt's start (a dial is bounded by its own connect timeout
// too; a pooled connection needs no timeout). A request with a streamed
// body is written by an upload running beside the response's read; any
// other on plain HTTP by upstreamConn.send, which returns once the
// response has begun to arrive. (Over TLS, a fresh connection may hold
// the server's session tickets, which the TLS layer reads as it reads the
// response, so its socket cannot be judged by a peek; it is written as the
// request is read, one after the other.) Pooled connections that fail the
// reuse check are closed before anything is written to them; the loop
// ends because each pass either returns or shrinks the pool.
func (e *Endpoint) send(req *fasthttp.Request, start, deadline time.Time) (connRef, *upstreamConn, *upload, error) {
	var dialTimeout time.Duration
	if !deadline.IsZero() {
		if dialTimeout = deadline.Sub(start); dialTimeout <= 0 {
			return nil, nil, nil, errTimeout
		}
	}
	for range e.hc.MaxConns + 1 {
		c, err := pooledConns.acquire(e.hc, dialTimeout)
		if err != nil {
			return nil, nil, nil, dialErr(err)
		}
		uc := c.Conn().(*upstreamConn)
		pooled := uc.used
		uc.used = true
		switch {
		case pooled && uc.tls != nil && !tlsIdle(uc.tls): // before SetDeadline: it moves the read deadline
			err = errStale
		case uc.SetDeadline(deadline) != nil:
			err = errReset
		case uc.tls == nil && !req.IsBodyStream():
			err = uc.send(e, req, pooled)
		case pooled && !uc.socketIdle():
			err = errStale
		case req.IsBodyStream():
			return c, uc, startUpload(e, uc, req), nil
		default:
			err = e.write(uc, req)
		}
		if err == nil {
			return c, uc, nil, nil
		}
		pooledConns.close(e.hc, c)
		if err != errStale {
			return nil, nil, nil, err
		}
	}
	return nil, nil, nil, errPoolFull
}

func (e *Endpoint) write(uc *upstreamConn, req *fasthttp.Request) error {
	bw := e.hc.AcquireWriter(uc)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	e.hc.ReleaseWriter(bw)
	if err == nil {
		return nil
	}
	return netErr(err, errReset)
}

// readHead reads the final response head, skipping interim 1xx responses.
// A 101 ends the head only for a request that asked to upgrade; to any
// other it is a protocol violation (tailguard forwarded no Upgrade).
func readHead(br *bufio.Reader, req *fasthttp.Request, resp *fasthttp.Response, upgrade bool) error {
	// Not resp.Reset: that would drop the server's settings on the
	// response (no default Date or Content-Type); Header.Read keeps them.
	resp.ResetBody()
	resp.SkipBody = req.Header.IsHead()
	for range maxInterim {
		if err := resp.Header.Read(br); err != nil {
			return readErr(err)
		}
		status := resp.StatusCode()
		if status == fasthttp.StatusSwitchingProtocols {
			if !upgrade {
				return errBadResponse
			}
			return nil
		}
		if status >= 200 {
			// The status line's version is tailguard's own: an HTTP/1.0
			// upstream does not make the client's hop HTTP/1.0.
			resp.Header.SetProtocol(strHTTP11)
			return nil
		}
	}
	return errBadResponse
}

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9112 §6.3).
func bodyAllowed(status int) bool {
	return status >= 200 && status != fasthttp.StatusNoContent && status != fasthttp.StatusNotModified
}

var strHTTP11 = []byte("HTTP/1.1")
