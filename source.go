package main

import "tailguard/config"

// configSource is where the config comes from: a file (or the -upstream
// quick form) with TAILGUARD_* environment and flags over it, or a config
// built in code. A reload reads it again the same way.
type configSource struct {
	file string
	o    config.Overrides
	cfg  *config.Config // built in code; never reloaded
}

// load builds the config from its source.
func (c configSource) load() (*config.Config, error) {
	switch {
	case c.cfg != nil:
		return c.cfg, nil
	case c.file != "":
		cfg, err := config.Load(c.file)
		if err != nil {
			return nil, err
		}
		return cfg, cfg.Apply(c.o)
	default:
		return config.Quick(c.o.Upstream, c.o)
	}
}
