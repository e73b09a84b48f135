package proxy

import (
	"fmt"
	"strings"

	"tailguard/config"
	"tailguard/resilience"
)

// Config to settings: the first of Build's two steps. Each config word
// maps to its run-time value with an exhaustive switch; the settings
// values compare with == (carry.go).

// upstreamSettingsOf maps an upstream's config to the settings it is built
// from.
func upstreamSettingsOf(uc *config.Upstream) upstreamSettings {
	s := upstreamSettings{
		endpoints:      strings.Join(uc.Endpoints, endpointSep),
		balance:        balancePolicy(uc.Balance),
		maxConns:       uc.MaxConnections,
		connectTimeout: uc.ConnectTimeout.D(),
	}
	if b := uc.Breaker; b != nil {
		s.breaker = some(resilience.BreakerSettings{
			ConsecutiveFailures: uint32(b.ConsecutiveFailures),
			FailureRatio:        b.FailureRatio,
			MinRequests:         uint32(b.MinRequests),
			Interval:            b.Interval.D(),
			OpenTimeout:         b.OpenTimeout.D(),
			HalfOpenRequests:    uint32(b.HalfOpenRequests),
		})
	}
	if o := uc.Outlier; o != nil {
		s.outlier = some(resilience.OutlierSettings{
			Consecutive5xx:    o.Consecutive5xx,
			LatencyFactor:     o.LatencyFactor,
			EjectionTime:      o.EjectionTime.D(),
			MaxEjectedPercent: o.MaxEjectedPercent,
		})
	}
	if h := uc.HealthCheck; h != nil {
		s.health = some(healthCheck{path: h.Path, interval: h.Interval.D(), timeout: h.Timeout.D()})
	}
	if t := uc.TLS; t != nil {
		s.tls = some(*t)
	}
	return s
}

// upstreamModes are the modes of an upstream's breaker and outlier
// detection. They are not part of upstreamSettings: a reload that only
// switches a mode keeps the upstream whole and switches it in place
// (Upstream.setModes), so the policy keeps its state.
type upstreamModes struct {
	breakerShadow, outlierShadow bool
}

// upstreamModesOf maps an upstream's config to its policies' modes.
func upstreamModesOf(uc *config.Upstream) upstreamModes {
	var m upstreamModes
	if b := uc.Breaker; b != nil {
		m.breakerShadow = b.Mode == config.ModeShadow
	}
	if o := uc.Outlier; o != nil {
		m.outlierShadow = o.Mode == config.ModeShadow
	}
	return m
}

// balancePolicy maps a config balance to the balancer's policy.
func balancePolicy(b config.Balance) resilience.Policy {
	switch b {
	case config.BalanceP2C:
		return resilience.P2C
	case config.BalanceRoundRobin:
		return resilience.RoundRobin
	case config.BalanceLeastRequest:
		return resilience.LeastRequest
	}
	panic(fmt.Sprintf("proxy: balance %v: config.Validate lets no such value through", b))
}

// routePoliciesOf maps a route's policy config to the settings its
// policies are built from.
func routePoliciesOf(rc *config.Route) routePolicies {
	var p routePolicies
	if rt := rc.Retry; rt != nil {
		p.retry = some(resilience.RetrySettings{
			Attempts: rt.Attempts - 1, // config counts the first attempt
			On:       retryOn(rt.On),
			Backoff:  rt.Backoff.D(),
			Ratio:    rt.Budget,
		})
	}
	if h := rc.Hedge; h != nil {
		p.hedge = some(resilience.HedgeSettings{
			Fixed:      h.Delay.Fixed,
			Percentile: h.Delay.Percentile,
			MinDelay:   h.MinDelay.D(),
			MaxDelay:   h.MaxDelay.D(),
			MaxExtra:   h.MaxExtra,
			Ratio:      h.Budget,
		})
	}
	if sh := rc.Shed; sh != nil {
		p.admission = some(resilience.AdmissionSettings{
			MaxConcurrency: sh.MaxConcurrency.N,
			Adaptive:       sh.MaxConcurrency.Adaptive,
			LimitMin:       sh.Limit.Min,
			LimitMax:       sh.Limit.Max,
			LimitInitial:   sh.Limit.Initial,
			Queue:          sh.Queue,
			QueueTimeout:   sh.QueueTimeout.D(),
			CoDelTarget:    sh.CoDel.Target.D(),
			CoDelInterval:  sh.CoDel.Interval.D(),
			Shadow:         sh.Mode == config.ModeShadow,
			Fair:           sh.FairBy != nil && sh.Mode != config.ModeShadow, // a shadow admission is blind to keys
			MaxKeys:        sh.MaxKeys,
		})
	}
	p.rateLimit = rateLimitSettings(rc.RateLimit)
	return p
}

// retryOn maps retry.on to the retry policy's set.
func retryOn(on config.RetryOn) resilience.RetryOn {
	var o resilience.RetryOn
	for why := range on.Reasons() {
		o = o.WithReason(retryReason(why))
	}
	for status := range on.Statuses() {
		o = o.WithStatus(status)
	}
	return o
}

// retryReason maps a retry.on reason to the attempt ending it names.
func retryReason(r config.RetryReason) resilience.Reason {
	switch r {
	case config.RetryConnectFailure:
		return resilience.ConnectFailure
	case config.RetryReset:
		return resilience.Reset
	case config.RetryTimeout:
		return resilience.Timeout
	}
	panic(fmt.Sprintf("proxy: retry.on reason %v: config.RetryOn holds no such value", r))
}

// priority maps a config priority to admission's.
func priority(p config.Priority) resilience.Priority {
	switch p {
	case config.PriorityDefault:
		return resilience.Default
	case config.PriorityCritical:
		return resilience.Critical
	case config.PrioritySheddable:
		return resilience.Sheddable
	}
	panic(fmt.Sprintf("proxy: priority %v: config.Validate lets no such value through", p))
}
