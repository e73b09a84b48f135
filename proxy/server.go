package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
	"tailguard/proxy/internal/cause"
	"tailguard/proxy/internal/edge"
	"tailguard/proxy/internal/spool"
	"tailguard/resilience"
)

// Server is the proxy listener: a fasthttp.Server whose handler forwards
// each request by the current routing Table. Safe for concurrent use.
type Server struct {
	srv     fasthttp.Server
	table   atomic.Pointer[Table]
	ids     *requestIDs
	log     *zap.Logger
	access  accessLog
	workers *workers
	reg     *metrics.Registry
	// cfg is the config of the current table; reloads are serialised by mu.
	mu  sync.Mutex
	cfg *config.Config
	// maxConns caps open client connections (limits.max_connections).
	maxConns int
	// cert and tlsConfig terminate TLS on the listener; nil: plain HTTP.
	cert      *edge.Certificate
	tlsConfig *tls.Config
	// proto is X-Forwarded-Proto: https behind TLS, else http.
	proto   []byte
	tunnels tunnels
	// clients are the client edge's figures: connections open, refusals
	// before routing (gauges.go).
	clients edge.Stats
	// spool holds the bodies buffering routes collect (buffer.go).
	spool *spool.Store
	// life orders Serve and Shutdown: ln is the listener Serve was given,
	// stopped that Shutdown has begun.
	life    sync.Mutex
	ln      net.Listener
	stopped bool
}

// streamThreshold is the largest request body read whole when a route
// may need to send it twice (retries, hedges); a longer body streams to
// the upstream as it arrives. It is also fasthttp's MaxRequestBodySize,
// which with StreamRequestBody only decides when a body counts as large.
const streamThreshold = 64 << 10

// prereadBytes is how much of a body fasthttp has read before calling the
// handler (it hands even a body it holds whole over as a stream): a body
// this small is taken whole on every route, which costs a copy and spares
// the upload goroutine a streamed body needs.
const prereadBytes = 8 << 10

// NewServer builds the proxy server for a validated cfg: its routing
// table (routes registered with reg) and a fasthttp server with cfg's
// limits. log must not be nil.
func NewServer(cfg *config.Config, reg *metrics.Registry, log *zap.Logger) (*Server, error) {
	t, err := Build(cfg, reg, log, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{ids: newRequestIDs(), log: log, access: newAccessLog(cfg.Log.Access),
		workers: newWorkers(), reg: reg, cfg: cfg, proto: strHTTP}
	s.tunnels.stop = make(chan struct{})
	// Files a killed process left in the buffer directory go now; failing
	// to remove them is no reason not to serve.
	_ = spool.Sweep(cfg.Limits.BufferDir)
	s.spool = spool.NewStore(resilience.NewBufferRoom(cfg.Limits.BufferMemory.Int64(), cfg.Limits.BufferDisk.Int64()), cfg.Limits.BufferDir)
	if c := cfg.TLS; c != nil {
		if s.cert, err = edge.NewCertificate(c.CertFile, c.KeyFile); err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		if s.tlsConfig, err = edge.TLSConfig(c, s.cert); err != nil {
			return nil, err
		}
		s.proto = strHTTPS
	}
	s.swap(t)
	reg.SetServerGauges(s.gauges)
	l := cfg.Limits
	s.maxConns = l.MaxConnections
	s.srv = fasthttp.Server{
		// Requests are checked (internal/edge) before they are routed, and
		// before 100 Continue invites a body.
		Handler:       s.serve,
		ErrorHandler:  s.serveError,
		ExpectHandler: s.expectChecked,
		// The connection cap is clientListener's, whose 503 says
		// X-Tailguard-Error; fasthttp's own (a bare 503) must never fire
		// first, so it gets room for connections being closed.
		Concurrency: 2 * l.MaxConnections,
		// The read buffer bounds the request head: larger heads get 431.
		ReadBufferSize:  int(l.MaxHeaderBytes.Int64()),
		WriteBufferSize: 8 << 10,
		// Issue 15, idle memory. ReduceMemoryUsage: a keep-alive
		// connection gives its 8 KiB write buffer back once its response
		// is flushed. ConnState tells the client edge when a connection
		// waits for its next request, so that one idle for half a second
		// is parked (internal/edge/park.go) and gives back its goroutine,
		// read buffer and request context too. The fasthttp worker a
		// parked connection leaves exits after a second idle, not
		// fasthttp's default 10 s, which kept a burst's worth of 8 KiB
		// stacks that long; starting a new one costs about a µs.
		ReduceMemoryUsage:     true,
		ConnState:             edge.ConnState,
		MaxIdleWorkerDuration: time.Second,
		// ReadTimeout runs from a request's first byte to the end of its
		// head (and of the up to prereadBytes of body fasthttp reads
		// before the handler): the slowloris guard.
		ReadTimeout:        l.ReadHeaderTimeout.D(),
		IdleTimeout:        l.IdleTimeout.D(),
		MaxRequestBodySize: streamThreshold,
		StreamRequestBody:  true,
		// Multipart bodies are the service's business: never parse them.
		DisablePreParseMultipartForm: true,
		// Pass the service's Date, Server and Content-Type through as they
		// are; add none of our own.
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
		// Graceful drain needs idle keep-alive connections closed.
		CloseOnShutdown: true,
		Logger:          zap.NewStdLog(log.Named("fasthttp")),
	}
	return s, nil
}

// swap starts t's background work (health checks), makes it the routing
// table, and retires what the previous table ran and t does not share.
// Requests under way keep the route they matched.
func (s *Server) swap(t *Table) {
	t.start()
	s.workers.setMax(t.hedgeWorkers)
	if prev := s.table.Swap(t); prev != nil {
		prev.retire(t)
	}
}

// Ready reports whether every upstream with health checks has a healthy
// endpoint, for /readyz.
func (s *Server) Ready() bool {
	for _, u := range s.table.Load().upstreams {
		if !u.ready() {
			return false
		}
	}
	return true
}

// Serve accepts connections on ln until Shutdown, which may come first:
// Serve then returns at once.
func (s *Server) Serve(ln net.Listener) error {
	s.life.Lock()
	if s.stopped {
		s.life.Unlock()
		_ = ln.Close()
		return nil
	}
	s.ln = ln
	s.life.Unlock()
	err := s.srv.Serve(edge.NewListener(ln, s.maxConns, s.tlsConfig, &s.clients, s.srv.ServeConn))
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// TLSFiles are the certificate and key files the listener serves, to
// watch for rotation; "" without TLS.
func (s *Server) TLSFiles() (certFile, keyFile string) {
	if c := s.Config().TLS; c != nil {
		return c.CertFile, c.KeyFile
	}
	return "", ""
}

// Certificate is the leaf certificate the listener serves now; nil
// without TLS.
func (s *Server) Certificate() *x509.Certificate {
	if s.cert == nil {
		return nil
	}
	return s.cert.Current().Leaf
}

// ReloadCertificate reads the listener's certificate and key again and
// serves them from the next handshake on; connections already open keep
// theirs. A pair that does not load, match or is not valid now is refused
// with the reason, and the one serving keeps serving.
func (s *Server) ReloadCertificate() error {
	if s.cert == nil {
		return errors.New("the listener does not terminate TLS")
	}
	return s.cert.Reload()
}

// Shutdown stops accepting, closes idle client connections, and waits for
// requests under way until ctx ends; tunnels get until then too, and are
// closed then (a tunnel left open is no failed drain). Then it closes idle
// upstream connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.life.Lock()
	s.stopped = true
	ln := s.ln
	s.life.Unlock()
	err := s.srv.ShutdownWithContext(ctx)
	if ln != nil {
		// fasthttp closes only the listeners its Serve has registered: a
		// Serve that had not got that far would accept for ever.
		_ = ln.Close()
	}
	s.closeTunnels(ctx)
	s.workers.close()
	s.table.Load().stop()
	return err
}

// maxURI is the longest request target: half the request head's limit
// (limits.max_header_bytes, 16 KiB by default), so that a long target gets
// 414 while the head still fits; a target longer than the whole head's
// limit gets the head's 431.
func (s *Server) maxURI() int { return s.srv.ReadBufferSize / 2 }

// expectChecked is the server's ExpectHandler: a request that would be
// refused is refused before 100 Continue invites its body.
func (s *Server) expectChecked(ctx *fasthttp.RequestCtx) int {
	if c := edge.Check(ctx, s.maxURI()); c != cause.None {
		s.refuse(ctx, c)
		return c.Status()
	}
	return s.expect(ctx)
}

// expect answers "Expect: 100-continue" before any body is read: a body
// the route would refuse by its Content-Length gets the 413 now, instead
// of a 100 Continue that invites the client to send it.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	route := s.table.Load().Match(ctx.Host(), ctx.Path(), ctx.Method())
	if route == nil || route.maxBody < 0 || int64(ctx.Request.Header.ContentLength()) <= route.maxBody {
		return fasthttp.StatusContinue
	}
	s.fail(ctx, route, cause.BodyTooLarge, nil)
	return fasthttp.StatusRequestEntityTooLarge
}

// serveError answers requests fasthttp could not read: the head too large
// (431), too slow (408), or malformed (400). A connection that timed out
// before sending a byte had no request to answer: it is closed without a
// word, as nginx and Go's net/http do, since a client that opened it
// ahead of need (a pool's warm connection, a browser's preconnect) would
// read a 408 written there as the answer to its next request.
func (s *Server) serveError(ctx *fasthttp.RequestCtx, err error) {
	c := cause.BadRequest
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		c = cause.HeadersTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		if edge.Silent(ctx.Conn()) {
			// fasthttp writes whatever the handler leaves; a closed
			// connection takes nothing.
			_ = ctx.Conn().Close()
			return
		}
		c = cause.HeaderTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		c = cause.BodyTooLarge
	}
	s.clients.Refuse(c)
	answer(ctx, nil, c, nil)
	ctx.SetConnectionClose()
	if s.access.errors {
		s.logRequest(ctx, nil, c, nil)
	}
}
