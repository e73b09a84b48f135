package main

// Fixtures of the integration tests: deterministic bodies, upstreams
// (Go net/http in this process, Python's http.server) and clients.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Deterministic bodies

// pattern repeats through every generated body. Its length is prime so
// that a shifted, dropped or repeated block of a power-of-two size changes
// the hash.
var pattern = func() []byte {
	r := rand.New(rand.NewPCG(7, 11))
	b := make([]byte, 65521)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// patternReader yields the first n bytes of the endless pattern.
type patternReader struct{ off, n int64 }

func newPatternReader(n int64) *patternReader { return &patternReader{n: n} }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	total := 0
	for len(b) > 0 {
		k := copy(b, pattern[p.off%int64(len(pattern)):])
		b, p.off, total = b[k:], p.off+int64(k), total+k
	}
	return total, nil
}

// patternBytes returns the first n bytes of the pattern.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(newPatternReader(int64(n)), b)
	return b
}

// patternSHA256 returns the hex SHA-256 of the first n bytes of the pattern.
func patternSHA256(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, newPatternReader(n))
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ---------------------------------------------------------------------------
// The Go upstream

// goUpstream is a net/http server on loopback with the handlers the tests
// proxy to. Tests may add handlers to mux.
type goUpstream struct {
	addr     string // host:port
	mux      *http.ServeMux
	accepted atomic.Int64 // connections accepted
}

// seenRequest is what /headers reports about the request it received.
type seenRequest struct {
	Method string      `json:"method"`
	Host   string      `json:"host"`
	URI    string      `json:"uri"`
	Proto  string      `json:"proto"`
	Header http.Header `json:"header"`
}

// sinkResult is what /sink reports about the body it received.
type sinkResult struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func startGoUpstream(t *testing.T) *goUpstream {
	t.Helper()
	u := &goUpstream{mux: http.NewServeMux()}
	u.handle()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{
		Listener: &countingListener{Listener: ln, n: &u.accepted},
		Config:   &http.Server{Handler: u.mux, ReadHeaderTimeout: ioTimeout},
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u.addr = ln.Addr().String()
	return u
}

func (u *goUpstream) handle() {
	u.mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	u.mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seenRequest{Method: r.Method, Host: r.Host, URI: r.RequestURI, Proto: r.Proto, Header: r.Header})
	})
	u.mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		n, size := queryInt(r, "n", 16), queryInt(r, "size", 1024)
		src, buf := newPatternReader(n*size), make([]byte, size)
		w.Header().Set("Content-Type", "application/octet-stream")
		for range n {
			_, _ = io.ReadFull(src, buf)
			_, _ = w.Write(buf)
			w.(http.Flusher).Flush() // no Content-Length: chunked
		}
	})
	u.mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "nocontent")
		w.WriteHeader(http.StatusNoContent)
	})
	u.mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	u.mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			http.Error(w, "bad code", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		fmt.Fprintf(w, "upstream says %d\n", code)
	})
	u.mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "foo")
		h.Set("X-End-To-End", "1")
		fmt.Fprintln(w, "hop")
	})
	u.mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n := queryInt(r, "n", 0)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.Copy(w, newPatternReader(n))
	})
	u.mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sinkResult{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	})
	u.mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d): // the slow service under test, not synchronisation
			fmt.Fprintln(w, "slept")
		case <-r.Context().Done():
		}
	})
}

func queryInt(r *http.Request, key string, def int64) int64 {
	n, err := strconv.ParseInt(r.URL.Query().Get(key), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// ---------------------------------------------------------------------------
// The Python upstream (a legacy HTTP/1.0 app)

// startPythonUpstream serves dir with `python3 -m http.server` on a free
// loopback port and returns its address. It skips the test if python3 is
// missing.
func startPythonUpstream(t *testing.T, dir string) string {
	t.Helper()
	return startPythonServer(t, func(port string) []string {
		return []string{"-m", "http.server", port, "--bind", "127.0.0.1", "--directory", dir}
	})
}

// startPythonServer runs python3 with the arguments args gives for a free
// loopback port, waits until the port accepts connections, and returns
// its address: a Python http.server, plain or (with a script of the
// test's) over TLS. It skips the test if python3 is missing.
func startPythonServer(t *testing.T, args func(port string) []string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH: skipping the legacy-app tests that run Python's http.server")
	}
	return startPythonWith(t, python, args)
}

// startPythonWith is startPythonServer with the interpreter python.
func startPythonWith(t *testing.T, python string, args func(port string) []string) string {
	t.Helper()
	for attempt := 1; attempt <= 3; attempt++ { // the free port may be taken meanwhile
		_, port, _ := net.SplitHostPort(freeAddrs(t, 1)[0])
		cmd := exec.Command(python, args(port)...)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		addr := net.JoinHostPort("127.0.0.1", port)
		if waitAccepting(addr, exited) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("python http.server output:\n%s", out.String())
				}
			})
			return addr
		}
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("python http.server on %s did not start (attempt %d):\n%s", addr, attempt, out.String())
	}
	t.Fatal("python http.server did not start")
	return ""
}

// waitAccepting polls addr until it accepts a connection (true), or the
// process behind it exits or the start timeout passes (false).
func waitAccepting(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// freeAddrs returns n distinct loopback addresses that were free a moment
// ago: nothing listens on them.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all are chosen, so they differ
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// ---------------------------------------------------------------------------
// Clients

// countingClient is a Go client whose Transport counts the connections it
// dials.
type countingClient struct {
	*http.Client
	dials atomic.Int64
}

// newClient returns a client with a fresh Transport: no proxy from the
// environment, no transparent gzip, a safety timeout per request (0: none).
func newClient(t *testing.T, timeout time.Duration) *countingClient {
	c := &countingClient{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		DisableCompression:  true,
		MaxIdleConnsPerHost: 32,
	}
	t.Cleanup(tr.CloseIdleConnections)
	c.Client = &http.Client{Transport: tr, Timeout: timeout}
	return c
}

// fetch sends req and reads the whole response body.
func (c *countingClient) fetch(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// get fetches url with GET.
func (c *countingClient) get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.fetch(t, req)
}

// rawResponse is one response read off a raw connection, body included.
type rawResponse struct {
	*http.Response
	body []byte
}

// exchangeRaw sends each raw request in turn on one TCP connection to addr
// and reads its response. As the responses share the connection, each
// one's framing must be right for the next to parse.
func exchangeRaw(t *testing.T, addr string, requests ...string) []rawResponse {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(conn)
	var out []rawResponse
	for i, raw := range requests {
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatalf("request %d: write: %v", i, err)
		}
		method, _, _ := strings.Cut(raw, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("request %d (%q): reading response: %v", i, firstLine(raw), err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("request %d (%q): reading body: %v", i, firstLine(raw), err)
		}
		out = append(out, rawResponse{resp, body})
	}
	return out
}

// rawRequest joins a request line and header lines into an HTTP/1.1
// request without a body.
func rawRequest(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// runCurl runs curl with args (never through a proxy from the
// environment) and returns its stdout. It skips the test if curl is
// missing.
func runCurl(t *testing.T, args ...string) []byte {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not on PATH: skipping the curl client tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	args = append([]string{"-sS", "--noproxy", "*", "--max-time", "20"}, args...)
	cmd := exec.CommandContext(ctx, curl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, stderr.String())
	}
	return out
}

// curlResponse is the final response in curl -i or -I output.
type curlResponse struct {
	statusLine string
	header     http.Header
	body       []byte
}

// parseCurlOutput splits curl -i output into status line, headers and
// body, skipping interim 1xx responses (100 Continue).
func parseCurlOutput(t *testing.T, out []byte) curlResponse {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	for range 5 {
		tp := textproto.NewReader(br)
		line, err := tp.ReadLine()
		if err != nil {
			t.Fatalf("curl output: status line: %v\n%q", err, out)
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			t.Fatalf("curl output: headers: %v\n%q", err, out)
		}
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "1") {
			continue
		}
		body, _ := io.ReadAll(br)
		return curlResponse{statusLine: line, header: http.Header(h), body: body}
	}
	t.Fatalf("curl output: too many interim responses:\n%q", out)
	return curlResponse{}
}

// ---------------------------------------------------------------------------
// Small assertions

// noTailguardError fails if h carries X-Tailguard-Error: the response must
// be the service's own.
func noTailguardError(t *testing.T, what string, h http.Header) {
	t.Helper()
	if v := h.Values("X-Tailguard-Error"); len(v) > 0 {
		t.Errorf("%s: X-Tailguard-Error: %q on an upstream response", what, v)
	}
}

// headerAbsent fails if h has any of names.
func headerAbsent(t *testing.T, what string, h http.Header, names ...string) {
	t.Helper()
	for _, n := range names {
		if v := h.Values(n); len(v) > 0 {
			t.Errorf("%s: hop-by-hop header %s: %q was forwarded", what, n, v)
		}
	}
}

// connectionNames returns the tokens of all Connection headers, lower case.
func connectionNames(h http.Header) []string {
	var names []string
	for _, v := range h.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			names = append(names, strings.ToLower(strings.TrimSpace(tok)))
		}
	}
	return names
}

// oneValue returns the only value of h's key, failing if there is not
// exactly one.
func oneValue(t *testing.T, h http.Header, key string) string {
	t.Helper()
	v := h.Values(key)
	if len(v) != 1 {
		t.Errorf("%s: got values %q, want exactly one", key, v)
		return strings.Join(v, " | ")
	}
	return v[0]
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ---------------------------------------------------------------------------
// Tests: proxying to the Go upstream
