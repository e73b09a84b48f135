package metrics

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// A window is a span of recent history a reader asks about.
type window uint8

const (
	win10s window = iota + 1 // the last 10 one-second slots
	win1m                    // the last 6 ten-second slots, the newest filling up
	win5m                    // the last 30 ten-second slots, the newest filling up
	win1h                    // the last 60 one-minute slots; counters only
	winAll                   // everything since the route was first configured
)

var windowNames = map[window]string{win10s: "10s", win1m: "1m", win5m: "5m", win1h: "1h", winAll: "all"}

func (w window) String() string { return windowNames[w] }

// parseWindow parses a ?window= value: 10s, 1m, 5m or all (1h has no
// histograms, so readers cannot ask for it).
func parseWindow(s string) (window, bool) {
	for w, name := range windowNames {
		if name == s && w != win1h {
			return w, true
		}
	}
	return 0, false
}

// A part is the record of one period: sparse histograms (most of a
// period's buckets are empty) and counters.
type part struct {
	h [numMetrics]*hdr.PackedHistogram
	c counters
}

func newPart(digits int) part {
	var p part
	for m := range p.h {
		p.h[m] = hdr.NewPacked(lowestMicros, highestMicros, digits)
	}
	return p
}

func (p *part) reset() {
	for _, h := range p.h {
		h.Reset()
	}
	p.c = counters{}
}

func (p *part) addTally(t *tally) {
	for m, h := range p.h {
		h.MergeFrom(t.h[m])
	}
	p.c.add(&t.c)
}

func (p *part) add(o *part) {
	for m, h := range p.h {
		h.Merge(o.h[m])
	}
	p.c.add(&o.c)
}

// mergeInto adds p to s; only counters if s has no histograms.
func (p *part) mergeInto(s *Snapshot) {
	s.c.add(&p.c)
	if s.h[0] == nil {
		return
	}
	for m, h := range p.h {
		h.MergeInto(s.h[m])
	}
}

// A slot is a part in a ring: the period with number id (seconds since
// the registry started divided by the ring's period), or -1 when unused.
type slot struct {
	id int64
	part
}

// A ring holds the most recent len(slots) periods. A slot is reused when
// its period comes round again, so periods without a tick stay empty.
type ring struct {
	slots []slot
}

func newRing(n, digits int) ring {
	r := ring{slots: make([]slot, n)}
	for i := range r.slots {
		r.slots[i] = slot{id: -1, part: newPart(digits)}
	}
	return r
}

// at returns period id's slot, emptied first if it held an older period.
func (r *ring) at(id int64) *part {
	s := &r.slots[id%int64(len(r.slots))]
	if s.id != id {
		s.reset()
		s.id = id
	}
	return &s.part
}

// mergeInto adds periods from..to to s.
func (r *ring) mergeInto(s *Snapshot, from, to int64) {
	for i := range r.slots {
		if id := r.slots[i].id; id >= 0 && id >= from && id <= to {
			r.slots[i].mergeInto(s)
		}
	}
}

// A minute holds one minute's counters, for the 1h burn rate.
type minute struct {
	id int64
	c  counters
}

// windows are a route's history: the rings behind 10s, 1m, 5m and 1h,
// and the cumulative "all". The Route's mu guards them.
type windows struct {
	secs  ring // 10 × 1 s
	tens  ring // 30 × 10 s
	mins  [60]minute
	all   [numMetrics]*hdr.Histogram
	allC  counters
	prom  [numMetrics]promBuckets // all's histograms as /metrics serves them
	ex    routeExemplars          // their exemplars
	born  time.Time               // when the route was first configured
	last  time.Time               // the last tick
	lastS int64                   // the last tick, in seconds since the registry started
}

func (w *windows) init(digits int, born time.Time) {
	w.secs = newRing(10, digits)
	w.tens = newRing(30, digits)
	for i := range w.mins {
		w.mins[i].id = -1
	}
	for m := range w.all {
		w.all[m] = newHistogram(digits)
	}
	for _, m := range promMetrics {
		w.prom[m] = newPromBuckets(nativeLayout4)
	}
	w.born, w.last = born, born
}

// add records one tick's part d at second sec.
func (w *windows) add(sec int64, now time.Time, d *part) {
	sec = max(sec, w.lastS) // a clock that steps back adds to the newest slot
	if now.After(w.last) {
		w.last = now
	}
	w.lastS = sec
	if d.c.requests == 0 {
		return
	}
	w.secs.at(sec).add(d)
	w.tens.at(sec / 10).add(d)
	m := &w.mins[(sec/60)%int64(len(w.mins))]
	if m.id != sec/60 {
		*m = minute{id: sec / 60}
	}
	m.c.add(&d.c)
	for i, h := range d.h {
		h.MergeInto(w.all[i])
	}
	for _, m := range promMetrics {
		w.prom[m].add(d.h[m], nativeLayout4)
	}
	w.allC.add(&d.c)
}

// mergeInto adds window k to s and sets the seconds it covers.
func (w *windows) mergeInto(s *Snapshot, k window) {
	s.seconds = w.covered(k).Seconds()
	switch k {
	case win10s:
		w.secs.mergeInto(s, w.lastS-9, w.lastS)
	case win1m:
		w.tens.mergeInto(s, w.lastS/10-5, w.lastS/10)
	case win5m:
		w.tens.mergeInto(s, w.lastS/10-29, w.lastS/10)
	case win1h:
		for i := range w.mins {
			if id := w.mins[i].id; id >= 0 && id >= w.lastS/60-59 && id <= w.lastS/60 {
				s.c.add(&w.mins[i].c)
			}
		}
	case winAll:
		s.c.add(&w.allC)
		if s.h[0] != nil {
			for m, h := range w.all {
				s.h[m].Merge(h)
			}
		}
	}
}

// covered is the span window k holds at the last tick: its nominal span
// (the newest 10 s or 1 min slot is still filling), capped by the route's
// age.
func (w *windows) covered(k window) time.Duration {
	age := max(w.last.Sub(w.born), 0)
	var span int64
	switch k {
	case win10s:
		span = 10
	case win1m:
		span = w.lastS%10 + 1 + 50
	case win5m:
		span = w.lastS%10 + 1 + 290
	case win1h:
		span = w.lastS%60 + 1 + 3540
	default:
		return age
	}
	return min(time.Duration(span)*time.Second, age)
}
