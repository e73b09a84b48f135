package config

import (
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validate reports every problem with c, each an *Error placed in c's file
// when c came from Parse or Load, joined in file order; nil if c is usable.
// Parse, Quick and Apply call it; call it again after building or changing
// a Config in code.
func (c *Config) Validate() error {
	r := &report{src: c.src}
	c.validateServer(r)
	validateTLS(r, c.TLS)
	c.validateUpstreams(r)
	c.validateRoutes(r)
	return joinErrors(r.errs)
}

// check records a problem at path unless ok.
func (r *report) check(ok bool, path, format string, args ...any) {
	if !ok {
		r.add(path, format, args...)
	}
}

// validateServer checks the top-level keys: addresses, token, log, limits
// and drain.
func (c *Config) validateServer(r *report) {
	r.address("listen", c.Listen)
	r.address("admin", c.Admin)
	_, port, err := net.SplitHostPort(c.Listen)
	r.check(c.Admin != c.Listen || err != nil || port == "0", "admin", "must differ from listen")
	r.check(c.AdminToken == "" || bearerToken.MatchString(c.AdminToken), "admin_token",
		"must be a Bearer token: letters, digits and -._~+/, optionally ending in =")
	r.check(c.DeadlineHeader == "" || isToken(c.DeadlineHeader), "deadline_header", "invalid header name %q", c.DeadlineHeader)
	r.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	r.oneOf("log.access", c.Log.Access, "off", "errors", "all")
	l := c.Limits
	r.check(l.MaxConnections > 0, "limits.max_connections", "must be > 0")
	r.check(l.MaxHeaderBytes >= 1<<10, "limits.max_header_bytes", "must be >= 1KiB")
	r.check(l.MaxBodyBytes > 0, "limits.max_body_bytes", "must be > 0")
	r.check(l.ReadHeaderTimeout > 0, "limits.read_header_timeout", "must be > 0")
	r.check(l.IdleTimeout > 0, "limits.idle_timeout", "must be > 0")
	r.check(l.BufferMemory >= 0, "limits.buffer_memory", "must be >= 0")
	r.check(l.BufferDisk >= 0, "limits.buffer_disk", "must be >= 0")
	if l.BufferDir != "" {
		fi, err := os.Stat(l.BufferDir)
		r.check(err == nil && fi.IsDir(), "limits.buffer_dir", "must be an existing directory: %q", l.BufferDir)
	}
	r.check(c.Drain.Delay >= 0, "drain.delay", "must be >= 0")
	r.check(c.Drain.Timeout > 0, "drain.timeout", "must be > 0")
}

// bearerToken is RFC 6750's b64token, what may follow "Bearer ".
var bearerToken = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// oneOf records a problem at path unless v is one of allowed.
func (r *report) oneOf(path, v string, allowed ...string) {
	r.check(slices.Contains(allowed, v), path, "invalid value %q: must be one of %s", v, strings.Join(allowed, ", "))
}

// address checks a listen address: host:port, host optional, port 0-65535.
func (r *report) address(path, v string) {
	if msg := hostPortProblem(v, 0, true); msg != "" {
		r.add(path, "invalid address %q: %s", v, msg)
	}
}

// hostPortProblem says what is wrong with v as host:port, or "". The port
// must be numeric and at least minPort; the host may be empty only if
// emptyHost.
func hostPortProblem(v string, minPort uint64, emptyHost bool) string {
	if strings.Contains(v, "://") {
		return "must be host:port without a scheme"
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "must be host:port"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil || n < minPort:
		return fmt.Sprintf("port must be a number from %d to 65535", minPort)
	case host == "" && !emptyHost:
		return "host is required"
	case host != "" && !validHost(host):
		return fmt.Sprintf("invalid host %q", host)
	}
	return ""
}

// hostnamePattern is lenient on purpose (underscores occur in the wild); it only
// keeps out what cannot be a host: spaces, slashes, wildcards, ports.
var hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$`)

// validHost reports whether h is an IP address or a host name.
func validHost(h string) bool {
	return net.ParseIP(h) != nil || hostnamePattern.MatchString(h)
}

// namePattern is what upstream and route names are made of: they appear in
// metric labels, logs and paths.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// nameProblem says what is wrong with a name, or "".
func nameProblem(n string) string {
	switch {
	case n == "":
		return "is required"
	case !namePattern.MatchString(n):
		return fmt.Sprintf("%q: use only letters, digits, '_', '.' and '-'", n)
	}
	return ""
}

func sortedNames[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
