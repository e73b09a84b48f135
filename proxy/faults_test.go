package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// Misbehaving upstreams, one fault each (TestStrayBytesNeverDesync and
// TestStreamedResponseFailure cover bytes after a response, bodies after
// HEAD/204/304, and malformed chunked bodies). For every fault:
//
//   - the client gets tailguard's 502/504 with X-Tailguard-Error, or, when
//     the response had begun, a response cut short by a closed connection;
//   - the upstream connection the fault poisoned carries no later request;
//   - the next requests, on the client's connection if it is still open and
//     on a new one, each get their own response;
//   - after all faults, no goroutine is left and the process holds no more
//     file descriptors than before.

// faultUpstream answers every request with its path as the body (so a
// response can be matched to its request), except the first, which its
// fault script answers. It records which connection carried each request.
type faultUpstream struct {
	ln     net.Listener
	script func(c net.Conn, path string)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  int
	connOf []int // connOf[i]: the connection that carried request i+1
}

func startFaultUpstream(t *testing.T, script func(c net.Conn, path string)) *faultUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &faultUpstream{ln: ln, script: script}
	u.wg.Add(1)
	go u.accept()
	t.Cleanup(func() { _ = ln.Close(); u.wg.Wait() })
	return u
}

func (u *faultUpstream) accept() {
	defer u.wg.Done()
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns++
		id := u.conns
		u.mu.Unlock()
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			defer c.Close()
			u.serve(c, id)
		}()
	}
}

func (u *faultUpstream) serve(c net.Conn, id int) {
	br := bufio.NewReader(c)
	for {
		head, err := readRawHead(br)
		if err != nil {
			return
		}
		path := strings.Fields(head)[1]
		u.mu.Lock()
		u.connOf = append(u.connOf, id)
		n := len(u.connOf)
		u.mu.Unlock()
		if n == 1 && u.script != nil {
			u.script(c, path)
			continue
		}
		body := path
		if size, ok := strings.CutPrefix(path, "/size/"); ok {
			k, _ := strconv.Atoi(size)
			body = strings.Repeat("b", k)
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// counts returns the connections accepted and, for each request, the
// connection that carried it.
func (u *faultUpstream) counts() (int, []int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns, append([]int(nil), u.connOf...)
}

// resetConn closes c with a TCP reset instead of a FIN.
func resetConn(c net.Conn) {
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
}

// toxic is a toxiproxy toxic, in its JSON form, for the first request.
type toxic string

// upstreamFault is one way an upstream misbehaves on the first request.
type upstreamFault struct {
	name   string
	path   string                        // of the first request
	script func(c net.Conn, path string) // a raw upstream's first answer
	toxic  toxic                         // or a toxic between tailguard and a healthy one
	status int                           // what the client gets; 0: the response began, then the connection closed
	cause  string                        // its X-Tailguard-Error
	conns  int                           // upstream connections in all, when the fault is over
	// streamed is a fault after the head: with response buffering off
	// (streamed), the client sees its response cut short; with it on
	// (status and cause), tailguard's own answer.
	streamed bool
}

var upstreamFaults = []upstreamFault{
	{name: "connection refused", status: 502, cause: "connect_failure"},
	{name: "reset before the head", script: func(c net.Conn, _ string) { resetConn(c) },
		status: 502, cause: "upstream_reset", conns: 2},
	{name: "reset mid-head", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		resetConn(c)
	}, status: 502, cause: "upstream_reset", conns: 2},
	{name: "closed mid-head (toxiproxy limit_data)", path: "/size/100", toxic: `{"type":"limit_data","attributes":{"bytes":20}}`,
		status: 502, cause: "upstream_reset", conns: 2},
	{name: "reset mid-body", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
		resetConn(c)
	}, status: 502, cause: "upstream_reset", conns: 2},
	// (Not toxiproxy's limit_data: once it has cut a link, the rest of a
	// long body blocks toxiproxy's own reader goroutine for good.)
	{name: "closed mid-body, streamed", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+strings.Repeat("x", 100000))
		c.Close()
	}, status: 502, cause: "upstream_reset", conns: 2, streamed: true},
	{name: "reset by the network (toxiproxy reset_peer)", path: "/size/100", toxic: `{"type":"reset_peer","attributes":{"timeout":0}}`,
		status: 502, cause: "upstream_reset", conns: 2},
	{name: "stall after the head", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
		_, _ = io.Copy(io.Discard, c) // until tailguard gives up and closes
	}, status: 504, cause: "timeout", conns: 2},
	{name: "stall mid-body, streamed", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		_, _ = io.Copy(io.Discard, c)
	}, status: 504, cause: "timeout", conns: 2, streamed: true},
	{name: "stall before the head (toxiproxy timeout)", path: "/size/100", toxic: `{"type":"timeout","attributes":{"timeout":0}}`,
		status: 504, cause: "timeout", conns: 2},
	{name: "slow body past the deadline (toxiproxy bandwidth)", path: "/size/60000", toxic: `{"type":"bandwidth","attributes":{"rate":20}}`,
		status: 504, cause: "timeout", conns: 2},
	{name: "slow body within the deadline (toxiproxy slicer)", path: "/size/20000", toxic: `{"type":"slicer","attributes":{"average_size":500,"size_variation":100,"delay":2000}}`,
		status: 200, conns: 1},
	{name: "late head past the deadline (toxiproxy latency)", path: "/size/100", toxic: `{"type":"latency","attributes":{"latency":2000}}`,
		status: 504, cause: "timeout", conns: 2},
	{name: "truncated chunked body", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
		c.Close()
	}, status: 502, cause: "upstream_reset", conns: 2, streamed: true},
	{name: "invalid status line", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok")
	}, status: 502, cause: "bad_response", conns: 2},
	{name: "not HTTP at all", script: func(c net.Conn, _ string) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
	}, status: 502, cause: "bad_response", conns: 2},
	{name: "huge header", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("h", 200<<10)+"\r\nContent-Length: 2\r\n\r\nok")
	}, status: 502, cause: "bad_response", conns: 2},
	// Transfer-Encoding frames the response (RFC 9112 §6.3); fasthttp
	// pools the connection again, where nginx answers 502. Either way
	// nothing is read out of step: what follows is checked before reuse.
	{name: "Content-Length and Transfer-Encoding", script: func(c net.Conn, _ string) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	}, status: 200, conns: 1},
}

func TestUpstreamFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("18 upstream faults, about 10 s: -short")
	}
	baseFDs := openFDs(t)
	for _, f := range upstreamFaults {
		t.Run(f.name, func(t *testing.T) { runUpstreamFault(t, f, "") })
		if f.streamed {
			s := f
			s.status, s.cause = 0, ""
			t.Run(f.name+", unbuffered", func(t *testing.T) { runUpstreamFault(t, s, ", buffering: {response: off}") })
		}
	}
	if t.Failed() {
		return
	}
	goleak.VerifyNone(t, leakOptions...)
	var fds int
	for range 100 { // lingering closes end within a moment of the client's
		if fds = openFDs(t); fds <= baseFDs {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("open file descriptors: %d after the faults, %d before", fds, baseFDs)
}

// runUpstreamFault runs f through a one-route proxy whose route has the
// extra settings routeExtra.
func runUpstreamFault(t *testing.T, f upstreamFault, routeExtra string) {
	up := startFaultUpstream(t, f.script)
	endpoint := up.ln.Addr().String()
	var tp *toxiproxy.Proxy
	switch {
	case f.toxic != "":
		tp = startToxiproxy(t, endpoint)
		if _, err := tp.Toxics.AddToxicJson(strings.NewReader(string(f.toxic))); err != nil {
			t.Fatal(err)
		}
		endpoint = tp.Listen
	case f.script == nil: // refused: nothing listens there
		endpoint = closedAddr(t)
	}
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], connect_timeout: 500ms}}
routes: [{name: default, match: {path_prefix: /}, upstream: app, timeout: 700ms`+routeExtra+`}]
`, endpoint)

	a := dialKept(t, addr)
	path := f.path
	if path == "" {
		path = "/first"
	}
	status, cause, err := a.get(path)
	switch {
	case f.status == 0 && err == nil:
		t.Errorf("first request: status %d and a whole body; want a response cut short", status)
	case f.status != 0 && (status != f.status || cause != f.cause):
		t.Errorf("first request: %d %q (%v), want %d %q", status, cause, err, f.status, f.cause)
	}

	// The fault is over: the upstream is healthy from now on.
	if tp != nil {
		tp.Toxics.ResetToxics(t.Context())
	} else if f.script == nil {
		return // refused: there is no upstream to come back
	}
	b := dialKept(t, addr)
	next := []*keptConn{b, b}
	if err == nil && cause != "" && cause != "timeout" {
		next = append([]*keptConn{a}, next...) // its connection stayed open
	}
	for i, c := range next {
		own := fmt.Sprintf("/next/%d", i)
		if status, _, err := c.get(own); status != 200 || err != nil {
			t.Errorf("request %d after the fault: status %d, %v", i+2, status, err)
		} else if got := c.lastBody; got != own {
			t.Errorf("request %d after the fault got %q, want its own %q", i+2, got, own)
		}
	}

	conns, connOf := up.counts()
	for i, id := range connOf[1:] {
		if id == connOf[0] && f.status != 200 {
			t.Errorf("request %d went on the poisoned upstream connection", i+2)
		}
	}
	if conns != f.conns {
		t.Errorf("upstream connections = %d, want %d", conns, f.conns)
	}
}

// get sends GET path on c and reads the response; err is set if the
// response did not arrive whole.
func (c *keptConn) get(path string) (status int, cause string, err error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := readResponse(c.br)
	if resp == nil {
		return 0, "", err
	}
	c.lastBody = string(resp.body)
	return resp.StatusCode, resp.Header.Get("X-Tailguard-Error"), err
}

// rawResponse is a response read off a connection, body included.
type rawResponse struct {
	*http.Response
	body []byte
}

// readResponse reads one response; err is set if its body did not arrive
// whole (the response is still returned when its head did).
func readResponse(br *bufio.Reader) (*rawResponse, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return &rawResponse{resp, body}, err
}

// leakOptions are TestMain's: goroutines of net/http's and fasthttp's that
// end on their own time.
var leakOptions = []goleak.Option{
	goleak.IgnoreCurrent(),
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
}

// startToxiproxy runs a toxiproxy proxy, in process, in front of upstream.
func startToxiproxy(t *testing.T, upstream string) *toxiproxy.Proxy {
	t.Helper()
	zerolog.SetGlobalLevel(zerolog.Disabled) // toxics log through the global logger
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "upstream", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd: ", err)
	}
	return len(fds)
}
