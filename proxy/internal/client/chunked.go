package client

import (
	"bufio"
	"bytes"
	"io"
)

// The chunked decoder of streamBody (RFC 9112 §7.1). It is strict where
// lenient parsers disagree: every line ends in CRLF, chunk lines and the
// trailer section are bounded, and trailers are read and dropped.

const (
	// maxChunkLine bounds a chunk-size line with its extensions.
	maxChunkLine = 4 << 10
	// maxTrailerLines bounds the trailer section, which is read and dropped.
	maxTrailerLines = 64
)

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
