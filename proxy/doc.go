// Package proxy is tailguard's request path: a fasthttp server whose
// handler takes each request through one fixed order of decisions, the
// routing table it matches against, Build (the one place a config becomes
// run-time objects) and reload.
//
// The request path is one function, serve (serve.go), read top to bottom:
//
//	fasthttp.Server ─▶ serve(ctx)                                        serve.go
//	  edge.Check(ctx)                    400/414/431 + close if refused    internal/edge
//	  table.Match(host, path, method)    404 if none                       table.go
//	  x.takeBody()                       413 over the limit; small bodies whole
//	  x.admit()                          rate limit (ratelimit.go) ── over → 429 rate_limited
//	                                     then the only place a request waits    resilience.Admission ── shed → 503/429
//	  x.guardedAttempts()                breaker, then the attempt loop    loop.go ── open → 503
//	      plain:  attempt.run on the handler goroutine, ctx's own request and response
//	      hedged: primary on a hedge worker; after the hedge delay, another (hedge.go)
//	      each attempt.run: pick endpoint → per-try deadline → Endpoint.RoundTrip → settle
//	      retry a failed round while retry policy, budget and deadline allow
//	  permit.Release(service, ok)        feeds the adaptive limit
//	  x.respond()                        tailguard's own answer for a cause, a tunnel for a 101 (tunnel.go),
//	                                     or the upstream's response
//	  s.record(x)                        one metrics.Sample per request; RateLimit headers
//	                                     (a streamed body: when it ends, sent.go)
//
// The breaker stands outside the attempt loop, so it counts what the
// client saw: one outcome per request, and no attempt at all while it is
// open. Failures that retries or hedges hide feed outlier detection per
// endpoint instead, and each attempt's round trip feeds its latency-induced
// probation (outlier.latency_factor); the balancer picks among the
// endpoints outlier detection leaves in, those back from an ejection
// weighted by their slow start. While the breaker is half-open the loop
// makes one plain attempt, so that probes are not amplified.
//
// A response whose body streams from the upstream is judged when its
// stream ends, not at its head (owed.go): one that breaks off mid-body is
// a failure (cause.MidBodyFailure) for the balancer, outlier detection,
// the endpoint's counts, the breaker and the request's metrics, though
// its head, already sent, carried a success.
//
// A policy in shadow mode (shadow.go) takes its decisions where enforce
// mode would and only counts them: a shadow breaker lets the loop run
// where it would refuse, a shadow hedge keeps the round plain, a shadow
// retry lets the first failed round end the loop, a shadow outlier ejects
// nobody. The counts ride on the request's metrics sample.
//
// Why tailguard answered a request itself is a cause (internal/cause):
// one table gives its status, X-Tailguard-Error, body and metrics flags.
// The wire is in rooms of its own: internal/edge guards the client side
// (TLS termination, connection cap, strict request checks, chunk metering,
// lingering close); internal/client is the HTTP/1.1 client to upstream
// endpoints (pool, TLS, exact framing, the reuse check that prevents
// response desync, upgrades, health probes); internal/splice joins the
// two connections of a WebSocket tunnel. The policies themselves are
// resilience's pure decision types; proxy does the I/O around them.
//
// What no route's metrics see is counted with atomics where it happens
// (refusals before routing by cause, open client connections, each
// endpoint's attempts) and handed to the metrics registry as one getter
// (gauges.go), which the admin side calls at scrape time with the
// resilience state it reads: the hot path touches no map and no
// Prometheus type.
package proxy
