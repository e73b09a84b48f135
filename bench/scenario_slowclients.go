package bench

import (
	"context"
	"fmt"
	"os"
	"time"
)

// slowLargeSize is the legacy app's large response, the one the slow
// readers fetch: well over what the loopback socket buffers between the
// app and a slow client hold (a few MiB each way), so that a proxy that
// streams it leaves the app writing.
const slowLargeSize = 32 << 20

// slowNormalTimeout is the normal requests' client timeout: one stuck
// behind the slow readers fails at it.
const slowNormalTimeout = 2 * time.Second

// slowArm is one proxy in front of the legacy app.
type slowArm struct {
	name string
	// start runs the proxy in front of upstream and returns its address
	// and process.
	start func(ctx context.Context, dir, upstream string) (string, *process, error)
}

// runSlowClients puts a one-worker legacy app (legacyApp: one connection
// at a time, like Python's http.server.HTTPServer) behind each arm in
// turn: tailguard with buffering on (its default), tailguard with
// buffering off, and nginx with its defaults (proxy_buffering on). Slow
// readers (8; smoke 2) fetch the app's 32 MiB response, 64 bytes every
// 100 ms through a 4 KiB receive buffer, and hold on for the whole arm;
// meanwhile normal requests for a small response arrive in open loop at
// -rate (default 50/s) for -duration (default 10s), each given up by the
// client after 2 s. What the shield is for shows as the normal traffic's
// goodput (its share of 200s) and latency. Each arm has an app of its
// own.
func runSlowClients(ctx context.Context, e *Env) (*Outcome, error) {
	rate, d := e.rate(50, 20), e.span(10*time.Second, time.Second)
	readers := 8
	if e.Smoke {
		readers = 2
	}
	e.Pin = false
	dir, err := os.MkdirTemp("", "tailguard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t := &Table{
		Title: fmt.Sprintf("Slow clients: a one-worker app, %d slow readers of its %d MiB response, normal requests %.0f/s open loop for %v per arm",
			readers, slowLargeSize>>20, rate, d),
		Columns: []string{"arm", "normal requests", "200", "goodput", "p50", "p99", "max",
			"slow readers served", "large responses the app finished", "proxy peak RSS"},
	}
	out := &Outcome{Tables: []*Table{t}}
	for _, a := range slowArms(e) {
		r, err := e.slowClientsArm(ctx, a, dir, readers, openLoad(rate, d))
		if isSkipped(err) {
			t.note("%s: skipped: %v", a.name, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.name, err)
		}
		res := r.res
		ok := res.CountOf(IsStatus(200))
		t.add(a.name, countCell(res.Count()), countCell(ok), numCell(100*float64(ok)/float64(max(res.Count(), 1)), unitPercent),
			msCell(res.Quantile(0.5)), msCell(res.Quantile(0.99)), msCell(res.Quantile(1)),
			countCell(r.readersServed), countCell(r.largeServed), numCell(r.peakRSS, unitMiB))
		out.Series = append(out.Series, Series{Label: a.name, Points: spectrum(res.Latency)})
	}
	t.note("the app serves one connection at a time: it reads a request, writes the whole response (HTTP/1.0) and closes, as Python's http.server.HTTPServer or one sync worker does; while it writes to a slow reader, nobody else is served")
	t.note("slow readers: one connection each, a 4 KiB receive buffer, %d bytes read every %v, held for the whole arm; served: those that had the response's first bytes", slowReadBytes, slowReadPause)
	t.note("normal requests: GET of a 6-byte response, at most 256 in flight, given up by the client after %v (such a request counts at its latency then); goodput is their share answered 200", slowNormalTimeout)
	t.note("tailguard: `run -config`, limits at their defaults (buffer_memory 64MiB, then buffer_disk 1GiB in the OS temp dir); nginx: its defaults (proxy_buffering on, proxy_buffers 8 4k|8k, temp files up to 1 GiB), one worker, HTTP/1.1 keep-alive to the upstream; not pinned")
	return out, nil
}

// slowArms are tailguard with buffering on and off, and nginx.
func slowArms(e *Env) []slowArm {
	tailguard := func(route ...string) func(ctx context.Context, dir, upstream string) (string, *process, error) {
		return func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upstream}, route: route}, e.self())
		}
	}
	return []slowArm{
		{name: "tailguard, buffering on (default)", start: tailguard()},
		{name: "tailguard, buffering off", start: tailguard("buffering: {request: off, response: off}")},
		{name: "nginx, defaults", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) { return e.startNginx(ctx, dir, listen, upstream, "", nil) })
		}},
	}
}

// slowResult is what one arm measured.
type slowResult struct {
	res *Result
	// readersServed is the slow readers that had their response's first
	// bytes; largeServed the large responses the app wrote whole.
	readersServed, largeServed int64
	// peakRSS is the proxy's peak resident memory, in MiB.
	peakRSS float64
}

// slowClientsArm runs one arm: a fresh legacy app, the proxy in front of
// it, the slow readers, then the normal load l.
func (e *Env) slowClientsArm(ctx context.Context, a slowArm, dir string, readers int, l Load) (*slowResult, error) {
	app, err := startLegacyApp(slowLargeSize)
	if err != nil {
		return nil, err
	}
	defer app.close()
	addr, proc, err := a.start(ctx, dir, app.addr())
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	e.logf("slowclients: %s at %s, %d slow readers", a.name, addr, readers)
	slow := startSlowReaders(addr, "/large", readers)
	// A buffering proxy takes every large response off the app at once;
	// one that streams them leaves the app on the first.
	for deadline := time.Now().Add(e.fixed(3*time.Second, time.Second)); app.largeServed.Load() < int64(readers) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	l.URL = "http://" + addr + "/small"
	l.Timeout = slowNormalTimeout
	res, err := e.load(ctx, a.name, l)
	if err != nil {
		_ = slow.stop()
		return nil, err
	}
	r := &slowResult{res: res, readersServed: slow.started.Load(), largeServed: app.largeServed.Load()}
	r.peakRSS, err = peakRSSMiB(proc.pid())
	if serr := slow.stop(); err == nil {
		err = serr
	}
	return r, err
}
