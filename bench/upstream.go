package bench

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// UpstreamOptions configure an Upstream. The zero value is an upstream on
// an ephemeral loopback port with unlimited capacity that answers at once.
type UpstreamOptions struct {
	// Listen is host:port; empty means 127.0.0.1:0 (a free port).
	Listen string
	// Admin, if not empty, is the host:port of the upstream's admin
	// server (GET and PUT /faults, GET /stats).
	Admin string
	// Workers is the capacity: at most this many requests are served at
	// once, and the others wait in FIFO order, as in a thread-pool
	// service. 0 means no limit.
	Workers int
	// Queue bounds the requests waiting for a worker; over it a request
	// is refused with 503 at once. 0 means no bound: under overload the
	// wait grows until clients give up, as in most real services.
	Queue int
	// Seed fixes the random draws, so that a run can be repeated.
	Seed uint64
	// Faults are the initial faults.
	Faults Faults
}

// Upstream is a fault-injecting HTTP/1.1 service on a loopback listener:
// a latency distribution, a capacity with a real queue, errors, resets,
// stalls, slow bodies and stray bytes, changeable while it runs. It runs
// in-process (tests, scenarios, the demo) or as `tailguard upstream`.
// Its methods are safe for concurrent use.
type Upstream struct {
	ln      net.Listener
	srv     *fasthttp.Server
	admin   *http.Server
	adminLn net.Listener
	workers chan struct{} // a token per busy worker; nil: no limit
	queue   int
	closing chan struct{} // closed by Close: stalls and waits end
	closed  sync.Once

	mu     sync.Mutex // guards rng, faults and body
	rng    *rand.Rand
	faults *Faults
	body   []byte // BodyBytes of 'x', for the largest BodyBytes configured

	stats upstreamStats
}

// StartUpstream starts an upstream; Close stops it.
func StartUpstream(o UpstreamOptions) (*Upstream, error) {
	u := &Upstream{queue: o.Queue, closing: make(chan struct{}),
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	if o.Workers > 0 {
		u.workers = make(chan struct{}, o.Workers)
	}
	if err := u.SetFaults(o.Faults); err != nil {
		return nil, err
	}
	var err error
	if u.ln, err = net.Listen("tcp", cmp.Or(o.Listen, "127.0.0.1:0")); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	u.srv = &fasthttp.Server{
		Handler: u.handle, CloseOnShutdown: true, IdleTimeout: time.Minute,
		NoDefaultServerHeader: true, Logger: log.New(io.Discard, "", 0),
	}
	go func() { _ = u.srv.Serve(u.ln) }()
	if o.Admin != "" {
		if err := u.startAdmin(o.Admin); err != nil {
			_ = u.Close()
			return nil, err
		}
	}
	return u, nil
}

// Addr is the upstream's host:port.
func (u *Upstream) Addr() string { return u.ln.Addr().String() }

// AdminAddr is the admin server's host:port, or "" without one.
func (u *Upstream) AdminAddr() string {
	if u.adminLn == nil {
		return ""
	}
	return u.adminLn.Addr().String()
}

// SetFaults replaces the faults; requests that arrive afterwards get them.
func (u *Upstream) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	size := f.BodyBytes
	for _, o := range f.Paths {
		size = max(size, o.BodyBytes)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.body) < size {
		u.body = bytes.Repeat([]byte{'x'}, size)
	}
	u.faults = &f
	return nil
}

// Faults returns the current faults.
func (u *Upstream) Faults() Faults {
	u.mu.Lock()
	defer u.mu.Unlock()
	return *u.faults
}

// Close stops the upstream: stalled and queued requests end with their
// connection reset, and the listeners close.
func (u *Upstream) Close() error {
	var err error
	u.closed.Do(func() {
		close(u.closing)
		err = u.srv.Shutdown()
		if u.admin != nil {
			err = errors.Join(err, u.admin.Close())
		}
	})
	return err
}
