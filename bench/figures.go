package bench

import "slices"

// figured is a row of a comparison table (overhead, tls, websocket): the
// target's name and its figures in the table's column order. Medians over
// rounds, ratio tables and look-ups by name work on any such row, so that
// each scenario only says what its figures are.
type figured interface {
	rowName() string
	figures() []float64
}

// refigured is a pointer to a figured row whose figures can be replaced,
// in the order figures returns them.
type refigured[R any] interface {
	*R
	figured
	setFigures([]float64)
}

// medianFigures is rows[0] with each figure the median of that figure
// over rows (the rows of one target over its rounds).
func medianFigures[R any, P refigured[R]](rows []R) R {
	m := rows[0]
	f := P(&m).figures()
	for i := range f {
		f[i] = medianOf(rows, func(r R) float64 { return P(&r).figures()[i] })
	}
	P(&m).setFigures(f)
	return m
}

// medianOf is the median of one figure, get, over rows (the upper one of
// an even count).
func medianOf[R any](rows []R, get func(R) float64) float64 {
	v := make([]float64, len(rows))
	for i, r := range rows {
		v[i] = get(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// ratioRows adds to t, for every row, each figure divided by base's.
func ratioRows[R figured](t *Table, rows []R, base R) *Table {
	b := base.figures()
	for _, r := range rows {
		f := r.figures()
		cells := make([]Cell, len(f))
		for i := range f {
			cells[i] = ratioCell(f[i], b[i])
		}
		t.add(r.rowName(), cells...)
	}
	return t
}

// findNamed is the row called name.
func findNamed[R figured](rows []R, name string) (R, bool) {
	i := slices.IndexFunc(rows, func(r R) bool { return r.rowName() == name })
	if i < 0 {
		var zero R
		return zero, false
	}
	return rows[i], true
}
