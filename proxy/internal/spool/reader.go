package spool

import (
	"io"
	"time"
)

// A Reader reads a Body from its start and then, for a body whose room ran
// out, the rest of its stream. It implements io.Reader and io.Closer;
// closing it lets go of its hold on the Body and closes the rest, if any
// (fasthttp closes a body stream once it has written it).
type Reader struct {
	body *Body
	off  int64
	rest io.Reader
	// handedOff makes the next Close a no-op: the reader moved from one
	// response to another, and only the second may close it.
	handedOff bool
	closed    bool
}

// NewReader returns a Reader of b followed by rest (nil: b is all). It
// takes a reference on b, which Close gives back.
func (b *Body) NewReader(rest io.Reader) *Reader {
	b.refs.Add(1)
	return &Reader{body: b, rest: rest}
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, io.ErrClosedPipe
	}
	if r.off < r.body.size {
		n, err := r.body.readAt(p, r.off)
		r.off += int64(n)
		if err == io.EOF && r.off < r.body.size {
			err = io.ErrUnexpectedEOF // the file is shorter than the body
		}
		return n, err
	}
	if r.rest == nil {
		return 0, io.EOF
	}
	return r.rest.Read(p)
}

// HandOver makes the next Close a no-op, for a reader moving from one
// fasthttp response to another (client.Move): fasthttp closes the body
// stream of the response it leaves.
func (r *Reader) HandOver() { r.handedOff = true }

// ReadUntil bounds the reads of the rest, if it streams from a source that
// can be bounded, by deadline (client.Handover).
func (r *Reader) ReadUntil(deadline time.Time) {
	if rest, ok := r.rest.(interface{ ReadUntil(time.Time) }); ok {
		rest.ReadUntil(deadline)
	}
}

// Close implements io.Closer. It closes the rest, if any, and releases the
// reader and its hold on the Body; a second Close does nothing.
func (r *Reader) Close() error {
	if r.handedOff {
		r.handedOff = false
		return nil
	}
	if r.closed {
		return nil
	}
	var err error
	switch c := r.rest.(type) {
	case interface{ CloseWithError(error) error }: // an upstream's stream
		err = c.CloseWithError(nil)
	case io.Closer:
		err = c.Close()
	}
	r.body.Release()
	*r = Reader{closed: true}
	return err
}

// Streams reports whether the reader goes on to a stream after the body:
// the room ran out, and the rest is still being read from its source.
func (r *Reader) Streams() bool { return r.rest != nil }
