package bench

import "testing"

// TestScenarioIdleSmoke: the idle scenario reads tailguard's memory in
// each state and works out its growth per connection; the figures are not
// checked.
func TestScenarioIdleSmoke(t *testing.T) {
	tb := runSmoke(t, "idle").Tables[0]
	if len(tb.Rows) != 6 {
		t.Fatalf("%d rows, want 6: %+v", len(tb.Rows), tb.Rows)
	}
	for _, r := range tb.Rows {
		for i, c := range r.Cells {
			if c.Text != "" {
				t.Errorf("%s, %s: %q, want a number", r.Name, tb.Columns[i+1], c.Text)
			}
		}
	}
	if rss := cell(t, tb, "fresh", "RSS"); rss <= 0 {
		t.Errorf("fresh RSS %v MiB", rss)
	}
}
