package bench

import (
	"context"
	"time"
)

// proxyStarter starts a proxy in front of upstream for one arm of a
// scenario and returns its URL and how to stop it; err says why the arm
// is skipped (a peer not installed) or failed.
type proxyStarter func(ctx context.Context, upstream string) (url string, stop func() error, err error)

// tailguardStarter starts an in-process tailguard with a pool of 2048
// connections to the upstream, a route timeout of 1 s and the route keys
// given (YAML flow style, e.g. a shed policy).
func (e *Env) tailguardStarter(route ...string) proxyStarter {
	return func(ctx context.Context, upstream string) (string, func() error, error) {
		p, err := e.startProxy(ctx, proxyConfig{endpoints: []string{upstream},
			upstream: []string{"max_connections: 2048"}, route: append([]string{"timeout: 1s"}, route...)})
		if err != nil {
			return "", nil, err
		}
		return p.url(), p.stop, nil
	}
}

// haproxyStarter starts HAProxy with limits lim, its config in dir, and a
// server timeout of 1 s.
func (e *Env) haproxyStarter(dir string, lim haproxyOptions) proxyStarter {
	return func(ctx context.Context, upstream string) (string, func() error, error) {
		listen, err := freeAddr()
		if err != nil {
			return "", nil, err
		}
		p, err := e.startHAProxy(ctx, dir, listen, upstream, "", lim, time.Second)
		if err != nil {
			return "", nil, err
		}
		return "http://" + listen + "/", func() error { p.stop(); return nil }, nil
	}
}
