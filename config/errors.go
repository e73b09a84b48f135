package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/token"
)

// Error is one problem with a configuration, placed where it is in the file
// so that a person can go straight to it. Its text is
// "FILE:LINE:COL: path: message", the form compilers print and editors
// link to. Load, Parse, Validate and Apply return every problem they find,
// each an *Error, joined with errors.Join in file order.
type Error struct {
	// File is the name given to Load or Parse; empty for a Config built in
	// code.
	File string
	// Line and Col are 1-based. Line is 0 when the problem has no place in
	// the file: a missing top-level key, a value set by an override, or a
	// Config built in code.
	Line, Col int
	// Path names the key: YAML key names joined by dots, list items as
	// [i], map keys as names, e.g. "upstreams.app.connect_timeout" or
	// "routes[1].timeout"; a key that is not a plain name is quoted, so
	// the path stays one printable line. It is empty for the document as
	// a whole.
	Path string
	// Msg says what is wrong. It never repeats a secret.
	Msg string
}

// Error returns "FILE:LINE:COL: path: message", leaving out the parts that
// are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d:%d", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors sorts errs into file order (errors without a place first, in
// the order found) and joins them; nil if there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// report collects the problems Validate finds, placing each by its path.
type report struct {
	src  *source
	errs []*Error
}

// add records a problem with the key at path. A problem with a value set
// by an override is not the file's: it carries no file name or place.
func (r *report) add(path, format string, args ...any) {
	p, overridden := r.src.at(path)
	e := &Error{File: r.src.file(), Line: p.line, Col: p.col, Path: path, Msg: fmt.Sprintf(format, args...)}
	if overridden {
		e.File, e.Msg = "", e.Msg+" (set by flag or environment)"
	}
	r.errs = append(r.errs, e)
}

// oneLine folds runs of white space in msg to one space and escapes any
// other control character, so that an error stays one printable line
// whatever bytes the file held.
func oneLine(msg string) string {
	var b strings.Builder
	for _, r := range strings.Join(strings.Fields(msg), " ") {
		if unicode.IsControl(r) {
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// yamlError converts an error from goccy/go-yaml's parser or decoder into
// an *Error: one line, no colours, no source excerpt, placed by its token
// and named by the path found at that place.
func yamlError(src *source, err error) *Error {
	var (
		tok *token.Token
		msg string
		ve  *valueError
		se  *yaml.SyntaxError
		ye  yaml.Error
	)
	switch {
	case errors.As(err, &ve):
		tok, msg = ve.tok, ve.msg
	case errors.As(err, &se):
		tok, msg = se.Token, "invalid YAML: "+se.Message
	case errors.As(err, &ye):
		tok, msg = ye.GetToken(), ye.GetMessage()
	default:
		msg = err.Error()
	}
	e := &Error{File: src.file(), Msg: oneLine(msg)}
	if tok != nil && tok.Position != nil {
		p := pos{tok.Position.Line, tok.Position.Column}
		e.Line, e.Col, e.Path = p.line, p.col, src.pathAt(p)
	}
	return e
}
