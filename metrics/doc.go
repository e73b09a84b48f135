// Package metrics holds what tailguard tells its operator: per route, how
// long requests waited in tailguard (queueing latency) versus how long the
// service took (service time), as percentiles over sliding windows, with
// SLOs; and the admin server that shows it (health, readiness, the
// effective config, /stats, /stats/hdr, /metrics).
//
// # Definitions
//
// Every request is recorded once, when its response is handed back, as a
// Sample of four durations:
//
//   - queue: arrival → admission, the time spent waiting in tailguard;
//   - service: the winning attempt's upstream time (absent when no attempt
//     was made: shed, breaker open, bad request);
//   - response: arrival → response handed back, what the client saw;
//   - overhead: response − queue − service, tailguard's own work
//     (parsing, routing, retries' backoff, copying), never below zero.
//
// Arrival is fasthttp's ctx.Time(), taken when the request was read, not
// when a handler got round to it. A recorder that starts its clock late
// hides exactly the waiting it should show (coordinated omission: a
// stalled server serves few requests, and each looks fast from the inside).
// Starting at arrival, waiting in tailguard always shows up as queue time.
//
// Values are recorded in whole microseconds, clamped to [1 µs, 1 h]: a
// response slower than an hour is recorded as an hour. Status classes are
// 2xx (with 1xx: a final 1xx such as 101 means the exchange succeeded),
// 3xx, 4xx and 5xx (with any status outside 100–599).
//
// # Recorder
//
// A Route has S shards (a power of two, by default ≥ GOMAXPROCS), chosen
// by the connection id: HTTP/1.1 requests on one connection run one after
// another, so a shard is contended only when connections collide. Each
// shard is a mutex and two tallies, hot and cold; a tally is four dense
// HdrHistograms and the counters (requests, status classes, shed,
// timeouts, breaker rejects, retries, hedges sent and won, the shadow
// modes' would-be retries, hedges and breaker refusals, latency-good,
// sums). Record takes the shard's lock for four RecordValue calls and a
// few increments: one lock per request, no allocation.
//
// Once a second, Registry.Tick swaps each shard's hot and cold (a pointer
// swap under the lock), merges cold into the second's part outside the
// lock, and resets cold. The part then feeds:
//
//   - 10s: a ring of 10 one-second slots;
//   - 1m and 5m: a ring of 30 ten-second slots (1m merges the last 6, 5m
//     all 30; the newest slot is still filling, so 1m covers 51–60 s);
//   - 1h: a ring of 60 one-minute slots of counters only, for the 1h burn
//     rate;
//   - all: a dense histogram per metric and counters since the route was
//     first configured, and the queue, service and response histograms'
//     /metrics buckets (classic and native, 4 KiB each): the tick adds
//     each second's populated buckets to them, so a scrape copies them
//     instead of reading "all", whose thousands of buckets real traffic
//     mostly fills.
//
// Slots keep HdrHistogram's packed (sparse) form, since a second or ten
// fill few of the buckets. A reader merges the slots of a window into a
// Snapshot under the Route's read lock, which Record never takes. rps is
// requests over the span a window covers, which is shorter while a route
// is young (window_s in /stats says how long).
//
// # SLOs
//
// Following the SRE workbook: the latency SLI is the share of requests
// with response ≤ SLO.Latency (counted when recorded, against the SLO of
// the time); the availability SLI is the share not 5xx, tailguard's own
// 5xx included. The error budget and burn rates use the availability
// objective, or the latency objective when there is no availability one:
// error budget remaining = 1 − bad share / (1 − target) over the selected
// window (negative once overspent), burn rate = bad share / (1 − target)
// over the last 5 minutes and hour (1 spends the budget exactly over the
// SLO period). With no requests, SLIs are 1, burn rates 0 and the budget
// untouched. A route without SLO has "slo": null in /stats; without a
// latency objective, "latency_sli" is null.
//
// # Admin paths
//
// /stats is DESIGN.md's JSON, for ?window=10s|1m|5m|all (default 1m;
// anything else is 400), with latency in milliseconds. It adds window_s,
// in_flight, queued, latency_ms.overhead, and would_retry, would_hedge
// and would_reject (what shadow-mode policies decided and did not do,
// zero without them). breaker ("" without a
// breaker), concurrency_limit, in_flight and queued come from the route's
// Gauges, zero until resilience feeds them. Outside the routes, listener
// (client connections open, refusals before routing by cause since start)
// and upstreams (breaker; outlier ejections, latency_ejections and
// would_eject since the upstream was built; endpoints: healthy, ejected,
// outstanding, latency_ewma_ms, requests, failures) come from the
// ServerGauges getter the proxy hands SetServerGauges. Refusals count by
// cause: shed (admission) and rate_limited (the route's rate limit). A
// route with per-client-key tables adds "fair" (shed.fair_by) and
// "rate_limit", each {keys_tracked, max_keys, top_admitted, top_refused},
// the top lists bounded (TopKeys) and the keys shown nowhere else.
// ?format=text gives an aligned table for a terminal.
//
// /stats/hdr gives each route's histograms (default window all) in
// HdrHistogram's V2 compressed encoding, base64, values in microseconds:
//
//	{"window": "all", "unit": "us",
//	 "routes": {"api": {"queue": "HISTFAA...", "service": "...", "response": "...", "overhead": "..."}}}
//
// Decoded and merged, the histograms of several pods give exact fleet
// percentiles (within the recording precision).
//
// /metrics is Prometheus's exposition (text, or protobuf when the scraper
// asks for it), from a registry of its own:
//
//   - counters since the route was first configured:
//     tailguard_requests_total{route,code} (code is the class, "2xx"…),
//     tailguard_shed_total, tailguard_rate_limited_total,
//     tailguard_timeouts_total,
//     tailguard_breaker_rejects_total, tailguard_retries_total,
//     tailguard_hedges_sent_total, tailguard_hedges_won_total,
//     tailguard_would_retry_total, tailguard_would_hedge_total,
//     tailguard_would_reject_total (shadow modes),
//     tailguard_slo_latency_good_total (routes with a latency objective);
//   - histograms tailguard_queue_seconds, tailguard_service_seconds and
//     tailguard_response_seconds with the same buckets everywhere, so
//     histogram_quantile aggregates across pods: 100 µs, 250 µs, 500 µs,
//     1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10, 30 s, +Inf.
//     Counts come from the cumulative HdrHistogram: a value above a bound
//     by less than the recording precision may be counted under it. To a
//     scraper that negotiates protobuf, each is also a native histogram
//     (schema 4, zero threshold 2^-20 s; see nativeSchema), so a fleet
//     quantile is within 5% whatever the distribution. Their buckets
//     carry exemplars (OpenMetrics and protobuf scrapes; the text format
//     has none): a recent request's {trace_id="..."} (the W3C traceparent's
//     trace id) or {request_id="..."} (its X-Request-Id), its value and
//     the tick that took it, one per classic bucket of the response time
//     (see exemplar.go);
//   - gauges from Gauges: tailguard_breaker_state (0 closed, 1 half-open,
//     2 open; absent without a breaker), tailguard_concurrency_limit (0:
//     none), tailguard_in_flight, tailguard_queued, and per client-key
//     table tailguard_keys_tracked{table} and tailguard_keys_max{table}
//     (table is "fair" or "rate_limit"; no label names a client);
//   - outside the routes, from ServerGauges: tailguard_listener_connections,
//     tailguard_listener_connections_parked,
//     tailguard_listener_errors_total{cause}, and per upstream
//     tailguard_upstream_breaker_state{upstream},
//     tailguard_outlier_ejections_total{upstream},
//     tailguard_outlier_latency_ejections_total{upstream},
//     tailguard_outlier_would_eject_total{upstream} and
//     tailguard_endpoint_healthy, _ejected, _outstanding,
//     _latency_ewma_seconds, _requests_total and _failures_total, labelled
//     {upstream,endpoint} (at most 64 endpoints an upstream);
//     tailguard_buffer_bytes{where="memory"|"disk"},
//     tailguard_buffer_spills_total and tailguard_buffer_fallbacks_total;
//   - SLO gauges: tailguard_slo_latency_sli, tailguard_slo_availability_sli
//     and tailguard_slo_error_budget_remaining over the last hour, and
//     tailguard_slo_burn_rate{window="5m"|"1h"}. Longer SLO periods belong
//     in PromQL, over tailguard_requests_total and
//     tailguard_slo_latency_good_total: SLORules writes the recording and
//     alerting rules ("tailguard slo rules");
//   - Go runtime and process metrics.
//
// grafana-dashboard.json charts these; prometheus-scrape.yaml scrapes a
// Kubernetes pod's sidecar.
//
// # Memory and cost, measured
//
// BenchmarkMemoryPerRoute on the 2-vCPU development VM (S = 2 shards):
// live heap per route after a collection, and the process's RSS growth
// per route (each case in its own process), just configured and with
// every window full of 5 minutes of log-normal traffic:
//
//	digits  empty     full, 100 rps        full, 10,000 rps
//	2       0.58 MiB  0.98 MiB (RSS 1.4)   1.8 MiB (RSS 1.9)
//	3       3.6 MiB   4.1 MiB  (RSS 4.1)   8.1 MiB (RSS 6.9)
//
// A dense histogram of the 1 µs–1 h range is 26 KiB at 2 digits and
// 184 KiB at 3; a route holds (2·S + 1) × 4 of them (the shards' tallies
// and "all"), plus the packed slots, which grow with the spread of the
// traffic. /metrics adds 12 KiB a route (the buckets the tick keeps for
// it) and exemplars 1.1 KiB a shard (18 slots of 64 bytes). Dense slots would hold 41 histograms per metric: 4.2 MiB per
// route at 2 digits, 30 MiB at 3, whatever the traffic. 2 digits (values within 1%, finer than any chart or alert
// reads) is the default: 3 digits would cost 4–6× the memory for a
// precision nobody sees. On 64 cores (S = 64) the shards alone would be
// 13 MiB per route at 2 digits and 94 MiB at 3.
//
// Record costs 33–39 ns on one goroutine (BenchmarkRecord, -cpu 1 and 2)
// and 17 ns per request with two goroutines on two cores
// (BenchmarkRecordParallel -cpu 2, one shard each), with 0 allocations; a
// tick costs about 0.1 ms per route at 1,000 rps (0.2–0.4 ms at 3 digits),
// of which keeping /metrics' buckets is about 4 µs a histogram
// (BenchmarkPromBucketsAdd). A trace id or request id to keep as an
// exemplar adds a copy of it under the same lock, no allocation
// (BenchmarkRecordExemplar; the difference was within the shared VM's
// noise).
//
// A /metrics scrape of 50 routes, each histogram filled by 10,000
// log-normal requests (BenchmarkScrape), took 17–39 ms when it copied
// and walked the dense histograms, and 3.0–5.9 ms in text and 2.2–4.7 ms
// in protobuf when it read the tick's buckets (load 5–7). Issue 16 then
// made its memory reused from scrape to scrape, its label pairs built
// once per route, and the text formats' histograms classic only: it
// allocates 1.0 MiB in text and 0.9 MiB in protobuf instead of 1.9 and
// 1.8, and costs about 4 ms of CPU in either format instead of 5.2 and
// 5.8 (2026-12-05, the same 2-vCPU VM at load 8–12, where its wall-clock
// medians were 9.4–11.3 ms in text and 3.2–5.3 ms in protobuf, 2.9–4.1
// and 1.8–2.7 ms in the least loaded runs, 5.0–7.0 and 2.5–3.3 ms
// before). What is left is mostly client_golang's: encoding (half of a
// text scrape), gathering, and the process collector's reading of /proc;
// tailguard's Collect is under a tenth of it.
package metrics
