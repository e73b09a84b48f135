package bench

import (
	"context"
	"fmt"
	"time"
)

// wsSizes are the message sizes the websocket scenario echoes: a small
// message, where the per-message cost shows, and a 16 KiB one, where the
// copying does.
var wsSizes = []int{64, 16 << 10}

// wsMaxCount bounds every WebSocket load by count too, far above what
// -duration lets it send.
const wsMaxCount = 10_000_000

// wsRow is what one target measured at one message size: messages a
// second over 64 connections, the process's CPU per message and the
// generator's busy share, and the round trip's p50 and p99 in ms over one
// connection.
type wsRow struct {
	name             string
	size             int
	mps, cpuUS, busy float64
	p50, p99         float64
}

// runWebSocket measures tailguard's WebSocket tunnel against the same
// echo upstream reached directly: for 64 B and 16 KiB binary messages, a
// closed loop over 64 connections (one message in flight on each) for
// messages a second and CPU per message, then one connection sending
// message after message for the round trip's p50 and p99, and what the
// tunnel adds to them. The upstream (`bench wsecho`, gorilla/websocket)
// and tailguard share CPU 0, the generator (`bench ws`, gorilla/websocket)
// has CPU 1 (-pin); the targets take turns for -rounds rounds (3) and
// each figure is the median. -duration is each measurement (4s).
func runWebSocket(ctx context.Context, e *Env) (*Outcome, error) {
	d := e.span(4*time.Second, 500*time.Millisecond)
	b, err := e.newBed(ctx, "bench", "wsecho")
	if err != nil {
		return nil, err
	}
	defer b.close()
	targets := []overheadTarget{
		{name: "direct"},
		{name: "tailguard", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			cfg := proxyConfig{endpoints: []string{upstream}, route: []string{"upgrades: [websocket]"}}
			return e.startTailguardProcess(ctx, dir, cfg, e.self())
		}},
	}
	rows, notes, err := takeTurns(b.rounds, targets, medianWSRows, func(tg overheadTarget) ([]wsRow, error) {
		return e.wsTarget(ctx, tg, b, d)
	})
	if err != nil {
		return nil, err
	}
	return wsOutcome(rows, d, append(notes, b.notes...)), nil
}

// wsTarget measures one target at every message size.
func (e *Env) wsTarget(ctx context.Context, tg overheadTarget, b *bed, d time.Duration) ([]wsRow, error) {
	addr, proc, stop, err := tg.reach(ctx, b.dir, b.upAddr, b.up)
	if err != nil {
		return nil, err
	}
	defer stop()
	url := "ws://" + addr + "/"
	e.logf("websocket: %s at %s", tg.name, url)
	rows := make([]wsRow, 0, len(wsSizes))
	for _, size := range wsSizes {
		load := func(conns int) func(time.Duration) (*Report, float64, error) {
			return func(d time.Duration) (*Report, float64, error) {
				return e.runLoad(ctx, "echo", []string{"ws", "-url", url, "-size", fmt.Sprint(size),
					"-connections", fmt.Sprint(conns), "-duration", d.String(), "-count", fmt.Sprint(wsMaxCount)})
			}
		}
		tp, err := measureCPU(proc, d, load(64))
		if err != nil {
			return nil, err
		}
		lat, _, err := load(1)(d)
		if err != nil {
			return nil, err
		}
		rows = append(rows, wsRow{name: tg.name, size: size, mps: tp.rps, cpuUS: tp.cpuUS, busy: 100 * tp.busy,
			p50: lat.LatencyMS.P50, p99: lat.LatencyMS.P99})
	}
	return rows, nil
}

// medianWSRows is each figure's median over one target's rounds, size by
// size.
func medianWSRows(rounds [][]wsRow) []wsRow {
	med := make([]wsRow, len(rounds[0]))
	for i := range med {
		at := make([]wsRow, len(rounds))
		for r, rows := range rounds {
			at[r] = rows[i]
		}
		med[i] = medianFigures(at)
	}
	return med
}

func (r wsRow) rowName() string { return r.name }

// figures are messages/s, CPU per message, p50, p99 and the load's busy
// share.
func (r wsRow) figures() []float64 { return []float64{r.mps, r.cpuUS, r.p50, r.p99, r.busy} }

func (r *wsRow) setFigures(f []float64) {
	r.mps, r.cpuUS, r.p50, r.p99, r.busy = f[0], f[1], f[2], f[3], f[4]
}

// wsColumns are the figures of the websocket table.
var wsColumns = []string{"target, message", "messages/s (64 conns)", "CPU per message", "p50 (1 conn)", "p99 (1 conn)",
	"added p50", "added p99", "load CPU"}

// wsOutcome tabulates the targets size by size, with what the tunnel adds
// to direct's round trip, then tailguard's figures as ratios to direct's.
func wsOutcome(targets [][]wsRow, d time.Duration, notes []string) *Outcome {
	t := &Table{
		Title:   fmt.Sprintf("WebSocket echo through tailguard's tunnel vs direct, %v each", d),
		Columns: wsColumns,
		Notes:   notes,
	}
	r := &Table{Title: "WebSocket as a ratio to direct", Columns: []string{"target, message", "messages/s (64 conns)",
		"CPU per message", "p50 (1 conn)", "p99 (1 conn)"}}
	for i, size := range wsSizes {
		var direct *wsRow
		for _, tg := range targets {
			row := tg[i]
			name := fmt.Sprintf("%s, %s", row.name, sizeText(size))
			added50, added99 := blank, blank
			if row.name == "direct" {
				direct = &row
			} else if direct != nil {
				added50, added99 = numCell(row.p50-direct.p50, unitMS), numCell(row.p99-direct.p99, unitMS)
				r.add(name, ratioCell(row.mps, direct.mps), ratioCell(row.cpuUS, direct.cpuUS),
					ratioCell(row.p50, direct.p50), ratioCell(row.p99, direct.p99))
			}
			t.add(name, numCell(row.mps, unitPerSec), numCell(row.cpuUS, unitMicros), numCell(row.p50, unitMS),
				numCell(row.p99, unitMS), added50, added99, numCell(row.busy, unitPercent))
		}
	}
	t.note("messages/s: 64 connections, one binary message in flight on each, echoed whole before the next; p50/p99: one connection, message after message (round trips without queueing); added: tailguard's minus direct's")
	t.note("CPU per message is the process's user + system time over the 64-connection loop's messages: the echo upstream's for direct, tailguard's alone otherwise (one message in each direction)")
	t.note("upstream `bench wsecho` and generator `bench ws`, both gorilla/websocket with 32 KiB buffers; tailguard: `run -config`, route upgrades [websocket]; load CPU: the generator's, one CPU = 100%%")
	out := &Outcome{Tables: []*Table{t}}
	if len(r.Rows) > 0 {
		out.Tables = append(out.Tables, r)
	}
	return out
}

// sizeText is a message size for a person: 64 B, 16 KiB.
func sizeText(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
