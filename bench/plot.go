package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Series is one run's percentile spectrum, named for the legend.
type Series struct {
	Label  string
	Points []Point
}

// plot geometry, in SVG user units.
const (
	plotW, plotH                 = 1000, 500
	padL, padR, padTop, padBot   = 78, 200, 44, 56
	innerW, innerH               = plotW - padL - padR, plotH - padTop - padBot
	logYRatio                    = 30 // a wider range than this is drawn on a log scale
	legendRowH, legendX, legendY = 18, padL + innerW + 16, padTop
)

// palette tells up to eight series apart (Okabe–Ito, readable by the
// colour-blind).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

// WriteSpectrum draws the percentile spectrum of each series as an SVG
// (HdrHistogram's plot): x is the percentile on a log scale of 1/(1−q),
// so p90, p99, p99.9 … are evenly spaced and the tail gets the room it
// deserves; y is the latency, on a log scale when the series span more
// than a factor of 30. It is hand-written SVG: no dependency, and a file
// that any browser opens.
func WriteSpectrum(w io.Writer, title string, series []Series) error {
	xMax := 2.0
	yMin, yMax := math.Inf(1), 0.0
	for _, s := range series {
		for _, p := range s.Points {
			xMax = max(xMax, math.Ceil(xOf(p.Q)-1e-9))
			if p.MS > 0 {
				yMin = min(yMin, p.MS)
			}
			yMax = max(yMax, p.MS)
		}
	}
	ax := newAxes(min(xMax, 5), yMin, yMax)
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, escape(title))
	ax.grid(&b)
	for i, s := range series {
		ax.line(&b, s, palette[i%len(palette)])
	}
	legend(&b, series)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// xOf places quantile q on the x axis: log10(1/(1−q)), 0 at p0, 2 at p99.
func xOf(q float64) float64 {
	if q >= 1 {
		return 5
	}
	return math.Log10(1 / (1 - q))
}

// axes maps data to the plot area.
type axes struct {
	xMax       float64
	yLo, yHi   float64 // in data units, or log10 of them
	log        bool
	yTicks     []float64
	xTickNames []string
}

func newAxes(xMax, yMin, yMax float64) *axes {
	if yMax <= 0 {
		yMax = 1
	}
	a := &axes{xMax: xMax, xTickNames: []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"}}
	if yMin < yMax/logYRatio {
		a.log = true
		a.yLo, a.yHi = math.Floor(math.Log10(yMin)), math.Ceil(math.Log10(yMax))
		a.yTicks = logTicks(a.yLo, a.yHi)
		return a
	}
	step := niceStep(yMax / 6)
	a.yHi = math.Ceil(yMax/step) * step
	for v := 0.0; v <= a.yHi+step/2; v += step {
		a.yTicks = append(a.yTicks, v)
	}
	return a
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

// logTicks are 1, 2 and 5 times each power of ten from 10^lo to 10^hi.
func logTicks(lo, hi float64) []float64 {
	var t []float64
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); math.Log10(v) <= hi+1e-9 {
				t = append(t, v)
			}
		}
	}
	return t
}

func (a *axes) px(x float64) float64 { return padL + x/a.xMax*innerW }

func (a *axes) py(ms float64) float64 {
	f := ms / a.yHi
	if a.log {
		f = (math.Log10(max(ms, math.Pow(10, a.yLo))) - a.yLo) / (a.yHi - a.yLo)
	}
	return padTop + (1-f)*innerH
}

// grid draws the frame, the grid lines and the tick labels.
func (a *axes) grid(b *bytes.Buffer) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", padL, padTop, innerW, innerH)
	for i := 0; float64(i) <= a.xMax; i++ {
		x := a.px(float64(i))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, padTop, x, padTop+innerH)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, padTop+innerH+18, a.xTickNames[i])
	}
	for _, v := range a.yTicks {
		y := a.py(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, padL+innerW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, fmtMS(v))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">percentile (log scale of 1/(1−q))</text>`+"\n", padL+innerW/2, plotH-12)
	scale := "linear"
	if a.log {
		scale = "log"
	}
	fmt.Fprintf(b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">latency (%s scale)</text>`+"\n", padTop+innerH/2, scale)
}

// line draws one series.
func (a *axes) line(b *bytes.Buffer, s Series, color string) {
	var pts strings.Builder
	for _, p := range s.Points {
		if x := xOf(p.Q); x <= a.xMax {
			fmt.Fprintf(&pts, "%.1f,%.1f ", a.px(x), a.py(p.MS))
		}
	}
	fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"><title>%s</title></polyline>`+"\n",
		color, strings.TrimSpace(pts.String()), escape(s.Label))
}

// legend names each series in its colour, right of the plot, where it
// never hides a line.
func legend(b *bytes.Buffer, series []Series) {
	for i, s := range series {
		y := legendY + i*legendRowH
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`, legendX, y+5, palette[i%len(palette)])
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", legendX+20, y+11, escape(s.Label))
	}
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
