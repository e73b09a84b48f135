package client

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"tailguard/resilience"
)

// Prober sends active health checks (GET path, 2xx passes) to each
// endpoint of an upstream every interval, on connections of its own so
// that probes neither queue behind traffic nor take its connections, and
// reports the results to the upstream's Health. A nil *Prober does
// nothing: an upstream without health checks.
type Prober struct {
	path     string
	interval time.Duration
	timeout  time.Duration
	health   *resilience.Health
	clients  []*fasthttp.HostClient
	stop     chan struct{}
	wg       sync.WaitGroup
	started  sync.Once
	closed   sync.Once
}

// NewProber probes endpoints with GET path every interval, each probe
// given timeout, and reports to h (index i is endpoints[i]).
func NewProber(endpoints []*Endpoint, path string, interval, timeout time.Duration, h *resilience.Health) *Prober {
	p := &Prober{path: path, interval: interval, timeout: timeout, health: h, stop: make(chan struct{})}
	for _, e := range endpoints {
		p.clients = append(p.clients, &fasthttp.HostClient{
			Addr:                      e.addr,
			IsTLS:                     e.tls != nil,
			TLSConfig:                 e.tls,
			MaxConns:                  1,
			MaxIdemponentCallAttempts: 1,
			NoDefaultUserAgentHeader:  true,
		})
	}
	return p
}

// Start begins probing: one goroutine per endpoint, until close. Only the
// first call does anything; a nil prober does nothing.
func (p *Prober) Start() {
	if p == nil {
		return
	}
	p.started.Do(func() {
		for i, c := range p.clients {
			p.wg.Add(1)
			go p.loop(i, c)
		}
	})
}

// Close stops probing and waits for the probe goroutines. Only the first
// call does anything; a nil prober does nothing.
func (p *Prober) Close() {
	if p == nil {
		return
	}
	p.closed.Do(func() {
		close(p.stop)
		p.wg.Wait()
		for _, c := range p.clients {
			c.CloseIdleConnections()
		}
	})
}

func (p *Prober) loop(i int, c *fasthttp.HostClient) {
	defer p.wg.Done()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(scheme(c.IsTLS) + c.Addr + p.path)
	req.Header.Set(fasthttp.HeaderUserAgent, "tailguard-health-check")
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		err := c.DoTimeout(req, resp, p.timeout)
		p.health.Report(i, err == nil && resp.StatusCode() >= 200 && resp.StatusCode() < 300)
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
	}
}

func scheme(isTLS bool) string {
	if isTLS {
		return "https://"
	}
	return "http://"
}
