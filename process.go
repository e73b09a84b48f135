package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
	"tailguard/proxy"
)

// Process is one tailguard: the proxy and admin servers for a config, the
// metrics tick, the reload triggers (SIGHUP, a change of the config file,
// POST /reload) and the drain that ends them. The command runs one; the
// demo and the bench scenarios run several in turn, in-process.
//
// Call Start once, then end it with Drain, Stop or Wait, which are safe
// for concurrent use (the first to end it decides how). Every goroutine it
// starts is stopped and waited for before they return.
type Process struct {
	src configSource
	cfg *config.Config // the config it started with; listen, admin and drain never change on reload
	log *zap.Logger
	reg *metrics.Registry
	// reloads count config reloads, certReloads the listener's
	// certificate's.
	reloads, certReloads *metrics.Reloads

	srv   *proxy.Server
	admin *http.Server

	draining atomic.Bool // /readyz fails once set
	failed   chan error  // a server's Serve result; only an error before shutdown means failure

	// mu serialises reloads with the shutdown, so that no reload builds
	// a routing table after the server has stopped its last one.
	mu     sync.Mutex
	closed bool

	cancel   context.CancelFunc // ends the metrics tick and the reload triggers
	wg       sync.WaitGroup     // every goroutine Start started
	stopOnce sync.Once
	stopErr  error
}

// NewProcess loads the config from src and builds the logger. Nothing
// runs and nothing listens until Start.
func NewProcess(src configSource) (*Process, error) {
	cfg, err := src.load()
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.Log.Level)
	if err != nil {
		return nil, err
	}
	return &Process{
		src:    src,
		cfg:    cfg,
		log:    log,
		reg:    metrics.NewRegistry(metrics.RegistryOptions{}),
		failed: make(chan error, 2),

		reloads:     metrics.NewConfigReloads(),
		certReloads: metrics.NewCertificateReloads(),
	}, nil
}

// Start binds the proxy and admin listeners, begins serving, starts the
// metrics tick and the reload triggers, logs the start-up line and
// returns the bound addresses (host:port). On error nothing is left
// running.
func (p *Process) Start() (proxyAddr, adminAddr string, err error) {
	memLimit := setMemoryLimit(os.Getenv("GOMEMLIMIT"), cgroupMemoryFiles)
	srv, err := proxy.NewServer(p.cfg, p.reg, p.log)
	if err != nil {
		return "", "", err
	}
	ln, adminLn, err := listen(p.cfg)
	if err != nil {
		_ = srv.Shutdown(context.Background()) // it never served: returns at once
		return "", "", err
	}
	p.srv = srv
	p.admin = p.newAdmin()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	proxyLn := newAcceptingListener(ln)
	p.goServe("proxy", func() error { return p.srv.Serve(proxyLn) })
	p.goServe("admin", func() error { return ignoreClosed(p.admin.Serve(adminLn)) })
	<-proxyLn.accepting
	p.wg.Go(func() { p.reg.Run(ctx) })
	p.watch(ctx)
	logStart(p.log, p.cfg, ln.Addr(), adminLn.Addr(), memLimit)
	return ln.Addr().String(), adminLn.Addr().String(), nil
}

// listen binds cfg's proxy and admin addresses, both or neither.
func listen(cfg *config.Config) (ln, adminLn net.Listener, err error) {
	ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	adminLn, err = net.Listen("tcp", cfg.Admin)
	if err != nil {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("admin listen: %w", err)
	}
	return ln, adminLn, nil
}

// newAdmin builds the admin server: probes that fail while draining,
// the running config, stats, and POST /reload.
func (p *Process) newAdmin() *http.Server {
	return &http.Server{
		Handler: metrics.NewAdmin(metrics.AdminOptions{
			Token:   p.cfg.AdminToken,
			Ready:   func() bool { return !p.draining.Load() && p.srv.Ready() },
			Config:  func() any { return p.srv.Config().Redacted() },
			Stats:   p.reg,
			Reload:  func() error { return p.Reload("POST /reload") },
			Reloads: []*metrics.Reloads{p.reloads, p.certReloads},
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
}

// goServe runs serve, one of the servers, and hands its result to Wait.
func (p *Process) goServe(name string, serve func() error) {
	p.wg.Go(func() {
		if err := serve(); err != nil {
			p.failed <- fmt.Errorf("%s server: %w", name, err)
			return
		}
		p.failed <- nil
	})
}

// Wait serves until ctx ends, then drains; or until a server stops on its
// own, then stops and returns why. The command's ctx ends on SIGTERM or
// SIGINT.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case err := <-p.failed:
		_ = p.Stop()
		return err
	case <-ctx.Done():
		return p.Drain(context.Background())
	}
}

// Drain ends the process gracefully: /readyz fails at once; the proxy
// listener keeps accepting for drain.delay (or until ctx ends, whichever
// is first) so that load balancers see the failing probe before
// connections are refused; then it closes, and requests under way get
// drain.timeout to finish. An error means some did not.
func (p *Process) Drain(ctx context.Context) error {
	p.draining.Store(true)
	d := p.cfg.Drain
	p.log.Info("draining", zap.Duration("delay", d.Delay.D()), zap.Duration("timeout", d.Timeout.D()))
	delay := time.NewTimer(d.Delay.D())
	select {
	case <-delay.C:
	case <-ctx.Done():
		delay.Stop()
	}
	if err := p.Stop(); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	p.log.Info("stopped")
	return nil
}

// Stop ends the process without the drain delay: the proxy listener
// closes at once and requests under way get drain.timeout to finish. Then
// the admin server, the metrics tick and the reload triggers stop, and
// Stop waits for all of them. Later calls return the first call's result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		p.draining.Store(true)
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Drain.Timeout.D())
		defer cancel()
		p.stopErr = p.srv.Shutdown(ctx)
		_ = p.admin.Close()
		p.cancel()
		p.wg.Wait()
	})
	return p.stopErr
}

// acceptingListener closes accepting on its first Accept. fasthttp's
// Shutdown closes only the listeners its Serve has registered, and a Serve
// that registers one after Shutdown serves forever; Serve registers the
// listener before it first accepts, so once accepting is closed Shutdown
// is safe.
type acceptingListener struct {
	net.Listener
	once      sync.Once
	accepting chan struct{}
}

func newAcceptingListener(ln net.Listener) *acceptingListener {
	return &acceptingListener{Listener: ln, accepting: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *acceptingListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.accepting) })
	return l.Listener.Accept()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serve is the run command: it starts tailguard for src and drains it on
// SIGTERM or SIGINT.
func serve(src configSource) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	p, err := NewProcess(src)
	if err != nil {
		return err
	}
	if _, _, err := p.Start(); err != nil {
		return err
	}
	return p.Wait(ctx)
}
