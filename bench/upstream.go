package bench

import (
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Latency is an upstream's service-time distribution: log-normal around
// Median with shape Sigma, plus a share of stragglers that take Straggler
// instead (a GC pause, a cold cache, a slow disk).
type Latency struct {
	Median         time.Duration
	Sigma          float64
	StragglerShare float64
	Straggler      time.Duration
}

// sample draws one service time.
func (l Latency) sample(r *rand.Rand) time.Duration {
	if l.StragglerShare > 0 && r.Float64() < l.StragglerShare {
		return l.Straggler
	}
	if l.Sigma == 0 {
		return l.Median
	}
	return time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
}

// Upstream is a test service on a loopback listener whose responses take
// the time its Latency draws. It runs in-process, for tests and the demo.
type Upstream struct {
	ln  net.Listener
	srv *fasthttp.Server
}

// StartUpstream listens on addr (host:port; port 0 picks one) and serves
// until Close. seed fixes the random draws.
func StartUpstream(addr string, lat Latency, seed uint64) (*Upstream, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	body := []byte(`{"ok":true}`)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	u := &Upstream{ln: ln, srv: &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		d := lat.sample(r)
		mu.Unlock()
		time.Sleep(d)
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// Addr is the upstream's host:port.
func (u *Upstream) Addr() string { return u.ln.Addr().String() }

// Close stops the upstream.
func (u *Upstream) Close() error { return u.srv.Shutdown() }
