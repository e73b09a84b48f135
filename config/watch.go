package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch is a watch on a config file, in place from NewWatch on, so that
// a change made after NewWatch returns is never missed. It watches the
// file's directory, not the file: editors replace files rather than write
// them, and a Kubernetes ConfigMap update swaps a symlink in the directory
// (..data), which a watch on the old file would never see. Run it once.
type Watch struct {
	w    *fsnotify.Watcher
	path string
}

// NewWatch puts a watch on the config file at path.
func NewWatch(path string) (*Watch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	return &Watch{w: w, path: path}, nil
}

// Run calls changed whenever the file may have changed, until ctx ends,
// then removes the watch. Events for the file itself or for ConfigMap
// entries (names starting with "..") closer together than debounce make
// one call; events for other files in the directory make none. Run builds
// nothing: changed decides what to do (load, validate, apply), so a call
// for unchanged bytes costs one harmless reload.
func (w *Watch) Run(ctx context.Context, debounce time.Duration, changed func()) error {
	defer w.w.Close()
	base := filepath.Base(w.path)
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.w.Errors:
			return fmt.Errorf("watch %s: %w", w.path, err)
		case ev := <-w.w.Events:
			if name := filepath.Base(ev.Name); name == base || strings.HasPrefix(name, "..") {
				timer.Reset(debounce)
			}
		case <-timer.C:
			changed()
		}
	}
}
