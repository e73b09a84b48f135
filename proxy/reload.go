package proxy

import (
	"errors"
	"fmt"

	"tailguard/config"
)

// Reload makes cfg, a validated config, the running one: a new routing
// table is built, carrying over what a reload keeps (carry.go), and
// swapped in atomically; requests under way finish on the routes they
// matched. Settings that live in the listener itself (listen, admin,
// admin_token, log, limits, drain, tls) take a restart: a cfg that changes them
// is refused whole, so a reload is never half applied. On any error the
// running config keeps serving. Reloads are serialised.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := needsRestart(s.cfg, cfg); err != nil {
		return err
	}
	t, err := Build(cfg, s.reg, s.log, s.table.Load())
	if err != nil {
		return err
	}
	s.swap(t)
	s.cfg = cfg
	return nil
}

// Config returns the running config.
func (s *Server) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// needsRestart lists the listener settings next changes from cur. Log,
// Limits and Drain hold only strings, numbers and units, so == compares
// them whole; a field added to them that == cannot compare stops this
// compiling rather than going unnoticed.
func needsRestart(cur, next *config.Config) error {
	var errs []error
	for _, f := range []struct {
		key     string
		changed bool
	}{
		{"listen", cur.Listen != next.Listen},
		{"admin", cur.Admin != next.Admin},
		{"admin_token", cur.AdminToken != next.AdminToken},
		{"log", cur.Log != next.Log},
		{"limits", cur.Limits != next.Limits},
		{"drain", cur.Drain != next.Drain},
		{"tls", !equalPtr(cur.TLS, next.TLS)},
	} {
		if f.changed {
			errs = append(errs, fmt.Errorf("%s: changing it needs a restart", f.key))
		}
	}
	return errors.Join(errs...)
}

// equalPtr reports whether a and b are both nil, or point to equal values.
func equalPtr[T comparable](a, b *T) bool {
	return a == b || a != nil && b != nil && *a == *b
}
