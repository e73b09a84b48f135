package edge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts the writes made to the sockets it accepts: the
// system calls crypto/tls's records cost.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// testTLSConfig is a server config with a throwaway self-signed ECDSA
// P-256 certificate for 127.0.0.1.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// tlsPair is a client edge over TLS on loopback, its socket writes
// counted, and a client connected to it, not handshaken yet: the
// server's end of the connection and the client's.
func tlsPair(t *testing.T) (server net.Conn, client *tls.Conn, writes *atomic.Int64) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	writes = new(atomic.Int64)
	ln := NewListener(countingListener{tcp, writes}, 10, testTLSConfig(t), &Stats{}, nil)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The handshake is made by the first read or write of either end.
	client = tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	t.Cleanup(func() { _ = client.Close() })
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = server.Close() })
	return server, client, writes
}

// request sends 3 bytes from client to server, both making the
// handshake on the way.
func request(t *testing.T, server net.Conn, client *tls.Conn) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { _, err := client.Write([]byte("GET")); sent <- err }()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(server, make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// TestCorkedTLSWrite: once the client has sent a request, one write of
// 64 KiB over TLS on a new connection (dynamic record sizing: records of
// 1 KiB and up, a dozen of them) reaches the socket in at most two
// writes (one per corkLimit), and arrives whole and in order.
func TestCorkedTLSWrite(t *testing.T) {
	server, client, writes := tlsPair(t)
	request(t, server, client)
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<10)
	before := writes.Load()
	done := make(chan error, 1)
	go func() { _, err := server.Write(body); done <- err }()
	got := make([]byte, len(body))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("the body arrived changed")
	}
	if n := writes.Load() - before; n > 2 {
		t.Errorf("%d socket writes for one 64 KiB write, want at most 2", n)
	}
}

// TestWriteBeforeRequestNotCorked: a write before the client has sent
// anything (the handshake not over yet, and made by the write) is not
// corked, so the handshake's flights are not held back and it completes.
func TestWriteBeforeRequestNotCorked(t *testing.T) {
	server, client, _ := tlsPair(t)
	_ = server.SetDeadline(time.Now().Add(10 * time.Second))
	done := make(chan error, 1)
	go func() { _, err := server.Write([]byte("hello")); done <- err }()
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 5)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitStuck waits until c has been flushing for 200 ms on end: its
// client's window and the socket's buffer are full.
func waitStuck(t *testing.T, c *corkConn) {
	t.Helper()
	since := time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Since(since) < 200*time.Millisecond; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer never got stuck in a flush")
		}
		if !c.flushing.Load() {
			since = time.Now()
		}
	}
}

// TestCloseInterruptsCorkedFlush: a corked write stuck on a client that
// does not read is cut short by Close, which neither waits for it nor
// for the close_notify's 5 s write deadline. The writes are smaller than
// corkLimit, so that they get stuck in the flush after crypto/tls's
// Write has returned, where its own Close cannot see them.
func TestCloseInterruptsCorkedFlush(t *testing.T) {
	server, client, _ := tlsPair(t)
	request(t, server, client)
	_ = server.SetWriteDeadline(time.Now().Add(30 * time.Second))
	done := make(chan error, 1)
	go func() {
		big := make([]byte, 32<<10)
		for {
			if _, err := server.Write(big); err != nil {
				done <- err
				return
			}
		}
	}()
	waitStuck(t, server.(*clientConn).cork)
	start := time.Now()
	_ = server.Close()
	if err := <-done; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the stuck write ended with %v, want the close's error", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("close and the stuck write took %v: it waited behind the write", took)
	}
}
