package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/resilience"
)

// Errors of one round trip; classify says what each means.
var (
	errPoolFull       = errors.New("upstream connection pool full")
	errConnectFailure = errors.New("upstream connect failed")
	errTimeout        = errors.New("upstream timed out")
	errReset          = errors.New("upstream closed or reset the connection")
	errBadResponse    = errors.New("upstream sent a malformed response")
	errClientBody     = errors.New("client request body failed")
	errUploadAborted  = errors.New("upload stopped: the upstream answered first")
)

// roundTripErrors gives each round-trip error the cause tailguard answers
// the client with and the reason retry policies and the breaker see.
var roundTripErrors = [...]struct {
	err   error
	cause cause
	why   resilience.Reason
}{
	{errPoolFull, causePoolFull, resilience.Refused},
	{errConnectFailure, causeConnectFailure, resilience.ConnectFailure},
	{errConnectTimeout, causeConnectTimeout, resilience.ConnectFailure},
	{errTimeout, causeTimeout, resilience.Timeout},
	{errBodyTooLarge, causeBodyTooLarge, resilience.Refused},
	{errClientBody, causeBadRequest, resilience.Refused},
	{errBadResponse, causeBadResponse, resilience.BadResponse},
	{errChunkSyntax, causeBadResponse, resilience.BadResponse},
}

// classify maps a round-trip error to its cause and reason; any other
// error (errReset, errUploadAborted, a socket's) is a reset.
func classify(err error) (cause, resilience.Reason) {
	if err == nil {
		return causeNone, resilience.ReasonNone
	}
	for _, e := range roundTripErrors {
		if errors.Is(err, e.err) {
			return e.cause, e.why
		}
	}
	return causeUpstreamReset, resilience.Reset
}

const (
	// bodyBufferLimit is the largest response body read whole into memory;
	// longer or unframed (chunked, until-close) bodies stream through.
	bodyBufferLimit = 64 << 10
	// maxInterim bounds 1xx responses skipped before the final one.
	maxInterim = 8
)

// roundTrip sends req to the endpoint and reads the response head into
// resp, with deadline (zero: none) bounding the dial, the write and every
// read, including a streamed body's. A body of at most bodyBufferLimit
// bytes with a Content-Length is read whole and the connection goes back to
// the pool at once; any other body is left to stream: resp's body stream
// owns the connection until the server has written it to the client.
//
// A connection is pooled again only when the upstream's framing was exact:
// no byte beyond the response, no Connection: close. Before a pooled
// connection is reused, it is checked for bytes that arrived since
// (upstreamConn.reusable), so a response can never be read by the wrong
// request. No request is ever sent twice: a connection found unusable is
// replaced before anything is written to it.
func (e *endpoint) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, start, deadline time.Time) error {
	c, uc, err := e.acquire(start, deadline)
	if err != nil {
		return err
	}
	if err = uc.SetDeadline(deadline); err != nil {
		pooledConns.close(e.hc, c)
		return errReset
	}
	var up *upload
	if req.IsBodyStream() {
		up = startUpload(e, uc, req)
	} else if err = e.write(uc, req); err != nil {
		pooledConns.close(e.hc, c)
		return err
	}
	br := e.hc.AcquireReader(uc)
	err = readHead(br, req, resp)
	cl := resp.Header.ContentLength()
	bodyless := resp.SkipBody || !bodyAllowed(resp.StatusCode())
	if err == nil && !bodyless && (cl < 0 || cl > bodyBufferLimit) {
		resp.SetBodyStream(acquireStreamBody(e.hc, c, br, cl, !resp.ConnectionClose(), up), max(cl, -1))
		return nil
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
	return err
}

// acquire takes a pooled connection that is safe to use, or dials one
// within what the deadline leaves after start, the attempt's start (a
// dial is bounded by its own connect timeout too; a pooled connection
// needs no timeout). Pooled connections that fail the reuse check are
// closed; the loop ends because each pass either returns or shrinks the
// pool.
func (e *endpoint) acquire(start, deadline time.Time) (connRef, *upstreamConn, error) {
	var dialTimeout time.Duration
	if !deadline.IsZero() {
		if dialTimeout = deadline.Sub(start); dialTimeout <= 0 {
			return nil, nil, errTimeout
		}
	}
	for range e.hc.MaxConns + 1 {
		c, err := pooledConns.acquire(e.hc, dialTimeout)
		if err != nil {
			return nil, nil, dialErr(err)
		}
		uc := c.Conn().(*upstreamConn)
		if !uc.used {
			uc.used = true
			return c, uc, nil
		}
		if uc.reusable() {
			return c, uc, nil
		}
		pooledConns.close(e.hc, c)
	}
	return nil, nil, errPoolFull
}

func (e *endpoint) write(uc *upstreamConn, req *fasthttp.Request) error {
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

// An upload writes a request with a streamed body on its own goroutine
// while the caller reads the response: an upstream may answer before it
// has read the whole body (a 413, a 401, or a full-duplex stream), and that
// answer must reach the client instead of a deadlock or a 502.
type upload struct {
	body *requestBody
	done chan error
}

func startUpload(e *endpoint, uc *upstreamConn, req *fasthttp.Request) *upload {
	u := &upload{done: make(chan error, 1)}
	u.body, _ = req.BodyStream().(*requestBody)
	go func() {
		err := e.write(uc, req)
		if u.body != nil && u.body.err != nil {
			err = u.body.err
		}
		if clientSide(err) {
			// The upstream waits for the rest of a request that will
			// not come: close, so that the read of its response ends.
			_ = uc.Close()
		}
		u.done <- err
	}()
	return u
}

// finish waits for the upload to end once the response is complete (or
// has failed). An upload still running then is one the upstream does not
// want: the connection is closed to stop it. A nil error means the whole
// request was written.
func (u *upload) finish(uc *upstreamConn) error {
	select {
	case err := <-u.done:
		return err
	default:
	}
	_ = uc.Close()
	if err := <-u.done; clientSide(err) {
		return err
	}
	return errUploadAborted
}

// clientSide reports whether an upload failed because of the client's
// body rather than the upstream.
func clientSide(err error) bool {
	return errors.Is(err, errBodyTooLarge) || errors.Is(err, errClientBody)
}

// readHead reads the final response head, skipping interim 1xx responses.
// A 101 is refused: tailguard never forwards Upgrade, so it is a protocol
// violation.
func readHead(br *bufio.Reader, req *fasthttp.Request, resp *fasthttp.Response) error {
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
			return errBadResponse
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

func dialErr(err error) error {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return errPoolFull
	case errors.Is(err, errConnectTimeout):
		return errConnectTimeout
	default:
		return errConnectFailure
	}
}

// readErr classifies an error reading a response: a timeout, the
// connection ending early, or anything else (malformed).
func readErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errReset
	}
	return netErr(err, errBadResponse)
}

// netErr maps timeouts to errTimeout and socket errors to errReset;
// anything else becomes other.
func netErr(err, other error) error {
	var te interface{ Timeout() bool }
	switch {
	case errors.As(err, &te) && te.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.As(err, new(*net.OpError)):
		return errReset
	default:
		return other
	}
}
