package bench

import (
	"context"
	"fmt"
	"slices"
)

// abba is the order in which pair i measures its two arms, as indices
// (0: the first arm, 1: the second): even pairs A then B, odd pairs B
// then A, so the sequence runs A,B,B,A,A,B… and a drift over the run (a
// neighbour's load rising, caches warming) weighs on both arms alike
// instead of always favouring the arm that goes first.
func abba(i int) [2]int {
	if i%2 == 1 {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}

// ratioSummary is what a set of paired ratios a ÷ b says: their median,
// and an interval that holds the true median ratio with probability
// level (at least 0.95 when there are 6 pairs or more).
type ratioSummary struct {
	n                 int
	median, low, high float64
	level             float64
}

// summarizeRatios is the median of ratios and its distribution-free
// confidence interval: the k-th smallest and k-th largest ratio, with k
// the largest for which the interval still covers the median with 95%
// probability (each ratio falls above the true median with probability
// ½, so the count above is binomial). It assumes nothing of the ratios'
// distribution, which on a shared machine has long tails. With fewer than
// 6 pairs no such k exists; the interval is then the whole range and
// level says how sure it is.
func summarizeRatios(ratios []float64) ratioSummary {
	r := slices.Clone(ratios)
	slices.Sort(r)
	n := len(r)
	if n == 0 {
		return ratioSummary{}
	}
	k := medianIntervalRank(n, 0.95)
	return ratioSummary{
		n: n, median: median(r),
		low: r[k-1], high: r[n-k],
		level: medianIntervalLevel(n, k),
	}
}

// median is the median of sorted values (the mean of the middle two of
// an even count).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// medianIntervalRank is the largest rank k (1-based, from each end) such
// that the k-th smallest to the k-th largest of n values covers their
// distribution's median with probability at least level; 1 when even the
// whole range does not reach level.
func medianIntervalRank(n int, level float64) int {
	k := 1
	for k+1 <= (n+1)/2 && medianIntervalLevel(n, k+1) >= level {
		k++
	}
	return k
}

// medianIntervalLevel is the probability that the k-th smallest to the
// k-th largest of n values covers their distribution's median:
// 1 − 2·P(X ≤ k−1) for X binomial(n, ½).
func medianIntervalLevel(n, k int) float64 {
	c, cdf := 1.0, 0.0 // c = C(n, i) / 2^n
	for range n {
		c /= 2
	}
	for i := range k {
		cdf += c
		c = c * float64(n-i) / float64(i+1)
	}
	return 1 - 2*cdf
}

// cells are the median ratio and its interval, for a table; blanks when
// there are no ratios.
func (s ratioSummary) cells() []Cell {
	if s.n == 0 {
		return []Cell{blank, blank}
	}
	return []Cell{numCell(s.median, unitRatio), textCell(s.interval())}
}

// interval is the interval for a table cell, "low–high×", with its
// level when that is under 95%.
func (s ratioSummary) interval() string {
	t := fmt.Sprintf("%#.3g–%#.3g×", s.low, s.high)
	if s.level < 0.95 {
		t += fmt.Sprintf(" (%.0f%%)", 100*s.level)
	}
	return t
}

// spread is how far r's interval reaches from 1 (no difference), either
// way, as a percentage ("±4.2%"), or "too few pairs" when r has no
// interval to judge: the smallest difference an A/A comparison says the
// machine resolves.
func spread(r ratioInterval) string {
	low, high, tooFew := r.ends()
	if tooFew != "" {
		return "too few pairs"
	}
	return fmt.Sprintf("±%.1f%%", 100*max(1-low, high-1, 0))
}

// within says whether the ratios show the median ratio at most limit:
// "yes" when the whole 95% interval is, "no" when it is not, and "too few
// pairs" when there is no 95% interval.
func (s ratioSummary) within(limit float64) string { return bound{limit: limit}.verdict(s) }

// minIntervalPairs is the fewest ratios whose median has a 95% interval:
// the whole range of 6 covers it with probability 1 − 2/2⁶ ≈ 96.9%, of 5
// with 93.75%.
const minIntervalPairs = 6

// ends are the 95% interval's bottom and top, and, when there is none,
// how many ratios there are and how many it needs.
func (s ratioSummary) ends() (low, high float64, tooFew string) {
	if s.n == 0 || s.level < 0.95 {
		return s.low, s.high, fmt.Sprintf("%d, need %d", s.n, minIntervalPairs)
	}
	return s.low, s.high, ""
}

func (ratioSummary) intervalName() string { return "95% interval" }

// ratioInterval is an interval for a ratio a ÷ b that a bound is judged
// on: the median paired ratio's (ratioSummary) or the pooled ratio's
// (pooledRatio).
type ratioInterval interface {
	// ends are the interval's bottom and top, and, when there are too
	// few pairs for a verdict, why in a few words ("" when there are
	// enough).
	ends() (low, high float64, tooFew string)
	// intervalName is what a note calls the interval.
	intervalName() string
}

// bound is a claim on a ratio: at most limit or, with atLeast, at least
// limit. A run shows it only when the ratio's whole interval is on the
// bound's side; an interval across it shows nothing either way.
type bound struct {
	limit   float64
	atLeast bool
}

// verdict says whether r shows b: "yes" when its whole interval is on
// b's side, "no" when it is not, "too few pairs" when there is no
// interval to judge.
func (b bound) verdict(r ratioInterval) string {
	low, high, tooFew := r.ends()
	switch {
	case tooFew != "":
		return "too few pairs"
	case b.atLeast && low >= b.limit, !b.atLeast && high <= b.limit:
		return "yes"
	default:
		return "no"
	}
}

// note is b's verdict on r as a sentence about what (the ratio's name,
// "pooled p99 new ÷ baseline"), quoting the interval's end that decides
// it.
func (b bound) note(what string, r ratioInterval) string {
	low, high, tooFew := r.ends()
	op, side, end := "≤", "top", high
	if b.atLeast {
		op, side, end = "≥", "bottom", low
	}
	claim := fmt.Sprintf("%s %s %#.3g×", what, op, b.limit)
	switch b.verdict(r) {
	case "yes":
		return fmt.Sprintf("%s shown (the %s's %s, %#.3g×, %s %#.3g×)", claim, r.intervalName(), side, end, op, b.limit)
	case "no":
		return fmt.Sprintf("%s not shown: the %s's %s is %#.3g×", claim, r.intervalName(), side, end)
	default:
		return fmt.Sprintf("%s: too few pairs for a verdict (%s)", claim, tooFew)
	}
}

// summarizePairs is the ratios a ÷ b of one figure over pairs (a's row,
// b's row), leaving out pairs in which b's figure is not positive.
func summarizePairs[R any](pairs [][2]R, get func(R) float64) ratioSummary {
	ratios := make([]float64, 0, len(pairs))
	for _, p := range pairs {
		if b := get(p[1]); b > 0 {
			ratios = append(ratios, get(p[0])/b)
		}
	}
	return summarizeRatios(ratios)
}

// measurePairs measures n pairs of every comparison in comps, the
// comparisons interleaved (pair i of each, then pair i+1). A pair that
// fails (a request timing out on an overloaded machine) is dropped and
// noted rather than losing the run, up to half of them; it returns notes
// with the drops added.
func measurePairs[C any](ctx context.Context, n int, comps []C, name func(C) string, measure func(C, int) error, notes []string) ([]string, error) {
	dropped := 0
	for i := range n {
		for _, c := range comps {
			err := measure(c, i)
			if err == nil {
				continue
			}
			if dropped++; ctx.Err() != nil || dropped > n*len(comps)/2 {
				return nil, fmt.Errorf("%s: %w", name(c), err)
			}
			notes = append(notes, fmt.Sprintf("dropped: %s, %v", name(c), err))
		}
	}
	return notes, nil
}
