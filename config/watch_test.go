package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatch: a write of the file and a Kubernetes-style symlink swap each
// cause exactly one call; a file next to it causes none.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	// The ConfigMap layout: tailguard.yaml -> ..data/tailguard.yaml,
	// ..data -> ..v1.
	for _, v := range []string{"..v1", "..v2", "..v3"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		watchWrite(t, filepath.Join(dir, v, "tailguard.yaml"), "version: "+v)
	}
	watchMust(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "tailguard.yaml")
	watchMust(t, os.Symlink(filepath.Join("..data", "tailguard.yaml"), path))

	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w, err := NewWatch(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- w.Run(ctx, 20*time.Millisecond, func() { calls.Add(1) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	steps := []struct {
		name string
		do   func()
		want int32
	}{
		{"unrelated file", func() { watchWrite(t, filepath.Join(dir, "other.txt"), "x") }, 0},
		{"configmap swap", func() {
			watchMust(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
			watchMust(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		}, 1},
		{"second swap", func() {
			watchMust(t, os.Symlink("..v3", filepath.Join(dir, "..data_tmp")))
			watchMust(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		}, 2},
		{"file replaced by a plain one", func() {
			watchMust(t, os.Remove(path))
			watchWrite(t, path, "version: plain")
		}, 3},
		{"plain write", func() { watchWrite(t, path, "version: plain 2") }, 4},
	}
	for _, s := range steps {
		s.do()
		deadline := time.Now().Add(2 * time.Second)
		for calls.Load() < s.want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // room for an unwanted extra call
		if got := calls.Load(); got != s.want {
			t.Fatalf("after %s: %d calls, want %d", s.name, got, s.want)
		}
	}
}

func watchWrite(t *testing.T, path, s string) {
	t.Helper()
	watchMust(t, os.WriteFile(path, []byte(s), 0o644))
}

func watchMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
