package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// validateRoutes checks every route, then that no route is shadowed by an
// earlier one.
func (c *Config) validateRoutes(r *report) {
	if len(c.Routes) == 0 {
		r.add("routes", "at least one route is required")
		return
	}
	names := map[string]int{}
	for i, rt := range c.Routes {
		p := "routes" + index(i)
		if rt == nil {
			r.add(p, "must not be empty: name and upstream are required")
			continue
		}
		if msg := nameProblem(rt.Name); msg != "" {
			r.add(p+".name", "route name %s", msg)
		} else if j, dup := names[rt.Name]; dup {
			r.add(p+".name", "duplicate route name %q (also routes[%d])", rt.Name, j)
		} else {
			names[rt.Name] = i
		}
		c.validateRoute(r, p, rt)
	}
	shadowed(r, c.Routes)
}

func (c *Config) validateRoute(r *report, p string, rt *Route) {
	_, exists := c.Upstreams[rt.Upstream]
	switch {
	case rt.Upstream == "":
		r.add(p+".upstream", "is required")
	case !exists:
		r.add(p+".upstream", "unknown upstream %q", rt.Upstream)
	}
	validateMatch(r, p+".match", rt.Match)
	r.check(rt.Timeout == nil || *rt.Timeout >= 0, p+".timeout", "must be >= 0")
	r.check(rt.MaxBodyBytes == nil || *rt.MaxBodyBytes >= 0, p+".max_body_bytes", "must be >= 0")
	r.check(rt.PerTryTimeout >= 0, p+".per_try_timeout", "must be >= 0")
	if rt.Timeout != nil && *rt.Timeout > 0 {
		r.check(rt.PerTryTimeout <= *rt.Timeout, p+".per_try_timeout", "must be <= timeout (%v)", *rt.Timeout)
	}
	validatePolicies(r, p, rt)
	for i, u := range rt.Upgrades {
		r.check(known(u, upgradeWords), p+".upgrades"+index(i), "unknown value %v", u)
	}
	validateHeaderRules(r, p+".request_headers", rt.RequestHeaders)
	validateHeaderRules(r, p+".response_headers", rt.ResponseHeaders)
}

func validateMatch(r *report, p string, m Match) {
	if msg := matchHostProblem(m.Host); msg != "" {
		r.add(p+".host", "invalid host %q: %s", m.Host, msg)
	}
	r.check(strings.HasPrefix(m.PathPrefix, "/"), p+".path_prefix", "must start with /")
	for i, method := range m.Methods {
		mp := p + ".methods" + index(i)
		if msg := methodProblem(method); msg != "" {
			r.add(mp, "%s", msg)
		}
		r.check(!slices.Contains(m.Methods[:i], method), mp, "duplicate method %q", method)
	}
}

// matchHostProblem says what is wrong with a match.host, or "". The host is
// kept as written; the proxy compares it case-insensitively.
func matchHostProblem(h string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	switch {
	case h == "" || net.ParseIP(inner) != nil:
		return ""
	case strings.Contains(h, "://"):
		return "must be a host name without a scheme"
	case strings.Contains(h, "/"):
		return "must be a host name without a path"
	case strings.Contains(h, ":"):
		return "must be a host name without a port (the port is ignored when matching)"
	case !hostnamePattern.MatchString(h):
		return "must be an exact host name (no wildcards or spaces)"
	}
	return ""
}

// methodProblem says what is wrong with an HTTP method in match.methods,
// or "".
func methodProblem(m string) string {
	switch {
	case m == "CONNECT":
		return "CONNECT is not supported: tailguard does not tunnel"
	case !isToken(m):
		return fmt.Sprintf("invalid method %q: must be an HTTP method token like GET", m)
	case strings.ToUpper(m) != m:
		return fmt.Sprintf("method %q must be upper case: %s", m, strings.ToUpper(m))
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token, as methods and header
// names are.
func isToken(s string) bool {
	return s != "" && strings.IndexFunc(s, func(c rune) bool { return !isTchar(c) }) < 0
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c rune) bool {
	return c < 0x7f && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", c))
}

// shadowed reports each route that can never match, wholly or for one of
// its methods, because an earlier route has the same host and path_prefix
// and already takes those methods (among equal matches the first listed
// wins). A route for every method after one for GET is fine: it takes the
// rest.
func shadowed(r *report, routes []*Route) {
	type key struct{ host, prefix string }
	earlier := map[key][]int{}
	for i, rt := range routes {
		if rt == nil {
			continue
		}
		k := key{strings.ToLower(rt.Match.Host), rt.Match.PathPrefix}
		for _, j := range earlier[k] {
			if why := overlap(routes[j].Match.Methods, rt.Match.Methods); why != "" {
				r.add("routes"+index(i)+".match", "shadowed by routes[%d] (same host and path_prefix; %s)", j, why)
				break
			}
		}
		earlier[k] = append(earlier[k], i)
	}
}

// overlap says which of later's methods earlier already takes, or "".
// An empty list means every method.
func overlap(earlier, later []string) string {
	switch {
	case len(earlier) == 0 && len(later) == 0:
		return "both match every method"
	case len(earlier) == 0:
		return "it matches every method"
	}
	for _, m := range later {
		if slices.Contains(earlier, m) {
			return fmt.Sprintf("it matches %q", m)
		}
	}
	return ""
}

func index(i int) string { return fmt.Sprintf("[%d]", i) }
