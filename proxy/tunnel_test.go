package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// startEcho runs a WebSocket upstream that echoes every message, and
// answers plain requests (and refused upgrades, at /refuse) itself.
func startEcho(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	return startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/refuse") {
			http.Error(w, "no websocket here", http.StatusForbidden)
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			_, _ = io.WriteString(w, "plain")
			return
		}
		c, err := up.Upgrade(w, r, http.Header{"X-Upstream": {"echo"}})
		if err != nil {
			return
		}
		defer c.Close()
		c.SetPingHandler(func(data string) error {
			return c.WriteControl(websocket.PongMessage, []byte("pong:"+data), time.Now().Add(time.Second))
		})
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
}

const websocketRoute = `
listen: "127.0.0.1:0"
limits: {idle_timeout: %s}
upstreams: {app: {endpoints: ["%s"]}}
routes:
  - {name: ws, match: {path_prefix: /ws}, upstream: app, upgrades: [websocket]}
  - {name: default, match: {path_prefix: /}, upstream: app}
`

func dialWS(t *testing.T, url string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial(url, nil)
}

// TestWebSocketTunnel: through a route with upgrades: [websocket], the
// 101 is relayed and messages flow both ways, text and binary up to
// 1 MiB, with ping/pong and a close handshake; the route counts the
// tunnel while it is open.
func TestWebSocketTunnel(t *testing.T) {
	srv, addr := startServer(t, websocketRoute, "90s", startEcho(t))
	c, resp, err := dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("X-Upstream") != "echo" {
		t.Errorf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	for i := range 100 {
		typ, msg := websocket.TextMessage, []byte(strings.Repeat("a", i))
		if i%2 == 1 {
			typ, msg = websocket.BinaryMessage, bytes.Repeat([]byte{byte(i)}, i*10<<10) // up to ~1 MiB
		}
		if err := c.WriteMessage(typ, msg); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		gotTyp, got, err := c.ReadMessage()
		if err != nil || gotTyp != typ || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %d bytes of type %d back, %v", i, len(got), gotTyp, err)
		}
	}
	if err := c.WriteControl(websocket.PingMessage, []byte("hi"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _, _ = c.ReadMessage() }() // control frames are read by a reader
	select {
	case p := <-pong:
		if p != "pong:hi" {
			t.Errorf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Error("no pong")
	}
	r := srv.table.Load().route("ws")
	if active, total := r.metrics.Tunnels(); active != 1 || total != 1 {
		t.Errorf("tunnels: %d active, %d total; want 1, 1", active, total)
	}
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.Close()
	waitFor(t, "the tunnel to close", func() bool { active, _ := r.metrics.Tunnels(); return active == 0 })
}

// TestWebSocketRefusedOrStripped: an upstream that refuses the upgrade has
// its answer relayed; on a route without upgrades the Upgrade header is
// removed, so the upstream sees a plain request.
func TestWebSocketRefusedOrStripped(t *testing.T) {
	_, addr := startServer(t, websocketRoute, "90s", startEcho(t))
	if _, resp, err := dialWS(t, "ws://"+addr+"/ws/refuse"); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("refused upgrade: %v, %v", resp, err)
	}
	_, resp, err := dialWS(t, "ws://"+addr+"/plain")
	if err == nil || resp == nil || resp.StatusCode != 200 {
		t.Fatalf("upgrade on a route without upgrades: %v, %v", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "plain" {
		t.Errorf("the upstream answered %q: it saw the upgrade", b)
	}
}

// TestWebSocketIdleAndDrain: a tunnel silent both ways closes after
// limits.idle_timeout; one open at shutdown closes at the drain deadline.
func TestWebSocketIdleAndDrain(t *testing.T) {
	srv, addr := startServer(t, websocketRoute, "200ms", startEcho(t))
	c, _, err := dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("idle tunnel: %v, want closed", err)
	}

	c, _, err = dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	// Longer than fasthttp's own 100 ms poll of its open connections in
	// ShutdownWithContext: at 100 ms the two raced, and a loaded machine
	// sometimes had the drain end before fasthttp looked again.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	go func() { // keep it busy, so only the drain closes it
		for c.WriteMessage(websocket.TextMessage, []byte("x")) == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("a drain that closed a tunnel: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Error("the tunnel outlived the drain")
			}
			break
		}
	}
}

// TestWebSocketCloseReachesClient: when the upstream closes its
// connection after a close handshake (RFC 6455 has the server close
// first), the client's connection closes too, long before idle_timeout;
// and a tunnel silent both ways at shutdown is closed at the drain
// deadline. The client end is fasthttp's hijacked connection, whose own
// Close does nothing until the hijack handler returns.
func TestWebSocketCloseReachesClient(t *testing.T) {
	srv, addr := startServer(t, websocketRoute, "90s", startEcho(t))
	c, _, err := dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("close handshake: %v, want the upstream's close 1000", err)
	}
	if _, err := c.UnderlyingConn().Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the upstream closed its connection the client read %v, want EOF", err)
	}

	silent, _, err := dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case <-shut:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waits for a silent tunnel 10s after its drain deadline")
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := silent.ReadMessage(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent tunnel after the drain: %v, want closed", err)
	}
}

// TestWebSocketHoldsItsPoolSlot: an open tunnel keeps its place in the
// upstream's pool (max_connections), so tunnels cannot open more
// connections to the upstream than its limit; the place is free again
// once the tunnel closes.
func TestWebSocketHoldsItsPoolSlot(t *testing.T) {
	_, addr := startServer(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], max_connections: 1}}
routes:
  - {name: ws, match: {path_prefix: /ws}, upstream: app, upgrades: [websocket]}
  - {name: default, match: {path_prefix: /}, upstream: app}
`, startEcho(t))
	c, _, err := dialWS(t, "ws://"+addr+"/ws")
	if err != nil {
		t.Fatal(err)
	}
	head := rawRequest(t, addr, "GET /plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 503") || headerOf(head, "X-Tailguard-Error") != "pool_exhausted" {
		t.Errorf("a request while the tunnel holds the only connection: %.80q", head)
	}
	_ = c.Close()
	waitFor(t, "the pool slot to be free", func() bool {
		return strings.HasPrefix(rawRequest(t, addr, "GET /plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), "HTTP/1.1 200")
	})
}
