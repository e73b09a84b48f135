// Package peek looks at what waits on a socket without reading it. The
// upstream client uses it to refuse a pooled connection that received
// bytes nobody asked for (ARCHITECTURE.md, "response desync"), and the
// client edge to tell whether closing a connection would reset it under a
// client that is still sending.
package peek

import "syscall"

// A Result is what waits on a socket.
type Result uint8

const (
	// Clean: nothing pending.
	Clean Result = iota
	// Stray: bytes are waiting to be read.
	Stray
	// Closed: the peer closed (FIN) or reset the connection, or the socket
	// failed.
	Closed
)

// Socket looks at fd without blocking or consuming anything: one
// non-blocking recv with MSG_PEEK. It allocates nothing.
func Socket(fd uintptr) Result {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		return Clean
	case err != nil, n == 0:
		return Closed
	default:
		return Stray
	}
}
