package client

import (
	"io"

	"github.com/valyala/fasthttp"
)

// An upload writes a request with a streamed body on its own goroutine
// while the caller reads the response: an upstream may answer before it
// has read the whole body (a 413, a 401, or a full-duplex stream), and that
// answer must reach the client instead of a deadlock or a 502.
type upload struct {
	body *RequestBody
	done chan error
}

func startUpload(e *Endpoint, uc *upstreamConn, req *fasthttp.Request) *upload {
	u := &upload{done: make(chan error, 1)}
	u.body, _ = req.BodyStream().(*RequestBody)
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

// RequestBody is a client's request body streamed to the upstream. It
// enforces the route's body limit on bodies of unknown length (chunked),
// and it remembers a failure on the client's side, so that a broken upload
// is not blamed on the upstream (Classify: cause.BodyTooLarge or
// cause.BadRequest): that includes a body that ends before its
// Content-Length, which fasthttp's stream reports as a plain end when the
// client closes its side mid-body. It is not pooled: the upload goroutine
// may still hold it when the handler returns.
type RequestBody struct {
	r     io.Reader
	left  int64 // bytes still owed by the Content-Length; < 0: unknown length
	limit int64 // bytes still allowed; < 0: no limit
	err   error
}

// NewRequestBody wraps r, a client's body of length bytes (< 0: unknown,
// as chunked). A body of unknown length may have at most maxBody bytes
// (< 0: no limit); one of known length was held to it before it was read.
func NewRequestBody(r io.Reader, length int, maxBody int64) *RequestBody {
	b := &RequestBody{r: r, left: int64(length), limit: -1}
	if length < 0 {
		b.limit = maxBody
	}
	return b
}

// Read implements io.Reader.
func (b *RequestBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	if b.limit >= 0 {
		if b.limit -= int64(n); b.limit < 0 {
			b.err = errBodyTooLarge
			return 0, b.err
		}
	}
	if b.left >= 0 {
		if b.left -= int64(n); err == io.EOF && b.left > 0 {
			err = io.ErrUnexpectedEOF // the client closed short of its Content-Length
		}
	}
	if err != nil && err != io.EOF {
		if b.err = errClientBody; clientSide(err) {
			b.err = err // a RequestBody read through another
		}
		return n, b.err
	}
	return n, err
}

// Close closes what the body reads from, if it can be closed (a
// buffered part of the body, spool.Reader): fasthttp closes a request's
// body stream once it has written it.
func (b *RequestBody) Close() error {
	if c, ok := b.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
