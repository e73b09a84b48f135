package config

import (
	"crypto/tls"
	"fmt"
	"time"
)

// Default returns a Config holding every default and no upstreams or
// routes; it does not pass Validate until some are added.
func Default() *Config {
	c := &Config{}
	applyDefaults(c)
	return c
}

// applyDefaults fills in every default; it is the one place they live.
//
// For a parsed file a default replaces only an absent (or null) key, so an
// explicit zero stays and Validate can reject it, or, where zero means
// something (drain.delay: 0 skips the wait), keep it. For a Config built
// in code, which has no file to ask, a zero value counts as absent.
// Route.Timeout is a pointer because its explicit 0 means "no timeout".
// The enumerations (Balance, Priority, Mode) need no line here: their
// zero value is their default.
func applyDefaults(c *Config) {
	s := c.src
	setDefault(s, &c.Listen, "listen", ":8000")
	setDefault(s, &c.Admin, "admin", "127.0.0.1:9901")
	setDefault(s, &c.DeadlineHeader, "deadline_header", "X-Request-Timeout-Ms")
	setDefault(s, &c.Log.Level, "log.level", "info")
	setDefault(s, &c.Log.Access, "log.access", "errors")
	setDefault(s, &c.Limits.MaxConnections, "limits.max_connections", 10000)
	setDefault(s, &c.Limits.MaxHeaderBytes, "limits.max_header_bytes", 16<<10)
	setDefault(s, &c.Limits.MaxBodyBytes, "limits.max_body_bytes", 10<<20)
	setDefault(s, &c.Limits.ReadHeaderTimeout, "limits.read_header_timeout", Duration(10*time.Second))
	setDefault(s, &c.Limits.IdleTimeout, "limits.idle_timeout", Duration(90*time.Second))
	setDefault(s, &c.Limits.BufferMemory, "limits.buffer_memory", 64<<20)
	setDefault(s, &c.Limits.BufferDisk, "limits.buffer_disk", 1<<30)
	setDefault(s, &c.Drain.Delay, "drain.delay", Duration(5*time.Second))
	setDefault(s, &c.Drain.Timeout, "drain.timeout", Duration(30*time.Second))
	if c.TLS != nil {
		setDefault(s, &c.TLS.MinVersion, "tls.min_version", TLSVersion(tls.VersionTLS12))
	}
	for name, u := range c.Upstreams {
		if u == nil {
			continue
		}
		p := joinPath("upstreams", name) + "."
		setDefault(s, &u.MaxConnections, p+"max_connections", 512)
		setDefault(s, &u.ConnectTimeout, p+"connect_timeout", Duration(time.Second))
		if b := u.Breaker; b != nil {
			setDefault(s, &b.OpenTimeout, p+"breaker.open_timeout", Duration(5*time.Second))
			setDefault(s, &b.HalfOpenRequests, p+"breaker.half_open_requests", 1)
		}
		if o := u.Outlier; o != nil {
			setDefault(s, &o.MaxEjectedPercent, p+"outlier.max_ejected_percent", 10)
		}
	}
	for i, r := range c.Routes {
		if r == nil {
			continue
		}
		if r.Timeout == nil {
			t := Duration(30 * time.Second)
			r.Timeout = &t
		}
		p := fmt.Sprintf("routes[%d].", i)
		setDefault(s, &r.Match.PathPrefix, p+"match.path_prefix", "/")
		if r.Retry != nil {
			setDefault(s, &r.Retry.Budget, p+"retry.budget", 0.2)
		}
		if r.Hedge != nil {
			setDefault(s, &r.Hedge.Budget, p+"hedge.budget", 0.05)
			setDefault(s, &r.Hedge.MaxExtra, p+"hedge.max_extra", 1)
		}
		if r.Shed != nil {
			shedDefaults(s, p+"shed.", r.Shed)
		}
		if r.SLO != nil {
			setDefault(s, &r.SLO.Period, p+"slo.period", Duration(30*day))
		}
		if r.RateLimit != nil {
			rateLimitDefaults(s, p+"rate_limit.", r.RateLimit)
		}
	}
}

// shedDefaults fills in a route's shed defaults. Queue timeout and CoDel
// get theirs only with a queue, and the limit bounds only when adaptive,
// so that Validate can reject them where they would do nothing. A default
// that depends on another key keeps the pair valid whatever was written
// for the other: codel.target stays below queue_timeout, limit.max and
// limit.initial within limit.min.
func shedDefaults(s *source, p string, sh *Shed) {
	setDefault(s, &sh.Queue, p+"queue", 128)
	setDefault(s, &sh.Status, p+"status", 503)
	if sh.Queue > 0 {
		setDefault(s, &sh.QueueTimeout, p+"queue_timeout", Duration(50*time.Millisecond))
		setDefault(s, &sh.CoDel.Target, p+"codel.target", min(Duration(5*time.Millisecond), sh.QueueTimeout/2))
		setDefault(s, &sh.CoDel.Interval, p+"codel.interval", Duration(100*time.Millisecond))
	}
	if sh.FairBy != nil {
		setDefault(s, &sh.MaxKeys, p+"max_keys", defaultMaxKeys)
	}
	if sh.MaxConcurrency.Adaptive {
		setDefault(s, &sh.Limit.Min, p+"limit.min", 4)
		setDefault(s, &sh.Limit.Max, p+"limit.max", max(1000, sh.Limit.Min))
		setDefault(s, &sh.Limit.Initial, p+"limit.initial", min(max(20, sh.Limit.Min), sh.Limit.Max))
	}
}

// setDefault sets *field to v if the key at path is absent from src or,
// with no src, if *field is zero.
func setDefault[T comparable](src *source, field *T, path string, v T) {
	var zero T
	if src != nil && !src.has(path) || src == nil && *field == zero {
		*field = v
	}
}
