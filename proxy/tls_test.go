package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"tailguard/bench"
)

// tlsFixture is a CA, a server certificate for loopback, and a proxy
// terminating TLS with it in front of an upstream that reports the
// X-Forwarded-Proto it got.
type tlsFixture struct {
	pki       *bench.PKI
	cert, key string
	srv       *Server
	addr      string
	roots     *x509.CertPool
}

// startTLSProxy starts the fixture; extra goes inside the tls section
// ("CA" names the fixture's CA file), top at the config's top level.
func startTLSProxy(t *testing.T, extra string, top ...string) *tlsFixture {
	t.Helper()
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.IssueServer("server")
	if err != nil {
		t.Fatal(err)
	}
	up := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Got-Proto", r.Header.Get("X-Forwarded-Proto"))
		_, _ = io.WriteString(w, "ok")
	}))
	extra = strings.ReplaceAll(extra, `"CA"`, `"`+pki.CAFile+`"`)
	srv, addr := startServer(t, `
listen: "127.0.0.1:0"
`+strings.Join(top, "\n")+`
tls: {cert_file: "%s", key_file: "%s"`+extra+`}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app}]
`, cert, key, up)
	return &tlsFixture{pki: pki, cert: cert, key: key, srv: srv, addr: addr, roots: pki.Pool()}
}

// get sends one GET over a new TLS connection made with tc (RootCAs and
// ServerName filled in) and returns the response and the connection's
// state.
func (f *tlsFixture) get(t *testing.T, tc *tls.Config) (*http.Response, tls.ConnectionState, error) {
	t.Helper()
	tc = tc.Clone()
	tc.RootCAs, tc.ServerName = f.roots, "localhost"
	c, err := tls.Dial("tcp", f.addr, tc)
	if err != nil {
		return nil, tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return nil, c.ConnectionState(), err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	return resp, c.ConnectionState(), err
}

func TestTLSTermination(t *testing.T) {
	f := startTLSProxy(t, "")
	resp, st, err := f.get(t, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Got-Proto") != "https" {
		t.Errorf("status %d, upstream saw X-Forwarded-Proto %q", resp.StatusCode, resp.Header.Get("X-Got-Proto"))
	}
	if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", st.NegotiatedProtocol)
	}
	t.Run("ALPN offers http/1.1 only", func(t *testing.T) {
		_, st, err := f.get(t, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		if err != nil || st.NegotiatedProtocol != "http/1.1" {
			t.Errorf("negotiated %q, %v", st.NegotiatedProtocol, err)
		}
		if _, _, err := f.get(t, &tls.Config{NextProtos: []string{"h2"}}); err == nil {
			t.Error("a client offering only h2 was served")
		}
	})
	t.Run("session resumption", func(t *testing.T) {
		tc := &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(4), MaxVersion: tls.VersionTLS12}
		if _, _, err := f.get(t, tc); err != nil {
			t.Fatal(err)
		}
		if _, st, err := f.get(t, tc); err != nil || !st.DidResume {
			t.Errorf("second connection resumed: %v, %v", st.DidResume, err)
		}
	})
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
		b, _ := io.ReadAll(c)
		if strings.Contains(string(b), "HTTP/") {
			t.Errorf("a plain HTTP client got %q", b)
		}
	})
}

func TestTLSMinVersion(t *testing.T) {
	f := startTLSProxy(t, ", min_version: 1.3")
	if _, _, err := f.get(t, &tls.Config{MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was served under min_version 1.3")
	}
	if resp, _, err := f.get(t, &tls.Config{}); err != nil || resp.StatusCode != 200 {
		t.Errorf("a TLS 1.3 client: %v", err)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	f := startTLSProxy(t, ", client_ca_file: \"CA\"")
	if _, _, err := f.get(t, &tls.Config{}); err == nil {
		t.Error("a client without a certificate was served")
	}
	cert, key, err := f.pki.Issue("client", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _, err := f.get(t, &tls.Config{Certificates: []tls.Certificate{pair}}); err != nil || resp.StatusCode != 200 {
		t.Errorf("a client with a certificate: %v", err)
	}
}

// TestTLSConnectionCap: a connection over limits.max_connections gets the
// 503 over TLS, where its client can read it.
func TestTLSConnectionCap(t *testing.T) {
	f := startTLSProxy(t, "", "limits: {max_connections: 1}")
	held, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.Handshake(); err != nil {
		t.Fatal(err)
	}
	resp, _, err := f.get(t, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("X-Tailguard-Error") != "connection_limit" {
		t.Errorf("over the cap: %d %q", resp.StatusCode, resp.Header.Get("X-Tailguard-Error"))
	}
}

// TestTLSCertificateRotation: a reload serves the new pair from the next
// handshake on while a connection made before keeps working; a bad pair is
// refused and the old one keeps serving.
func TestTLSCertificateRotation(t *testing.T) {
	f := startTLSProxy(t, "")
	tc := &tls.Config{RootCAs: f.roots, ServerName: "localhost"}
	kept, err := tls.Dial("tcp", f.addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	first := kept.ConnectionState().PeerCertificates[0].SerialNumber

	next, nextKey, err := f.pki.IssueServer("next")
	if err != nil {
		t.Fatal(err)
	}
	swap(t, next, f.cert)
	swap(t, nextKey, f.key)
	if err := f.srv.ReloadCertificate(); err != nil {
		t.Fatal(err)
	}
	_, st, err := f.get(t, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rotated := st.PeerCertificates[0].SerialNumber
	if rotated.Cmp(first) == 0 {
		t.Error("a handshake after the reload still got the old certificate")
	}
	_ = kept.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(kept, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(kept), nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("the connection made before the reload: %v", err)
	}

	_, otherKey, err := f.pki.IssueServer("other")
	if err != nil {
		t.Fatal(err)
	}
	swap(t, otherKey, f.key) // the key no longer matches the certificate
	if err := f.srv.ReloadCertificate(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("a mismatched pair: %v", err)
	}
	if _, st, err := f.get(t, &tls.Config{}); err != nil || st.PeerCertificates[0].SerialNumber.Cmp(rotated) != 0 {
		t.Errorf("after a refused reload: %v", err)
	}
}

// swap replaces dst with src's bytes by a rename, as a Secret update does.
func swap(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}
