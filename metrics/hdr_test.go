package metrics

import (
	"encoding/json"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// TestStatsHDRDecodes checks that /stats/hdr decodes into histograms with
// exactly the recorder's counts, so pods' histograms merge without loss.
func TestStatsHDRDecodes(t *testing.T) {
	for _, k := range []window{win10s, winAll} {
		a, reg := newStatsAdmin(t, "")
		rec := get(a, "/stats/hdr?window="+k.String(), "")
		var doc hdrDoc
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v\n%s", k, err, rec.Body)
		}
		if doc.Window != k.String() || doc.Unit != "us" {
			t.Errorf("window %q unit %q, want %q and us", doc.Window, doc.Unit, k)
		}
		want := reg.Route("api").view(k, true)
		for m := range numMetrics {
			h, err := hdr.Decode([]byte(doc.Routes["api"][m.String()]))
			if err != nil {
				t.Fatalf("%s %s: %v", k, m, err)
			}
			if !h.Equals(want.h[m]) || h.TotalCount() == 0 {
				t.Errorf("%s %s: decoded %d values, not equal to the recorder's %d", k, m, h.TotalCount(), want.h[m].TotalCount())
			}
		}
	}
}
