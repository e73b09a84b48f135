package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloads counts config reloads, applied and refused, for /metrics: a
// refused reload leaves the old config serving, which an operator must
// notice. The zero value is ready; it is safe for concurrent use.
type Reloads struct {
	ok, failed atomic.Uint64
}

// Count records a reload's result: err nil for an applied one.
func (r *Reloads) Count(err error) {
	if err != nil {
		r.failed.Add(1)
		return
	}
	r.ok.Add(1)
}

var (
	reloadsDesc = prometheus.NewDesc("tailguard_config_reloads_total",
		"Config reloads applied.", nil, nil)
	reloadFailuresDesc = prometheus.NewDesc("tailguard_config_reload_failures_total",
		"Config reloads refused (the previous config kept serving).", nil, nil)
)

var _ prometheus.Collector = (*Reloads)(nil)

// Describe implements prometheus.Collector.
func (r *Reloads) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadsDesc
	ch <- reloadFailuresDesc
}

// Collect implements prometheus.Collector.
func (r *Reloads) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(r.ok.Load()))
	ch <- prometheus.MustNewConstMetric(reloadFailuresDesc, prometheus.CounterValue, float64(r.failed.Load()))
}

// reload serves POST /reload: it asks for a reload and reports the result;
// the errors are the config's own (file, line, key), shown to the admin
// only.
func (a *Admin) reload(w http.ResponseWriter, _ *http.Request) {
	if err := a.reloadFn(); err != nil {
		writeText(w, http.StatusUnprocessableEntity, "reload refused; the running config keeps serving:\n"+err.Error()+"\n")
		return
	}
	writeText(w, http.StatusOK, "reloaded\n")
}
