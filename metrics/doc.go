// Package metrics holds what tailguard tells its operator: the admin
// server (health, readiness, the effective config) and, as they land, the
// per-route recorders of queueing latency versus service time.
package metrics
