package proxy

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/client"
	"tailguard/proxy/internal/splice"
)

// tunnels are the upgraded connections (WebSocket) the server has open.
// A tunnel leaves the request path after the 101: the request is recorded
// like any other, and its two connections are spliced on the connection's
// own goroutine until either side closes, limits.idle_timeout passes in
// silence both ways, or the server stops.
type tunnels struct {
	wg      sync.WaitGroup
	stop    chan struct{} // closed at drain.timeout
	stopped sync.Once
}

// tunnel relays the upstream's 101 to the client and splices the client
// connection and up once the handler has returned. The route counts the
// tunnel while it is open.
func (s *Server) tunnel(ctx *fasthttp.RequestCtx, route *Route, up *client.Upgraded) {
	head := append([]byte(nil), ctx.Response.Header.Header()...)
	m := route.metrics
	m.TunnelOpened()
	s.tunnels.wg.Add(1)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		defer s.tunnels.wg.Done()
		defer m.TunnelClosed()
		if _, err := c.Write(head); err != nil {
			_ = up.Close()
			return
		}
		splice.Join(clientEnd{c}, up, s.srv.IdleTimeout, s.tunnels.stop)
	})
}

// clientEnd is the client side of a tunnel. fasthttp's hijacked
// connection reads what the client sent after the upgrade request first,
// so reads go through it; but its Close does nothing until the hijack
// handler returns (fasthttp closes the connection then), and it hides
// the connection's CloseWrite. Joined as it is, the tunnel could neither
// pass on the upstream's close (the client hung on until it gave up
// itself) nor close a silent client at drain.timeout (the drain waited
// for limits.idle_timeout). Close and CloseWrite reach the connection
// under it.
type clientEnd struct{ net.Conn }

// conn is the connection under fasthttp's hijacked one.
func (c clientEnd) conn() net.Conn {
	if u, ok := c.Conn.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c.Conn
}

// Close implements net.Conn. fasthttp's own close after the hijack
// handler comes second and is harmless.
func (c clientEnd) Close() error { return c.conn().Close() }

// CloseWrite shuts the write side (a TLS close_notify over TLS).
func (c clientEnd) CloseWrite() error {
	if cw, ok := c.conn().(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// closeTunnels lets open tunnels end by themselves until ctx ends, then
// closes them, and returns once all are closed.
func (s *Server) closeTunnels(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.tunnels.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.tunnels.stopped.Do(func() { close(s.tunnels.stop) })
		<-done
	}
}
