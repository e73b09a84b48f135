package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxFileSize bounds a config file. Real ones are a few KiB; the bound
// keeps a wrong path (a log file, a binary) from being read whole.
const maxFileSize = 1 << 20

// Load reads the YAML file at path and returns its Config with defaults
// applied and validated, or every problem found, each an *Error placed in
// the file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: cannot read config: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses data, the YAML text of the file called name, strictly: an
// unknown or duplicate key, a value of the wrong kind or a lossy number is
// an error, never ignored or guessed. It then applies defaults and
// validates. An empty document means all defaults, which Validate rejects
// for lack of upstreams and routes. On failure the error joins one *Error
// per problem, in file order, each reading "NAME:LINE:COL: path: message".
func Parse(name string, data []byte) (*Config, error) {
	src := newSource(name)
	body, err := parseDocument(src, data)
	if err != nil {
		return nil, err
	}
	if errs := check(src, body); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	c := &Config{}
	if body != nil && body.Type() != ast.NullType {
		if err := yaml.NodeToValue(body, c, yaml.DisallowUnknownField()); err != nil {
			return nil, joinErrors([]*Error{yamlError(src, err)})
		}
	}
	c.src = src
	applyDefaults(c)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument parses data into a tree and returns the one document's
// root, or nil if the file holds no document. Duplicate keys are let
// through here so that check can report all of them with their paths.
func parseDocument(src *source, data []byte) (ast.Node, error) {
	if len(data) > maxFileSize {
		return nil, joinErrors([]*Error{{File: src.name, Msg: fmt.Sprintf("file is larger than %v", ByteSize(maxFileSize))}})
	}
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, joinErrors([]*Error{yamlError(src, err)})
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			p := posOf(doc.Body)
			return nil, joinErrors([]*Error{{File: src.name, Line: p.line, Col: p.col,
				Msg: "a config file holds one YAML document; remove the second"}})
		}
		body = doc.Body
	}
	return body, nil
}
