package main

// Integration tests: they build the real tailguard binary once and run it
// as a process on loopback, in front of real upstreams (a Go net/http
// server in this process, Python's http.server as a legacy app), driven by
// real clients (Go net/http, raw TCP, curl).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tailguardBin is the binary built by TestMain.
var tailguardBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds the binary into a temporary directory, runs the
// tests, and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tailguard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "main_test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tailguardBin = filepath.Join(dir, "tailguard")
	cmd := exec.Command("go", "build", "-o", tailguardBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "main_test: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Safety limits. They bound how long a broken binary can hang a test; no
// assertion depends on them.
const (
	startTimeout = 15 * time.Second
	exitTimeout  = 15 * time.Second
	ioTimeout    = 30 * time.Second
)

// ---------------------------------------------------------------------------
// The tailguard process

// tailguardProc is one running tailguard process.
type tailguardProc struct {
	cmd    *exec.Cmd
	listen string // proxy address, host:port, from the start-up line
	admin  string // admin address, host:port, from the start-up line

	stderr  lockedBuffer
	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, set before exited closes
	stopped bool
}

// startLine is the fields of the "tailguard started" log line we use.
type startLine struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// startTailguard runs the binary with args and extra environment entries
// (KEY=VALUE; the test's own TAILGUARD_* variables are never passed on) and
// waits for its start-up line. The process is stopped with SIGTERM when the
// test ends, and must then exit 0.
func startTailguard(t *testing.T, env []string, args ...string) *tailguardProc {
	t.Helper()
	p := &tailguardProc{exited: make(chan struct{})}
	p.cmd = exec.Command(tailguardBin, args...)
	p.cmd.Env = append(environWithoutTailguard(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan startLine, 1)
	go p.readStderr(stderr, started)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("tailguard %q stderr:\n%s", args, p.stderr.String())
		}
	})
	select {
	case sl := <-started:
		p.listen, p.admin = sl.Listen, sl.Admin
	case <-p.exited:
		p.stopped = true
		t.Fatalf("tailguard %q exited before starting (%v):\n%s", args, p.waitErr, p.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("tailguard %q logged no start-up line within %v", args, startTimeout)
	}
	if p.listen == "" || p.admin == "" {
		t.Fatalf("start-up line lacks listen or admin address: listen=%q admin=%q", p.listen, p.admin)
	}
	return p
}

// readStderr keeps the process's stderr, hands the start-up line to
// started, and reaps the process at EOF.
func (p *tailguardProc) readStderr(r io.Reader, started chan<- startLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		p.stderr.Write(line)
		p.stderr.Write([]byte{'\n'})
		var sl startLine
		if !found && json.Unmarshal(line, &sl) == nil && sl.Msg == "tailguard started" {
			found = true
			started <- sl
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line too long for the scanner
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

func (p *tailguardProc) url(path string) string      { return "http://" + p.listen + path }
func (p *tailguardProc) adminURL(path string) string { return "http://" + p.admin + path }

// signal sends sig to the process.
func (p *tailguardProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process to exit (killing it after exitTimeout)
// and requires exit code 0.
func (p *tailguardProc) waitExit(t *testing.T) {
	t.Helper()
	p.stopped = true
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("tailguard did not exit within %v of SIGTERM; killed", exitTimeout)
		return
	}
	if p.waitErr != nil {
		t.Errorf("tailguard exited with %v (exit code %d), want exit code 0", p.waitErr, p.cmd.ProcessState.ExitCode())
	}
}

// stop sends SIGTERM, once, and requires a clean exit.
func (p *tailguardProc) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitExit(t)
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func (p *tailguardProc) peakRSS(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading peak RSS: %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

// environWithoutTailguard is the test's environment minus TAILGUARD_*.
func environWithoutTailguard() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAILGUARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// runTailguard runs a short command of the binary (validate, version) and
// returns its stdout, stderr and exit code.
func runTailguard(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tailguardBin, args...)
	cmd.Env = environWithoutTailguard()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("tailguard %q: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// ---------------------------------------------------------------------------
// Configs

// configHead listens on ephemeral loopback ports and drains at once.
const configHead = `listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
drain: {delay: 0s, timeout: 5s}
`

// oneRouteConfig sends every request to one upstream at addr.
func oneRouteConfig(addr string) string {
	return configHead + fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: default
    upstream: app
`, addr)
}

// writeConfig writes yaml to a file in a fresh temporary directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tailguard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startWithConfig runs tailguard with yaml as its config file.
func startWithConfig(t *testing.T, yaml string) *tailguardProc {
	t.Helper()
	return startTailguard(t, nil, "-config", writeConfig(t, yaml))
}

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
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not on PATH: skipping the legacy-app tests that run Python's http.server")
	}
	for attempt := 1; attempt <= 3; attempt++ { // the free port may be taken meanwhile
		_, port, _ := net.SplitHostPort(freeAddrs(t, 1)[0])
		cmd := exec.Command(python, "-m", "http.server", port, "--bind", "127.0.0.1", "--directory", dir)
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

func TestProxyToGoUpstream(t *testing.T) {
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))
	client := newClient(t, ioTimeout)

	t.Run("StatusPassesThrough", func(t *testing.T) {
		for _, code := range []int{200, 201, 404, 500, 503} {
			resp, body := client.get(t, tg.url(fmt.Sprintf("/status/%d", code)))
			if resp.StatusCode != code {
				t.Errorf("/status/%d: status %d", code, resp.StatusCode)
			}
			if want := fmt.Sprintf("upstream says %d\n", code); string(body) != want {
				t.Errorf("/status/%d: body %q, want %q", code, body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("/status/%d: Content-Type %q, want the upstream's text/plain", code, ct)
			}
			noTailguardError(t, fmt.Sprintf("/status/%d", code), resp.Header)
		}
	})

	t.Run("GetBody", func(t *testing.T) {
		const n = 200_000
		resp, body := client.get(t, tg.url(fmt.Sprintf("/big?n=%d", n)))
		if resp.StatusCode != 200 || resp.ContentLength != n {
			t.Errorf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, n)
		}
		if !bytes.Equal(body, patternBytes(n)) {
			t.Errorf("body differs from what the upstream sent (%d bytes received)", len(body))
		}
	})

	t.Run("Head", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("HEAD /big?n=12345 HTTP/1.1", "Host: app.test"),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		head := rs[0]
		if head.StatusCode != 200 || head.Header.Get("Content-Length") != "12345" || len(head.body) != 0 {
			t.Errorf("HEAD: status %d, Content-Length %q, body %d bytes; want 200, 12345, none",
				head.StatusCode, head.Header.Get("Content-Length"), len(head.body))
		}
		if rs[1].StatusCode != 200 || string(rs[1].body) != "upstream says 200\n" {
			t.Errorf("GET after HEAD on the same connection: status %d, body %q (HEAD response carried a body?)", rs[1].StatusCode, rs[1].body)
		}
	})

	t.Run("NoContentAndNotModified", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("GET /nocontent HTTP/1.1", "Host: app.test"),
			rawRequest("GET /notmodified HTTP/1.1", "Host: app.test", `If-None-Match: "v1"`),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		if r := rs[0]; r.StatusCode != 204 || len(r.body) != 0 || r.Header.Get("X-Upstream") != "nocontent" {
			t.Errorf("204: status %d, body %q, X-Upstream %q", r.StatusCode, r.body, r.Header.Get("X-Upstream"))
		}
		if r := rs[1]; r.StatusCode != 304 || len(r.body) != 0 || r.Header.Get("ETag") != `"v1"` {
			t.Errorf("304: status %d, body %q, ETag %q; want 304, none, \"v1\"", r.StatusCode, r.body, r.Header.Get("ETag"))
		}
		if r := rs[2]; r.StatusCode != 200 || string(r.body) != "upstream says 200\n" {
			t.Errorf("GET after 204 and 304 on the same connection: status %d, body %q", r.StatusCode, r.body)
		}
		for i, r := range rs[:2] {
			noTailguardError(t, fmt.Sprintf("response %d", i), r.Header)
		}
	})

	t.Run("ChunkedResponseArrivesWhole", func(t *testing.T) {
		const chunks, size = 64, 4000
		resp, body := client.get(t, tg.url(fmt.Sprintf("/chunked?n=%d&size=%d", chunks, size)))
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if !bytes.Equal(body, patternBytes(chunks*size)) {
			t.Errorf("chunked body: got %d bytes, want %d identical bytes", len(body), chunks*size)
		}
	})

	t.Run("Echo10MiB", func(t *testing.T) {
		sent := patternBytes(10 << 20)
		req, err := http.NewRequest(http.MethodPost, tg.url("/echo"), bytes.NewReader(sent))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, body := client.fetch(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, body %.200q", resp.StatusCode, body)
		}
		if len(body) != len(sent) || sha256Hex(body) != sha256Hex(sent) {
			t.Errorf("echo: got %d bytes sha256 %s, want %d bytes sha256 %s", len(body), sha256Hex(body), len(sent), sha256Hex(sent))
		}
	})

	t.Run("RequestHopByHopHeadersStripped", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("GET /headers?q=1&r=%2Fx HTTP/1.1",
				"Host: client.example:8443",
				"Connection: X-Foo",
				"X-Foo: must-not-pass",
				"Keep-Alive: timeout=5",
				"Proxy-Authorization: Basic dXNlcjpwYXNz",
				"TE: trailers",
				"Upgrade: websocket",
				"X-End-To-End: kept"),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		seen := decodeSeen(t, rs[0])
		headerAbsent(t, "request", seen.Header, "X-Foo", "Keep-Alive", "Proxy-Authorization", "TE", "Upgrade")
		for _, name := range connectionNames(seen.Header) {
			if name != "keep-alive" && name != "close" {
				t.Errorf("upstream got Connection: %q, naming a header the client's hop defined", seen.Header.Values("Connection"))
			}
		}
		if got := seen.Header.Get("X-End-To-End"); got != "kept" {
			t.Errorf("end-to-end header X-End-To-End: %q, want kept", got)
		}
		if seen.Host != "client.example:8443" {
			t.Errorf("upstream saw Host %q, want the client's client.example:8443", seen.Host)
		}
		if seen.URI != "/headers?q=1&r=%2Fx" {
			t.Errorf("upstream saw request URI %q, want it unchanged", seen.URI)
		}
		if rs[1].StatusCode != 200 {
			t.Errorf("next request on the connection: status %d", rs[1].StatusCode)
		}
	})

	t.Run("ForwardedHeaders", func(t *testing.T) {
		cases := []struct {
			name      string
			headers   []string
			wantXFF   string
			wantReqID string // "" means a generated one
		}{
			{"none from client", nil, "127.0.0.1", ""},
			{"client XFF and request id",
				[]string{"X-Forwarded-For: 203.0.113.7", "X-Request-Id: req-abc-123"},
				"203.0.113.7, 127.0.0.1", "req-abc-123"},
			{"two XFF headers, spoofed proto and host",
				[]string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 203.0.113.7, 192.0.2.1",
					"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"},
				"198.51.100.1, 203.0.113.7, 192.0.2.1, 127.0.0.1", ""},
		}
		ids := map[string]bool{}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				const host = "svc.example"
				lines := append([]string{"GET /headers HTTP/1.1", "Host: " + host}, c.headers...)
				seen := decodeSeen(t, exchangeRaw(t, tg.listen, rawRequest(lines...))[0])
				if got := oneValue(t, seen.Header, "X-Forwarded-For"); got != c.wantXFF {
					t.Errorf("X-Forwarded-For %q, want %q", got, c.wantXFF)
				}
				if got := oneValue(t, seen.Header, "X-Forwarded-Proto"); got != "http" {
					t.Errorf("X-Forwarded-Proto %q, want http", got)
				}
				if got := oneValue(t, seen.Header, "X-Forwarded-Host"); got != host {
					t.Errorf("X-Forwarded-Host %q, want the client's Host %q", got, host)
				}
				if seen.Host != host {
					t.Errorf("Host %q, want %q", seen.Host, host)
				}
				id := oneValue(t, seen.Header, "X-Request-Id")
				switch {
				case c.wantReqID != "" && id != c.wantReqID:
					t.Errorf("X-Request-Id %q, want the client's %q", id, c.wantReqID)
				case c.wantReqID == "" && !requestIDPattern.MatchString(id):
					t.Errorf("generated X-Request-Id %q, want 32 hex digits", id)
				case c.wantReqID == "" && ids[id]:
					t.Errorf("generated X-Request-Id %q twice", id)
				}
				ids[id] = true
			})
		}
	})

	t.Run("ResponseHopByHopHeadersStripped", func(t *testing.T) {
		req := rawRequest("GET /hop HTTP/1.1", "Host: app.test")
		direct := exchangeRaw(t, up.addr, req)[0]
		if direct.Header.Get("X-Hop") != "1" || direct.Header.Get("Upgrade") != "foo" {
			t.Fatalf("precondition: the upstream itself does not send the hop headers: %v", direct.Header)
		}
		rs := exchangeRaw(t, tg.listen, req, rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		got := rs[0]
		if got.StatusCode != 200 || string(got.body) != "hop\n" {
			t.Errorf("status %d, body %q", got.StatusCode, got.body)
		}
		headerAbsent(t, "response", got.Header, "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade")
		for _, name := range connectionNames(got.Header) {
			if name != "keep-alive" && name != "close" {
				t.Errorf("client got Connection: %q, the upstream hop's", got.Header.Values("Connection"))
			}
		}
		if got.Header.Get("X-End-To-End") != "1" {
			t.Errorf("end-to-end response header X-End-To-End lost: %v", got.Header)
		}
		if rs[1].StatusCode != 200 {
			t.Errorf("next request on the connection: status %d", rs[1].StatusCode)
		}
	})
}

// decodeSeen decodes a /headers response.
func decodeSeen(t *testing.T, r rawResponse) seenRequest {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("/headers: status %d, body %q", r.StatusCode, r.body)
	}
	var seen seenRequest
	if err := json.Unmarshal(r.body, &seen); err != nil {
		t.Fatalf("/headers: %v: %q", err, r.body)
	}
	return seen
}

func TestKeepAliveReusesConnections(t *testing.T) {
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))
	client := newClient(t, ioTimeout)
	const requests = 20
	reused := 0
	for i := range requests {
		var info httptrace.GotConnInfo
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { info = ci }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, tg.url("/status/200"), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := client.fetch(t, req)
		if resp.StatusCode != 200 || string(body) != "upstream says 200\n" {
			t.Fatalf("request %d: status %d, body %q", i, resp.StatusCode, body)
		}
		if info.Reused {
			reused++
		}
	}
	if reused != requests-1 || client.dials.Load() != 1 {
		t.Errorf("client: %d of %d requests reused a connection, %d dialled; want %d and 1", reused, requests, client.dials.Load(), requests-1)
	}
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections for %d sequential requests, want 1", n, requests)
	}
}

// ---------------------------------------------------------------------------
// Tests: a legacy HTTP/1.0 app (Python's http.server)

// legacyFiles are served by Python's http.server.
var legacyFiles = map[string][]byte{
	"hello.txt": []byte("hello from the legacy app\n"),
	"data.json": []byte(`{"legacy": true, "items": [1, 2, 3]}` + "\n"),
	"blob.bin":  patternBytes(300 << 10), // larger than any proxy buffer
}

func TestLegacyPythonUpstream(t *testing.T) {
	dir := t.TempDir()
	for name, data := range legacyFiles {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	py := startPythonUpstream(t, dir)
	tg := startWithConfig(t, oneRouteConfig(py))

	// Python guesses Content-Type from its mimetypes tables; ask it
	// directly what it sends, then expect the same through tailguard.
	direct := newClient(t, ioTimeout)
	wantType := map[string]string{}
	for name := range legacyFiles {
		resp, _ := direct.get(t, "http://"+py+"/"+name)
		wantType[name] = resp.Header.Get("Content-Type")
		if resp.StatusCode != 200 || wantType[name] == "" {
			t.Fatalf("precondition: python /%s: status %d, Content-Type %q", name, resp.StatusCode, wantType[name])
		}
	}
	direct404, direct404Body := direct.get(t, "http://"+py+"/missing.txt")
	if direct404.StatusCode != 404 {
		t.Fatalf("precondition: python /missing.txt: status %d", direct404.StatusCode)
	}

	t.Run("GoClient", func(t *testing.T) {
		client := newClient(t, ioTimeout)
		for round := range 3 {
			for _, name := range []string{"hello.txt", "data.json", "blob.bin"} {
				resp, body := client.get(t, tg.url("/"+name))
				what := fmt.Sprintf("round %d /%s", round, name)
				if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
					t.Errorf("%s: %s %d, want HTTP/1.1 200", what, resp.Proto, resp.StatusCode)
				}
				if !bytes.Equal(body, legacyFiles[name]) {
					t.Errorf("%s: body of %d bytes differs from the file's %d", what, len(body), len(legacyFiles[name]))
				}
				if ct := resp.Header.Get("Content-Type"); ct != wantType[name] {
					t.Errorf("%s: Content-Type %q, want %q", what, ct, wantType[name])
				}
				noTailguardError(t, what, resp.Header)
			}
			resp, body := client.get(t, tg.url("/missing.txt"))
			if resp.StatusCode != 404 || !bytes.Equal(body, direct404Body) {
				t.Errorf("round %d /missing.txt: status %d, body %q; want python's 404 %q", round, resp.StatusCode, body, direct404Body)
			}
			noTailguardError(t, "/missing.txt", resp.Header)
		}
		if n := client.dials.Load(); n != 1 {
			t.Errorf("client dialled %d connections for 12 sequential requests, want 1: the upstream closing its connection must not close the client's", n)
		}
	})

	t.Run("Curl", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-i", tg.url("/hello.txt")))
		if r.statusLine != "HTTP/1.1 200 OK" {
			t.Errorf("status line %q, want HTTP/1.1 200 OK", r.statusLine)
		}
		if ct := r.header.Get("Content-Type"); ct != wantType["hello.txt"] {
			t.Errorf("Content-Type %q, want %q", ct, wantType["hello.txt"])
		}
		if !bytes.Equal(r.body, legacyFiles["hello.txt"]) {
			t.Errorf("body %q, want %q", r.body, legacyFiles["hello.txt"])
		}

		// One curl, several sequential transfers: it reuses its connection
		// to tailguard while Python closes each of its own.
		out := t.TempDir()
		names := []string{"hello.txt", "blob.bin", "data.json", "missing.txt", "hello.txt"}
		args := []string{"-w", "%{http_code} %{num_connects}\n"}
		for i, name := range names {
			args = append(args, "-o", filepath.Join(out, strconv.Itoa(i)), tg.url("/"+name))
		}
		lines := strings.Split(strings.TrimSpace(string(runCurl(t, args...))), "\n")
		if len(lines) != len(names) {
			t.Fatalf("curl wrote %d status lines for %d transfers: %q", len(lines), len(names), lines)
		}
		for i, name := range names {
			wantCode, wantBody := "200", legacyFiles[name]
			if name == "missing.txt" {
				wantCode, wantBody = "404", direct404Body
			}
			wantConnects := "0"
			if i == 0 {
				wantConnects = "1"
			}
			if want := wantCode + " " + wantConnects; lines[i] != want {
				t.Errorf("transfer %d /%s: curl reports %q (status, new connections), want %q", i, name, lines[i], want)
			}
			got, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)))
			if err != nil || !bytes.Equal(got, wantBody) {
				t.Errorf("transfer %d /%s: body of %d bytes (%v), want %d bytes", i, name, len(got), err, len(wantBody))
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: curl against the Go upstream

func TestCurlThroughTailguard(t *testing.T) {
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))

	t.Run("Get", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-i", tg.url("/big?n=5000")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != "5000" {
			t.Errorf("status line %q, Content-Length %q; want HTTP/1.1 200 OK, 5000", r.statusLine, r.header.Get("Content-Length"))
		}
		if !bytes.Equal(r.body, patternBytes(5000)) {
			t.Errorf("body: %d bytes, not the upstream's 5000", len(r.body))
		}
	})

	t.Run("Head", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-I", tg.url("/big?n=5000")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != "5000" || len(r.body) != 0 {
			t.Errorf("status line %q, Content-Length %q, %d body bytes; want HTTP/1.1 200 OK, 5000, none",
				r.statusLine, r.header.Get("Content-Length"), len(r.body))
		}
		noTailguardError(t, "HEAD", r.header)
	})

	t.Run("PostFile", func(t *testing.T) {
		data := patternBytes(1 << 20)
		file := filepath.Join(t.TempDir(), "upload.bin")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := parseCurlOutput(t, runCurl(t, "-i", "-H", "Content-Type: application/octet-stream",
			"--data-binary", "@"+file, tg.url("/echo")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Errorf("status line %q, Content-Length %q; want HTTP/1.1 200 OK, %d", r.statusLine, r.header.Get("Content-Length"), len(data))
		}
		if sha256Hex(r.body) != sha256Hex(data) {
			t.Errorf("echoed %d bytes that differ from the 1 MiB file", len(r.body))
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: tailguard's own errors

func TestTailguardErrors(t *testing.T) {
	up := startGoUpstream(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
  down:
    endpoints: [%q]
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: app
  - name: gone
    match: {path_prefix: /status/}
    upstream: down
  - name: slow
    match: {path_prefix: /sleep}
    upstream: app
    timeout: 200ms
`, up.addr, freeAddrs(t, 1)[0]))
	client := newClient(t, ioTimeout)

	cases := []struct {
		name, path string
		status     int
		cause      string
		route      string // named in the body; "" for no route
	}{
		{"no route", "/elsewhere", 404, "no_route", ""},
		{"upstream down", "/status/200", 502, "connect_failure", "gone"},
		{"route timeout", "/sleep?d=2s", 504, "timeout", "slow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := client.get(t, tg.url(c.path))
			assertTailguardError(t, resp, body, c.status, c.cause, c.route)
		})
	}

	// A body over limits.max_body_bytes (default 10MiB) is refused on its
	// Content-Length, and never reaches the upstream.
	t.Run("body too large", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, tg.url("/api/upload"), bytes.NewReader(patternBytes(10<<20+1)))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := client.fetch(t, req)
		assertTailguardError(t, resp, body, 413, "body_too_large", "api")
	})
}

// assertTailguardError checks a response tailguard made itself: its status,
// X-Tailguard-Error cause, and short plain-text body naming the route.
func assertTailguardError(t *testing.T, resp *http.Response, body []byte, status int, cause, route string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if got := resp.Header.Get("X-Tailguard-Error"); got != cause {
		t.Errorf("X-Tailguard-Error %q, want %q", got, cause)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if !bytes.HasPrefix(body, []byte("tailguard: ")) || len(body) > 200 {
		t.Errorf("body %q: want a short text starting with \"tailguard: \"", body)
	}
	if route != "" && !bytes.Contains(body, []byte(strconv.Quote(route))) {
		t.Errorf("body %q does not name the route %q", body, route)
	}
}

// ---------------------------------------------------------------------------
// Tests: the admin server

func TestAdmin(t *testing.T) {
	up := startGoUpstream(t)
	client := newClient(t, ioTimeout)
	getAdmin := func(t *testing.T, tg *tailguardProc, path, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, tg.adminURL(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return client.fetch(t, req)
	}

	t.Run("Open", func(t *testing.T) {
		tg := startWithConfig(t, oneRouteConfig(up.addr))
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := getAdmin(t, tg, path, ""); resp.StatusCode != 200 {
				t.Errorf("%s: status %d, body %q", path, resp.StatusCode, body)
			}
		}
		resp, body := getAdmin(t, tg, "/config", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("/config: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var cfg struct {
			Routes []struct {
				Name     string `json:"name"`
				Upstream string `json:"upstream"`
			} `json:"routes"`
			Upstreams map[string]struct {
				Endpoints []string `json:"endpoints"`
			} `json:"upstreams"`
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatalf("/config: %v: %s", err, body)
		}
		if len(cfg.Routes) != 1 || cfg.Routes[0].Name != "default" || cfg.Routes[0].Upstream != "app" {
			t.Errorf("/config routes: %+v, want the one route default -> app", cfg.Routes)
		}
		if eps := cfg.Upstreams["app"].Endpoints; len(eps) != 1 || eps[0] != up.addr {
			t.Errorf("/config upstreams.app.endpoints: %q, want [%q]", eps, up.addr)
		}
	})

	t.Run("Token", func(t *testing.T) {
		tg := startWithConfig(t, oneRouteConfig(up.addr)+"admin_token: s3cret\n")
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := getAdmin(t, tg, path, ""); resp.StatusCode != 200 {
				t.Errorf("%s without token: status %d, body %q; probes need no token", path, resp.StatusCode, body)
			}
		}
		for _, token := range []string{"", "wrong"} {
			if resp, body := getAdmin(t, tg, "/config", token); resp.StatusCode != 401 || bytes.Contains(body, []byte("s3cret")) {
				t.Errorf("/config with token %q: status %d, body %.120q; want 401", token, resp.StatusCode, body)
			}
		}
		resp, body := getAdmin(t, tg, "/config", "s3cret")
		if resp.StatusCode != 200 {
			t.Fatalf("/config with the token: status %d, body %q", resp.StatusCode, body)
		}
		var cfg struct {
			AdminToken string `json:"admin_token"`
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatalf("/config: %v: %s", err, body)
		}
		if cfg.AdminToken != "REDACTED" || bytes.Contains(body, []byte("s3cret")) {
			t.Errorf("/config shows admin_token %q (token in body: %v), want REDACTED", cfg.AdminToken, bytes.Contains(body, []byte("s3cret")))
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: subcommands

func TestValidateCommand(t *testing.T) {
	cases := []struct {
		file     string
		wantCode int
		stdout   []string // substrings
		stderr   []string // substrings, in order of the file
	}{
		{"testdata/good.yaml", 0, []string{"testdata/good.yaml: ok"}, nil},
		{"testdata/bad_values.yaml", 1, nil, []string{
			"testdata/bad_values.yaml:6:22: upstreams.app.connect_timeout: ",
			"testdata/bad_values.yaml:13:14: routes[1].timeout: ",
		}},
		{"testdata/bad_keys.yaml", 1, nil, []string{
			`testdata/bad_keys.yaml:6:5: upstreams.app.conect_timeout: unknown key`,
			`testdata/bad_keys.yaml:13:5: routes[1].retries_please: unknown key`,
		}},
		{"testdata/no-such-file.yaml", 1, nil, []string{"testdata/no-such-file.yaml"}},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			stdout, stderr, code := runTailguard(t, "validate", "-config", c.file)
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, stdout, stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout %q lacks %q", stdout, s)
				}
			}
			at := 0
			for _, s := range c.stderr {
				i := strings.Index(stderr[at:], s)
				if i < 0 {
					t.Errorf("stderr lacks %q (in file order):\n%s", s, stderr)
					continue
				}
				at += i + len(s)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	stdout, stderr, code := runTailguard(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "tailguard") {
		t.Errorf("version: exit code %d, stdout %q, stderr %q; want 0 and a line starting with tailguard", code, stdout, stderr)
	}
}

// ---------------------------------------------------------------------------
// Tests: the quick form, environment and flags. Without a file the drain
// delay is its 5s default, so these run in parallel.

func TestQuickForm(t *testing.T) {
	t.Parallel()
	up := startGoUpstream(t)
	tg := startTailguard(t, nil, "-upstream", "http://"+up.addr, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	assertLoopbackEphemeral(t, "listen", tg.listen)
	assertLoopbackEphemeral(t, "admin", tg.admin)
	client := newClient(t, ioTimeout)
	resp, body := client.get(t, tg.url("/status/201"))
	if resp.StatusCode != 201 || string(body) != "upstream says 201\n" {
		t.Errorf("status %d, body %q; want the upstream's 201", resp.StatusCode, body)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	up := startGoUpstream(t)
	addrs := freeAddrs(t, 2)
	listen, admin := addrs[0], addrs[1]
	tg := startTailguard(t, []string{
		"TAILGUARD_UPSTREAM=http://" + up.addr,
		"TAILGUARD_LISTEN=" + listen,
		"TAILGUARD_ADMIN=" + admin,
		"TAILGUARD_ADMIN_TOKEN=envtok",
	})
	if tg.listen != listen || tg.admin != admin {
		t.Errorf("listening on %s, admin %s; want TAILGUARD_LISTEN %s, TAILGUARD_ADMIN %s", tg.listen, tg.admin, listen, admin)
	}
	client := newClient(t, ioTimeout)
	if resp, body := client.get(t, tg.url("/status/200")); resp.StatusCode != 200 || string(body) != "upstream says 200\n" {
		t.Errorf("proxied GET: status %d, body %q", resp.StatusCode, body)
	}
	if resp, _ := client.get(t, tg.adminURL("/config")); resp.StatusCode != 401 {
		t.Errorf("/config without TAILGUARD_ADMIN_TOKEN's token: status %d, want 401", resp.StatusCode)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	t.Parallel()
	up := startGoUpstream(t)
	envListen := freeAddrs(t, 1)[0]
	tg := startTailguard(t, []string{"TAILGUARD_LISTEN=" + envListen},
		"-config", writeConfig(t, oneRouteConfig(up.addr)), "-listen", "127.0.0.1:0")
	if tg.listen == envListen {
		t.Errorf("listening on TAILGUARD_LISTEN %s; the -listen flag must win", envListen)
	}
	assertLoopbackEphemeral(t, "listen", tg.listen)
	client := newClient(t, ioTimeout)
	if resp, _ := client.get(t, tg.url("/status/200")); resp.StatusCode != 200 {
		t.Errorf("proxied GET: status %d", resp.StatusCode)
	}
}

// assertLoopbackEphemeral checks that addr is 127.0.0.1 on a port other
// than tailguard's defaults: the flag or variable asking for :0 took.
func assertLoopbackEphemeral(t *testing.T, what, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" || port == "8000" || port == "9901" {
		t.Errorf("%s address %q, want 127.0.0.1 on an ephemeral port", what, addr)
	}
}

// ---------------------------------------------------------------------------
// Tests: graceful drain

func TestDrainFinishesInFlightRequests(t *testing.T) {
	const inFlight = 10
	up := startGoUpstream(t)
	arrived := make(chan struct{}, inFlight)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	slowBody := patternBytes(256 << 10)
	up.mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // in flight until the test has watched the drain begin
		case <-release:
		case <-time.After(ioTimeout):
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(slowBody)))
		_, _ = w.Write(slowBody)
	})
	tg := startWithConfig(t, strings.Replace(oneRouteConfig(up.addr),
		"drain: {delay: 0s, timeout: 5s}", "drain: {delay: 300ms, timeout: 5s}", 1))

	type result struct {
		status int
		body   []byte
		err    error
	}
	client := newClient(t, ioTimeout)
	results := make(chan result, inFlight)
	for range inFlight {
		go func() {
			resp, err := client.Get(tg.url("/slow"))
			if err != nil {
				results <- result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results <- result{resp.StatusCode, body, err}
		}()
	}
	waitArrivals(t, arrived, inFlight)

	tg.signal(t, syscall.SIGTERM)
	admin := newClient(t, 2*time.Second)
	if !pollUntil(200, 10*time.Millisecond, func() bool {
		resp, err := admin.Get(tg.adminURL("/readyz"))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}) {
		t.Errorf("/readyz never returned 503 after SIGTERM")
	}
	// The listener must close after the delay while requests are still in
	// flight (they are held), not only when the process exits.
	if !pollUntil(200, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", tg.listen, time.Second)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	}) {
		t.Errorf("the proxy listener still accepted connections 4s after SIGTERM (drain delay 300ms)")
	}
	select {
	case <-tg.exited:
		t.Fatalf("tailguard exited with %d requests in flight: %v", inFlight, tg.waitErr)
	default:
	}

	releaseAll()
	for i := range inFlight {
		select {
		case r := <-results:
			if r.err != nil || r.status != 200 || !bytes.Equal(r.body, slowBody) {
				t.Errorf("in-flight request %d: status %d, %d of %d body bytes, error %v", i, r.status, len(r.body), len(slowBody), r.err)
			}
		case <-time.After(exitTimeout):
			t.Fatalf("only %d of %d in-flight requests finished", i, inFlight)
		}
	}
	tg.waitExit(t)
}

// waitArrivals waits until n requests have reached the upstream.
func waitArrivals(t *testing.T, arrived <-chan struct{}, n int) {
	t.Helper()
	timeout := time.After(ioTimeout)
	for i := range n {
		select {
		case <-arrived:
		case <-timeout:
			t.Fatalf("only %d of %d requests reached the upstream", i, n)
		}
	}
}

// pollUntil calls cond up to attempts times, pausing between calls, until
// it returns true.
func pollUntil(attempts int, pause time.Duration, cond func() bool) bool {
	for range attempts {
		if cond() {
			return true
		}
		time.Sleep(pause)
	}
	return false
}

// ---------------------------------------------------------------------------
// Tests: large bodies

func TestLargeBodiesStreamInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB each way; skipped with -short")
	}
	const size = 1 << 30
	const maxRSS = 64 << 20
	up := startGoUpstream(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: bulk
    upstream: app
    timeout: 0
    max_body_bytes: 0
`, up.addr))
	want := patternSHA256(size)
	client := newClient(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // safety limit only
	defer cancel()

	// Upload: a generated body with a Content-Length, hashed by the upstream.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tg.url("/sink"), io.NopCloser(newPatternReader(size)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, body := client.fetch(t, req)
	var sunk sinkResult
	if resp.StatusCode != 200 || json.Unmarshal(body, &sunk) != nil {
		t.Fatalf("upload: status %d, body %.300q", resp.StatusCode, body)
	}
	if sunk.Bytes != size || sunk.SHA256 != want {
		t.Errorf("upload: upstream got %d bytes sha256 %s, want %d bytes sha256 %s", sunk.Bytes, sunk.SHA256, size, want)
	}

	// Download: a generated body hashed by the client as it arrives.
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, tg.url(fmt.Sprintf("/big?n=%d", size)), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	_ = resp.Body.Close()
	if got := hex.EncodeToString(h.Sum(nil)); err != nil || resp.StatusCode != 200 || n != size || got != want {
		t.Errorf("download: status %d, %d bytes sha256 %s, error %v; want 200, %d bytes sha256 %s", resp.StatusCode, n, got, err, size, want)
	}

	hwm := tg.peakRSS(t)
	t.Logf("uploaded %d bytes and downloaded %d bytes through tailguard; its peak RSS (VmHWM) was %.1f MiB", sunk.Bytes, n, float64(hwm)/(1<<20))
	if hwm > maxRSS {
		t.Errorf("tailguard's peak RSS %.1f MiB is over %d MiB: bodies are not streaming", float64(hwm)/(1<<20), maxRSS>>20)
	}
}

// ---------------------------------------------------------------------------

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
