package config

import (
	"encoding/json"
	"strings"
	"testing"

	"tailguard/internal/golden"
)

func TestRedactedJSON(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r.AdminToken != "REDACTED" || c.AdminToken != "s3cret-token" {
		t.Errorf("token: redacted %q, original %q", r.AdminToken, c.AdminToken)
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || strings.Contains(string(out), "src") {
		t.Errorf("JSON leaks the token or source:\n%s", out)
	}
	golden.Check(t, "testdata/full.json", string(out)+"\n")
}

func TestRedactedLeavesEmptyTokenEmpty(t *testing.T) {
	if got := Default().Redacted().AdminToken; got != "" {
		t.Errorf("AdminToken = %q, want empty", got)
	}
}

// TestRedactedIsDeep checks that changing the copy leaves the original
// alone, so the admin endpoint can never alter the running config.
func TestRedactedIsDeep(t *testing.T) {
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := c.clone()
	r := c.Redacted()
	r.Upstreams["app"].Endpoints[0] = "changed:1"
	r.Upstreams["auth"] = nil
	r.Routes[0].Match.Methods[0] = "PUT"
	*r.Routes[0].Timeout = 1
	*r.Routes[0].MaxBodyBytes = 1
	sameConfig(t, c, want)
}
