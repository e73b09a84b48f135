package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// FuzzLoad checks Parse's promises on any input: it never panics, a
// failure is a list of one-line errors each naming the file, and a success
// is a config that validates.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "- a", "a: [", "&a *a", "<<: {a: 1}", "? [a]\n: 1",
		okUpstream + okRoute + "listen: ':1'\nlisten: ':2'\n",
		withRouteKey("hedge: {delay: p95, min_delay: 2s, max_delay: 1s}"),
		okUpstream + "routes: [&r {name: a, upstream: app}, *r]\n",
		okUpstream + okRoute + "deadline_header: ''\n",
		withRouteKey("retry: {attempts: 2, budget: 0}"),
		withUpstreamKey("balance: least_request"),
		withRouteKey("retry: {attempts: 2, on: [reset, '503', 503, [x], 0x1F5]}"),
		withRouteKey("shed: {max_concurrency: 1, mode: shadow, priority_default: critical}"),
		// Inputs that made goccy/go-yaml panic in the past (its issue #540).
		"true :", "10.:", "{? {? ", "0::", "{0", "*-0", ">\n>", "&{0", "0\n:",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.yaml"
		c, err := Parse(name, data)
		if err != nil {
			if c != nil {
				t.Errorf("config returned along with an error")
			}
			checkErrors(t, name, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Parse succeeded but Validate fails: %v", err)
		}
	})
}

// checkErrors fails t unless err joins *Errors, each one non-empty line
// starting with name.
func checkErrors(t *testing.T, name string, err error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error is not joined: %T %v", err, err)
	}
	for _, e := range joined.Unwrap() {
		ce, ok := e.(*Error)
		if !ok {
			t.Errorf("%T is not an *Error: %v", e, e)
			continue
		}
		msg := ce.Error()
		if ce.Msg == "" || !strings.HasPrefix(msg, name) || strings.IndexFunc(msg, unicode.IsControl) >= 0 {
			t.Errorf("bad error text %q", msg)
		}
	}
}
