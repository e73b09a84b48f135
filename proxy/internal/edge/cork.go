package edge

import (
	"net"
	"sync"
	"sync/atomic"
)

// Corking a TLS connection's writes: crypto/tls writes every record with
// a system call of its own, and a record holds at most 16 KiB, or about
// 1 KiB at first on a new connection (dynamic record sizing, growing to
// 16 KiB over the first 128 KiB), so that one response of 64 KiB went out
// in 5 writes on a kept-alive connection and 13 on a new one, where plain
// TCP takes 2. A client connection over TLS therefore corks the socket
// for each of its writes: the records crypto/tls makes of one write are
// gathered below it and go out in one write (every corkLimit bytes for a
// larger one). The records keep their sizes, so a client still decrypts
// the first as soon as it arrives.
//
// Only once the handshake is over: during it, crypto/tls writes a flight
// and then waits to read the answer, which must not wait behind a cork.
// A connection from which application data has been read is past it
// (clientConn.spoke).

// corkLimit is how much a corked write gathers before writing it out: a
// bound on the memory a write holds, and 64 KiB amortises the system
// call well.
const corkLimit = 64 << 10

// corkListener puts every accepted connection under a cork; TLS wraps
// what it accepts.
type corkListener struct{ net.Listener }

// Accept implements net.Listener.
func (l corkListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &corkConn{Conn: c}, nil
}

// corkConn is the connection under crypto/tls. While corked its writes
// are gathered in a pooled buffer (no memory is held between writes, nor
// by an idle connection); uncork writes them out. Safe for concurrent use:
// crypto/tls may write from a reading goroutine (an alert, a key update)
// while another is corked, and such a write joins the gathered ones in
// order.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // gathered records; nil when there are none
	// flushing is set while a flush writes to the socket, closing once
	// Close has begun: between them, a Close never waits behind a flush
	// to a client that does not read (see interrupt).
	flushing, closing atomic.Bool
}

// corkBufs hold a corked write's records: corkLimit, and room for the
// record that crosses it.
var corkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, corkLimit+maxRecordBytes)
	return &b
}}

// maxRecordBytes is the largest TLS record crypto/tls writes: 16 KiB of
// data, and a header, padding and tag.
const maxRecordBytes = 16<<10 + 256

// Write implements net.Conn: gathered while corked, written through
// otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	if len(*c.buf) >= corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cork gathers the writes that follow until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes out what was gathered, and lets later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

// flushLocked writes the gathered records in one write and gives their
// buffer back; after interrupt it writes nothing and fails.
func (c *corkConn) flushLocked() error {
	b := c.buf
	if b == nil {
		return nil
	}
	c.buf = nil
	defer func() {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}()
	c.flushing.Store(true)
	defer c.flushing.Store(false)
	if c.closing.Load() {
		return net.ErrClosed
	}
	_, err := c.Conn.Write(*b)
	return err
}

// interrupt is called as the connection starts to close: a flush under
// way, which may wait on a client that does not read, is cut short by
// closing the socket, as crypto/tls's Close does to a write of its own
// under way, rather than holding the close (and its close_notify)
// behind it; a flush not yet begun will not begin. flushing and closing
// are each set before the other is read, so one of the two sides sees
// the other.
func (c *corkConn) interrupt() {
	c.closing.Store(true)
	if !c.flushing.Load() {
		return
	}
	if lc, ok := c.Conn.(lingerConn); ok {
		_ = lc.TCPConn.Close() // no lingering: the client is not reading
		return
	}
	_ = c.Conn.Close()
}

// corkWrite is clientConn.Write over TLS once the handshake is over: the
// records of p go out together.
func (c *corkConn) corkWrite(w net.Conn, p []byte) (int, error) {
	c.cork()
	n, err := w.Write(p)
	if ferr := c.uncork(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}
