package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"

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
	// handedOff makes the next CloseWithError a no-op: the body moved from
	// a hedged attempt's response to the client's, and only the client's
	// may close it.
	handedOff bool
}

type framing uint8

const (
	framedLength  framing = iota + 1 // Content-Length
	framedChunked                    // Transfer-Encoding: chunked
	framedClose                      // until the upstream closes
)

var (
	errChunkSyntax = errors.New("malformed chunked body from upstream")
	streamBodyPool = sync.Pool{New: func() any { return new(streamBody) }}
)

const (
	// maxChunkLine bounds a chunk-size line with its extensions.
	maxChunkLine = 4 << 10
	// maxTrailerLines bounds the trailer section, which is read and dropped.
	maxTrailerLines = 64
)

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

func (b *streamBody) readChunked(p []byte) (int, error) {
	if b.remaining == 0 {
		if err := b.nextChunk(); err != nil || b.done {
			return 0, err
		}
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.crlf = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// nextChunk reads the CRLF ending the previous chunk's data and the next
// chunk-size line; at the last chunk it reads and drops the trailers.
func (b *streamBody) nextChunk() error {
	if b.crlf {
		if err := b.expectCRLF(); err != nil {
			return err
		}
		b.crlf = false
	}
	line, err := b.line()
	if err != nil {
		return err
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return err
	}
	if size > 0 {
		b.remaining = size
		return nil
	}
	for range maxTrailerLines {
		if line, err = b.line(); err != nil {
			return err
		}
		if len(line) == 0 {
			b.done = true
			return nil
		}
	}
	return errChunkSyntax
}

func (b *streamBody) expectCRLF() error {
	crlf, err := b.br.Peek(2)
	if err != nil {
		return err
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return errChunkSyntax
	}
	_, err = b.br.Discard(2)
	return err
}

// line returns the next CRLF-terminated line without its CRLF. A bare LF,
// or a CR anywhere else, is refused: lenient line endings are how bodies
// get smuggled.
func (b *streamBody) line() ([]byte, error) {
	line, err := b.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return nil, errChunkSyntax
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, errChunkSyntax
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, errChunkSyntax
	}
	return line, nil
}

// parseChunkSize parses "1a2b" or "1a2b;ext=val" (RFC 9112 §7.1).
func parseChunkSize(line []byte) (int64, error) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, errChunkSyntax
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, errChunkSyntax
		}
		n = n<<4 | int64(d)
	}
	return n, nil
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

// handOff readies b to move from one response to another (see handedOff).
func (b *streamBody) handOff() { b.handedOff = true }

// requestBody is a client's request body streamed to the upstream. It
// enforces the route's body limit on bodies of unknown length (chunked),
// and it remembers a failure on the client's side, so that a broken upload
// is not blamed on the upstream.
type requestBody struct {
	r     io.Reader
	limit int64 // bytes still allowed; < 0: no limit
	err   error
}

var errBodyTooLarge = errors.New("request body too large")

// newRequestBody is not pooled: the upload goroutine may still hold it
// when the handler returns.
func newRequestBody(r io.Reader, limit int64) *requestBody {
	return &requestBody{r: r, limit: limit}
}

// Read implements io.Reader.
func (b *requestBody) Read(p []byte) (int, error) {
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
	if err != nil && err != io.EOF {
		b.err = errClientBody
		return n, b.err
	}
	return n, err
}
