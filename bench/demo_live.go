package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// demoLive prints the demo's line a second, the client's view beside
// tailguard's (read from its admin /stats), and keeps what the client saw
// in each phase for the summary. Its methods run on the load's progress
// goroutine, one at a time.
type demoLive struct {
	out    io.Writer
	admin  string
	phases []Phase
	loads  []float64   // each phase's load, × capacity
	seen   []*Result   // what completed during each phase
	prev   *routeStats // counts at the previous line, window all
}

func newDemoLive(out io.Writer, admin string, capacity float64, d time.Duration) *demoLive {
	live := &demoLive{out: out, admin: admin, prev: &routeStats{}}
	for _, ph := range demoPhases {
		live.phases = append(live.phases, Phase{Rate: ph.load * capacity, Duration: time.Duration(ph.share * float64(d))})
		live.loads = append(live.loads, ph.load)
		live.seen = append(live.seen, newResult())
	}
	return live
}

// phaseAt is the phase under way at elapsed.
func (d *demoLive) phaseAt(elapsed time.Duration) int {
	for i, p := range d.phases {
		if elapsed < p.Duration {
			return i
		}
		elapsed -= p.Duration
	}
	return len(d.phases) - 1
}

// line is the load's progress callback.
func (d *demoLive) line(p Progress) {
	i := d.phaseAt(p.Elapsed - time.Second/2) // most of the last second's requests were sent then
	d.seen[i].add(p.Last)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	w, err1 := fetchStats(ctx, d.admin, "10s")
	all, err2 := fetchStats(ctx, d.admin, "all")
	client := fmt.Sprintf("%5.0fs %7.0f/s %11s", p.Elapsed.Seconds(), d.phases[d.phaseAt(p.Elapsed)].Rate, fmtMS(msOf(p.Last.Quantile(0.99))))
	if err := firstErr(err1, err2); err != nil {
		fmt.Fprintf(d.out, "%s | admin: %v\n", client, err)
		return
	}
	fmt.Fprintf(d.out, "%s | %7d/s %10s %12s %9d %8d %6d\n", client, p.Last.CountOf(Is2xx),
		fmtMS(w.LatencyMS.Queue.P99), fmtMS(w.LatencyMS.Service.P99),
		all.Hedges.Sent-d.prev.Hedges.Sent, all.Shed-d.prev.Shed, w.ConcurrencyLimit)
	d.prev = all
}

// summary prints what the client saw in each phase.
func (d *demoLive) summary() {
	fmt.Fprintf(d.out, "\nwhat the client saw (latency from each request's intended start; by the second it completed in):\n\n")
	t := &Table{Title: "demo phases", Columns: []string{"phase", "offered", "requests", "2xx", "shed (503)", "p50", "p99", "p99.9"}}
	for i, r := range d.seen {
		t.add(fmt.Sprintf("%.0f%% of capacity", 100*d.loads[i]), numCell(d.phases[i].Rate, unitPerSec), countCell(r.Count()),
			countCell(r.CountOf(Is2xx)), countCell(r.CountOf(IsCause("shed"))), msCell(r.Quantile(0.5)),
			msCell(r.Quantile(0.99)), msCell(r.Quantile(0.999)))
	}
	t.note("served = 2xx a second at the client; queue = waiting in tailguard's admission queue; service = in the upstream (the winning attempt); both p99 over tailguard's last 10 s")
	t.note("hedges stop while the route is saturated; under overload the limit keeps the service near its capacity and the rest is shed at once")
	t.Write(d.out)
	fmt.Fprintln(d.out, "demo over; tailguard stopped. In front of your own service: tailguard -upstream http://127.0.0.1:8080")
}
