package spool

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"tailguard/resilience"
)

// filePrefix names the temporary files of buffered bodies, for Sweep.
const filePrefix = "tailguard-buffer-"

// Store is where bodies get their room: the process-wide budget and the
// directory of the temporary files. It counts what buffering did. Safe for
// concurrent use.
type Store struct {
	room *resilience.BufferRoom
	dir  string
	// spills counts bodies that outgrew memory and went on to disk;
	// fallbacks counts bodies streamed, from the start or after a part,
	// because memory and disk were both full.
	spills, fallbacks atomic.Uint64
}

// NewStore returns a Store taking room from room and keeping temporary
// files in dir ("": the OS temp dir).
func NewStore(room *resilience.BufferRoom, dir string) *Store {
	if dir == "" {
		dir = os.TempDir()
	}
	return &Store{room: room, dir: dir}
}

// Figures is what buffering holds and has done, for /stats and /metrics.
type Figures struct {
	// MemoryBytes and DiskBytes are the room bodies hold now.
	MemoryBytes, DiskBytes int64
	// Spills and Fallbacks count since start (see Store).
	Spills, Fallbacks uint64
}

// Figures returns the store's figures now.
func (s *Store) Figures() Figures {
	mem, disk := s.room.InUse()
	return Figures{MemoryBytes: mem, DiskBytes: disk, Spills: s.spills.Load(), Fallbacks: s.fallbacks.Load()}
}

// Sweep removes the temporary files in dir ("": the OS temp dir) that a
// tailguard process killed at the wrong instant may have left behind. It is
// safe while other processes buffer in dir: their files are unlinked the
// moment they are made, so what Sweep can see is never in use.
func Sweep(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), filePrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// createFile makes a body's temporary file and unlinks it at once.
func (s *Store) createFile() (*os.File, error) {
	f, err := os.CreateTemp(s.dir, filePrefix+"*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// readFull reads into p until it is full or r ends or fails; io.EOF is
// returned with the bytes of the last read.
func readFull(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
