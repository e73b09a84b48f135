package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailguard/bench"
)

// upstreamPKI is a CA of the test's own and a loopback server
// certificate it signed, loaded.
func upstreamPKI(t *testing.T) (*bench.PKI, tls.Certificate) {
	t.Helper()
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pki, serverPair(t, pki)
}

// serverPair issues and loads a loopback server certificate from pki.
func serverPair(t *testing.T, pki *bench.PKI) tls.Certificate {
	t.Helper()
	cert, key, err := pki.IssueServer("upstream")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// startTLSUpstream runs a net/http server over TLS with a certificate its
// own CA signed for loopback; clientCAs, if set, must sign the client's.
func startTLSUpstream(t *testing.T, pki *bench.PKI, clientCAs *x509.CertPool) string {
	t.Helper()
	tc := &tls.Config{Certificates: []tls.Certificate{serverPair(t, pki)}}
	if clientCAs != nil {
		tc.ClientCAs, tc.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream-TLS", tls.VersionName(r.TLS.Version))
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(tls.NewListener(ln, tc)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestUpstreamTLS: an https upstream is verified against the CA named (or
// the system's roots) and the endpoint's host or server_name; a failed
// verification is a 502 tls_failure; a client certificate is presented
// where the upstream asks for one.
func TestUpstreamTLS(t *testing.T) {
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey, err := pki.Issue("tailguard", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	plainUp := startTLSUpstream(t, pki, nil)
	mtlsUp := startTLSUpstream(t, pki, pki.Pool())
	ca2, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, up, tls string
		status        int
		cause         string
	}{
		{"own CA", plainUp, `{ca_file: "` + pki.CAFile + `"}`, 200, ""},
		{"system roots", plainUp, `{}`, 502, "tls_failure"},
		{"another CA", plainUp, `{ca_file: "` + ca2.CAFile + `"}`, 502, "tls_failure"},
		{"server_name it was not issued for", plainUp, `{ca_file: "` + pki.CAFile + `", server_name: api.example}`, 502, "tls_failure"},
		{"server_name it was issued for", plainUp, `{ca_file: "` + pki.CAFile + `", server_name: localhost}`, 200, ""},
		{"insecure_skip_verify", plainUp, `{insecure_skip_verify: true}`, 200, ""},
		{"client certificate", mtlsUp, `{ca_file: "` + pki.CAFile + `", cert_file: "` + clientCert + `", key_file: "` + clientKey + `"}`, 200, ""},
		{"no client certificate", mtlsUp, `{ca_file: "` + pki.CAFile + `"}`, 502, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], tls: `+tt.tls+`}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, tt.up)
			resp := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(resp, "HTTP/1.1 "+strconv.Itoa(tt.status)) {
				t.Fatalf("response %.120q, want %d", resp, tt.status)
			}
			if tt.status == 200 && headerOf(resp, "X-Upstream-TLS") == "" {
				t.Errorf("the upstream did not see TLS: %q", resp)
			}
			if tt.cause != "" && headerOf(resp, "X-Tailguard-Error") != tt.cause {
				t.Errorf("cause %q, want %q", headerOf(resp, "X-Tailguard-Error"), tt.cause)
			}
		})
	}
}

// TestUpstreamTLSHealthChecks: health checks speak TLS to a TLS upstream,
// verified like traffic: failing with another CA (endpoints start
// healthy, so failing is what shows probes ran), passing with the right
// one all the while.
func TestUpstreamTLSHealthChecks(t *testing.T) {
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up := startTLSUpstream(t, pki, nil)
	const yaml = `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], tls: {ca_file: "%s"}, health_check: {path: /healthz, interval: 250ms, timeout: 250ms}}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`
	good, _ := startServer(t, yaml, up, pki.CAFile)
	bad, _ := startServer(t, yaml, up, other.CAFile)
	waitFor(t, "health checks against an untrusted CA to fail", func() bool { return !bad.Ready() })
	if !good.Ready() {
		t.Error("health checks with the upstream's own CA failed")
	}
}

// batchConn is a server-side socket under TLS whose writes can be held
// and then sent split where the test chooses, so that a TLS record can be
// made to arrive in part.
type batchConn struct {
	net.Conn
	holding bool
	chunks  [][]byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	if c.holding {
		c.chunks = append(c.chunks, append([]byte(nil), p...))
		return len(p), nil
	}
	return c.Conn.Write(p)
}

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

// TestTLSPartialStrayRecord: an upstream sends a stray TLS record right
// behind its response; its first bytes arrive in the same segment as the
// response, the rest only after the next request was sent. The TLS layer
// must not read those first bytes ahead, where neither the socket peek
// nor a read of its own buffers would show them: the connection must be
// retired, not reused.
func TestTLSPartialStrayRecord(t *testing.T) {
	pki, pair := upstreamPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := startRawOn(t, tls.NewListener(batchListener{ln}, &tls.Config{Certificates: []tls.Certificate{pair}}), func(c net.Conn, n int, _ string) {
		if n > 1 {
			body := fmt.Sprintf("B%d", n)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			return
		}
		bc := c.(*tls.Conn).NetConn().(*batchConn)
		bc.holding = true
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
		bc.holding = false
		response, stray := bc.chunks[0], bc.chunks[1]
		_, _ = bc.Conn.Write(append(response, stray[:7]...)) // one segment: the response and 7 bytes more
		time.Sleep(300 * time.Millisecond)                   // the rest after the next request was sent
		_, _ = bc.Conn.Write(stray[7:])
	})
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"], tls: {ca_file: "%s"}}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, up.addr(), pki.CAFile)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	if status, body := get(t, client, addr, "GET", "/first"); status != 200 || body != "A" {
		t.Fatalf("first request: %d %q", status, body)
	}
	time.Sleep(50 * time.Millisecond) // the first 7 bytes are there; the rest is not
	for i := 2; i <= 4; i++ {
		if status, body := get(t, client, addr, "GET", "/next"); status != 200 || body != fmt.Sprintf("B%d", i) {
			t.Fatalf("request %d got %d %q: a response out of step", i, status, body)
		}
	}
	if n := up.connCount(); n != 2 {
		t.Errorf("upstream connections = %d, want 2", n)
	}
}
