package bench

import (
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// defaultBody is a 200's body when Faults.BodyBytes is 0.
var defaultBody = []byte(`{"ok":true}`)

// strayResponse is what a stray write puts on the connection after a
// complete response: a whole second response, the worst case for a
// client that pools the connection.
var strayResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")

// job is one request's draw and what it needs of the faults in force
// when it arrived.
type job struct {
	plan
	status int    // of an injected error
	body   []byte // of a 200
	ctype  string // its Content-Type
	rate   int    // body bytes a second; 0: at once
}

// handle serves one request: draw its fate, wait for a worker, spend the
// service time, then answer, fail, reset, stall or answer with stray bytes.
func (u *Upstream) handle(ctx *fasthttp.RequestCtx) {
	u.stats.requests.Add(1)
	j := u.next(ctx.Path())
	if !u.acquire() {
		u.refuse(ctx)
		return
	}
	defer u.release()
	if j.fate == stall {
		u.stats.stalls.Add(1)
		<-u.closing
		u.resetConn(ctx)
		return
	}
	if !u.sleep(j.service) {
		u.resetConn(ctx)
		return
	}
	u.respond(ctx, j)
}

// respond writes the answer the job's fate calls for.
func (u *Upstream) respond(ctx *fasthttp.RequestCtx, j job) {
	switch j.fate {
	case reset:
		u.stats.resets.Add(1)
		u.resetConn(ctx)
	case fail:
		u.stats.errors.Add(1)
		ctx.SetStatusCode(j.status)
		ctx.SetBodyString("injected error\n")
	default:
		u.stats.answered.Add(1)
		u.writeBody(ctx, j)
		if j.fate == stray {
			u.stats.strays.Add(1)
			// The response is written first, then the stray bytes; the
			// connection closes when the hijack handler returns.
			ctx.Hijack(func(c net.Conn) { _, _ = c.Write(strayResponse) })
		}
	}
}

// next draws the job for a request to path.
func (u *Upstream) next(path []byte) job {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.faults.forPath(path)
	j := job{plan: f.draw(u.rng), status: f.ErrorStatus, rate: f.BodyRate, body: defaultBody, ctype: "application/json"}
	if j.status == 0 {
		j.status = fasthttp.StatusInternalServerError
	}
	if f.BodyBytes > 0 {
		j.body, j.ctype = u.body[:f.BodyBytes], "text/plain"
	}
	return j
}

// writeBody sets a 200 body, trickling at j.rate if set.
func (u *Upstream) writeBody(ctx *fasthttp.RequestCtx, j job) {
	ctx.SetContentType(j.ctype)
	if j.rate <= 0 {
		ctx.SetBody(j.body)
		return
	}
	ctx.SetBodyStream(&pacedReader{b: j.body, rate: j.rate, closing: u.closing}, len(j.body))
}

// acquire waits for a worker, in arrival order, and reports whether one
// was had: false if the queue is full or the upstream is closing.
func (u *Upstream) acquire() bool {
	if u.workers == nil {
		u.stats.busy.Add(1)
		return true
	}
	if q := u.stats.queued.Add(1); u.queue > 0 && q > int64(u.queue) {
		u.stats.queued.Add(-1)
		return false
	}
	defer u.stats.queued.Add(-1)
	// Goroutines blocked sending on a channel are woken in FIFO order:
	// this is a real queue, not a scramble for the next free worker.
	select {
	case u.workers <- struct{}{}:
		u.stats.busy.Add(1)
		return true
	case <-u.closing:
		return false
	}
}

func (u *Upstream) release() {
	u.stats.busy.Add(-1)
	if u.workers != nil {
		<-u.workers
	}
}

// refuse answers a request that found the queue full (or the upstream
// closing) with 503.
func (u *Upstream) refuse(ctx *fasthttp.RequestCtx) {
	u.stats.refused.Add(1)
	ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.SetBodyString("queue full\n")
	ctx.SetConnectionClose()
}

// sleep waits d, or until Close; it reports whether d passed.
func (u *Upstream) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-u.closing:
		return false
	}
}

// resetConn ends the request without a response: the connection is
// closed with SO_LINGER 0, so the client gets a TCP RST.
func (u *Upstream) resetConn(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(interface{ SetLinger(int) error }); ok {
		_ = c.SetLinger(0)
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) {})
}

// pacedReader hands out b at rate bytes a second, in tenth-of-a-second
// slices, and fails once the upstream is closing.
type pacedReader struct {
	b       []byte
	rate    int
	closing <-chan struct{}
	started bool
}

func (r *pacedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if r.started {
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.closing:
			return 0, net.ErrClosed
		}
	}
	r.started = true
	n := copy(p[:min(len(p), max(r.rate/10, 1))], r.b)
	r.b = r.b[n:]
	return n, nil
}
