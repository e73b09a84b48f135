package main

// Integration tests of tailguard in front of real services (issue "In
// front of real services"): TLS termination with curl and Go's client,
// certificate rotation under load, https upstreams, WebSocket tunnels
// driven by a real client library (Debian's python3-websockets), and
// byte-exact request targets sent by curl. Each runs the real binary on
// 127.0.0.1; every loop and wait is bounded, and no assertion depends on
// how fast the machine is.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"tailguard/bench"
)

// ---------------------------------------------------------------------------
// Fixtures: certificates, TLS clients, metrics

// newPKI makes a throwaway CA in a fresh temporary directory.
func newPKI(t *testing.T) *bench.PKI {
	t.Helper()
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// issueServer issues a loopback server certificate named name from pki
// and returns its certificate and key files.
func issueServer(t *testing.T, pki *bench.PKI, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := pki.IssueServer(name)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// httpsURL is the https URL of path on the proxy listener: the start-up
// line gives host:port, and the scheme is the test's to know.
func (p *tailguardProc) httpsURL(path string) string { return "https://" + p.listen + path }

// newTLSClient is newClient (counting dials, no proxy, no gzip) trusting
// only roots, over HTTP/1.1 as tailguard offers no other protocol. With
// keepAlive false every request dials and makes a full handshake, which
// is what a certificate rotation must be seen by.
func newTLSClient(t *testing.T, roots *x509.CertPool, keepAlive bool) *countingClient {
	c := newClient(t, ioTimeout)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	tr.DisableKeepAlives = !keepAlive
	return c
}

// servedSerial makes one new TLS handshake with addr, trusting roots, and
// returns the serial number of the certificate served.
func servedSerial(addr string, roots *x509.CertPool) (string, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: roots}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// serialOf returns the serial number of the PEM certificate in file.
func serialOf(t *testing.T, file string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(file, strings.TrimSuffix(file, ".pem")+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf.SerialNumber.String()
}

// metricOf reads the value of the unlabelled metric name from the admin
// port's /metrics, or fails the test if it is not there.
func metricOf(t *testing.T, tg *tailguardProc, name string) float64 {
	t.Helper()
	resp, body := newClient(t, ioTimeout).get(t, tg.adminURL("/metrics"))
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("/metrics: %q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// ---------------------------------------------------------------------------
// 1. TLS termination

// TestFrontlineTLSTermination: the binary terminates TLS (configured in
// the file, or with the quick flags -tls-cert/-tls-key) for curl, with
// and without --http1.1, and for Go's client: each gets the upstream's
// 200, and the upstream sees X-Forwarded-Proto: https. Plain HTTP sent to
// the TLS port gets nothing that starts like an HTTP response.
func TestFrontlineTLSTermination(t *testing.T) {
	skipShort(t)
	pki := newPKI(t)
	certFile, keyFile := issueServer(t, pki, "frontline")
	up := startGoUpstream(t)
	starts := []struct {
		name  string
		start func(t *testing.T) *tailguardProc
	}{
		{"config file", func(t *testing.T) *tailguardProc {
			return startWithConfig(t, oneRouteConfig(up.addr)+fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", certFile, keyFile))
		}},
		{"quick flags", func(t *testing.T) *tailguardProc {
			return startTailguard(t, nil, "-upstream", "http://"+up.addr, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
				"-tls-cert", certFile, "-tls-key", keyFile)
		}},
	}
	for _, st := range starts {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel() // the quick form drains for its 5s default delay
			tg := st.start(t)
			clients := []struct {
				name string
				get  func(t *testing.T) (status int, header http.Header, body []byte)
			}{
				{"curl --http1.1", func(t *testing.T) (int, http.Header, []byte) {
					return curlGet(t, "--cacert", pki.CAFile, "--http1.1", "-i", tg.httpsURL("/headers"))
				}},
				{"curl offering h2 by ALPN", func(t *testing.T) (int, http.Header, []byte) {
					return curlGet(t, "--cacert", pki.CAFile, "-i", tg.httpsURL("/headers"))
				}},
				{"Go client", func(t *testing.T) (int, http.Header, []byte) {
					resp, body := newTLSClient(t, pki.Pool(), true).get(t, tg.httpsURL("/headers"))
					return resp.StatusCode, resp.Header, body
				}},
			}
			for _, c := range clients {
				t.Run(c.name, func(t *testing.T) {
					status, header, body := c.get(t)
					if status != 200 {
						t.Fatalf("status %d, want the upstream's 200: %.200q", status, body)
					}
					noTailguardError(t, c.name, header)
					seen := decodeSeen(t, rawResponse{&http.Response{StatusCode: status}, body})
					if got := seen.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
						t.Errorf("the upstream saw X-Forwarded-Proto %q, want [https]", got)
					}
				})
			}
			t.Run("plain HTTP to the TLS port", func(t *testing.T) {
				got := plainExchange(t, tg.listen, rawRequest("GET /headers HTTP/1.1", "Host: localhost"))
				if bytes.HasPrefix(got, []byte("HTTP/")) {
					t.Errorf("a plain HTTP client got an HTTP answer: %.200q", got)
				}
				t.Logf("a plain HTTP client got %d bytes: %.60q", len(got), got)
			})
		})
	}
}

// curlGet runs curl with args (which must include -i) and returns the
// final response's status code, headers and body.
func curlGet(t *testing.T, args ...string) (int, http.Header, []byte) {
	t.Helper()
	r := parseCurlOutput(t, runCurl(t, args...))
	f := strings.Fields(r.statusLine)
	if len(f) < 2 {
		t.Fatalf("curl status line %q", r.statusLine)
	}
	if f[0] != "HTTP/1.1" {
		t.Errorf("curl spoke %s, want HTTP/1.1 (the listener offers no other protocol)", f[0])
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("curl status line %q", r.statusLine)
	}
	return code, r.header, r.body
}

// plainExchange writes raw on a new TCP connection to addr and returns
// everything read back until the peer closes, or for 5 s at most.
func plainExchange(t *testing.T, addr, raw string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c) // EOF, a reset or the deadline: all end the answer
	return got
}

// ---------------------------------------------------------------------------
// 2. Certificate rotation under load

// certDir is the directory the listener's certificate and key are read
// from, as tls.crt and tls.key, written the two ways a deployment writes
// them: a Kubernetes Secret volume (each file a symlink through ..data to
// a versioned directory, rotated by swapping ..data) and a rename of new
// files over the old ones (cert-manager's csi driver, scripts).
type certDir struct {
	dir      string
	versions int
}

// certFile and keyFile are the paths tailguard is configured with.
func (d *certDir) certFile() string { return filepath.Join(d.dir, "tls.crt") }
func (d *certDir) keyFile() string  { return filepath.Join(d.dir, "tls.key") }

// publishSecret writes certFile and keyFile as a new version of a
// Kubernetes Secret volume and swaps the ..data symlink to it, making
// tls.crt and tls.key the symlinks through ..data if they are not yet.
func (d *certDir) publishSecret(t *testing.T, certFile, keyFile string) {
	t.Helper()
	d.versions++
	version := fmt.Sprintf("..v%d", d.versions)
	must(t, os.Mkdir(filepath.Join(d.dir, version), 0o700))
	copyFile(t, certFile, filepath.Join(d.dir, version, "tls.crt"))
	copyFile(t, keyFile, filepath.Join(d.dir, version, "tls.key"))
	must(t, os.Symlink(version, filepath.Join(d.dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(d.dir, "..data_tmp"), filepath.Join(d.dir, "..data")))
	for _, name := range []string{"tls.crt", "tls.key"} {
		if _, err := os.Lstat(filepath.Join(d.dir, name)); errors.Is(err, os.ErrNotExist) {
			must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)))
		}
	}
}

// renameOver writes certFile and keyFile to temporary files in the
// directory and renames them over tls.crt and tls.key, one after the
// other: each of the two files is replaced atomically, the pair is not.
func (d *certDir) renameOver(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for _, f := range []struct{ src, dst string }{{certFile, d.certFile()}, {keyFile, d.keyFile()}} {
		tmp := filepath.Join(d.dir, "incoming-"+filepath.Base(f.dst))
		copyFile(t, f.src, tmp)
		must(t, os.Rename(tmp, f.dst))
	}
}

// copyFile copies src to dst (mode 0600), for the rotation's new files.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(dst, b, 0o600))
}

// must fails the test on a file system error the rotation cannot go on
// without.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tlsLoad is an open-loop load through the TLS listener: one GET at each
// tick of rate per second, each in its own goroutine whatever the others
// are doing, until stopped or until max has passed. Like a client's
// connection pool, it has at most loadInFlight requests under way: on a
// machine too busy to keep up (other tests share it), it waits for one to
// end rather than pile up requests until the upstream pool is exhausted,
// and counts the wait as late. Every fifth request goes on a new
// connection (a full handshake, so rotated certificates are used), the
// rest on kept-alive ones (which must survive the rotations). A transport
// error or any status but 200 is a failure.
type tlsLoad struct {
	sent, fresh, late, failed atomic.Int64
	mu                        sync.Mutex
	failures                  []string // the first few, for the report
	stop                      chan struct{}
	done                      chan struct{}
	keepAlive, oneShot        *countingClient
}

// loadInFlight bounds the requests tlsLoad has under way.
const loadInFlight = 64

// startTLSLoad starts the load on url, trusting roots, at rate per second
// for max at most; finish stops it.
func startTLSLoad(t *testing.T, url string, roots *x509.CertPool, rate int, max time.Duration) *tlsLoad {
	l := &tlsLoad{
		stop: make(chan struct{}), done: make(chan struct{}),
		keepAlive: newTLSClient(t, roots, true), oneShot: newTLSClient(t, roots, false),
	}
	l.keepAlive.Transport.(*http.Transport).MaxIdleConnsPerHost = loadInFlight
	slots := make(chan struct{}, loadInFlight)
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		start := time.Now()
		for i := range int(max.Seconds() * float64(rate)) {
			select {
			case <-l.stop:
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate)))):
			}
			select {
			case slots <- struct{}{}:
			default:
				l.late.Add(1)
				select {
				case slots <- struct{}{}:
				case <-l.stop:
					return
				}
			}
			client := l.keepAlive
			if i%5 == 4 {
				client = l.oneShot
				l.fresh.Add(1)
			}
			l.sent.Add(1)
			wg.Go(func() { l.one(client, url); <-slots })
		}
	}()
	return l
}

// one sends one GET with client and counts it failed, keeping the first
// few errors, unless it got a whole 200.
func (l *tlsLoad) one(client *countingClient, url string) {
	resp, err := client.Get(url)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"))
		}
	}
	if err != nil {
		l.failed.Add(1)
		l.mu.Lock()
		if len(l.failures) < 5 {
			l.failures = append(l.failures, err.Error())
		}
		l.mu.Unlock()
	}
}

// finish stops sending and waits for the requests under way.
func (l *tlsLoad) finish() {
	close(l.stop)
	<-l.done
}

// keptConn is one TLS connection to the proxy, kept open across
// certificate rotations: the rotation must not drop it.
type keptConn struct {
	*tls.Conn
	br *bufio.Reader
}

// dialKept opens a keptConn to addr, trusting roots.
func dialKept(t *testing.T, addr string, roots *x509.CertPool) *keptConn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{Conn: c, br: bufio.NewReader(c)}
}

// get sends GET /status/200 on the connection and requires the
// upstream's 200.
func (k *keptConn) get(t *testing.T, when string) {
	t.Helper()
	_ = k.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(k, rawRequest("GET /status/200 HTTP/1.1", "Host: localhost")); err != nil {
		t.Fatalf("the kept connection %s: %v", when, err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("the kept connection %s: %v", when, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the kept connection %s: status %d, %q, %v", when, resp.StatusCode, body, err)
	}
}

// TestFrontlineCertificateRotation: the listener's certificate is rotated
// five times (once by a Kubernetes ..data symlink swap, four times by
// renaming new files over the old) while an open-loop load of 500 req/s
// runs through the binary. No request fails, and a connection opened
// before the first swap still serves after the last; after each swap a new
// handshake sees the new certificate (polled, bounded). A pair whose key
// does not match, written mid-way, is refused, logged and counted in
// /metrics, and the certificate before it keeps serving.
func TestFrontlineCertificateRotation(t *testing.T) {
	skipShort(t)
	pki := newPKI(t)
	roots := pki.Pool()
	dir := &certDir{dir: t.TempDir()}
	initialCert, initialKey := issueServer(t, pki, "initial")
	dir.publishSecret(t, initialCert, initialKey)
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr)+fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", dir.certFile(), dir.keyFile()))

	const rate = 500
	load := startTLSLoad(t, tg.httpsURL("/status/200"), roots, rate, 15*time.Second)
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			load.finish()
		}
	}
	defer stopLoad()

	// waitServed polls new handshakes (at most 5 s of them) until the
	// served certificate's serial is want.
	waitServed := func(what, want string) {
		t.Helper()
		var got string
		var err error
		if !pollUntil(200, 25*time.Millisecond, func() bool {
			got, err = servedSerial(tg.listen, roots)
			return err == nil && got == want
		}) {
			t.Fatalf("%s: new handshakes still see serial %q (error %v), want %q", what, got, err, want)
		}
	}
	pause := func() { time.Sleep(300 * time.Millisecond) } // traffic on the new certificate, not synchronisation

	kept := dialKept(t, tg.listen, roots)
	kept.get(t, "before the rotations")
	pause()
	for round := 1; round <= 5; round++ {
		certFile, keyFile := issueServer(t, pki, fmt.Sprintf("round%d", round))
		if round == 1 {
			dir.publishSecret(t, certFile, keyFile)
		} else {
			dir.renameOver(t, certFile, keyFile)
		}
		waitServed(fmt.Sprintf("rotation %d", round), serialOf(t, certFile))
		pause()

		if round == 3 {
			// A key that is not the certificate's: only the key changes,
			// so only the key's watch fires, once. (A rename round may
			// have been refused already: if the machine stalls between
			// its two renames for longer than the watch's debounce, the
			// certificate is read with the old key, refused, and read
			// again with the new one.)
			refusals := func() int { return strings.Count(tg.stderr.String(), "tls certificate reload refused") }
			before, failuresBefore := refusals(), metricOf(t, tg, "tailguard_tls_certificate_reload_failures_total")
			_, strayKey := issueServer(t, pki, "stray")
			tmp := filepath.Join(dir.dir, "incoming-tls.key")
			copyFile(t, strayKey, tmp)
			must(t, os.Rename(tmp, dir.keyFile()))
			if !pollUntil(200, 25*time.Millisecond, func() bool { return refusals() > before }) {
				t.Fatalf("a key that does not match was not refused:\n%s", tg.stderr.String())
			}
			if !strings.Contains(tg.stderr.String(), "private key does not match public key") {
				t.Errorf("the refusal does not say why: %s", tg.stderr.String())
			}
			if n := metricOf(t, tg, "tailguard_tls_certificate_reload_failures_total"); n != failuresBefore+1 {
				t.Errorf("tailguard_tls_certificate_reload_failures_total %v after a bad pair, want %v", n, failuresBefore+1)
			}
			waitServed("after a refused pair", serialOf(t, certFile))
			pause()
		}
	}
	stopLoad()
	kept.get(t, "after the rotations")
	if got, want := kept.ConnectionState().PeerCertificates[0].SerialNumber.String(), serialOf(t, initialCert); got != want {
		t.Errorf("the connection kept across the rotations has certificate serial %s, want the initial %s", got, want)
	}

	sent, failed := load.sent.Load(), load.failed.Load()
	t.Logf("rotation: %d requests at %d/s (%d on new connections, %d dials, %d sent late) across 5 rotations and 1 bad pair: %d failed; %v reloads, %v refused",
		sent, rate, load.fresh.Load(), load.keepAlive.dials.Load()+load.oneShot.dials.Load(), load.late.Load(), failed,
		metricOf(t, tg, "tailguard_tls_certificate_reloads_total"), metricOf(t, tg, "tailguard_tls_certificate_reload_failures_total"))
	if failed != 0 {
		t.Errorf("%d of %d requests failed across the rotations; first: %q", failed, sent, load.failures)
	}
	if sent < rate { // the load ran for the rotations, at least a second of them
		t.Errorf("only %d requests were sent", sent)
	}
	if n := metricOf(t, tg, "tailguard_tls_certificate_reloads_total"); n < 5 {
		t.Errorf("tailguard_tls_certificate_reloads_total %v, want at least 5", n)
	}
}

// ---------------------------------------------------------------------------
// 3. https upstreams

// startGoTLSUpstream is startGoUpstream's handlers served over TLS with a
// certificate from pki, plus /tls, which answers the TLS version the
// request came over (or 400 without TLS).
func startGoTLSUpstream(t *testing.T, pki *bench.PKI) *goUpstream {
	t.Helper()
	certFile, keyFile := issueServer(t, pki, "upstream")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	u := &goUpstream{mux: http.NewServeMux()}
	u.handle()
	u.mux.HandleFunc("/tls", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "not over TLS", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, tls.VersionName(r.TLS.Version))
	})
	srv := httptest.NewUnstartedServer(u.mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u.addr = srv.Listener.Addr().String()
	return u
}

// pythonTLSServer serves a directory with Python's http.server over TLS
// (the ssl module): argv is port, certificate, key, directory.
const pythonTLSServer = `
import functools, http.server, ssl, sys
port, cert, key, root = sys.argv[1:5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.HTTPServer(("127.0.0.1", int(port)), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
`

// startPythonTLSUpstream serves a directory holding tls.txt ("python over
// TLS\n") with Python's http.server and ssl, with a certificate from pki.
func startPythonTLSUpstream(t *testing.T, pki *bench.PKI) string {
	t.Helper()
	certFile, keyFile := issueServer(t, pki, "python-upstream")
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "tls.txt"), []byte("python over TLS\n"), 0o600))
	return startPythonServer(t, func(port string) []string {
		return []string{"-c", pythonTLSServer, port, certFile, keyFile, root}
	})
}

// TestFrontlineUpstreamTLS: through the binary to https upstreams (Go's
// net/http and Python's http.server with ssl) with certificates of their
// own CA: with that CA as ca_file each answers over TLS; with another CA,
// and in the quick form -upstream https://127.0.0.1:PORT (system roots,
// which do not know the CA: this is what shows the quick form speaks
// TLS), verification fails and the answer is 502 tls_failure.
func TestFrontlineUpstreamTLS(t *testing.T) {
	skipShort(t)
	pki := newPKI(t)
	up := startGoTLSUpstream(t, pki)
	pyUp := startPythonTLSUpstream(t, pki)
	other := newPKI(t)
	withTLS := func(tlsYAML string) func(t *testing.T) *tailguardProc {
		return withUpstreamTLS(up.addr, tlsYAML)
	}
	tests := []struct {
		name   string
		start  func(t *testing.T) *tailguardProc
		path   string
		status int
		want   string // the body's start, or the cause
	}{
		{"ca_file of its CA", withTLS(fmt.Sprintf("{ca_file: %q}", pki.CAFile)), "/tls", 200, "TLS 1."},
		{"ca_file and server_name it was issued for", withTLS(fmt.Sprintf("{ca_file: %q, server_name: localhost}", pki.CAFile)), "/tls", 200, "TLS 1."},
		{"ca_file of another CA", withTLS(fmt.Sprintf("{ca_file: %q}", other.CAFile)), "/tls", 502, "tls_failure"},
		{"quick form https, system roots", func(t *testing.T) *tailguardProc {
			return startTailguard(t, nil, "-upstream", "https://"+up.addr, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
		}, "/tls", 502, "tls_failure"},
		{"python ssl, ca_file of its CA", withUpstreamTLS(pyUp, fmt.Sprintf("{ca_file: %q}", pki.CAFile)), "/tls.txt", 200, "python over TLS\n"},
		{"python ssl, ca_file of another CA", withUpstreamTLS(pyUp, fmt.Sprintf("{ca_file: %q}", other.CAFile)), "/tls.txt", 502, "tls_failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the quick form drains for its 5s default delay
			tg := tt.start(t)
			resp, body := newClient(t, ioTimeout).get(t, tg.url(tt.path))
			if tt.status != 200 {
				assertTailguardError(t, resp, body, tt.status, tt.want, "")
				return
			}
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), tt.want) {
				t.Errorf("status %d, body %q: want 200 and %q from the upstream over TLS", resp.StatusCode, body, tt.want)
			}
			noTailguardError(t, tt.name, resp.Header)
		})
	}
}

// withUpstreamTLS returns a start of the binary with one upstream at addr
// whose tls section is tlsYAML.
func withUpstreamTLS(addr, tlsYAML string) func(t *testing.T) *tailguardProc {
	return func(t *testing.T) *tailguardProc {
		return startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
    tls: %s
routes:
  - name: default
    upstream: app
`, addr, tlsYAML))
	}
}

// ---------------------------------------------------------------------------
// 4. WebSocket tunnels

// wsUpstream is a WebSocket service (gorilla/websocket) on loopback:
// /ws/echo echoes every message (and answers pings, by the library's
// default handler), /ws/server-close closes the connection itself after
// one message, /ws/refuse answers 403 to the upgrade. It reports each
// close handshake it sees from the client on closes.
type wsUpstream struct {
	addr   string
	closes chan string // "PATH CODE REASON" of each close frame received
}

// startWSUpstream starts the service, over TLS with a certificate from
// pki if pki is not nil; it stops when the test ends.
func startWSUpstream(t *testing.T, pki *bench.PKI) *wsUpstream {
	t.Helper()
	u := &wsUpstream{closes: make(chan string, 16)}
	upgrader := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws/refuse" {
			http.Error(w, "no websocket here", http.StatusForbidden)
			return
		}
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				u.closes <- fmt.Sprintf("%s %d %s", r.URL.Path, ce.Code, ce.Text)
			}
			if err != nil {
				return
			}
			if r.URL.Path == "/ws/server-close" {
				// The close frame; the client's answer ends the loop above.
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "server done"), time.Now().Add(5*time.Second))
				continue
			}
			if err := c.WriteMessage(typ, msg); err != nil {
				return
			}
		}
	}))
	if pki == nil {
		srv.Start()
	} else {
		certFile, keyFile := issueServer(t, pki, "ws-upstream")
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	u.addr = srv.Listener.Addr().String()
	return u
}

// wsClientScript is the WebSocket client, Python's websockets library
// (Debian's python3-websockets, 10.x: the asyncio API). It reports what
// it saw as JSON lines, one per event, for the test to judge. Before the
// first tunnel closes (and in drain mode, once its tunnels are open) it
// reports "open" and waits for a line on stdin, so that the test can read
// /stats with the tunnel open or stop tailguard.
//
// After a close handshake a client waits for the server to close the TCP
// connection (RFC 6455, 7.1.1) for close_timeout, then closes it itself;
// the library logs "timed out waiting for TCP close" at debug level when
// it had to. Each close event reports that as tcp_close_waited: the
// service's TCP close did not come through the tunnel.
const wsClientScript = `
import asyncio, json, logging, ssl, sys, time
import websockets

MIB = 1 << 20

class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []
    def emit(self, record):
        self.messages.append(record.getMessage())

recorder = Recorder()
log = logging.getLogger("websockets.client")
log.setLevel(logging.DEBUG)
log.addHandler(recorder)
log.propagate = False

def tcp_close_waited():
    waited = any("timed out waiting for TCP close" in m for m in recorder.messages)
    recorder.messages.clear()
    return waited

def emit(**kw):
    print(json.dumps(kw), flush=True)

def payload(i):
    n = int(MIB ** (min(i, 98) / 98))  # 1 byte to 1 MiB, growing geometrically: 8.6 MiB in all
    if i % 2 == 0:
        text = ("wörld-" * (n // 7 + 1)).encode()[:n]  # two-byte characters too
        return text.decode(errors="ignore")  # n bytes, or n-1 if one was cut
    k = i % 256
    block = bytes(range(k, 256)) + bytes(range(0, k))
    return (block * (n // 256 + 1))[:n]

def connect(path):
    tls = ssl.create_default_context(cafile=CA_FILE) if CA_FILE else None
    return websockets.connect(BASE + path, ssl=tls, max_size=2 * MIB, ping_interval=None, compression=None, open_timeout=10, close_timeout=10)

async def full():
    async with connect("/ws/echo") as ws:
        mismatches, largest = [], {"text": 0, "binary": 0}
        for i in range(100):
            msg = payload(i)
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 30)
            kind = "text" if isinstance(msg, str) else "binary"
            size = len(msg.encode()) if kind == "text" else len(msg)
            largest[kind] = max(largest[kind], size)
            if type(got) is not type(msg) or got != msg:
                mismatches.append(i)
        emit(event="messages", round_trips=100, mismatches=mismatches, largest=largest)
        pong = await ws.ping(b"tailguard")
        await asyncio.wait_for(pong, 10)
        emit(event="pong")
        emit(event="open")
        sys.stdin.readline()
        await ws.close(code=1000, reason="client done")
    emit(event="client_close", code=ws.close_code, reason=ws.close_reason, tcp_close_waited=tcp_close_waited())
    ev = {}
    async with connect("/ws/server-close") as ws:
        await ws.send("close, please")
        try:
            got = await asyncio.wait_for(ws.recv(), 30)
            ev = dict(error="a message, not a close: %r" % got)
        except websockets.ConnectionClosedOK as e:
            ev = dict(code=e.rcvd.code, reason=e.rcvd.reason, clean=True)
        except websockets.ConnectionClosed as e:
            ev = dict(error=repr(e))
    emit(event="server_close", tcp_close_waited=tcp_close_waited(), **ev)
    try:
        async with connect("/ws/refuse"):
            emit(event="refused", status=101)
    except websockets.InvalidStatusCode as e:
        emit(event="refused", status=e.status_code)

async def busy(ws):
    try:
        for _ in range(3000):  # 60 s at most
            await ws.send("tick")
            await asyncio.wait_for(ws.recv(), 25)
            await asyncio.sleep(0.02)
        return dict(closed=False)
    except websockets.ConnectionClosed as e:
        return dict(closed=True, error=repr(e))
    except asyncio.TimeoutError:
        return dict(closed=False, error="no echo within 25 s")

async def silent(ws):
    try:
        got = await asyncio.wait_for(ws.recv(), 25)
        return dict(closed=False, error="a message: %r" % got)
    except websockets.ConnectionClosed as e:
        return dict(closed=True, error=repr(e))
    except asyncio.TimeoutError:
        return dict(closed=False, error="still open after 25 s")

async def drain():
    async with connect("/ws/echo") as b, connect("/ws/echo") as s:
        for ws in (b, s):
            await ws.send("hello")
            await asyncio.wait_for(ws.recv(), 30)
        emit(event="open")
        sys.stdin.readline()
        start = time.monotonic()
        rb, rs = await asyncio.gather(busy(b), silent(s))
        emit(event="drain", busy=rb, silent=rs, after_s=time.monotonic() - start)

BASE, CA_FILE = sys.argv[2], sys.argv[3]
asyncio.run(full() if sys.argv[1] == "full" else drain())
`

// systemPython is Debian's python3, which python3-websockets installs
// into; a python3 earlier on PATH (pyenv) would not have it.
const systemPython = "/usr/bin/python3"

// wsClient is a running wsClientScript.
type wsClient struct {
	stdin  io.WriteCloser
	events chan map[string]any
	stderr lockedBuffer
}

// startWSClient runs wsClientScript in mode ("full" or "drain") against
// base (ws://host:port, or wss:// trusting caFile). It skips the test if the websockets library is
// not installed, and kills the client when the test ends.
func startWSClient(t *testing.T, mode, base, caFile string) *wsClient {
	t.Helper()
	if out, err := exec.Command(systemPython, "-c", "import websockets").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import websockets (apt-get install python3-websockets): %v %s", systemPython, err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, systemPython, "-c", wsClientScript, mode, base, caFile)
	c := &wsClient{events: make(chan map[string]any, 16)}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				c.events <- ev
			} else {
				c.stderr.Write(append(sc.Bytes(), '\n'))
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("websocket client stderr:\n%s", c.stderr.String())
		}
	})
	return c
}

// next returns the client's next event, which must be named event.
func (c *wsClient) next(t *testing.T, event string) map[string]any {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatalf("the websocket client ended before %q:\n%s", event, c.stderr.String())
		}
		if ev["event"] != event {
			t.Fatalf("websocket client event %v, want %q", ev, event)
		}
		return ev
	case <-time.After(ioTimeout):
		t.Fatalf("the websocket client reported no %q within %v:\n%s", event, ioTimeout, c.stderr.String())
		return nil
	}
}

// proceed lets the client go on past "open".
func (c *wsClient) proceed(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// nextClose returns the upstream's next close report.
func (u *wsUpstream) nextClose(t *testing.T) string {
	t.Helper()
	select {
	case s := <-u.closes:
		return s
	case <-time.After(ioTimeout):
		t.Fatalf("the upstream saw no close frame within %v", ioTimeout)
		return ""
	}
}

// wsConfig routes /ws/ to the WebSocket upstream at addr with upgrades
// on; upstreamTLS is the upstream's tls line, if any.
func wsConfig(addr string, drainTimeout time.Duration, upstreamTLS string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
drain: {delay: 0s, timeout: %s}
limits: {idle_timeout: 60s}
upstreams:
  ws:
    endpoints: [%q]
%sroutes:
  - name: ws
    match: {path_prefix: /ws/}
    upstream: ws
    upgrades: [websocket]
`, drainTimeout, addr, upstreamTLS)
}

// TestFrontlineWebSocket: python3-websockets through the binary to a Go
// WebSocket service, plain, over the TLS listener (wss://) and to the
// service over TLS. "tunnel": 100 round trips of text and binary
// messages up to 1 MiB both ways arrive intact, a ping gets its pong, the
// tunnel is counted open in /stats while it is, the client's close
// handshake reaches the service and its answer the client, the
// service's close handshake reaches the client and its answer the
// service, an upgrade the service refuses reaches the client as 403, and
// /stats counts the two tunnels, none open. "drain": SIGTERM with two
// tunnels open, one busy both ways and one silent, closes both (the
// client sees its connection closed; idle_timeout is far off) and the
// process exits 0.
func TestFrontlineWebSocket(t *testing.T) {
	skipShort(t)
	up := startWSUpstream(t, nil)
	pki := newPKI(t)
	tlsUp := startWSUpstream(t, pki)
	certFile, keyFile := issueServer(t, pki, "frontline")
	for _, tt := range []struct {
		name, scheme, tls, caFile string
		up                        *wsUpstream
		upstreamTLS               string
	}{
		{"tunnel", "ws", "", "", up, ""},
		{"tunnel over TLS", "wss", fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", certFile, keyFile), pki.CAFile, up, ""},
		{"tunnel to a TLS upstream", "ws", "", "", tlsUp, fmt.Sprintf("    tls: {ca_file: %q}\n", pki.CAFile)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg := startWithConfig(t, wsConfig(tt.up.addr, 5*time.Second, tt.upstreamTLS)+tt.tls)
			c := startWSClient(t, "full", tt.scheme+"://"+tg.listen, tt.caFile)
			testTunnel(t, tg, c, tt.up)
		})
	}

	t.Run("drain", func(t *testing.T) {
		const drainTimeout = time.Second
		tg := startWithConfig(t, wsConfig(up.addr, drainTimeout, ""))
		c := startWSClient(t, "drain", "ws://"+tg.listen, "")
		c.next(t, "open")
		if rs := routeStatsWhen(t, tg, "ws", func(rs cornerRouteStats) bool { return rs.Tunnels.Active == 2 }); rs.Tunnels.Active != 2 {
			t.Fatalf("/stats tunnels with two open: %+v, want active 2", rs.Tunnels)
		}
		c.proceed(t)
		tg.signal(t, syscall.SIGTERM)
		ev := c.next(t, "drain")
		tg.waitExit(t)
		for _, which := range []string{"busy", "silent"} {
			if r, _ := ev[which].(map[string]any); r["closed"] != true {
				t.Errorf("the %s tunnel outlived the drain: %v", which, r)
			}
		}
		t.Logf("drain: both tunnels closed %.2fs after SIGTERM (drain.timeout %v): %v", ev["after_s"], drainTimeout, ev)
	})
}

// ---------------------------------------------------------------------------
// 5. Byte-exact request targets

// startTargetEcho runs an upstream that answers every request with its
// request target (r.RequestURI) as the body and name in X-Upstream. It
// has no ServeMux, which would clean paths and redirect.
func startTargetEcho(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, r.RequestURI)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestFrontlineRequestTargets: request targets curl sends as given
// (--path-as-is, no globbing) reach the upstream byte-exact through the
// binary, while routing uses the normalised path: /api/../admin/x goes
// to the admin route, still as /api/../admin/x.
func TestFrontlineRequestTargets(t *testing.T) {
	skipShort(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app: {endpoints: [%q]}
  admin: {endpoints: [%q]}
routes:
  - {name: admin, match: {path_prefix: /admin/}, upstream: admin}
  - {name: default, upstream: app}
`, startTargetEcho(t, "app"), startTargetEcho(t, "admin")))
	tests := []struct {
		name, target, upstream string
	}{
		{"encoded slash", "/projects/group%2Fproject", "app"},
		{"encoded slash, lower case", "/a%2fb/c", "app"},
		{"dot segments", "/a/../b", "app"},
		{"encoded dot segments", "/%2e%2e/x", "app"},
		{"single dot segments", "/a/./b/", "app"},
		{"double slashes", "//double//slash", "app"},
		{"matrix parameters", "/cars;color=red/2024;x=1", "app"},
		{"percent-encoded unreserved", "/%7Euser/%41%2D%5F%2E", "app"},
		{"+ and %20 in the query", "/search?q=a+b%20c&x=1+1", "app"},
		{"empty query values", "/s?a=&b&=c", "app"},
		{"non-ASCII percent-encodings", "/caf%C3%A9/%E2%82%AC?n=%F0%9F%98%80", "app"},
		{"signed URL", "/obj?X-Amz-Signature=ab%2Fcd%3D&X-Amz-Expires=60", "app"},
		{"dot segments into another route", "/api/../admin/x", "admin"},
		{"encoded slash in another route", "/admin/a%2Fb?x=%2F", "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := curlGet(t, "--path-as-is", "--globoff", "-i", tg.url(tt.target))
			if status != 200 {
				t.Fatalf("status %d: %.200q", status, body)
			}
			if string(body) != tt.target {
				t.Errorf("the upstream got %q, want %q", body, tt.target)
			}
			if got := header.Get("X-Upstream"); got != tt.upstream {
				t.Errorf("routed to %q, want %q", got, tt.upstream)
			}
		})
	}
}

// testTunnel runs the "full" WebSocket client's checks against tg in
// front of up; the client was started against tg.
func testTunnel(t *testing.T, tg *tailguardProc, c *wsClient, up *wsUpstream) {
	t.Helper()
	msgs := c.next(t, "messages")
	if m, _ := msgs["mismatches"].([]any); len(m) != 0 {
		t.Errorf("round trips %v came back changed", m)
	}
	largest, _ := msgs["largest"].(map[string]any)
	if text, _ := largest["text"].(float64); largest["binary"] != float64(1<<20) || text < 1<<20-1 {
		t.Errorf("largest messages %v, want 1 MiB each (text may lose a byte to a cut character)", largest)
	}
	c.next(t, "pong")
	c.next(t, "open")
	if rs := routeStatsWhen(t, tg, "ws", func(rs cornerRouteStats) bool { return rs.Tunnels.Active == 1 }); rs.Tunnels.Active != 1 || rs.Tunnels.Total != 1 {
		t.Errorf("/stats tunnels with one open: %+v, want active 1, total 1", rs.Tunnels)
	}
	c.proceed(t)

	if ev := c.next(t, "client_close"); ev["code"] != float64(1000) {
		t.Errorf("client-initiated close: the client got %v, want the service's answer, code 1000", ev)
	} else if ev["tcp_close_waited"] != false {
		t.Errorf("client-initiated close: the service closed its connection, but the client's stayed open until it gave up waiting: %v", ev)
	}
	if got := up.nextClose(t); got != "/ws/echo 1000 client done" {
		t.Errorf("client-initiated close: the service got %q, want \"/ws/echo 1000 client done\"", got)
	}
	if ev := c.next(t, "server_close"); ev["clean"] != true || ev["code"] != float64(1000) || ev["reason"] != "server done" {
		t.Errorf("server-initiated close: the client got %v, want a clean close 1000 \"server done\"", ev)
	} else if ev["tcp_close_waited"] != false {
		t.Errorf("server-initiated close: the service closed its connection, but the client's stayed open until it gave up waiting: %v", ev)
	}
	if got := up.nextClose(t); got != "/ws/server-close 1000 " && got != "/ws/server-close 1000 server done" {
		t.Errorf("server-initiated close: the service got %q, want the client's answer, code 1000", got)
	}
	if ev := c.next(t, "refused"); ev["status"] != float64(403) {
		t.Errorf("refused upgrade: the client got %v, want status 403", ev)
	}
	if rs := routeStatsWhen(t, tg, "ws", func(rs cornerRouteStats) bool { return rs.Tunnels.Active == 0 }); rs.Tunnels.Active != 0 || rs.Tunnels.Total != 2 {
		t.Errorf("/stats tunnels at the end: %+v, want active 0, total 2 (a refused upgrade is no tunnel)", rs.Tunnels)
	}
}
