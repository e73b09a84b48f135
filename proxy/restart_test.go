package proxy

import (
	"strconv"
	"testing"

	"tailguard/bench"
)

// TestNeedsRestart: each listener setting a reload cannot apply is named;
// everything else reloads.
func TestNeedsRestart(t *testing.T) {
	const base = `
upstreams: {app: {endpoints: ["127.0.0.1:1"]}}
routes: [{name: api, upstream: app}]
`
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.IssueServer("server")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		add  string // keys added to base
		want string // the error, or "" for none
	}{
		{"tls", "tls: {cert_file: " + strconv.Quote(cert) + ", key_file: " + strconv.Quote(key) + "}\n", "tls: changing it needs a restart"},
		{"nothing", "", ""},
		{"a route setting", "deadline_header: X-Deadline\n", ""},
		{"listen", `listen: ":8001"` + "\n", "listen: changing it needs a restart"},
		{"admin", `admin: "127.0.0.1:9999"` + "\n", "admin: changing it needs a restart"},
		{"admin_token", "admin_token: t0ken\n", "admin_token: changing it needs a restart"},
		{"log", "log: {access: all}\n", "log: changing it needs a restart"},
		{"limits", "limits: {idle_timeout: 1m}\n", "limits: changing it needs a restart"},
		{"drain", "drain: {delay: 0s}\n", "drain: changing it needs a restart"},
		{"defaults written out", "listen: \":8000\"\nlimits: {idle_timeout: 90s}\ndrain: {delay: 5s}\n", ""},
		{"several", "log: {level: debug}\ndrain: {timeout: 1s}\n",
			"log: changing it needs a restart\ndrain: changing it needs a restart"},
	}
	cur := mustParse(t, "%s", base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := mustParse(t, "%s", base+tt.add)
			err := needsRestart(cur, next)
			if got := errString(err); got != tt.want {
				t.Errorf("needsRestart = %q, want %q", got, tt.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
