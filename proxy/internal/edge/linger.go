package edge

import (
	"io"
	"net"
	"syscall"
	"time"

	"tailguard/proxy/internal/peek"
)

// Lingering close, as nginx's lingering_close: when tailguard closes a
// client connection on which the client is still sending (a request body
// answered before it was read, say an upstream's early 413), closing at
// once would make the kernel reset the connection, and the client could
// lose the response it was about to read. So then the write side is shut
// first, and what the client still sends is read and dropped for a bounded
// time and size before the socket closes. A connection with nothing
// unread, the common case (and every idle keep-alive connection closed at
// shutdown), closes at once.
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
		if raw, rerr := tc.SyscallConn(); rerr == nil {
			return lingerConn{TCPConn: tc, raw: raw}, nil
		}
	}
	return c, err
}

type lingerConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

// Close closes at once if the client has sent nothing unread; otherwise it
// shuts the write side and drains the read side in the background.
func (c lingerConn) Close() error {
	if !c.unread() {
		return c.TCPConn.Close()
	}
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

// unread reports whether bytes from the client wait in the socket.
func (c lingerConn) unread() bool { return unread(c.raw) }

// unread reports whether bytes wait in raw's socket; false if it cannot
// be asked.
func unread(raw syscall.RawConn) bool {
	var r peek.Result
	err := raw.Control(func(fd uintptr) { r = peek.Socket(fd) })
	return err == nil && r == peek.Stray
}
