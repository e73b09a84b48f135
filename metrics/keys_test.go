package metrics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestKeyGaugesExposed: /stats shows the refusals by cause and each
// per-key table with its top keys; /metrics the refusals and the tables'
// sizes, with no label per client.
func TestKeyGaugesExposed(t *testing.T) {
	top := []KeyCount{{Key: "10.0.0.9", Admitted: 90, Refused: 400}, {Key: "10.0.0.1", Admitted: 10}}
	reg, clock := newTestRegistry(t, RouteConfig{
		Name: "api",
		Gauges: func() Gauges {
			return Gauges{
				Fair:      &KeyGauges{Tracked: 2, MaxKeys: 100, TopAdmitted: top, TopRefused: top[:1]},
				RateLimit: &KeyGauges{Tracked: 1, MaxKeys: 50, TopAdmitted: top[:1], TopRefused: top[:1]},
			}
		},
	})
	rt := reg.Route("api")
	for i := range 10 {
		s := ok(time.Millisecond)
		switch i {
		case 0:
			s.Status, s.Flags = 503, Shed
		case 1, 2:
			s.Status, s.Flags = 429, RateLimited
		}
		rt.Record(uint64(i), s)
	}
	reg.Tick(clock.set(clock.Now(), 2*time.Second))
	a := NewAdmin(AdminOptions{Ready: func() bool { return true }, Config: func() any { return nil }, Stats: reg})

	var doc struct {
		Routes []struct {
			Shed        int64      `json:"shed"`
			RateLimited int64      `json:"rate_limited"`
			Fair        *KeyGauges `json:"fair"`
			RateLimit   *KeyGauges `json:"rate_limit"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(get(a, "/stats?window=10s", "").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Routes[0]
	if r.Shed != 1 || r.RateLimited != 2 {
		t.Errorf("shed %d rate_limited %d, want 1 and 2", r.Shed, r.RateLimited)
	}
	if r.Fair == nil || r.Fair.Tracked != 2 || r.Fair.MaxKeys != 100 || len(r.Fair.TopAdmitted) != 2 ||
		r.Fair.TopRefused[0] != top[0] || r.RateLimit == nil || r.RateLimit.Tracked != 1 {
		t.Errorf("key tables: fair %+v, rate_limit %+v", r.Fair, r.RateLimit)
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(get(a, "/metrics", "").Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(families["tailguard_rate_limited_total"], "route", "api"); v != 2 {
		t.Errorf("tailguard_rate_limited_total = %v, want 2", v)
	}
	for table, want := range map[string]float64{"fair": 2, "rate_limit": 1} {
		if v := value(families["tailguard_keys_tracked"], "table", table); v != want {
			t.Errorf("tailguard_keys_tracked{table=%q} = %v, want %v", table, v, want)
		}
	}
	if v := value(families["tailguard_keys_max"], "table", "fair"); v != 100 {
		t.Errorf("tailguard_keys_max{table=fair} = %v, want 100", v)
	}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "10.0.0.9" {
					t.Errorf("%s has a client key as a label", name)
				}
			}
		}
	}
}
