package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// TLS terminates TLS on the proxy listener. The certificate and key are
// re-read when their files change (cert-manager and Kubernetes Secrets
// rotate them), without a restart and without dropping a connection; a
// bad pair is refused and the old one keeps serving.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first. Required.
	CertFile string `yaml:"cert_file" json:"cert_file"`
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string `yaml:"key_file" json:"key_file"`
	// ClientCAFile, if set, makes clients present a certificate signed by
	// one of its PEM CAs (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file" json:"client_ca_file,omitempty"`
	// MinVersion is the oldest TLS version accepted: 1.2 or 1.3. Default
	// 1.2.
	MinVersion TLSVersion `yaml:"min_version" json:"min_version"`
}

// UpstreamTLS makes tailguard speak TLS to every endpoint of an upstream.
type UpstreamTLS struct {
	// ServerName is the name the endpoints' certificates are verified
	// against, and sent as SNI. Default: each endpoint's host.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// CAFile holds the PEM CAs that sign the endpoints' certificates;
	// empty: the system's roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile, if set (both or neither), are the client
	// certificate tailguard presents (mutual TLS).
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file" json:"key_file,omitempty"`
	// InsecureSkipVerify accepts any certificate: encryption without
	// authentication, for tests only (validate warns about it).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// TLSVersion is a TLS protocol version, written "1.2" or "1.3".
type TLSVersion uint16

var tlsVersions = map[string]TLSVersion{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// String returns v as written, e.g. "1.2".
func (v TLSVersion) String() string {
	for s, tv := range tlsVersions {
		if tv == v {
			return s
		}
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// MarshalJSON writes v as written, e.g. "1.2".
func (v TLSVersion) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// MarshalYAML writes v as written, e.g. "1.2".
func (v TLSVersion) MarshalYAML() (any, error) { return v.String(), nil }

// UnmarshalYAML reads "1.2" or "1.3", quoted or not.
func (v *TLSVersion) UnmarshalYAML(n ast.Node) error {
	s, _, ok := scalarText(n)
	if f, isFloat := n.(*ast.FloatNode); isFloat {
		s, ok = f.Token.Value, true
	}
	tv, known := tlsVersions[s]
	if !ok || !known {
		return valueErr(n, "must be 1.2 or 1.3")
	}
	*v = tv
	return nil
}

// validateTLS checks the listener's TLS settings: the pair loads, matches
// and has not expired, and the client CAs parse.
func validateTLS(r *report, t *TLS) {
	if t == nil {
		return
	}
	r.check(t.CertFile != "", "tls.cert_file", "is required")
	r.check(t.KeyFile != "", "tls.key_file", "is required")
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := LoadKeyPair(t.CertFile, t.KeyFile, time.Now()); err != nil {
			r.add("tls.cert_file", "%v", err)
		}
	}
	if t.ClientCAFile != "" {
		if _, err := LoadCAs(t.ClientCAFile); err != nil {
			r.add("tls.client_ca_file", "%v", err)
		}
	}
}

// validateUpstreamTLS checks an upstream's TLS settings at p.
func validateUpstreamTLS(r *report, p string, t *UpstreamTLS) {
	if t == nil {
		return
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		r.add(p+".cert_file", "cert_file and key_file go together")
	} else if t.CertFile != "" {
		if _, err := LoadKeyPair(t.CertFile, t.KeyFile, time.Now()); err != nil {
			r.add(p+".cert_file", "%v", err)
		}
	}
	if t.CAFile != "" {
		if _, err := LoadCAs(t.CAFile); err != nil {
			r.add(p+".ca_file", "%v", err)
		}
	}
	r.check(!(t.InsecureSkipVerify && t.CAFile != ""), p+".insecure_skip_verify", "contradicts ca_file: nothing would be verified against it")
}

// LoadKeyPair reads a PEM certificate chain and its key, and refuses a
// pair whose key does not match or whose leaf is not valid at now. Errors
// name the file at fault. It is how validate and a certificate reload
// both read a pair, so that what one accepts the other does.
func LoadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	if _, err := os.Stat(certFile); err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if _, err := os.Stat(keyFile); err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s with %s: %w", certFile, keyFile, err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		c.Leaf = leaf
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("%s: certificate expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("%s: certificate not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// LoadCAs reads a file of PEM CA certificates into a pool.
func LoadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Warnings lists settings that are valid but unsafe, or that cannot do
// what they say, for validate to print and run to log.
func (c *Config) Warnings() []string {
	var w []string
	for _, n := range sortedNames(c.Upstreams) {
		u := c.Upstreams[n]
		if u != nil && u.TLS != nil && u.TLS.InsecureSkipVerify {
			w = append(w, fmt.Sprintf("%s.tls.insecure_skip_verify: the upstream's certificate is not verified; anyone on the path can impersonate it", joinPath("upstreams", n)))
		}
		if u != nil && u.Outlier != nil && u.Outlier.LatencyFactor != 0 && len(u.Endpoints) < 2 {
			w = append(w, fmt.Sprintf("%s.outlier.latency_factor: one endpoint has no peers to be compared with; latency never ejects it", joinPath("upstreams", n)))
		}
	}
	return w
}
