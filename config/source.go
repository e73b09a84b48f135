package config

import (
	"maps"
	"strings"
)

// source remembers where each key of a parsed file is, so that problems
// found after decoding (by defaults, Validate or Apply) can still name a
// line and column, and so that defaults can tell an absent key from an
// explicit zero. It is built once by Parse and not changed afterwards,
// except that Apply replaces it with a copy marking overridden keys.
// A nil *source is valid: a Config built in code has no places.
type source struct {
	name string
	// locs maps a path ("routes[0].timeout") to its place: the value for
	// a scalar, the key for a mapping or list.
	locs map[string]loc
	// paths maps a place back to the deepest path found there, to name
	// the key of an error the YAML decoder reports by position only.
	paths map[pos]string
	// overridden holds paths whose values no longer come from the file.
	overridden map[string]bool
}

type pos struct{ line, col int }

type loc struct {
	pos
	// set is false when the key is present with a null value, which
	// counts as absent.
	set bool
}

func newSource(name string) *source {
	return &source{name: name, locs: map[string]loc{}, paths: map[pos]string{}}
}

// File returns the name of the file c was parsed from, or "" for a Config
// built in code; handy for logs.
func (c *Config) File() string { return c.src.file() }

func (s *source) file() string {
	if s == nil {
		return ""
	}
	return s.name
}

// record notes that path is at p and was also seen at the places in also
// (its key, its value's first token), so that a decoder error at any of
// them can be named. Where paths share a place, the deepest wins.
func (s *source) record(path string, p pos, set bool, also ...pos) {
	s.locs[path] = loc{pos: p, set: set}
	for _, at := range append(also, p) {
		if old, ok := s.paths[at]; !ok || len(path) > len(old) {
			s.paths[at] = path
		}
	}
}

// has reports whether path is in the file with a non-null value.
func (s *source) has(path string) bool {
	return s != nil && s.locs[path].set
}

// at returns the place of path or, if the key is absent, of its nearest
// ancestor in the file; the zero pos if there is none. overridden is true
// if the value at path no longer comes from the file.
func (s *source) at(path string) (p pos, overridden bool) {
	if s == nil {
		return pos{}, false
	}
	for k := path; k != ""; k = parent(k) {
		if s.overridden[k] {
			return pos{}, true
		}
		if l, ok := s.locs[k]; ok {
			return l.pos, false
		}
	}
	return pos{}, false
}

// pathAt returns the path found at place p, or "".
func (s *source) pathAt(p pos) string {
	if s == nil {
		return ""
	}
	return s.paths[p]
}

// parent strips the last ".key" or "[i]" from path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// override returns a copy of s in which paths are marked as set by an
// override, so that errors about them carry no file position. A nil s
// gives a source with no file that knows only the overrides.
func (s *source) override(paths []string) *source {
	if len(paths) == 0 {
		return s
	}
	var cp source
	if s != nil {
		cp = *s
	}
	cp.overridden = maps.Clone(cp.overridden)
	if cp.overridden == nil {
		cp.overridden = make(map[string]bool, len(paths))
	}
	for _, p := range paths {
		cp.overridden[p] = true
	}
	return &cp
}
