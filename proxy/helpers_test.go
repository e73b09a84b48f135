package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
)

// startProxy runs a Server for the YAML config (upstream endpoints may be
// given as "%s" placeholders filled from addrs) on a loopback port and
// returns its address. The server is shut down when the test ends.
func startProxy(t testing.TB, yaml string, addrs ...any) string {
	t.Helper()
	_, addr := startServer(t, yaml, addrs...)
	return addr
}

// startServer is startProxy, returning the Server too.
func startServer(t testing.TB, yaml string, addrs ...any) (*Server, string) {
	t.Helper()
	return startLoggingServer(t, zap.NewNop(), yaml, addrs...)
}

// startLoggingServer is startServer logging to log.
func startLoggingServer(t testing.TB, log *zap.Logger, yaml string, addrs ...any) (*Server, string) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(yaml, addrs...)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s, err := NewServer(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), log)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// oneRoute is a config with one upstream and one catch-all route.
const oneRoute = `
listen: "127.0.0.1:0"
upstreams:
  app:
    endpoints: ["%s"]
routes:
  - name: default
    match: {path_prefix: /}
    upstream: app
`

// startHTTP runs a net/http upstream on loopback.
func startHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// rawUpstream is a scripted upstream over raw TCP: for each request it
// reads the head (and a Content-Length body), records it, and lets the
// test's reply function write whatever bytes it likes, however malformed.
type rawUpstream struct {
	ln    net.Listener
	mu    sync.Mutex
	heads []string
	conns int
}

func startRaw(t testing.TB, reply func(c net.Conn, n int, head string)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startRawOn(t, ln, reply)
}

// startRawOn is startRaw on ln (a TLS listener, say).
func startRawOn(t testing.TB, ln net.Listener, reply func(c net.Conn, n int, head string)) *rawUpstream {
	t.Helper()
	u := &rawUpstream{ln: ln}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					head, err := readRawHead(br)
					if err != nil {
						return
					}
					u.mu.Lock()
					u.heads = append(u.heads, head)
					n := len(u.heads)
					u.mu.Unlock()
					reply(c, n, head)
				}
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

func (u *rawUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.heads...)
}

func (u *rawUpstream) connCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// readRawHead reads a request head and discards a Content-Length body.
func readRawHead(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	cl := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			_, _ = fmt.Sscan(strings.TrimSpace(v), &cl)
		}
	}
	_, err := io.CopyN(io.Discard, br, int64(cl))
	return sb.String(), err
}

// rawRequest sends raw bytes to addr and returns everything read until the
// server closes or goes quiet for the read timeout.
func rawRequest(t testing.TB, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

// readStats ticks srv's registry, so that every request so far is in the
// windows, and decodes its /stats?window=all into doc.
func readStats(t testing.TB, srv *Server, doc any) {
	t.Helper()
	srv.reg.Tick(time.Now())
	admin := metrics.NewAdmin(metrics.AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: srv.reg})
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats?window=all", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), doc); err != nil {
		t.Fatalf("/stats: %v\n%s", err, rec.Body)
	}
}
