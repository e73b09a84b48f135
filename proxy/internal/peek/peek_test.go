package peek

import (
	"net"
	"syscall"
	"testing"
)

// socketPair returns both ends of a loopback TCP connection and the raw
// socket of the first.
func socketPair(t testing.TB) (net.Conn, net.Conn, syscall.RawConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return c, s, raw
}

// looker peeks through a method value bound once, as the upstream client
// does, so that a look allocates nothing.
type looker struct {
	raw syscall.RawConn
	fn  func(fd uintptr)
	r   Result
}

func newLooker(raw syscall.RawConn) *looker {
	l := &looker{raw: raw}
	l.fn = l.peek
	return l
}

func (l *looker) peek(fd uintptr) { l.r = Socket(fd) }

func (l *looker) look() Result {
	_ = l.raw.Control(l.fn)
	return l.r
}

// TestSocket: an idle socket is Clean, a byte waiting is Stray and stays
// waiting, a peer's close is Closed.
func TestSocket(t *testing.T) {
	_, s, raw := socketPair(t)
	l := newLooker(raw)
	if r := l.look(); r != Clean {
		t.Fatalf("idle socket: %v, want Clean", r)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for r := l.look(); r != Stray; r = l.look() {
		if r != Clean {
			t.Fatalf("a byte on its way: %v, want Clean, then Stray", r)
		}
	}
	if r := l.look(); r != Stray {
		t.Fatalf("looked again: %v; the peek consumed the byte", r)
	}

	_, s2, raw2 := socketPair(t)
	l2 := newLooker(raw2)
	s2.Close()
	for r := l2.look(); r != Closed; r = l2.look() {
		if r != Clean {
			t.Fatalf("a closed peer: %v, want Clean, then Closed", r)
		}
	}
}

// BenchmarkSocket is the cost of the reuse check on an idle socket: one
// non-blocking recv with MSG_PEEK (README, "Where the time goes").
func BenchmarkSocket(b *testing.B) {
	_, _, raw := socketPair(b)
	l := newLooker(raw)
	b.ReportAllocs()
	for b.Loop() {
		if l.look() != Clean {
			b.Fatal("not clean")
		}
	}
}
