package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tailguard runs the built binary with args and returns its stdout; the
// test fails if it does not exit 0 within a minute.
func tailguard(t *testing.T, args ...string) string {
	t.Helper()
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tailguardBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tailguard %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr.String())
	}
	return string(out)
}

func TestBenchCLIWritesJSON(t *testing.T) {
	skipShort(t)
	up := startTestUpstream(t, UpstreamOptions{})
	var r Report
	out := tailguard(t, "bench", "-url", "http://"+up.Addr()+"/", "-rate", "500", "-count", "50", "-json", "-", "-quiet",
		"-H", "X-Priority: sheddable", "-label", "direct")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r.Requests != 50 || r.Classes["200"].Count != 50 || r.Label != "direct" || len(r.Spectrum) == 0 || r.LatencyMS.P9999 < r.LatencyMS.P50 {
		t.Errorf("report %+v", r)
	}
}

// TestBenchCLIPlotsSavedRuns: two runs saved as JSON become one SVG with
// a line each.
func TestBenchCLIPlotsSavedRuns(t *testing.T) {
	skipShort(t)
	up := startTestUpstream(t, UpstreamOptions{})
	dir := t.TempDir()
	var files []string
	for _, label := range []string{"a", "b"} {
		f := filepath.Join(dir, label+".json")
		table := tailguard(t, "bench", "-url", "http://"+up.Addr()+"/", "-rate", "500", "-count", "20", "-quiet", "-json", f, "-label", label)
		if !strings.Contains(table, "p99.99") {
			t.Errorf("table lacks p99.99:\n%s", table)
		}
		files = append(files, f)
	}
	svg := filepath.Join(dir, "plot.svg")
	tailguard(t, append([]string{"bench", "plot", "-svg", svg}, files...)...)
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Lines []struct{} `xml:"polyline"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || len(doc.Lines) != 2 {
		t.Errorf("plot: %v, %d lines; want 2", err, len(doc.Lines))
	}
}

// TestUpstreamCLI: the subcommand serves its faults and takes new ones
// on its admin port.
func TestUpstreamCLI(t *testing.T) {
	skipShort(t)
	addrs, err := freeAddrs(2)
	if err != nil {
		t.Fatal(err)
	}
	addr, admin := addrs[0], addrs[1]
	p, err := startProcess("upstream", exec.Command(tailguardBin, "upstream", "-listen", addr, "-admin", admin,
		"-error-share", "1", "-error-status", "503"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	if _, err := ready(p, admin); err != nil {
		t.Fatal(err)
	}
	if code, _, err := get(t, "http://"+addr+"/", 5*time.Second); code != 503 || err != nil {
		t.Errorf("status %d, %v; want 503", code, err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+admin+"/faults", strings.NewReader(`{"error_share": 0}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _, err := get(t, "http://"+addr+"/", 5*time.Second); code != 200 || err != nil {
		t.Errorf("after PUT: status %d, %v; want 200", code, err)
	}
}

// TestDemoCLI: the demo runs tailguard in-process through main's starter,
// prints the dashboard URL and a summary, and stops by itself.
func TestDemoCLI(t *testing.T) {
	skipShort(t)
	out := tailguard(t, "demo", "-duration", "3s")
	for _, want := range []string{"dashboard  http://127.0.0.1:", "| 150% of capacity |", "client p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestScenarioCLI: a scenario through main's in-process tailguard, its
// tables printed and saved as JSON.
func TestScenarioCLI(t *testing.T) {
	skipShort(t)
	f := filepath.Join(t.TempDir(), "breaker.json")
	out := tailguard(t, "bench", "scenario", "breaker", "-smoke", "-json", f)
	if !strings.Contains(out, "| breaker | 100 |") || !strings.Contains(out, "`tailguard bench scenario breaker -smoke -json") {
		t.Errorf("output:\n%s", out)
	}
	b, err := os.ReadFile(f)
	var o Outcome
	if err != nil || json.Unmarshal(b, &o) != nil || len(o.Tables) != 1 || len(o.Tables[0].Rows) != 2 {
		t.Errorf("JSON %s, %v", b, err)
	}
	if list := tailguard(t, "bench", "scenario", "list"); !strings.Contains(list, "fanout") {
		t.Errorf("list:\n%s", list)
	}
}

// TestBenchCLIRelay: the relay passes requests through to its upstream,
// and an unknown upstream gets a 502.
func TestBenchCLIRelay(t *testing.T) {
	skipShort(t)
	up := startTestUpstream(t, UpstreamOptions{})
	direct, want, err := get(t, "http://"+up.Addr()+"/", 5*time.Second)
	if err != nil || direct != 200 {
		t.Fatalf("upstream: %d, %v", direct, err)
	}
	dead, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		upstream, body string
		status         int
	}{
		{up.Addr(), want, 200},
		{dead, "relay: upstream failed", 502},
	} {
		listen, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		p, err := startProcess("relay", exec.Command(tailguardBin, "bench", "relay", "-listen", listen, "-upstream", tt.upstream))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ready(p, listen); err != nil {
			t.Fatal(err)
		}
		code, body, err := get(t, "http://"+listen+"/", 5*time.Second)
		p.stop()
		if code != tt.status || body != tt.body || err != nil {
			t.Errorf("relay to %s: %d %q, %v; want %d %q", tt.upstream, code, body, err, tt.status, tt.body)
		}
	}
}

// TestBenchCLITLSFlags: the generator's TLS flags reach the Load, and an
// unknown key exchange is refused.
func TestBenchCLITLSFlags(t *testing.T) {
	l, _, err := parseRunFlags([]string{"-url", "https://127.0.0.1:1/", "-tls-ca", "ca.pem", "-insecure", "-no-keepalive", "-tls-curves", "X25519,CurveP256"})
	if err != nil {
		t.Fatal(err)
	}
	if l.CAFile != "ca.pem" || !l.Insecure || !l.NoKeepAlive || len(l.Curves) != 2 || l.Curves[0] != tls.X25519 || l.Curves[1] != tls.CurveP256 {
		t.Errorf("load %+v", l)
	}
	if _, _, err := parseRunFlags([]string{"-url", "https://127.0.0.1:1/", "-tls-curves", "X448"}); err == nil {
		t.Error("an unknown curve was taken")
	}
}

// TestBenchCLIPolicies: `bench policies` prints the overhead scenario's
// policies arm as a config file that tailguard accepts, on the addresses
// given (bench/pgo.sh profiles the binary with it).
func TestBenchCLIPolicies(t *testing.T) {
	out := tailguard(t, "bench", "policies", "-upstream", "127.0.0.1:19", "-listen", "127.0.0.1:18", "-admin", "127.0.0.1:17")
	for _, want := range []string{`listen: "127.0.0.1:18"`, `admin: "127.0.0.1:17"`, `endpoints: ["127.0.0.1:19"]`, "fair_by: client_ip", "rate_limit:"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	file := filepath.Join(t.TempDir(), "policies.yaml")
	if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	tailguard(t, "validate", "-config", file)
}
