package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tailguard/bench"
	"tailguard/config"
)

// TestTLSValidation: a bad pair is a validate error naming the file at
// fault, placed at tls.cert_file; min_version reads 1.2 and 1.3 only.
func TestTLSValidation(t *testing.T) {
	dir := t.TempDir()
	pki, err := bench.NewPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.IssueServer("server")
	if err != nil {
		t.Fatal(err)
	}
	other, otherKey, err := pki.IssueServer("other")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, expiredKey, err := pki.Issue("expired", now.Add(-48*time.Hour), now.Add(-24*time.Hour), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, tls string
		want      string // "" for valid
	}{
		{"good pair", `{cert_file: "` + cert + `", key_file: "` + key + `"}`, ""},
		{"min_version 1.3", `{cert_file: "` + cert + `", key_file: "` + key + `", min_version: 1.3}`, ""},
		{"min_version quoted", `{cert_file: "` + cert + `", key_file: "` + key + `", min_version: "1.2"}`, ""},
		{"min_version 1.1", `{cert_file: "` + cert + `", key_file: "` + key + `", min_version: 1.1}`, "tls.min_version: must be 1.2 or 1.3"},
		{"missing cert", `{cert_file: "` + missing + `", key_file: "` + key + `"}`, "tls.cert_file: " + missing},
		{"missing key", `{cert_file: "` + cert + `", key_file: "` + missing + `"}`, "tls.cert_file: " + missing},
		{"key of another cert", `{cert_file: "` + cert + `", key_file: "` + otherKey + `"}`, "private key does not match public key"},
		{"expired", `{cert_file: "` + expired + `", key_file: "` + expiredKey + `"}`, expired + ": certificate expired"},
		{"not PEM", `{cert_file: "` + garbage + `", key_file: "` + key + `"}`, garbage},
		{"client CA", `{cert_file: "` + other + `", key_file: "` + otherKey + `", client_ca_file: "` + pki.CAFile + `"}`, ""},
		{"client CA not PEM", `{cert_file: "` + cert + `", key_file: "` + key + `", client_ca_file: "` + garbage + `"}`, "tls.client_ca_file: " + garbage + ": no PEM certificate"},
		{"no key", `{cert_file: "` + cert + `"}`, "tls.key_file: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("t.yaml", []byte("tls: "+tt.tls+"\nupstreams: {app: {endpoints: ['127.0.0.1:1']}}\nroutes: [{name: a, upstream: app}]\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want %s", err, tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), "t.yaml:1:"):
				t.Errorf("err = %v: not placed in the file", err)
			}
		})
	}
}

// TestUpstreamTLSValidation: cert and key go together, CAs must parse,
// and insecure_skip_verify is valid but warned about.
func TestUpstreamTLSValidation(t *testing.T) {
	dir := t.TempDir()
	pki, err := bench.NewPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.Issue("client", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, tls, want, warning string }{
		{"system roots", "{}", "", ""},
		{"own CA and client cert", `{ca_file: "` + pki.CAFile + `", cert_file: "` + cert + `", key_file: "` + key + `", server_name: api.internal}`, "", ""},
		{"cert without key", `{cert_file: "` + cert + `"}`, "upstreams.app.tls.cert_file: cert_file and key_file go together", ""},
		{"bad CA", `{ca_file: "` + key + `"}`, "upstreams.app.tls.ca_file", ""},
		{"insecure", "{insecure_skip_verify: true}", "", "upstreams.app.tls.insecure_skip_verify: the upstream's certificate is not verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte("upstreams: {app: {endpoints: ['127.0.0.1:1'], tls: "+tt.tls+"}}\nroutes: [{name: a, upstream: app}]\n"))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %s", err, tt.want)
				}
				return
			}
			if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, tt.warning) || tt.warning == "" && w != "" {
				t.Errorf("warnings %q, want %q", w, tt.warning)
			}
		})
	}
}
