// Package bench reproduces tailguard's claims: every figure in the README
// comes from a command here that anyone can rerun.
//
//   - Load (loadgen.go) is the load generator. Open loop by default:
//     request i is due at start + i/rate and its latency runs from that
//     intended start, so coordinated omission cannot hide queueing. A
//     closed loop finds maximum throughput. Runs are bounded by count and
//     time; results are HdrHistograms per outcome (Result), a JSON Report,
//     a text table, and a percentile-spectrum SVG (WriteSpectrum).
//   - Upstream (upstream*.go) is a fault-injecting service: a latency
//     distribution with stragglers (Latency), a capacity of N workers with
//     a FIFO queue, and errors, resets, stalls, slow bodies and stray
//     bytes (Faults), changeable at run time through its admin port. It
//     runs in-process or as `tailguard upstream`.
//   - Scenarios (scenario*.go) start what they need on 127.0.0.1, run each
//     arm (policy on and off, tailguard and its peers) in one run, and
//     print ratio tables: `tailguard bench scenario NAME`.
//   - Demo (demo*.go) is `tailguard demo`: a service with stragglers and a
//     capacity, tailguard in front with hedging and shedding, and a load
//     that rises into overload and back, watched live.
//
// bench never imports the proxy: main hands it a Proxy that starts
// tailguard, and scenarios that read a process's CPU and memory run this
// binary's own subcommands as processes. Traffic goes to loopback only,
// or to the URL a user gives.
package bench
