package metrics

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
)

// Admin is the admin server's handler: /healthz, /readyz, /config, and
// Go's profiler under /debug/pprof/ (so where the time goes can be
// measured on the real binary, under real load).
// It listens on its own port (loopback by default), never on the proxy's.
type Admin struct {
	mux   http.ServeMux
	token []byte
	ready func() bool
	cfg   func() any
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
}

// NewAdmin builds the admin handler.
func NewAdmin(o AdminOptions) *Admin {
	a := &Admin{token: []byte(o.Token), ready: o.Ready, cfg: o.Config}
	a.mux.HandleFunc("GET /healthz", a.healthz)
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /config", a.authorized(http.HandlerFunc(a.config)))
	a.mux.Handle("GET /debug/pprof/", a.authorized(http.HandlerFunc(pprof.Index)))
	a.mux.Handle("GET /debug/pprof/profile", a.authorized(http.HandlerFunc(pprof.Profile)))
	return a
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
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(a.cfg())
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
