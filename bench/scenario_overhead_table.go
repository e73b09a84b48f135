package bench

import (
	"fmt"
	"time"
)

// overheadColumns are the figures of each overhead table.
var overheadColumns = []string{"target", "req/s (closed loop, 64 conns)", "CPU per request", "p50", "p99", "p99.9", "RSS"}

// overheadOutcome tabulates the targets: the figures, then each as a
// ratio to direct, to nginx and to the baseline build (when they ran).
func overheadOutcome(rows []overheadRow, rate float64, d time.Duration, notes []string) *Outcome {
	t := &Table{
		Title:   fmt.Sprintf("Overhead: closed loop for req/s and CPU, open loop at %.0f/s for latency, %v each", rate, d),
		Columns: overheadColumns,
		Notes:   notes,
	}
	for _, r := range rows {
		t.add(r.name, numCell(r.rps, unitPerSec), numCell(r.cpuUS, unitMicros), numCell(r.p50, unitMS),
			numCell(r.p99, unitMS), numCell(r.p999, unitMS), numCell(r.rss, unitMiB))
	}
	t.note("CPU per request is the process's user + system time over the closed loop's requests: the upstream's for direct, the proxy's alone otherwise; RSS likewise")
	t.note("one worker each: tailguard GOMAXPROCS = its CPUs, nginx worker_processes 1 without master, HAProxy nbthread 1; keep-alive upstream connections")
	t.note("tailguard, policies: metrics on and every policy configured, none firing: route timeout, retry with budget, hedge at 900ms, breaker, outlier with latency probation, adaptive shed (limit ≥ 128) with a queue and fair_by, a rate limit of 10⁶/s, header rules, SLO, Server-Timing")
	t.note("fasthttp relay: `tailguard bench relay`, a fasthttp server handing each request to a HostClient and nothing else, the floor of what tailguard is built on")
	t.note("event-loop relay: `tailguard bench evrelay`, the same relay on one epoll event loop on one thread (fasthttp's header types, read/write straight from the loop), an experiment: how close a Go event loop gets to nginx")
	out := &Outcome{Tables: []*Table{t}}
	for _, base := range []string{"direct", "nginx", "tailguard baseline"} {
		if b, ok := findNamed(rows, base); ok {
			out.Tables = append(out.Tables, ratioTable(rows, b))
		}
	}
	return out
}

// ratioTable divides every target's figures by base's.
func ratioTable(rows []overheadRow, base overheadRow) *Table {
	return ratioRows(&Table{Title: "Overhead as a ratio to " + base.name, Columns: overheadColumns}, rows, base)
}
