package bench

import (
	"strings"
	"testing"
)

func TestScenarioNoisyNeighborSmoke(t *testing.T) {
	skipShort(t)
	tb := runSmoke(t, "noisy-neighbor").Tables[0]
	arms := []string{"polite alone, tailguard fair_by", "tailguard, shed without fair_by", "tailguard, shed with fair_by"}
	if len(tb.Rows) == 4 {
		arms = append(arms, tb.Rows[3].Name)
	} else if len(tb.Rows) != 3 || !strings.Contains(strings.Join(tb.Notes, " "), "HAProxy") {
		t.Fatalf("rows %q; want 4 arms, or HAProxy noted as skipped", rowNames(tb))
	}
	for _, arm := range arms {
		if n := cell(t, tb, arm, "polite sent"); n == 0 {
			t.Errorf("%s: no polite request sent", arm)
		}
		if share := cell(t, tb, arm, "polite 2xx share"); share < 0 || share > 100 {
			t.Errorf("%s: polite 2xx share %v%%", arm, share)
		}
		cell(t, tb, arm, "polite p99 of 2xx")
		cell(t, tb, arm, "service use (2xx/s ÷ capacity)")
	}
	if cell(t, tb, arms[0], "flood goodput (2xx/s)") != 0 {
		t.Error("the polite client's reference arm had a flood")
	}
	if !strings.Contains(strings.Join(tb.Notes, " "), "against the target") {
		t.Error("no verdict for the fair arm")
	}
}
