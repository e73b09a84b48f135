package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed whenever the content of the config file at path
// changes, until ctx ends. It watches the file's directory, not the file:
// editors replace files rather than write them, and a Kubernetes ConfigMap
// update swaps a symlink in the directory (..data), which a watch on the
// old file would never see. Events closer together than debounce make one
// call, and a call is made only if the file's bytes differ from the last
// seen, so unrelated files in the directory change nothing. Watch builds
// nothing: changed decides what to do (load, validate, apply).
func Watch(ctx context.Context, path string, debounce time.Duration, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	last := fileSum(path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			return fmt.Errorf("watch %s: %w", path, err)
		case <-w.Events:
			timer.Reset(debounce)
		case <-timer.C:
			if sum := fileSum(path); !bytes.Equal(sum, last) {
				last = sum
				changed()
			}
		}
	}
}

// fileSum is a digest of the file's bytes, following symlinks; nil if it
// cannot be read (mid-swap), which counts as a change once it reads again.
func fileSum(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(b)
	return s[:]
}
