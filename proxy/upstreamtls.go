package proxy

import (
	"crypto/tls"
	"time"

	"tailguard/config"
)

// upstreamTLS is the client TLS configuration of an upstream with s set:
// its CAs (the system's roots when none are named), its client
// certificate, and ALPN http/1.1. nil without s. The files were read when
// the config was validated; reading them again fails only if they changed
// since.
func upstreamTLS(s optional[config.UpstreamTLS]) (*tls.Config, error) {
	if !s.set {
		return nil, nil
	}
	t := s.v
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := config.LoadCAs(t.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		pair, err := config.LoadKeyPair(t.CertFile, t.KeyFile, time.Now())
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{*pair}
	}
	return tc, nil
}
