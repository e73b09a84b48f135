package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: GOMEMLIMIT follows the cgroup memory limit (90% of
// it) unless set in the environment or unlimited.
func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	limited, unlimited, v1Unlimited := file("limited", "1073741824\n"), file("max", "max\n"), file("v1", "9223372036854771712\n")
	tests := []struct {
		name  string
		env   string
		files []string
		want  int64
	}{
		{"cgroup v2 limit", "", []string{limited}, 1073741824 / 10 * 9},
		{"no limit", "", []string{unlimited}, 0},
		{"v1 unlimited", "", []string{filepath.Join(dir, "absent"), v1Unlimited}, 0},
		{"no cgroup files", "", []string{filepath.Join(dir, "absent")}, 0},
	}
	for _, tt := range tests {
		debug.SetMemoryLimit(math.MaxInt64)
		if got := setMemoryLimit(tt.env, tt.files); got != tt.want {
			t.Errorf("%s: limit %d, want %d", tt.name, got, tt.want)
		}
		if tt.want > 0 && debug.SetMemoryLimit(-1) != tt.want {
			t.Errorf("%s: the runtime's limit is %d", tt.name, debug.SetMemoryLimit(-1))
		}
	}
	debug.SetMemoryLimit(512 << 20)
	if got := setMemoryLimit("512MiB", []string{limited}); got != 512<<20 {
		t.Errorf("GOMEMLIMIT from the environment: %d, want it kept", got)
	}
}
