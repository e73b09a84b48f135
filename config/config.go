package config

// Config is tailguard's whole configuration, as parsed from YAML and
// completed with defaults. It is data only: runtime objects are built from
// it by proxy.Build and never read YAML themselves.
//
// A Config returned by Load, Parse or Quick has its defaults applied and has
// passed Validate. It must not be modified afterwards except through Apply,
// which revalidates.
type Config struct {
	// Listen is the proxy's listen address. Default ":8000".
	Listen string `yaml:"listen" json:"listen"`
	// Admin is the admin server's listen address. Default "127.0.0.1:9901":
	// loopback, so the admin port is never exposed by accident.
	Admin string `yaml:"admin" json:"admin"`
	// AdminToken, if set, is required as "Authorization: Bearer <token>" on
	// every admin path but /healthz and /readyz.
	AdminToken string `yaml:"admin_token" json:"admin_token"`
	// DeadlineHeader names the header that carries a deadline, in whole
	// milliseconds, both ways: a client's, if sooner than the route's
	// timeout, becomes the request's deadline; every attempt tells the
	// upstream how long it has, so the service can give up when tailguard
	// will. Default "X-Request-Timeout-Ms"; "" turns both off.
	DeadlineHeader string `yaml:"deadline_header" json:"deadline_header"`
	// TrustedProxies are the networks of the proxies in front of
	// tailguard (load balancers, ingress) whose X-Forwarded-Proto and
	// X-Forwarded-Host are kept; any other peer's are replaced. Every
	// peer's address is appended to X-Forwarded-For. Default none.
	TrustedProxies []CIDR `yaml:"trusted_proxies" json:"trusted_proxies,omitempty"`
	// TLS, if set, terminates TLS on the proxy listener.
	TLS *TLS `yaml:"tls" json:"tls,omitempty"`
	// Log configures logging.
	Log Log `yaml:"log" json:"log"`
	// Limits bound what one client may send.
	Limits Limits `yaml:"limits" json:"limits"`
	// Drain shapes graceful shutdown.
	Drain Drain `yaml:"drain" json:"drain"`
	// Upstreams are the services tailguard may contact, by name. No other
	// destination is ever contacted.
	Upstreams map[string]*Upstream `yaml:"upstreams" json:"upstreams"`
	// Routes are matched by host, then longest path prefix, then method;
	// among equal matches the first listed wins.
	Routes []*Route `yaml:"routes" json:"routes"`

	// src locates keys in the file for error messages; nil for a Config
	// built in code.
	src *source
}

// Log configures zap logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level" json:"level"`
	// Access is off, errors (requests tailguard answered itself or that
	// got a 5xx) or all (every request, sampled). Default errors.
	Access string `yaml:"access" json:"access"`
}

// Limits bound what one client may send. They protect tailguard and the
// service from hostile or broken clients.
type Limits struct {
	// MaxConnections caps concurrent client connections. Default 10000.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxHeaderBytes caps the request header block (431 above). Default 16KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes" json:"max_header_bytes"`
	// MaxBodyBytes caps a request body (413 above) unless the route sets
	// its own max_body_bytes. Default 10MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes" json:"max_body_bytes"`
	// ReadHeaderTimeout bounds the time from a connection's first byte to
	// the end of the request headers (408 and close): the slowloris guard.
	// A new connection silent that long is closed without an answer.
	// Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// IdleTimeout closes a keep-alive client connection idle this long.
	// Default 90s. It is also how long a client may take over each piece
	// of a buffered response before tailguard gives up on it.
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// BufferMemory is the memory all buffered bodies share (routes'
	// buffering); past it, bodies spill to disk. Default 64MiB; 0: none.
	BufferMemory ByteSize `yaml:"buffer_memory" json:"buffer_memory"`
	// BufferDisk is the disk space buffered bodies share in BufferDir
	// once memory is full; past both, a body streams. Default 1GiB; 0:
	// none.
	BufferDisk ByteSize `yaml:"buffer_disk" json:"buffer_disk"`
	// BufferDir holds the temporary files of spilled bodies: an existing
	// directory; default the OS temp dir.
	BufferDir string `yaml:"buffer_dir" json:"buffer_dir,omitempty"`
}

// Drain is the graceful shutdown on SIGTERM or SIGINT: /readyz fails at
// once, new connections are still accepted for Delay (so load balancers see
// the failing probe first), then the listener closes and in-flight requests
// get up to Timeout to finish.
type Drain struct {
	// Delay defaults to 5s; 0 skips the wait.
	Delay Duration `yaml:"delay" json:"delay"`
	// Timeout defaults to 30s.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Upstream is one service: a set of equivalent endpoints.
type Upstream struct {
	// Endpoints are host:port pairs, distinct. At least one, at most
	// MaxEndpoints.
	Endpoints []string `yaml:"endpoints" json:"endpoints"`
	// Balance picks an endpoint per attempt: p2c (power of two choices
	// over peak-EWMA latency × outstanding requests; the default, and the
	// zero value), round_robin or least_request.
	Balance Balance `yaml:"balance" json:"balance"`
	// MaxConnections caps connections per endpoint. Default 512. A request
	// finding the pool full is answered 503 at once, never queued.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// ConnectTimeout bounds one dial. Default 1s.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// Breaker, if set, cuts the upstream off while it keeps failing.
	Breaker *Breaker `yaml:"breaker" json:"breaker,omitempty"`
	// Outlier, if set, ejects endpoints that keep failing.
	Outlier *Outlier `yaml:"outlier" json:"outlier,omitempty"`
	// HealthCheck, if set, probes each endpoint.
	HealthCheck *HealthCheck `yaml:"health_check" json:"health_check,omitempty"`
	// TLS, if set, makes tailguard speak TLS to every endpoint, health
	// checks included.
	TLS *UpstreamTLS `yaml:"tls" json:"tls,omitempty"`
}

// Breaker configures a circuit breaker per upstream.
type Breaker struct {
	// ConsecutiveFailures opens the breaker after that many failed
	// requests in a row; 0 disables this trigger. At least one of it and
	// FailureRatio must be set.
	ConsecutiveFailures int `yaml:"consecutive_failures" json:"consecutive_failures"`
	// FailureRatio, in (0, 1], opens the breaker when that share of the
	// requests in Interval failed, once MinRequests were seen; 0 disables
	// this trigger.
	FailureRatio float64 `yaml:"failure_ratio" json:"failure_ratio"`
	// MinRequests is the sample FailureRatio needs before it counts.
	MinRequests int `yaml:"min_requests" json:"min_requests"`
	// Interval is the window over which counts are kept.
	Interval Duration `yaml:"interval" json:"interval"`
	// OpenTimeout is how long the breaker stays open before probing.
	OpenTimeout Duration `yaml:"open_timeout" json:"open_timeout"`
	// HalfOpenRequests is how many probes may run while half-open.
	HalfOpenRequests int `yaml:"half_open_requests" json:"half_open_requests"`
	// Mode is enforce, or shadow: the breaker's state machine runs and
	// the requests it would refuse are counted (would_reject), but it
	// never opens: every request is sent. The zero value is enforce.
	Mode Mode `yaml:"mode" json:"mode"`
}

// Outlier configures ejection of failing or slow endpoints.
type Outlier struct {
	// Consecutive5xx ejects an endpoint after that many 5xx or connection
	// failures in a row; > 0. Required unless LatencyFactor is set; then
	// absent means failures never eject.
	Consecutive5xx int `yaml:"consecutive_5xx" json:"consecutive_5xx"`
	// LatencyFactor, > 1, ejects an endpoint whose tail latency (p99 of
	// its last seconds of attempts) is at least this many times its
	// peers' median (latency-induced probation). 0, the zero value, turns
	// it off.
	LatencyFactor float64 `yaml:"latency_factor" json:"latency_factor,omitempty"`
	// EjectionTime is how long an ejected endpoint stays out; > 0.
	EjectionTime Duration `yaml:"ejection_time" json:"ejection_time"`
	// MaxEjectedPercent, 0 to 100, caps the share of endpoints ejected at
	// once, so that ejection never empties the upstream.
	MaxEjectedPercent int `yaml:"max_ejected_percent" json:"max_ejected_percent"`
	// Mode is enforce, or shadow: ejections are decided and counted
	// (would_eject) and no endpoint is ejected. The zero value is
	// enforce.
	Mode Mode `yaml:"mode" json:"mode"`
}

// HealthCheck configures active probing of endpoints.
type HealthCheck struct {
	// Path is requested with GET on each endpoint; it starts with "/".
	Path string `yaml:"path" json:"path"`
	// Interval is the time between probes; > 0.
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout bounds one probe; > 0 and <= Interval.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Route sends matching requests to an upstream under a set of policies.
// Policies are off unless configured.
type Route struct {
	// Name identifies the route in metrics and logs; unique. Required.
	Name string `yaml:"name" json:"name"`
	// Match selects the requests the route takes.
	Match Match `yaml:"match" json:"match"`
	// Upstream names the upstream the route sends to. Required.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Timeout bounds the whole request, all attempts, body included.
	// Default 30s; an explicit 0 means none (long polling, big transfers).
	Timeout *Duration `yaml:"timeout" json:"timeout"`
	// MaxBodyBytes overrides limits.max_body_bytes for this route; an
	// explicit 0 means no limit (the body streams through).
	MaxBodyBytes *ByteSize `yaml:"max_body_bytes" json:"max_body_bytes,omitempty"`
	// PerTryTimeout bounds one attempt; 0 means only Timeout applies. It
	// must not exceed Timeout.
	PerTryTimeout Duration `yaml:"per_try_timeout" json:"per_try_timeout"`
	// Retry, if set, retries failed attempts.
	Retry *Retry `yaml:"retry" json:"retry,omitempty"`
	// Hedge, if set, sends extra attempts to cut tail latency.
	Hedge *Hedge `yaml:"hedge" json:"hedge,omitempty"`
	// Shed, if set, bounds the route's concurrency and queue.
	Shed *Shed `yaml:"shed" json:"shed,omitempty"`
	// RateLimit, if set, limits each client key to a rate.
	RateLimit *RateLimit `yaml:"rate_limit" json:"rate_limit,omitempty"`
	// SLO, if set, states the route's objectives.
	SLO *SLO `yaml:"slo" json:"slo,omitempty"`
	// ServerTiming adds a Server-Timing header with queue and upstream
	// time.
	ServerTiming bool `yaml:"server_timing" json:"server_timing"`
	// Upgrades are the protocols a request may switch to through the
	// route (websocket): the upstream's 101 is relayed and the two
	// connections are spliced until either side closes. Without it,
	// Upgrade is a hop-by-hop header, removed like the others.
	Upgrades []Upgrade `yaml:"upgrades" json:"upgrades,omitempty"`
	// RequestHeaders, if set, change the request's headers before it is
	// sent upstream.
	RequestHeaders *HeaderRules `yaml:"request_headers" json:"request_headers,omitempty"`
	// ResponseHeaders, if set, change the upstream's response headers
	// before they reach the client; tailguard's own answers (its errors)
	// are left as they are.
	ResponseHeaders *HeaderRules `yaml:"response_headers" json:"response_headers,omitempty"`
	// Buffering shields the upstream from slow clients; both directions
	// are on by default, as in nginx.
	Buffering Buffering `yaml:"buffering" json:"buffering"`
}

// Buffering is a route's slow-client shield. With Response on, a response
// is read from the upstream as fast as it comes, its connection goes back
// to the pool, and it is written at the client's pace; a response with
// X-Accel-Buffering: no or Content-Type: text/event-stream streams anyway.
// With Request on, a request body is collected before an upstream
// connection is taken. Bodies take room from limits.buffer_memory, then
// limits.buffer_disk; one that fits neither streams.
type Buffering struct {
	Request  Switch `yaml:"request" json:"request"`
	Response Switch `yaml:"response" json:"response"`
}

// Match selects requests. Empty fields match everything.
type Match struct {
	// Host matches the request's host without port, case-insensitively.
	Host string `yaml:"host" json:"host"`
	// PathPrefix must start with "/". Default "/".
	PathPrefix string `yaml:"path_prefix" json:"path_prefix"`
	// Methods, upper case; empty means any.
	Methods []string `yaml:"methods" json:"methods"`
}

// Retry configures retries of failed attempts, for idempotent requests
// only.
type Retry struct {
	// Attempts is the most attempts a request gets, counting the first
	// one: attempts: 2 means one retry, 1 means none. Required; 1 to 10.
	Attempts int `yaml:"attempts" json:"attempts"`
	// On is what is retried: connect_failure, reset, timeout, or a
	// 4xx/5xx status such as "503". The zero value retries nothing.
	On RetryOn `yaml:"on" json:"on"`
	// Budget, 0 to 1, caps the route's retries at this share of its
	// requests over a sliding window, on top of a small per-second
	// minimum of extra attempts that even a quiet route always gets.
	// Default 0.2; an explicit 0 leaves only that minimum.
	Budget float64 `yaml:"budget" json:"budget"`
	// Backoff is the wait before a retry; >= 0.
	Backoff Duration `yaml:"backoff" json:"backoff"`
	// Mode is enforce, or shadow: a failed request's first retry is
	// decided (on, budget, deadline) and counted (would_retry), and not
	// made. The zero value is enforce.
	Mode Mode `yaml:"mode" json:"mode"`
}

// Hedge configures hedged requests: an extra attempt when the first is
// slow, for idempotent requests only.
type Hedge struct {
	// Delay is how long to wait before hedging: fixed or a percentile of
	// service time. Required.
	Delay HedgeDelay `yaml:"delay" json:"delay"`
	// MinDelay and MaxDelay clamp a percentile delay; 0 means no bound.
	MinDelay Duration `yaml:"min_delay" json:"min_delay"`
	// MaxDelay is the upper clamp; when set, MinDelay must not exceed it.
	MaxDelay Duration `yaml:"max_delay" json:"max_delay"`
	// MaxExtra bounds the extra attempts per request; >= 0.
	MaxExtra int `yaml:"max_extra" json:"max_extra"`
	// Budget, 0 to 1, caps the route's hedges at this share of its
	// requests over a sliding window, on top of a small per-second
	// minimum of extra attempts that even a quiet route always gets.
	// Default 0.05; an explicit 0 leaves only that minimum.
	Budget float64 `yaml:"budget" json:"budget"`
	// Mode is enforce, or shadow: the hedges an attempt slower than the
	// delay would get are decided (max_extra, budget, saturation) and
	// counted (would_hedge), and never sent. The zero value is enforce.
	Mode Mode `yaml:"mode" json:"mode"`
}

// Shed configures admission control: a concurrency limit, a bounded wait
// queue and the refusal of what exceeds them.
type Shed struct {
	// MaxConcurrency is a positive number or "adaptive", which lets the
	// limit follow the upstream's latency within Limit. Required.
	MaxConcurrency Concurrency `yaml:"max_concurrency" json:"max_concurrency"`
	// Queue is how many requests may wait for a slot. Default 128; 0
	// means no queue: at the limit a request is refused at once.
	Queue int `yaml:"queue" json:"queue"`
	// QueueTimeout bounds one request's wait for a slot; > 0. Default
	// 50ms. Only with a queue.
	QueueTimeout Duration `yaml:"queue_timeout" json:"queue_timeout"`
	// PriorityHeader, if set, names the request header carrying the
	// request's priority: critical, default or sheddable, in any case.
	PriorityHeader string `yaml:"priority_header" json:"priority_header"`
	// PriorityDefault is the priority of requests without a valid
	// priority header: critical, default or sheddable. The zero value is
	// default.
	PriorityDefault Priority `yaml:"priority_default" json:"priority_default"`
	// Mode is enforce, or shadow to count what would be refused while
	// refusing nothing. The zero value is enforce.
	Mode Mode `yaml:"mode" json:"mode"`
	// Status is the status of a refusal: 503 or 429. Default 503.
	Status int `yaml:"status" json:"status"`
	// CoDel tunes the queue discipline. Only with a queue.
	CoDel ShedCoDel `yaml:"codel" json:"codel,omitzero"`
	// Limit bounds the adaptive limit. Only with max_concurrency: adaptive.
	Limit ShedLimit `yaml:"limit" json:"limit,omitzero"`
	// FairBy, if set, shares the limit and the queue fairly among client
	// keys while the route is saturated, so that a flooding client waits
	// behind itself.
	FairBy *ClientKey `yaml:"fair_by" json:"fair_by,omitempty"`
	// MaxKeys bounds the client keys FairBy tracks at once; only with
	// fair_by. 1 to 1,000,000; default 10,000.
	MaxKeys int `yaml:"max_keys" json:"max_keys,omitempty"`
}

// ShedCoDel tunes the wait queue's discipline: FIFO while the queue drains;
// once the oldest waiter's wait has stayed above Target for Interval, the
// newest are served first and no request waits longer than Target.
type ShedCoDel struct {
	// Target is the wait a standing queue is cut to; > 0 and less than
	// queue_timeout. Default 5ms, or half of queue_timeout if less.
	Target Duration `yaml:"target" json:"target"`
	// Interval is how long waits must stay above Target before the queue
	// counts as standing; > 0. Default 100ms.
	Interval Duration `yaml:"interval" json:"interval"`
}

// ShedLimit bounds an adaptive concurrency limit: Min <= Initial <= Max.
type ShedLimit struct {
	// Min is the floor; >= 1. Default 4.
	Min int `yaml:"min" json:"min"`
	// Max is the ceiling. Default 1000, or Min if more.
	Max int `yaml:"max" json:"max"`
	// Initial is where the limit starts. Default 20, within [Min, Max].
	Initial int `yaml:"initial" json:"initial"`
}

// SLO states a route's objectives: at least a latency objective or an
// availability objective.
type SLO struct {
	// Latency is the latency objective's threshold; set with
	// LatencyTarget.
	Latency Duration `yaml:"latency" json:"latency"`
	// LatencyTarget, in (0, 1), is the share of requests that must finish
	// within Latency.
	LatencyTarget float64 `yaml:"latency_target" json:"latency_target"`
	// Availability, in (0, 1), is the share of requests that must not fail.
	Availability float64 `yaml:"availability" json:"availability"`
	// Period is the span the objectives promise over, and so the error
	// budget's: `tailguard slo rules` scales its alert thresholds to it.
	// A whole number of hours; default 30 days.
	Period Duration `yaml:"period" json:"period"`
}
