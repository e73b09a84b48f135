package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"time"
)

// maxFaultsBody bounds a PUT /faults body.
const maxFaultsBody = 1 << 20

// startAdmin serves the upstream's admin API on addr, its own port so that
// it never mixes with the traffic under test:
//
//	GET /faults   the faults in force, as JSON
//	PUT /faults   JSON merged over them: absent fields keep their values
//	GET /stats    UpstreamStats, as JSON
func (u *Upstream) startAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("upstream admin: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, u.Faults()) })
	mux.HandleFunc("PUT /faults", u.putFaults)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, u.Stats()) })
	u.adminLn = ln
	u.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.admin.Serve(ln) }()
	return nil
}

// putFaults merges the request's JSON over the current faults and puts
// the result in force, or answers 400 and changes nothing.
func (u *Upstream) putFaults(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxFaultsBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := u.Faults()
	f.Paths = maps.Clone(f.Paths) // decoding must not touch the faults in force
	if err := json.Unmarshal(b, &f); err != nil {
		http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := u.SetFaults(f); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, f)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
