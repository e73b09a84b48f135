package edge

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	"tailguard/config"
)

// Certificate is the listener's certificate and key, swapped whole when
// their files change: a connection keeps the certificate it was
// handshaken with, and the next handshake gets the new one, so a rotation
// drops nothing. Safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// NewCertificate reads the pair (config.LoadKeyPair: it must match and be
// valid now).
func NewCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	return c, c.Reload()
}

// Reload reads the pair again and serves it from the next handshake on.
// A pair that does not load, match or is not valid now is refused with
// the reason, and the one serving keeps serving.
func (c *Certificate) Reload() error {
	pair, err := config.LoadKeyPair(c.certFile, c.keyFile, time.Now())
	if err != nil {
		return err
	}
	c.cur.Store(pair)
	return nil
}

// Current is the certificate and key serving now.
func (c *Certificate) Current() *tls.Certificate { return c.cur.Load() }

func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.cur.Load(), nil }

// TLSConfig is the listener's TLS configuration for t, serving cert: the
// minimum version, ALPN http/1.1 only (tailguard speaks HTTP/1.1; a
// client offering only h2 is refused in the handshake rather than
// misread), client certificates verified against client_ca_file when it
// is set. Session resumption is on (tickets, with keys the runtime
// rotates).
func TLSConfig(t *config.TLS, cert *Certificate) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:     uint16(t.MinVersion),
		NextProtos:     []string{"http/1.1"},
		GetCertificate: cert.get,
	}
	if t.ClientCAFile != "" {
		pool, err := config.LoadCAs(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
