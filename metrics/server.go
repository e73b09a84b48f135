package metrics

import "time"

// ServerGauges are the proxy's figures that belong to no route: its client
// listener, and its upstreams' endpoints. The proxy owns them (counters
// and resilience state it updates with atomics on the hot path) and hands
// the registry a getter (SetServerGauges) that the admin side calls when
// it serves /stats or /metrics, so that metrics never imports the proxy
// and the hot path never touches client_golang.
type ServerGauges struct {
	// Listener is the client listener's figures.
	Listener ListenerGauges
	// Upstreams are the upstreams of the current routing table, by name.
	Upstreams []UpstreamGauges
	// Buffers are the buffered bodies' figures (routes[].buffering).
	Buffers BufferGauges
}

// BufferGauges are what buffered bodies hold now and what buffering did
// since start.
type BufferGauges struct {
	// MemoryBytes and DiskBytes are the room buffered bodies hold now,
	// within limits.buffer_memory and limits.buffer_disk.
	MemoryBytes, DiskBytes int64
	// Spills counts bodies that outgrew memory and went on to disk;
	// Fallbacks, bodies streamed (from the start or after a part) because
	// memory and disk were both full.
	Spills, Fallbacks uint64
}

// ListenerGauges are the client listener's figures: what reaches no
// route's metrics because it was refused before a route was chosen.
type ListenerGauges struct {
	// Connections is the number of client connections open now.
	Connections int64
	// Parked is how many of them are parked: idle between requests and
	// held without a goroutine or buffers (plain-TCP connections idle
	// past half a second).
	Parked int64
	// Errors counts the connections and requests refused before a route
	// was chosen, by cause (the X-Tailguard-Error value), since the
	// server started; every cause DESIGN.md names is present, zero or
	// not, and any other cause only once counted.
	Errors []CauseCount
}

// CauseCount is one cause's count: a label of
// tailguard_listener_errors_total and a key of /stats listener.errors.
type CauseCount struct {
	Cause string // the X-Tailguard-Error value, as "no_route"
	Count uint64
}

// UpstreamGauges are one upstream's live state.
type UpstreamGauges struct {
	// Name is the upstream's name in the config.
	Name string
	// Breaker is the upstream breaker's state: "closed", "open",
	// "half_open", or "" when the upstream has no breaker.
	Breaker string
	// Ejections counts outlier ejections made (enforce mode), of them
	// LatencyEjections those for tail latency (in shadow mode too), and
	// WouldEject those decided in shadow mode and not made; all since the
	// upstream's outlier detection was built.
	Ejections, LatencyEjections, WouldEject uint64
	// Endpoints are in config order; at most 64 (config bounds them).
	Endpoints []EndpointGauges
}

// EndpointGauges are one endpoint's live state, as the balancer, outlier
// detection and health checks see it, and its attempts since its upstream
// was built (an upstream unchanged by a reload keeps them).
type EndpointGauges struct {
	// Address is the endpoint's host:port, as configured.
	Address string
	// Healthy is false while active health checks fail it (always true
	// without health checks).
	Healthy bool
	// Ejected is true while outlier detection keeps it out.
	Ejected bool
	// Outstanding is the number of attempts sent to it and not finished.
	Outstanding int64
	// LatencyEWMA is the balancer's peak-EWMA round-trip estimate; 0:
	// no sample yet.
	LatencyEWMA time.Duration
	// Requests counts the attempts sent to it, and Failures those of them
	// that failed (a 5xx, a timeout, a refused or reset connection, a
	// malformed response).
	Requests, Failures uint64
}

// SetServerGauges sets the getter of the proxy's figures outside routes;
// nil (the default) leaves /stats' listener figures at zero and its
// upstreams empty. The getter is called on the admin side only, once per
// /stats or /metrics request, so it may take locks the hot path does not.
func (r *Registry) SetServerGauges(get func() ServerGauges) {
	r.server.Store(&get)
}

// serverGauges calls the getter SetServerGauges set; zero without one.
func (r *Registry) serverGauges() ServerGauges {
	if get := r.server.Load(); get != nil && *get != nil {
		return (*get)()
	}
	return ServerGauges{}
}
