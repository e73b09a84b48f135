package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// maxNodes bounds the nodes the checker visits, aliases expanded, so that a
// "billion laughs" file costs milliseconds, not memory.
const maxNodes = 100_000

var nodeUnmarshalerType = reflect.TypeFor[yaml.NodeUnmarshaler]()

// checker walks the YAML tree alongside the Config type before decoding.
// It records where every key is (into source) and reports, all at once and
// in file order, what the decoder would reject one error at a time or, worse,
// accept silently: unknown and duplicate keys, wrong kinds, integers written
// in octal or hex, fractions where an integer belongs (the decoder truncates
// 1.5 to 1), non-finite numbers, bad durations and sizes, and unknown
// words (balance, retry.on, shed.priority_default, shed.mode).
type checker struct {
	src     *source
	errs    []*Error
	anchors map[string]ast.Node
	budget  int
}

// check checks body, the document's root node, against the Config schema.
func check(src *source, body ast.Node) []*Error {
	ch := &checker{src: src, anchors: map[string]ast.Node{}, budget: maxNodes}
	ch.walk(body, reflect.TypeFor[Config](), "", nil)
	return ch.errs
}

// walk checks n against type t. via is the place of the alias n was
// reached through, if any: everything under an alias is reported there.
func (ch *checker) walk(n ast.Node, t reflect.Type, path string, via *pos) {
	n, via = ch.resolve(n, path, via)
	if n == nil || n.Type() == ast.NullType || !ch.spend(path, via, n) {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(nodeUnmarshalerType) {
		if err := reflect.New(t).Interface().(yaml.NodeUnmarshaler).UnmarshalYAML(n); err != nil {
			ch.failValue(path, via, n, err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := fieldsOf(t)
		ch.mapping(n, path, via, func(key string) (reflect.Type, bool) {
			ft, ok := fields[key]
			return ft, ok
		})
	case reflect.Map:
		ch.mapping(n, path, via, func(string) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice:
		ch.sequence(n, t.Elem(), path, via)
	default:
		if msg := scalarMismatch(n, t.Kind()); msg != "" {
			ch.fail(ch.place(path, via, n), path, msg)
		}
	}
}

// resolve looks through anchors and aliases to the node that holds the
// value, remembering anchors on the way. Tags are refused: they change
// how the decoder reads a value (!!binary decodes base64) in ways the
// checks here would not see.
func (ch *checker) resolve(n ast.Node, path string, via *pos) (ast.Node, *pos) {
	for range 100 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			ch.anchors[tokenText(v.Name)] = v.Value
			n = v.Value
		case *ast.TagNode:
			ch.fail(ch.place(path, via, n), path, fmt.Sprintf("YAML tags like %q are not supported; quote the value instead", tokenText(v)))
			return nil, via
		case *ast.AliasNode:
			target, ok := ch.anchors[tokenText(v.Value)]
			if !ok {
				ch.fail(posOf(v), path, "alias to an unknown anchor")
				return nil, via
			}
			if via == nil {
				p := posOf(v)
				via = &p
			}
			n = target
		default:
			return n, via
		}
	}
	ch.fail(ch.place(path, via, n), path, "aliases nested too deeply")
	return nil, via
}

// spend counts one visited node and reports false once the budget is gone.
func (ch *checker) spend(path string, via *pos, n ast.Node) bool {
	ch.budget--
	if ch.budget == 0 {
		ch.fail(ch.place(path, via, n), path, fmt.Sprintf("document too large: more than %d values with aliases expanded", maxNodes))
	}
	return ch.budget > 0
}

// keyFunc returns the type of the value under key, or false if the key is
// not in the schema.
type keyFunc func(key string) (reflect.Type, bool)

// mapping checks a mapping's keys and walks its values.
func (ch *checker) mapping(n ast.Node, path string, via *pos, field keyFunc) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		ch.fail(ch.place(path, via, n), path, "must be a mapping of keys to values, got "+describe(n))
		return
	}
	seen := map[string]pos{}
	for _, mv := range m.Values {
		kp := or(via, posOf(mv.Key))
		key, msg := keyString(mv.Key)
		child := joinPath(path, key)
		if msg != "" {
			ch.fail(kp, path, msg)
			continue
		}
		if first, dup := seen[key]; dup {
			ch.fail(kp, child, fmt.Sprintf("duplicate key %q (first at line %d)", key, first.line))
			continue
		}
		seen[key] = kp
		t, known := field(key)
		if !known {
			ch.fail(kp, child, fmt.Sprintf("unknown key %q", key))
			continue
		}
		ch.record(child, kp, mv.Value, via)
		ch.walk(mv.Value, t, child, via)
	}
}

// sequence checks a list and walks its items.
func (ch *checker) sequence(n ast.Node, elem reflect.Type, path string, via *pos) {
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		ch.fail(ch.place(path, via, n), path, "must be a list, got "+describe(n))
		return
	}
	for i, item := range s.Values {
		if item == nil {
			continue
		}
		child := fmt.Sprintf("%s[%d]", path, i)
		ch.record(child, or(via, posOf(item)), item, via)
		ch.walk(item, elem, child, via)
	}
}

// record places path: at its value when that is a scalar, else at key.
func (ch *checker) record(path string, key pos, value ast.Node, via *pos) {
	v := unwrap(value)
	if v == nil {
		ch.src.record(path, key, false)
		return
	}
	p := key
	switch v.Type() {
	case ast.MappingType, ast.SequenceType:
	default:
		p = or(via, posOf(v))
	}
	ch.src.record(path, p, v.Type() != ast.NullType, key, or(via, posOf(value)))
}

// place returns where to report a problem with the value n at path.
func (ch *checker) place(path string, via *pos, n ast.Node) pos {
	if l, ok := ch.src.locs[path]; ok {
		return l.pos
	}
	return or(via, posOf(n))
}

// fail records a problem. Messages may quote the file's text, so they are
// made one printable line.
func (ch *checker) fail(p pos, path, msg string) {
	ch.errs = append(ch.errs, &Error{File: ch.src.file(), Line: p.line, Col: p.col, Path: path, Msg: oneLine(msg)})
}

// failValue records the problems an UnmarshalYAML method found in n, the
// value at path: each error joined in err, one placed at an item of n (a
// list entry) at that item.
func (ch *checker) failValue(path string, via *pos, n ast.Node, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		p, at := ch.place(path, via, n), path
		if ve := (*valueError)(nil); errors.As(e, &ve) && ve.sub != "" {
			at += ve.sub
			if via == nil && ve.tok != nil && ve.tok.Position != nil {
				p = pos{ve.tok.Position.Line, ve.tok.Position.Column}
			}
		}
		ch.fail(p, at, e.Error())
	}
}

// fieldsOf maps the yaml key names of struct type t to their field types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); f.IsExported() && name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// keyString returns a mapping key's name, or a message if it has none.
func keyString(k ast.MapKeyNode) (string, string) {
	switch v := unwrap(k).(type) {
	case *ast.StringNode:
		return v.Value, ""
	case *ast.IntegerNode:
		if plainDecimal(v.Token.Value) {
			return v.Token.Value, ""
		}
	case *ast.MergeKeyNode:
		return "", "merge keys (<<) are not supported; repeat the keys or use an alias for the whole value"
	}
	return "", "keys must be plain strings"
}

// plainInt matches integers the way Go and people read them; YAML would
// read 010 as 8 and 0x10 as 16.
var plainInt = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)

// plainDecimal reports whether the integer s reads the same to YAML and
// to a person, so that it may stand for the string s.
func plainDecimal(s string) bool {
	v, err := strconv.ParseInt(s, 10, 64)
	return err == nil && strconv.FormatInt(v, 10) == s
}

// unwrap returns the node an anchor decorates.
func unwrap(n ast.Node) ast.Node {
	for {
		a, ok := n.(*ast.AnchorNode)
		if !ok {
			return n
		}
		n = a.Value
	}
}

// scalarMismatch says why n cannot be a value of kind k, or "".
func scalarMismatch(n ast.Node, k reflect.Kind) string {
	switch k {
	case reflect.String:
		return stringMismatch(n)
	case reflect.Int:
		return intMismatch(n)
	case reflect.Float64:
		return floatMismatch(n)
	case reflect.Bool:
		if n.Type() != ast.BoolType {
			return "must be true or false, got " + describe(n)
		}
	}
	return ""
}

func stringMismatch(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return ""
	case *ast.IntegerNode:
		if plainDecimal(v.Token.Value) {
			return ""
		}
		return "must be a string; quote the number to keep it as written"
	}
	return "must be a string, got " + describe(n)
}

func intMismatch(n ast.Node) string {
	v, ok := n.(*ast.IntegerNode)
	if !ok {
		return "must be an integer, got " + describe(n)
	}
	if !plainInt.MatchString(v.Token.Value) {
		return fmt.Sprintf("must be a plain decimal integer, got %s", v.Token.Value)
	}
	if _, err := strconv.Atoi(v.Token.Value); err != nil {
		return fmt.Sprintf("integer %s is out of range", v.Token.Value)
	}
	return ""
}

func floatMismatch(n ast.Node) string {
	switch n.(type) {
	case *ast.IntegerNode:
		if intMismatch(n) == "" {
			return ""
		}
	case *ast.FloatNode:
		f, err := strconv.ParseFloat(n.GetToken().Value, 64)
		if err == nil && !math.IsInf(f, 0) {
			return ""
		}
	case *ast.InfinityNode, *ast.NanNode:
	default:
		return "must be a number, got " + describe(n)
	}
	return fmt.Sprintf("must be a plain finite number, got %s", tokenText(n))
}

// describe names a node's kind for messages.
func describe(n ast.Node) string {
	switch n.Type() {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	}
	return n.Type().YAMLName()
}

// posOf returns where n starts: for a block mapping, at its first key.
func posOf(n ast.Node) pos {
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return posOf(m.Values[0].Key)
	}
	if n == nil || n.Type() == ast.DocumentType {
		return pos{}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return pos{}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// tokenText returns the text of n's token, or "" if it has none.
func tokenText(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

func or(via *pos, p pos) pos {
	if via != nil {
		return *via
	}
	return p
}

// joinPath appends a mapping key to path. A key that is not a plain name
// is quoted (upstreams."a b"), so that a path is always one printable line.
func joinPath(path, key string) string {
	if !namePattern.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
