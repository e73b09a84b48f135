package proxy

import (
	"maps"
	"slices"

	"tailguard/config"
)

// headerRules are a route's request_headers or response_headers, built
// once as bytes, so that applying them allocates nothing. A nil
// *headerRules changes nothing.
type headerRules struct {
	remove [][]byte
	set    []headerField // sorted by name, so that the order is stable
	// setsRequestID says a rule sets X-Request-Id: then the request has
	// one whether or not the client sent one.
	setsRequestID bool
}

type headerField struct{ name, value []byte }

func newHeaderRules(c *config.HeaderRules) *headerRules {
	if c == nil || len(c.Set) == 0 && len(c.Remove) == 0 {
		return nil
	}
	h := &headerRules{}
	for _, name := range c.Remove {
		h.remove = append(h.remove, []byte(name))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Set)) {
		h.set = append(h.set, headerField{[]byte(name), []byte(c.Set[name])})
		h.setsRequestID = h.setsRequestID || len(name) == len(headerRequestID) && asciiEqualFold([]byte(name), headerRequestID)
	}
	return h
}

// apply removes, then sets, the rules' headers in h.
func (r *headerRules) apply(h header) {
	if r == nil {
		return
	}
	for _, name := range r.remove {
		h.DelBytes(name)
	}
	for _, f := range r.set {
		h.SetBytesKV(f.name, f.value)
	}
}
