package splice

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (net.Conn, net.Conn) {
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
	return c, s
}

// joined joins two loopback connections and returns their outer ends:
// client ⇄ [a | Join | b] ⇄ server.
func joined(t *testing.T, idle time.Duration, stop <-chan struct{}) (client, server net.Conn, done <-chan struct{}) {
	client, a := pair(t)
	b, server := pair(t)
	d := make(chan struct{})
	go func() { Join(a, b, idle, stop); close(d) }()
	return client, server, d
}

func TestJoin(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("both ways, then a close handshake", func(t *testing.T) {
		client, server, done := joined(t, 0, nil)
		big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		go func() { _, _ = client.Write(big); _ = client.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(server) // EOF once the client half-closed
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("server read %d bytes, %v", len(got), err)
		}
		if _, err := server.Write([]byte("bye")); err != nil { // the other way still open
			t.Fatal(err)
		}
		_ = server.Close()
		back, _ := io.ReadAll(client)
		if string(back) != "bye" {
			t.Errorf("client read %q after its half close", back)
		}
		waitDone(t, done)
	})
	t.Run("idle both ways closes", func(t *testing.T) {
		client, _, done := joined(t, 50*time.Millisecond, nil)
		waitDone(t, done)
		_ = client.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("client read after idle: %v, want EOF", err)
		}
	})
	t.Run("traffic one way keeps it open", func(t *testing.T) {
		client, server, done := joined(t, 400*time.Millisecond, nil)
		for range 20 { // 1 s, over two idle periods, with the server silent
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
				t.Fatalf("tunnel closed while the client spoke: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = client.Close()
		_ = server.Close()
		waitDone(t, done)
	})
	t.Run("stop closes", func(t *testing.T) {
		stop := make(chan struct{})
		client, _, done := joined(t, 0, stop)
		close(stop)
		waitDone(t, done)
		_ = client.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("client read after stop: %v, want EOF", err)
		}
	})
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel did not end")
	}
}
