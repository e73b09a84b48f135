package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAdmin(t *testing.T) {
	ready := true
	newAdmin := func(token string) *Admin {
		return NewAdmin(AdminOptions{
			Token:  token,
			Ready:  func() bool { return ready },
			Config: func() any { return map[string]string{"listen": ":8000"} },
		})
	}
	tests := []struct {
		name, token, path, auth string
		ready                   bool
		want                    int
		body                    string
	}{
		{"healthz", "", "/healthz", "", true, 200, "ok"},
		{"ready", "", "/readyz", "", true, 200, "ready"},
		{"draining", "", "/readyz", "", false, 503, "not ready"},
		{"config", "", "/config", "", true, 200, `"listen": ":8000"`},
		{"healthz needs no token", "s3cret", "/healthz", "", true, 200, "ok"},
		{"readyz needs no token", "s3cret", "/readyz", "", false, 503, "not ready"},
		{"config without token", "s3cret", "/config", "", true, 401, "unauthorized"},
		{"config with wrong token", "s3cret", "/config", "Bearer s3cre", true, 401, "unauthorized"},
		{"config with token", "s3cret", "/config", "Bearer s3cret", true, 200, `"listen"`},
		{"profiler without token", "s3cret", "/debug/pprof/", "", true, 401, "unauthorized"},
		{"profiler with token", "s3cret", "/debug/pprof/", "Bearer s3cret", true, 200, "goroutine"},
		{"unknown path", "", "/nothing", "", true, 404, ""},
		{"no writes", "", "/config", "", true, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready = tt.ready
			method := http.MethodGet
			if tt.name == "no writes" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			newAdmin(tt.token).ServeHTTP(rec, req)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s: %d %q, want %d containing %q", method, tt.path, rec.Code, rec.Body.String(), tt.want, tt.body)
			}
		})
	}
}
