package main

import (
	"context"

	"tailguard/config"
)

// demoOverrides are the in-process tailguard's settings over a scenario's
// YAML: ephemeral loopback ports, warnings only, and no drain delay, so
// that a scenario's proxy stops at once.
var demoOverrides = config.Overrides{
	Listen:     "127.0.0.1:0",
	Admin:      "127.0.0.1:0",
	LogLevel:   "warn",
	DrainDelay: new(config.Duration(0)),
}

// demoProxy runs tailguard in-process for the demo and the bench
// scenarios (it is their bench.Proxy): the config is the YAML they give
// with demoOverrides applied. stop drains it and returns the result.
func demoProxy(ctx context.Context, yaml string) (proxyAddr, adminAddr string, stop func() error, err error) {
	cfg, err := config.Parse("scenario.yaml", []byte(yaml))
	if err != nil {
		return "", "", nil, err
	}
	if err := cfg.Apply(demoOverrides); err != nil {
		return "", "", nil, err
	}
	p, err := NewProcess(configSource{cfg: cfg})
	if err != nil {
		return "", "", nil, err
	}
	if proxyAddr, adminAddr, err = p.Start(); err != nil {
		return "", "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Wait(ctx) }()
	return proxyAddr, adminAddr, func() error { cancel(); return <-done }, nil
}
