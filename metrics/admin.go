package metrics

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"tailguard/metrics/dashboard"
)

// Admin is the admin server's handler: /healthz, /readyz, /config, the
// per-route statistics (/stats, /stats/hdr, /metrics), the dashboard at /,
// and Go's profiler
// under /debug/pprof/ (so where the time goes can be measured on the real
// binary, under real load).
// It listens on its own port (loopback by default), never on the proxy's.
type Admin struct {
	mux   http.ServeMux
	token []byte
	ready func() bool
	cfg   func() any
	reg   *Registry
	// reloadFn serves POST /reload; nil: no such path.
	reloadFn func() error
	reloads  []*Reloads
}

// AdminOptions wires the admin server to the process's state.
type AdminOptions struct {
	// Token, if not empty, is required as "Authorization: Bearer <token>"
	// on every path but /healthz and /readyz, which probes must reach.
	Token string
	// Ready reports whether the proxy should receive traffic: config
	// loaded and not draining.
	Ready func() bool
	// Config returns the effective config with secrets redacted, for
	// /config. It is encoded as JSON.
	Config func() any
	// Stats is the per-route recorders' registry behind /stats,
	// /stats/hdr and /metrics; nil: those paths answer 404.
	Stats *Registry
	// Reload, if not nil, serves POST /reload: re-read the config file and
	// apply it, or report why not.
	Reload func() error
	// Reloads are the reload counters exposed in /metrics (the config's,
	// the certificate's).
	Reloads []*Reloads
}

// NewAdmin builds the admin handler.
func NewAdmin(o AdminOptions) *Admin {
	a := &Admin{token: []byte(o.Token), ready: o.Ready, cfg: o.Config, reg: o.Stats, reloadFn: o.Reload, reloads: o.Reloads}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /config", a.authorized(http.HandlerFunc(a.config)))
	a.mux.Handle("GET /debug/pprof/", a.authorized(http.HandlerFunc(pprof.Index)))
	a.mux.Handle("GET /debug/pprof/profile", a.authorized(http.HandlerFunc(pprof.Profile)))
	a.mux.Handle("GET /debug/pprof/trace", a.authorized(http.HandlerFunc(pprof.Trace)))
	if a.reloadFn != nil {
		a.mux.Handle("POST /reload", a.authorized(http.HandlerFunc(a.reload)))
	}
	if a.reg != nil {
		a.mux.Handle("GET /stats", a.authorized(http.HandlerFunc(a.stats)))
		a.mux.Handle("GET /stats/hdr", a.authorized(http.HandlerFunc(a.statsHDR)))
		others := []prometheus.Collector{
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		}
		for _, r := range a.reloads {
			others = append(others, r)
		}
		a.mux.Handle("GET /metrics", a.authorized(metricsHandler(a.reg, others...)))
		// The dashboard page and its assets hold no data, and a browser
		// sends no Authorization header when it opens a page: they need no
		// token. The page sends ?token= on its own /stats fetches.
		a.mux.Handle("GET /", dashboard.Handler())
	}
	return a
}

// stats serves /stats: ?window=10s|1m|5m|all (default 1m) and
// ?format=json|text (default json).
func (a *Admin) stats(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "text" {
		writeText(w, http.StatusBadRequest, "format must be json or text\n")
		return
	}
	k, ok := windowParam(w, r, win1m)
	if !ok {
		return
	}
	doc := a.reg.stats(k)
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_ = doc.writeText(w) // the client went away
		return
	}
	writeJSON(w, doc)
}

// statsHDR serves /stats/hdr: ?window=10s|1m|5m|all (default all).
func (a *Admin) statsHDR(w http.ResponseWriter, r *http.Request) {
	k, ok := windowParam(w, r, winAll)
	if !ok {
		return
	}
	doc, err := a.reg.encodeHistograms(k)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	writeJSON(w, doc)
}

// windowParam reads ?window=, or answers 400 and reports false.
func windowParam(w http.ResponseWriter, r *http.Request, def window) (window, bool) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return def, true
	}
	k, ok := parseWindow(v)
	if !ok {
		writeText(w, http.StatusBadRequest, "window must be 10s, 1m, 5m or all\n")
	}
	return k, ok
}

// ServeHTTP implements http.Handler.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	if !a.ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	writeText(w, http.StatusOK, "ready\n")
}

func (a *Admin) config(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, a.cfg())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// authorized requires the admin token, compared in constant time, when one
// is configured.
func (a *Admin) authorized(next http.Handler) http.Handler {
	if len(a.token) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), a.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tailguard"`)
			writeText(w, http.StatusUnauthorized, "unauthorized\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
