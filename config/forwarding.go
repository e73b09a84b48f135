package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// HeaderRules change a route's headers on their way through: Remove
// deletes each named header, then Set sets each named header to its value
// (replacing any the message had). Names are matched case-insensitively.
// Hop-by-hop and framing headers are tailguard's to manage and cannot be
// named (validate refuses them).
type HeaderRules struct {
	// Set maps header names to the value each gets.
	Set map[string]string `yaml:"set" json:"set,omitempty"`
	// Remove lists header names to delete.
	Remove []string `yaml:"remove" json:"remove,omitempty"`
}

// CIDR is an IP network in CIDR notation ("10.0.0.0/8", "::1/128"); a
// bare address is a network of one.
type CIDR netip.Prefix

// Prefix returns c as a netip.Prefix.
func (c CIDR) Prefix() netip.Prefix { return netip.Prefix(c) }

// String returns c in CIDR notation.
func (c CIDR) String() string { return netip.Prefix(c).String() }

// MarshalJSON writes c in CIDR notation.
func (c CIDR) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// MarshalYAML writes c in CIDR notation.
func (c CIDR) MarshalYAML() (any, error) { return c.String(), nil }

// UnmarshalYAML reads a CIDR or a bare IP address.
func (c *CIDR) UnmarshalYAML(n ast.Node) error {
	s, _, ok := scalarText(n)
	if !ok {
		return valueErr(n, "must be a CIDR like 10.0.0.0/8 or an IP address")
	}
	p, err := parseCIDR(s)
	if err != nil {
		return valueErr(n, err.Error())
	}
	*c = CIDR(p)
	return nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: must be like 10.0.0.0/8 or an IP address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// managedHeaders are the headers tailguard manages itself, which header
// rules may neither set nor remove: hop-by-hop headers (RFC 9110 §7.6.1),
// the framing headers, Host, and the upgrade handshake's.
var managedHeaders = []string{
	"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
	"upgrade", "proxy-authenticate", "proxy-authorization", "content-length", "host",
	"http2-settings", "expect",
}

// validateHeaderRules checks a route's request_headers or response_headers
// at p.
func validateHeaderRules(r *report, p string, h *HeaderRules) {
	if h == nil {
		return
	}
	for name, value := range h.Set {
		validateRuleName(r, p+".set."+name, name)
		r.check(validHeaderValue(value), p+".set."+name, "invalid header value %q: no control characters but tab", value)
	}
	for i, name := range h.Remove {
		validateRuleName(r, p+".remove"+index(i), name)
	}
}

func validateRuleName(r *report, p, name string) {
	if !isToken(name) {
		r.add(p, "invalid header name %q", name)
		return
	}
	for _, m := range managedHeaders {
		if strings.EqualFold(name, m) {
			r.add(p, "%s is managed by tailguard (hop-by-hop or framing) and cannot be set or removed", name)
			return
		}
	}
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
