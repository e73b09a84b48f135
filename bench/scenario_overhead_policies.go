package bench

import (
	"flag"
	"fmt"
)

// policiesConfig is issue 15's "tailguard with metrics on and with every
// policy configured but not firing" in front of upstream, for overhead's
// "tailguard, policies" arm: a route timeout, retries with a budget, a
// hedge delay no answer from a healthy upstream reaches, a breaker,
// outlier detection with latency-induced probation, adaptive shedding
// with a queue whose lowest limit is above overhead's 64 connections (so
// nothing queues or is shed), fair admission, a rate limit no one client
// reaches, header rules, an SLO and Server-Timing. Metrics are always
// on. It is what proxy's alloc test calls every policy, with the
// limits raised to a closed loop's pace.
func policiesConfig(upstream string) proxyConfig {
	return proxyConfig{
		endpoints: []string{upstream},
		upstream: []string{
			"breaker: {consecutive_failures: 5, failure_ratio: 0.5, min_requests: 20, interval: 10s, open_timeout: 5s}",
			"outlier: {consecutive_5xx: 5, latency_factor: 3, ejection_time: 30s, max_ejected_percent: 50}",
		},
		route: []string{
			"timeout: 2s",
			"per_try_timeout: 1s",
			`retry: {attempts: 2, on: [connect_failure, reset, "503"], budget: 0.2, backoff: 25ms}`,
			"hedge: {delay: 900ms, max_extra: 1, budget: 0.05}",
			"shed: {max_concurrency: adaptive, limit: {min: 128, initial: 256, max: 512}, queue: 128, queue_timeout: 50ms, priority_header: X-Priority, fair_by: client_ip}",
			"rate_limit: {rate: 1000000, key: client_ip}",
			"slo: {latency: 200ms, latency_target: 0.99, availability: 0.999}",
			"request_headers: {set: {X-Env: prod}, remove: [Cookie]}",
			"response_headers: {set: {Strict-Transport-Security: max-age=63072000}, remove: [Server]}",
			"server_timing: true",
		},
	}
}

// policies is `tailguard bench policies -upstream HOST:PORT [-listen ADDR]
// [-admin ADDR]`: it prints policiesConfig as a config file, so that what
// is measured elsewhere (bench/pgo.sh's profile) is this arm's config
// rather than a copy of it.
func (c *cli) policies(args []string) error {
	fs := flag.NewFlagSet("bench policies", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	upstream := fs.String("upstream", "", "upstream host:port (required)")
	listen := fs.String("listen", "127.0.0.1:8000", "the proxy's address")
	admin := fs.String("admin", "127.0.0.1:9901", "the admin address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("bench policies: -upstream is required: %w", flag.ErrHelp)
	}
	_, err := fmt.Fprint(c.out, policiesConfig(*upstream).yaml(*listen, *admin))
	return err
}
