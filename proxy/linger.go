package proxy

import (
	"io"
	"net"
	"time"
)

// Lingering close, as nginx's lingering_close: when tailguard closes a
// client connection that may still be sending (a request body answered
// before it was read, say an upstream's early 413), closing at once would
// make the kernel reset the connection and the client could lose the
// response it was about to read. So the write side is shut first, and
// what the client still sends is read and dropped for a bounded time and
// size before the socket closes.
const (
	lingerTime  = 5 * time.Second
	lingerBytes = 64 << 20
)

// lingerListener wraps accepted TCP connections with a lingering Close.
type lingerListener struct{ net.Listener }

// Accept implements net.Listener.
func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return lingerConn{tc}, nil
	}
	return c, err
}

type lingerConn struct{ *net.TCPConn }

// Close shuts the write side and drains the read side in the background.
// A client that already closed costs one read that returns at once.
func (c lingerConn) Close() error {
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	if err := c.SetReadDeadline(time.Now().Add(lingerTime)); err != nil {
		return c.TCPConn.Close()
	}
	go func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(c.TCPConn, lingerBytes))
		_ = c.TCPConn.Close()
	}()
	return nil
}
