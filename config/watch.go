package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed whenever the config file at path may have changed,
// until ctx ends. It watches the file's directory, not the file: editors
// replace files rather than write them, and a Kubernetes ConfigMap update
// swaps a symlink in the directory (..data), which a watch on the old
// file would never see. Events for the file itself or for ConfigMap
// entries (names starting with "..") closer together than debounce make
// one call; events for other files in the directory make none. Watch
// builds nothing: changed decides what to do (load, validate, apply), so
// a call for unchanged bytes costs one harmless reload.
func Watch(ctx context.Context, path string, debounce time.Duration, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(path)); err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	base := filepath.Base(path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			return fmt.Errorf("watch %s: %w", path, err)
		case ev := <-w.Events:
			if name := filepath.Base(ev.Name); name == base || strings.HasPrefix(name, "..") {
				timer.Reset(debounce)
			}
		case <-timer.C:
			changed()
		}
	}
}
