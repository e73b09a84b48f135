package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reloads counts the reloads of one thing (the config, the listener's
// certificate), applied and refused, for /metrics: a refused reload
// leaves the old one serving, which an operator must notice. It is safe
// for concurrent use.
type Reloads struct {
	ok, failed         atomic.Uint64
	okDesc, failedDesc *prometheus.Desc
}

// NewConfigReloads counts config reloads:
// tailguard_config_reloads_total and
// tailguard_config_reload_failures_total.
func NewConfigReloads() *Reloads {
	return newReloads("config", "Config reloads applied.", "Config reloads refused (the previous config kept serving).")
}

// NewCertificateReloads counts reloads of the listener's TLS certificate:
// tailguard_tls_certificate_reloads_total and
// tailguard_tls_certificate_reload_failures_total.
func NewCertificateReloads() *Reloads {
	return newReloads("tls_certificate", "TLS certificate reloads applied.",
		"TLS certificate reloads refused (the previous certificate kept serving).")
}

func newReloads(what, okHelp, failedHelp string) *Reloads {
	return &Reloads{
		okDesc:     prometheus.NewDesc("tailguard_"+what+"_reloads_total", okHelp, nil, nil),
		failedDesc: prometheus.NewDesc("tailguard_"+what+"_reload_failures_total", failedHelp, nil, nil),
	}
}

// Count records a reload's result: err nil for an applied one.
func (r *Reloads) Count(err error) {
	if err != nil {
		r.failed.Add(1)
		return
	}
	r.ok.Add(1)
}

var _ prometheus.Collector = (*Reloads)(nil)

// Describe implements prometheus.Collector.
func (r *Reloads) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.okDesc
	ch <- r.failedDesc
}

// Collect implements prometheus.Collector.
func (r *Reloads) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(r.okDesc, prometheus.CounterValue, float64(r.ok.Load()))
	ch <- prometheus.MustNewConstMetric(r.failedDesc, prometheus.CounterValue, float64(r.failed.Load()))
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
