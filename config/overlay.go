package config

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
)

// Overrides are settings given as flags or TAILGUARD_* environment
// variables, laid over the file so that one image can run in many places
// (Kubernetes sets the environment, a person types flags). An empty field
// is not set. Precedence: defaults < file < environment < flags, so main
// does cfg.Apply(flags.Over(EnvOverrides(os.Getenv))).
type Overrides struct {
	// Upstream is an http://host[:port] URL (-upstream,
	// TAILGUARD_UPSTREAM). It replaces the endpoints of the file's only
	// upstream; with several upstreams it is an error.
	Upstream string
	// Listen replaces listen (-listen, TAILGUARD_LISTEN).
	Listen string
	// Admin replaces admin (-admin, TAILGUARD_ADMIN).
	Admin string
	// AdminToken replaces admin_token (TAILGUARD_ADMIN_TOKEN); the
	// environment keeps it out of the process list.
	AdminToken string
	// LogLevel replaces log.level (-log-level, TAILGUARD_LOG_LEVEL).
	LogLevel string
	// TLSCert and TLSKey replace tls.cert_file and tls.key_file (-tls-cert
	// and -tls-key, TAILGUARD_TLS_CERT and TAILGUARD_TLS_KEY), turning
	// TLS on for the listener; both or neither.
	TLSCert, TLSKey string
	// DrainDelay, if not nil, replaces drain.delay. No flag or variable
	// sets it: it is for configs built in code, such as the demo and bench
	// scenarios' in-process tailguard, which must stop at once and must
	// not edit a config after it was validated.
	DrainDelay *Duration
}

// EnvOverrides reads the TAILGUARD_* variables through getenv (os.Getenv,
// or a map in tests).
func EnvOverrides(getenv func(string) string) Overrides {
	return Overrides{
		Upstream:   getenv("TAILGUARD_UPSTREAM"),
		Listen:     getenv("TAILGUARD_LISTEN"),
		Admin:      getenv("TAILGUARD_ADMIN"),
		AdminToken: getenv("TAILGUARD_ADMIN_TOKEN"),
		LogLevel:   getenv("TAILGUARD_LOG_LEVEL"),
		TLSCert:    getenv("TAILGUARD_TLS_CERT"),
		TLSKey:     getenv("TAILGUARD_TLS_KEY"),
	}
}

// Over returns o with its unset fields taken from base: the fields set in
// o win. Flags go over the environment: flags.Over(env).
func (o Overrides) Over(base Overrides) Overrides {
	return Overrides{
		Upstream:   cmp.Or(o.Upstream, base.Upstream),
		Listen:     cmp.Or(o.Listen, base.Listen),
		Admin:      cmp.Or(o.Admin, base.Admin),
		AdminToken: cmp.Or(o.AdminToken, base.AdminToken),
		LogLevel:   cmp.Or(o.LogLevel, base.LogLevel),
		TLSCert:    cmp.Or(o.TLSCert, base.TLSCert),
		TLSKey:     cmp.Or(o.TLSKey, base.TLSKey),
		DrainDelay: cmp.Or(o.DrainDelay, base.DrainDelay),
	}
}

// Apply sets the fields o sets and revalidates. It is all or nothing: on
// error c is unchanged. Errors about overridden values carry no file place
// and say they came from a flag or the environment.
func (c *Config) Apply(o Overrides) error {
	next := c.clone()
	var paths []string
	if o.Upstream != "" {
		p, err := next.replaceEndpoints(o.Upstream)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	for _, f := range []struct {
		field   *string
		v, path string
	}{
		{&next.Listen, o.Listen, "listen"},
		{&next.Admin, o.Admin, "admin"},
		{&next.AdminToken, o.AdminToken, "admin_token"},
		{&next.Log.Level, o.LogLevel, "log.level"},
	} {
		if f.v != "" {
			*f.field, paths = f.v, append(paths, f.path)
		}
	}
	if o.DrainDelay != nil {
		next.Drain.Delay, paths = *o.DrainDelay, append(paths, "drain.delay")
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if next.TLS == nil {
			next.TLS = &TLS{MinVersion: tls.VersionTLS12}
		}
		next.TLS.CertFile, next.TLS.KeyFile = o.TLSCert, o.TLSKey
		paths = append(paths, "tls.cert_file", "tls.key_file")
	}
	next.src = next.src.override(paths)
	if err := next.Validate(); err != nil {
		return err
	}
	*c = *next
	return nil
}

// replaceEndpoints points the only upstream at rawURL and returns the path
// of the endpoints it replaced. The URL's scheme says whether the upstream
// speaks TLS: https keeps the file's tls settings (or sets the defaults),
// http drops them.
func (c *Config) replaceEndpoints(rawURL string) (string, error) {
	ep, isTLS, err := upstreamEndpoint(rawURL)
	if err != nil {
		return "", err
	}
	if len(c.Upstreams) != 1 {
		return "", fmt.Errorf("upstream override: the config has %d upstreams; it can replace only a single one", len(c.Upstreams))
	}
	name := sortedNames(c.Upstreams)[0]
	u := c.Upstreams[name]
	if u == nil {
		u = &Upstream{}
		c.Upstreams[name] = u
	}
	u.Endpoints = []string{ep}
	switch {
	case !isTLS:
		u.TLS = nil
	case u.TLS == nil:
		u.TLS = &UpstreamTLS{}
	}
	return joinPath("upstreams", name) + ".endpoints", nil
}

// Quick builds the config of `tailguard -upstream URL`: all defaults, one
// upstream "app" at upstreamURL and one route "default" sending every
// request to it, with o applied over that.
func Quick(upstreamURL string, o Overrides) (*Config, error) {
	ep, isTLS, err := upstreamEndpoint(upstreamURL)
	if err != nil {
		return nil, err
	}
	up := &Upstream{Endpoints: []string{ep}}
	if isTLS {
		up.TLS = &UpstreamTLS{}
	}
	c := &Config{
		Upstreams: map[string]*Upstream{"app": up},
		Routes:    []*Route{{Name: "default", Upstream: "app"}},
	}
	applyDefaults(c)
	if err := c.Apply(o); err != nil {
		return nil, err
	}
	return c, nil
}

// upstreamEndpoint turns an http:// or https://host[:port] URL into a
// host:port endpoint, port 80 or 443 by default, and whether it speaks
// TLS. Errors never repeat the URL, which may hold credentials.
func upstreamEndpoint(raw string) (string, bool, error) {
	u, err := url.Parse(raw)
	var msg string
	switch {
	case err != nil:
		msg = "must be an http:// or https:// URL, like http://127.0.0.1:8080"
	case u.Scheme != "http" && u.Scheme != "https":
		msg = "must be an http:// or https:// URL, like http://127.0.0.1:8080"
	case u.User != nil:
		msg = "must not contain credentials"
	case u.Path != "" && u.Path != "/":
		msg = "must not have a path: routes send the request path as received"
	case u.RawQuery != "" || u.Fragment != "":
		msg = "must not have a query or fragment"
	}
	if msg != "" {
		return "", false, fmt.Errorf("upstream override: %s", msg)
	}
	isTLS := u.Scheme == "https"
	port := "80"
	if isTLS {
		port = "443"
	}
	ep := net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), port))
	if msg := hostPortProblem(ep, 1, false); msg != "" {
		return "", false, fmt.Errorf("upstream override: %s", msg)
	}
	return ep, isTLS, nil
}
