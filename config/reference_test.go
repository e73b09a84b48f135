package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"tailguard/bench"
	"tailguard/config"
)

// The README's "## Configuration" section has one table, | key | default |
// meaning |, with a row per key. These tests keep it and the config
// structs from drifting apart: every key of config.Config is in the table,
// every key in the table is in the structs, in the same order, and each
// default the table states is the one applyDefaults (or, where noted, the
// code that reads the key) gives.

// A configKey is one key path of config.Config as the README writes it:
// "limits.max_body_bytes", "upstreams.NAME.breaker.interval",
// "routes[].shed.codel.target".
type configKey struct {
	path string
	// mustDocument is true for keys that take a value (leaves) and for
	// optional sections (pointers to structs, "off" unless given); the
	// table may also describe other mappings (`log`, `limits`), but need
	// not.
	mustDocument bool
}

var nodeUnmarshaler = reflect.TypeFor[yaml.NodeUnmarshaler]()

// configKeys lists every key of config.Config, depth first in field order,
// by walking the structs' yaml tags: a map of structs is written
// "NAME.", a list of structs "[].". A type that reads its own YAML
// (config.Duration, config.HedgeDelay, ...) is one value, not a mapping.
func configKeys() []configKey {
	var keys []configKey
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			p := prefix + name
			ft := f.Type
			optional := ft.Kind() == reflect.Pointer
			ft = indirect(ft)
			switch {
			case isValue(ft):
				keys = append(keys, configKey{p, true})
			case ft.Kind() == reflect.Struct:
				keys = append(keys, configKey{p, optional})
				walk(ft, p+".")
			case ft.Kind() == reflect.Map && !isValue(indirect(ft.Elem())):
				keys = append(keys, configKey{p, false})
				walk(indirect(ft.Elem()), p+".NAME.")
			case ft.Kind() == reflect.Slice && !isValue(indirect(ft.Elem())):
				keys = append(keys, configKey{p, false})
				walk(indirect(ft.Elem()), p+"[].")
			default: // a map or list of values
				keys = append(keys, configKey{p, true})
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	return keys
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isValue reports whether t is written in YAML as one scalar.
func isValue(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(nodeUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return false
	}
	return true
}

func TestConfigKeysWalk(t *testing.T) {
	keys := configKeys()
	byPath := map[string]configKey{}
	for _, k := range keys {
		byPath[k.path] = k
	}
	for _, want := range []configKey{
		{"listen", true},
		{"log", false},
		{"limits.max_body_bytes", true},
		{"upstreams", false},
		{"upstreams.NAME.endpoints", true},
		{"upstreams.NAME.breaker", true},
		{"upstreams.NAME.breaker.open_timeout", true},
		{"routes", false},
		{"routes[].timeout", true},
		{"routes[].match", false},
		{"routes[].match.methods", true},
		{"routes[].hedge.delay", true},
		{"routes[].shed.max_concurrency", true},
		{"routes[].shed.codel", false},
		{"routes[].shed.codel.target", true},
	} {
		if got, ok := byPath[want.path]; !ok || got != want {
			t.Errorf("%s: got %+v (found %v), want %+v", want.path, got, ok, want)
		}
	}
	for _, bad := range []string{"routes[].hedge.delay.Fixed", "routes[].shed.max_concurrency.N"} {
		if _, ok := byPath[bad]; ok {
			t.Errorf("%s listed: a type that reads its own YAML is one value", bad)
		}
	}
}

// A tableRow is one row of the README's configuration table.
type tableRow struct {
	line              int
	key, def, meaning string
	defLiteral        string // the default cell's leading `code`, if any
	hasLiteral        bool
}

// readmeTable returns the rows of the key table in the README's
// "## Configuration" section; it fails unless there is exactly one.
func readmeTable(t *testing.T) []tableRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	start := slices.Index(lines, "## Configuration")
	if start < 0 {
		t.Fatal(`README.md has no "## Configuration" section`)
	}
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "## ") {
			end = i
			break
		}
	}
	header := regexp.MustCompile(`^\|\s*key\s*\|\s*default\s*\|\s*meaning\s*\|$`)
	keyCell := regexp.MustCompile("^`([^`]+)`$")
	leading := regexp.MustCompile("^`([^`]*)`")
	var rows []tableRow
	tables := 0
	inTable := false
	for i := start + 1; i < end; i++ {
		line := strings.TrimSpace(lines[i])
		switch {
		case header.MatchString(line):
			tables++
			inTable = true
			i++ // the |---| line
		case inTable && strings.HasPrefix(line, "|"):
			cells := splitRow(line)
			if len(cells) != 3 {
				t.Errorf("README.md:%d: want 3 cells (key, default, meaning), got %d", i+1, len(cells))
				continue
			}
			m := keyCell.FindStringSubmatch(cells[0])
			if m == nil {
				t.Errorf("README.md:%d: the key cell %q must be one key in backticks", i+1, cells[0])
				continue
			}
			r := tableRow{line: i + 1, key: m[1], def: cells[1], meaning: cells[2]}
			if lm := leading.FindStringSubmatch(r.def); lm != nil {
				r.defLiteral, r.hasLiteral = lm[1], true
			}
			rows = append(rows, r)
		default:
			inTable = false
		}
	}
	if tables != 1 {
		t.Fatalf(`README.md "## Configuration": want one | key | default | meaning | table, found %d`, tables)
	}
	return rows
}

// splitRow splits a Markdown table row into trimmed cells; "\|" is a pipe
// inside a cell.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func TestReadmeDocumentsEveryKey(t *testing.T) {
	keys := configKeys()
	order := map[string]int{}
	for i, k := range keys {
		order[k.path] = i
	}
	rows := readmeTable(t)
	documented := map[string]int{}
	last, lastKey := -1, ""
	for _, r := range rows {
		if prev, dup := documented[r.key]; dup {
			t.Errorf("README.md:%d: `%s` is already on line %d", r.line, r.key, prev)
			continue
		}
		documented[r.key] = r.line
		i, ok := order[r.key]
		if !ok {
			t.Errorf("README.md:%d: `%s` is not a key of config.Config (renamed or removed?)", r.line, r.key)
			continue
		}
		if r.meaning == "" {
			t.Errorf("README.md:%d: `%s` has no meaning", r.line, r.key)
		}
		if r.def == "" {
			t.Errorf("README.md:%d: `%s` has no default (write required, off, none, ...)", r.line, r.key)
		}
		if i < last {
			t.Errorf("README.md:%d: `%s` comes before `%s` in the structs; keep the table in their order", r.line, r.key, lastKey)
		}
		last, lastKey = i, r.key
	}
	for i, k := range keys {
		if !k.mustDocument {
			continue
		}
		if _, ok := documented[k.path]; !ok {
			after := "at the top"
			for j := i - 1; j >= 0; j-- {
				if _, ok := documented[keys[j].path]; ok {
					after = "after `" + keys[j].path + "`"
					break
				}
			}
			t.Errorf("README.md: `%s` is not in the configuration table; add its row %s", k.path, after)
		}
	}
}

// probeBare is a valid config with only what is required: every default
// of the top level, upstreams and routes applies, and every policy is off.
const probeBare = `
upstreams:
  app:
    endpoints: ["127.0.0.1:8080"]
routes:
  - name: r
    upstream: app
`

// probeFull turns every optional section on with only its required keys,
// so that the defaults inside the sections apply.
const probeFull = `
tls: {cert_file: CERT, key_file: KEY}
upstreams:
  app:
    endpoints: ["127.0.0.1:8080"]
    tls: {}
    breaker: {consecutive_failures: 5}
    outlier: {consecutive_5xx: 5, ejection_time: 30s}
    health_check: {path: /healthz, interval: 5s, timeout: 1s}
routes:
  - name: r
    upstream: app
    retry: {attempts: 2}
    hedge: {delay: p95}
    shed: {max_concurrency: adaptive, fair_by: client_ip}
    rate_limit: {rate: 10}
    slo: {availability: 0.999}
    request_headers: {}
    response_headers: {}
`

// setByProbe are the keys the probes set because a config is invalid
// without them; the table's default for them is not checked.
var setByProbe = map[string]bool{
	"tls.cert_file":            true,
	"tls.key_file":             true,
	"upstreams.NAME.endpoints": true,
	"upstreams.NAME.breaker.consecutive_failures": true, // it or failure_ratio
	"upstreams.NAME.outlier.consecutive_5xx":      true,
	"upstreams.NAME.outlier.ejection_time":        true,
	"upstreams.NAME.health_check.path":            true,
	"upstreams.NAME.health_check.interval":        true,
	"upstreams.NAME.health_check.timeout":         true,
	"routes[].name":                               true,
	"routes[].upstream":                           true,
	"routes[].retry.attempts":                     true,
	"routes[].hedge.delay":                        true,
	"routes[].shed.max_concurrency":               true,
	"routes[].shed.fair_by":                       true,
	"routes[].rate_limit.rate":                    true,
	"routes[].slo.availability":                   true, // it or latency and latency_target
}

// TestReadmeDefaults checks the table's default column against the
// defaults a parsed config gets. A cell that starts with `code` states a
// value, which must equal the default (read as YAML into the key's type),
// or names another key (`limits.max_body_bytes`), in which case the key
// itself stays unset. A cell in words (required, off, none, any, empty)
// means the key is unset: zero, nil or empty.
func TestReadmeDefaults(t *testing.T) {
	bare := parseProbe(t, "bare.yaml", probeBare)
	full := parseProbe(t, "full.yaml", fullProbe(t))
	keys := map[string]bool{}
	for _, k := range configKeys() {
		keys[k.path] = true
	}
	for k := range setByProbe {
		if !keys[k] {
			t.Errorf("setByProbe: %s is not a key", k)
		}
	}
	for _, r := range readmeTable(t) {
		if !keys[r.key] || setByProbe[r.key] {
			continue // unknown keys are TestReadmeDocumentsEveryKey's
		}
		v, ok := lookup(reflect.ValueOf(bare), r.key)
		if !ok {
			v, ok = lookup(reflect.ValueOf(full), r.key)
		}
		if !ok {
			t.Errorf("README.md:%d: `%s`: not reachable in the probe configs; extend probeFull", r.line, r.key)
			continue
		}
		v, isSet := deref(v)
		switch {
		case r.hasLiteral && keys[r.defLiteral]:
			if isSet && !v.IsZero() {
				t.Errorf("README.md:%d: `%s` defaults to `%s`, but the config sets it to %v", r.line, r.key, r.defLiteral, v)
			}
		case r.hasLiteral:
			if !isSet {
				t.Errorf("README.md:%d: `%s`: the table says `%s`, the config leaves it unset", r.line, r.key, r.defLiteral)
				continue
			}
			want, err := parseAs(r.defLiteral, v.Type())
			if err != nil {
				t.Errorf("README.md:%d: `%s`: default `%s` does not read as %v: %v", r.line, r.key, r.defLiteral, v.Type(), err)
				continue
			}
			if !reflect.DeepEqual(v.Interface(), want.Interface()) {
				t.Errorf("README.md:%d: `%s`: the table says `%s`, the default is %v", r.line, r.key, r.defLiteral, describe(v))
			}
		default:
			if isSet && !v.IsZero() {
				t.Errorf("README.md:%d: `%s`: the table says %q, the default is %v; write it as `code`", r.line, r.key, r.def, describe(v))
			}
		}
	}
}

// TestDefaultIsTheParsedTopLevel checks that Default() and a parsed file
// without those keys agree on every top-level key, so that the table's
// defaults hold for a Config built in code too.
func TestDefaultIsTheParsedTopLevel(t *testing.T) {
	bare := parseProbe(t, "bare.yaml", probeBare)
	def := config.Default()
	for _, k := range configKeys() {
		if strings.Contains(k.path, "NAME") || strings.Contains(k.path, "[]") || !k.mustDocument {
			continue
		}
		a, okA := lookup(reflect.ValueOf(def), k.path)
		b, okB := lookup(reflect.ValueOf(bare), k.path)
		if okA != okB {
			t.Errorf("%s: set in one of Default() and a parsed file only", k.path)
			continue
		}
		if okA && !reflect.DeepEqual(a.Interface(), b.Interface()) {
			t.Errorf("%s: Default() has %v, a parsed file %v", k.path, a, b)
		}
	}
}

// fullProbe is probeFull with a certificate and key of its own.
func fullProbe(t *testing.T) string {
	t.Helper()
	pki, err := bench.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.IssueServer("server")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("CERT", strconv.Quote(cert), "KEY", strconv.Quote(key)).Replace(probeFull)
}

func parseProbe(t *testing.T, name, text string) *config.Config {
	t.Helper()
	c, err := config.Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("probe %s:\n%v", name, err)
	}
	return c
}

// lookup follows a key path through a config value: a struct field by its
// yaml tag, NAME into a map's only entry, [] into a list's first element.
// It returns the value at the end without dereferencing it; ok is false if
// a nil pointer, or an empty map or list, is in the way.
func lookup(v reflect.Value, path string) (reflect.Value, bool) {
	for _, tok := range strings.Split(path, ".") {
		v, _ = deref(v)
		if !v.IsValid() {
			return reflect.Value{}, false
		}
		if v.Kind() == reflect.Map {
			keys := v.MapKeys()
			if tok != "NAME" || len(keys) != 1 {
				return reflect.Value{}, false
			}
			v = v.MapIndex(keys[0])
			continue
		}
		name, list := strings.CutSuffix(tok, "[]")
		v = fieldByTag(v, name)
		if !v.IsValid() {
			return reflect.Value{}, false
		}
		if list {
			if v.Len() == 0 {
				return reflect.Value{}, false
			}
			v = v.Index(0)
		}
	}
	return v, true
}

// deref follows pointers; set is false if one is nil (v is then invalid).
func deref(v reflect.Value) (_ reflect.Value, set bool) {
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}, false
		}
		v = v.Elem()
	}
	return v, v.IsValid()
}

func fieldByTag(v reflect.Value, name string) reflect.Value {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// parseAs reads a default as written in the table into a value of type t:
// a string as is, anything else as YAML (so `16KiB` and `90s` read as the
// config reads them).
func parseAs(text string, t reflect.Type) (reflect.Value, error) {
	p := reflect.New(t)
	if t.Kind() == reflect.String {
		p.Elem().SetString(text)
		return p.Elem(), nil
	}
	if err := yaml.Unmarshal([]byte(text), p.Interface()); err != nil {
		return reflect.Value{}, err
	}
	return p.Elem(), nil
}

// describe formats a default for a message, as the table would write it.
func describe(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return "`" + s.String() + "`"
	}
	return fmt.Sprintf("`%v`", v.Interface())
}
