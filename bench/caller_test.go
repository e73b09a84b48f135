package bench

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// ioWait bounds a wait for something that takes microseconds on
// loopback; it only keeps a broken test from hanging.
const ioWait = 10 * time.Second

// TestWarmConnections checks that the connections dialled before a run
// are handed out only while the target has neither closed nor written on
// them, and that the client dials afresh once none is left.
func TestWarmConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	l, err := Load{URL: "http://" + ln.Addr().String() + "/", Connections: 3, Count: 1, Rate: 1}.defaults()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCaller(l)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.connect(context.Background())
	if len(c.warm) != 3 {
		t.Fatalf("%d warm connections, want 3", len(c.warm))
	}
	server := make([]net.Conn, 3)
	for i := range server {
		server[i] = <-accepted
		defer server[i].Close()
	}
	// The target answers the first with a 408 and closes the second; the
	// third stays quiet.
	if _, err := io.WriteString(server[0], "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = server[1].Close()
	// Wait until the bytes and the close have arrived, then put the
	// connections back in their order.
	warm := []net.Conn{<-c.warm, <-c.warm, <-c.warm}
	for deadline := time.Now().Add(ioWait); quiet(warm[0]) || quiet(warm[1]); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the 408 and the close never reached the client")
		}
	}
	for _, w := range warm {
		c.warm <- w
	}

	got, err := c.dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.LocalAddr().String() != server[2].RemoteAddr().String() {
		t.Errorf("dial handed out %v, want the quiet warm connection %v", got.LocalAddr(), server[2].RemoteAddr())
	}
	fresh, err := c.dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	select {
	case s := <-accepted:
		defer s.Close()
		if s.RemoteAddr().String() != fresh.LocalAddr().String() {
			t.Errorf("fresh dial %v, but the target accepted %v", fresh.LocalAddr(), s.RemoteAddr())
		}
	case <-time.After(ioWait):
		t.Error("no fresh connection dialled once the warm ones were used up")
	}
}
