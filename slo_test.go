package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"tailguard/config"
)

// TestSLORulesCommand runs "tailguard slo rules" on every example config
// (the Kubernetes ConfigMap ships tailguard.yaml's, as config's
// TestConfigMapShipsTheExampleConfig checks) and on testdata/slo.yaml:
// the output has a rule group for each route with an SLO, and
// Prometheus's promtool accepts it.
func TestSLORulesCommand(t *testing.T) {
	files, err := filepath.Glob("config/examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/slo.yaml")
	promtool, _ := exec.LookPath("promtool")
	withSLO := 0
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, r := range cfg.Routes {
				if r.SLO != nil {
					want = append(want, "tailguard-slo-"+r.Name)
				}
			}
			if len(want) > 0 {
				withSLO++
			}
			var out bytes.Buffer
			if err := run([]string{"slo", "rules", "-config", file}, &out); err != nil {
				t.Fatal(err)
			}
			var rules struct{ Groups []struct{ Name string } }
			if err := yaml.Unmarshal(out.Bytes(), &rules); err != nil {
				t.Fatalf("output is not YAML: %v\n%s", err, out.String())
			}
			var got []string
			for _, g := range rules.Groups {
				got = append(got, g.Name)
			}
			if !slices.Equal(got, want) {
				t.Errorf("rule groups %q, want %q (one for each route with an slo)", got, want)
			}
			if promtool == "" {
				t.Skip("promtool not found (Debian: apt-get install prometheus); the rules are not checked by Prometheus")
			}
			path := filepath.Join(t.TempDir(), "slo.rules.yaml")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if res, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
				t.Errorf("promtool check rules: %v\n%s", err, res)
			}
		})
	}
	if withSLO < 3 {
		t.Errorf("%d of the configs have an slo, want at least 3 (the examples' tailguard.yaml and legacy-vm.yaml, testdata/slo.yaml)", withSLO)
	}
}

// TestSLOCommandUsage checks that "tailguard slo" wants its subcommand and
// a config.
func TestSLOCommandUsage(t *testing.T) {
	t.Setenv("TAILGUARD_CONFIG", "")
	t.Setenv("TAILGUARD_UPSTREAM", "")
	for _, args := range [][]string{{"slo"}, {"slo", "alerts"}, {"slo", "rules"}, {"slo", "rules", "extra"}} {
		err := run(args, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), "help requested") {
			t.Errorf("tailguard %s: error %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
