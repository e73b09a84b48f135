package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Table is one of a scenario's results: a row per arm, a column per
// figure, notes under it. Cells keep their numbers, so that the JSON
// output can be checked and compared by a program.
type Table struct {
	Title   string   `json:"title"`
	Columns []string `json:"columns"` // the first names the rows
	Rows    []Row    `json:"rows"`
	Notes   []string `json:"notes,omitempty"`
}

// Row is one arm of a scenario.
type Row struct {
	Name  string `json:"name"`
	Cells []Cell `json:"cells"`
}

// Cell is a number and its unit, or a text when there is no number
// (a skipped peer, "-").
type Cell struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	Text  string  `json:"text,omitempty"`
}

// Units a Cell can have.
const (
	unitMS      = "ms"
	unitRatio   = "×"
	unitPercent = "%"
	unitPerSec  = "/s"
	unitMicros  = "µs"
	unitMiB     = "MiB"
	unitKiB     = "KiB"
	unitCount   = ""
)

func msCell(d time.Duration) Cell      { return Cell{Value: msOf(d), Unit: unitMS} }
func countCell(n int64) Cell           { return Cell{Value: float64(n), Unit: unitCount} }
func numCell(v float64, u string) Cell { return Cell{Value: v, Unit: u} }
func textCell(s string) Cell           { return Cell{Text: s} }

// blank is a cell with nothing to say.
var blank = textCell("-")

// ratioCell is a ÷ b, or "-" when b is 0.
func ratioCell(a, b float64) Cell {
	if b == 0 || math.IsNaN(a/b) {
		return textCell("-")
	}
	return Cell{Value: a / b, Unit: unitRatio}
}

// String formats the cell for a person.
func (c Cell) String() string {
	if c.Text != "" {
		return c.Text
	}
	switch c.Unit {
	case unitMS:
		return fmtMS(c.Value)
	case unitRatio:
		if c.Value >= 100 {
			return fmt.Sprintf("%.0f×", c.Value)
		}
		return fmt.Sprintf("%#.3g×", c.Value)
	case unitPercent:
		return fmt.Sprintf("%.1f%%", c.Value)
	case unitPerSec:
		return fmt.Sprintf("%.0f/s", c.Value)
	case unitMicros:
		return fmt.Sprintf("%.1f µs", c.Value)
	case unitMiB:
		return fmt.Sprintf("%.1f MiB", c.Value)
	case unitKiB:
		return fmt.Sprintf("%.2f KiB", c.Value)
	default:
		return fmt.Sprintf("%.0f", c.Value)
	}
}

// Write prints the table in Markdown, which reads well in a terminal and
// pastes into the README as it is.
func (t *Table) Write(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.Title)
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.Columns, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(t.Columns)))
	for _, r := range t.Rows {
		cells := make([]string, 0, len(r.Cells)+1)
		cells = append(cells, r.Name)
		for _, c := range r.Cells {
			cells = append(cells, c.String())
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	if len(t.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range t.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	fmt.Fprintln(w)
}

// add appends a row.
func (t *Table) add(name string, cells ...Cell) {
	t.Rows = append(t.Rows, Row{Name: name, Cells: cells})
}

// note appends a note.
func (t *Table) note(format string, args ...any) {
	t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
}
