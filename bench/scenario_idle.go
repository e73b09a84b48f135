package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idleMaxConns is limits.max_connections' default: the cap of the quick
// form (`tailguard -upstream URL`) the idle scenario runs.
const idleMaxConns = 10000

// idleDialers is how many goroutines open the idle scenario's
// connections: enough to open 10,000 in seconds, few enough that the
// proxy's upstream pool stays small.
const idleDialers = 64

// idleAdmin reads tailguard's admin port: more patient than adminClient,
// since the first reading with 10,000 connections open, and a GC's, take
// longer on a busy machine.
var idleAdmin = &http.Client{Timeout: 15 * time.Second}

// idleSettle is how long the connections sit idle before memory is read:
// time for the last to be parked (half a second idle) and for the
// fasthttp workers that served them to exit (one to two seconds after).
const idleSettle = 3 * time.Second

// idleScavenge are the idle scenario's readings after its collections, as
// times since them: the runtime returns the pages they freed to the OS
// in the background, so RSS follows the heap only after a while.
var idleScavenge = []time.Duration{10 * time.Second, time.Minute}

// runIdle measures what an idle keep-alive client connection costs
// tailguard in memory: the real binary in its quick form, in front of
// `tailguard upstream`, gets -connections client connections (default
// 10,000; smoke 200), each of which sends one GET and reads its response
// and then stays open and silent. tailguard's resident memory (VmRSS), Go
// heap in use, goroutine stacks and goroutines are read fresh, with the
// connections open and idle for 3 s, right after two garbage collections
// (the admin port's /debug/pprof/heap?gc=1), and 10 s and a minute after
// them: the collections free what serving the connections left behind
// (buffers in pools, the stacks of exited goroutines), and the runtime
// then returns those pages to the OS in the background. The growth over the fresh
// figures, divided by the connections, is the cost of one.
func runIdle(ctx context.Context, e *Env) (*Outcome, error) {
	n := e.Connections
	if n <= 0 {
		n = idleMaxConns
		if e.Smoke {
			n = 200
		}
	}
	if n > idleMaxConns {
		return nil, fmt.Errorf("idle: -connections %d is over the quick form's cap, limits.max_connections %d", n, idleMaxConns)
	}
	t := &Table{
		Title:   fmt.Sprintf("Idle connections: %d keep-alive client connections to tailguard (quick form), each used for one GET, then idle", n),
		Columns: []string{"state", "RSS", "Go heap in use", "goroutine stacks", "goroutines"},
	}
	out := &Outcome{Tables: []*Table{t}}
	// The client side holds n sockets: raise the soft limit as far as the
	// hard one allows (Go raised it at start, so this is a check).
	if err := raiseFiles(uint64(n) + 256); err != nil {
		t.note("skipped: %v", err)
		return out, nil
	}
	b, err := e.newBed(ctx, "upstream")
	if err != nil {
		return nil, err
	}
	defer b.close()
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	listen, admin := addrs[0], addrs[1]
	argv := append(e.self(), "-upstream", "http://"+b.upAddr, "-listen", listen, "-admin", admin, "-log-level", "warn")
	p, err := startProcess("tailguard", pinned(ctx, e.Pin, "0", argv))
	if err != nil {
		return nil, err
	}
	if p, err = ready(p, listen); err != nil {
		return nil, err
	}
	defer p.stop()
	return out, e.idleMeasure(ctx, t, p, listen, admin, n)
}

// idleMeasure takes the idle scenario's readings of p into t: fresh,
// with n used connections idle, and after two collections.
func (e *Env) idleMeasure(ctx context.Context, t *Table, p *process, listen, admin string, n int) error {
	time.Sleep(e.fixed(time.Second, 200*time.Millisecond))
	fresh, err := readIdleMemory(ctx, p.pid(), admin)
	if err != nil {
		return err
	}
	e.logf("idle: tailguard at %s fresh: %.1f MiB RSS; opening %d connections", listen, fresh.rss/1024, n)
	conns, err := openIdle(ctx, listen, n)
	defer closeAll(conns)
	if err != nil {
		return err
	}
	time.Sleep(idleSettle)
	idle, err := readIdleMemory(ctx, p.pid(), admin)
	if err != nil {
		return err
	}
	for range 2 {
		if err := adminGet(ctx, admin, "/debug/pprof/heap?gc=1"); err != nil {
			return err
		}
	}
	collected, err := readIdleMemory(ctx, p.pid(), admin)
	if err != nil {
		return err
	}
	waits := idleScavenge
	if e.Smoke {
		waits = []time.Duration{time.Second}
	}
	later := make([]idleMemory, len(waits))
	start := time.Now()
	for i, w := range waits {
		if !sleepUntil(ctx, start.Add(w)) {
			return ctx.Err()
		}
		if later[i], err = readIdleMemory(ctx, p.pid(), admin); err != nil {
			return err
		}
	}
	t.add("fresh", fresh.cells()...)
	t.add(fmt.Sprintf("%d idle, %v after their GET", n, idleSettle), idle.cells()...)
	t.add("the same after two GCs", collected.cells()...)
	for i, w := range waits {
		t.add(fmt.Sprintf("the same %v later", w), later[i].cells()...)
	}
	t.add("per idle connection", idle.perConn(fresh, n)...)
	for i, w := range waits {
		t.add(fmt.Sprintf("per idle connection, %v after the GCs", w), later[i].perConn(fresh, n)...)
	}
	t.note("tailguard: `tailguard -upstream URL` with its defaults (read buffer = max_header_bytes 16 KiB, idle_timeout 90s), in front of `tailguard upstream`; pinned to CPU 0 with it when -pin")
	t.note("RSS is VmRSS from /proc; heap in use, stacks and goroutines are go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes and go_goroutines from the admin port's /metrics; a GC is /debug/pprof/heap?gc=1")
	t.note("kernel socket buffers are not in RSS: an idle socket holds none, and a busy one's count against the kernel, not the process")
	return nil
}

// idleMemory is one reading of tailguard's memory, in KiB.
type idleMemory struct {
	rss, heap, stack, goroutines float64
}

func (m idleMemory) cells() []Cell {
	return []Cell{numCell(m.rss/1024, unitMiB), numCell(m.heap/1024, unitMiB), numCell(m.stack/1024, unitMiB), countCell(int64(m.goroutines))}
}

// perConn is the growth from base to m per connection, in KiB (and
// goroutines).
func (m idleMemory) perConn(base idleMemory, n int) []Cell {
	per := func(a, b float64) float64 { return (a - b) / float64(n) }
	return []Cell{numCell(per(m.rss, base.rss), unitKiB), numCell(per(m.heap, base.heap), unitKiB),
		numCell(per(m.stack, base.stack), unitKiB), numCell(per(m.goroutines, base.goroutines), unitCount)}
}

// readIdleMemory reads the process pid's VmRSS and, from its admin port's
// /metrics, Go's heap in use, stacks and goroutines.
func readIdleMemory(ctx context.Context, pid int, admin string) (idleMemory, error) {
	var m idleMemory
	rss, err := rssMiB(pid)
	if err != nil {
		return m, err
	}
	m.rss = rss * 1024
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := idleAdmin.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	want := map[string]*float64{"go_memstats_heap_inuse_bytes": &m.heap, "go_memstats_stack_inuse_bytes": &m.stack, "go_goroutines": &m.goroutines}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst := want[name]; ok && dst != nil {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return m, fmt.Errorf("admin /metrics: %s: %w", name, err)
			}
			*dst = v
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found != len(want) {
		return m, fmt.Errorf("admin /metrics: %d of the %d Go runtime figures", found, len(want))
	}
	m.heap /= 1024
	m.stack /= 1024
	return m, nil
}

// adminGet gets path from the admin port and drops the body.
func adminGet(ctx context.Context, admin, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return err
	}
	resp, err := idleAdmin.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("admin %s: %s", path, resp.Status)
	}
	return err
}

// raiseFiles raises this process's soft limit on open files to need, if
// it is lower, or says why it cannot (the hard limit is lower).
func raiseFiles(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("open files: the hard limit (ulimit -Hn) is %d, %d are needed; raise it or lower -connections", lim.Max, need)
	}
	lim.Cur = need
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// openIdle opens n keep-alive connections to addr, each of which sends
// one GET and reads its response, and returns them open. It gives up at
// the first failure, or after a minute, with the connections opened so
// far (the caller closes them).
func openIdle(ctx context.Context, addr string, n int) ([]net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range idleDialers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				c, err := useOnce(ctx, addr)
				if err != nil {
					once.Do(func() { first = fmt.Errorf("connection %d: %w", i, err); cancel() })
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("opening %d connections: %w", n, ctx.Err())
	}
	return conns, first
}

// useOnce dials addr, sends one GET and reads its response, and returns
// the connection, which the server must keep open.
func useOnce(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	err = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err == nil {
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle\r\n\r\n")
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	}
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		switch {
		case err != nil:
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("GET: %s", resp.Status)
		case resp.Close:
			err = fmt.Errorf("GET: the server closes the connection")
		}
	}
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// closeAll closes the connections that are open.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
