package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequestTargetByteExact: the request target reaches the upstream as
// the client sent it (DESIGN.md, "Forwarding fidelity"), while routing
// matches the normalised path: /api/../admin/x still takes the /admin/
// route, and /admin/x still reaches the upstream as /api/../admin/x.
func TestRequestTargetByteExact(t *testing.T) {
	echo := func(name string) string {
		return startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Target", r.RequestURI)
			w.Header().Set("X-Upstream", name)
		}))
	}
	addr := startProxy(t, `
listen: "127.0.0.1:0"
upstreams: {app: {endpoints: ["%s"]}, admin: {endpoints: ["%s"]}}
routes:
  - {name: admin, match: {path_prefix: /admin/}, upstream: admin}
  - {name: default, match: {path_prefix: /}, upstream: app}
`, echo("app"), echo("admin"))
	tests := []struct{ name, target, want string }{
		{"encoded slash", "/projects/group%2Fproject", ""},
		{"encoded slash, lower case", "/a%2fb", ""},
		{"dot segments", "/a/../b", ""},
		{"encoded dot segments", "/%2e%2e/x", ""},
		{"double slashes", "//double//slash", ""},
		{"single dots", "/a/./b/", ""},
		{"matrix parameters", "/cars;color=red/2024;x", ""},
		{"encoded unreserved", "/%7Euser/%41", ""},
		{"plus and %20 in the query", "/s?q=a+b%20c&x=1+1", ""},
		{"empty query value", "/s?a=&b", ""},
		{"non-ASCII percent-encodings", "/caf%C3%A9/%E2%82%AC?n=%F0%9F%98%80", ""},
		{"signed URL", "/obj?X-Amz-Signature=ab%2Fcd%3D&X-Amz-Expires=60", ""},
		{"absolute form", "http://example.test/a%2Fb?x=1", "/a%2Fb?x=1"},
		{"absolute form without a path", "http://example.test?x=1", "/?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.target
			}
			head := rawRequest(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 200") {
				t.Fatalf("response %q", head)
			}
			if got := headerOf(head, "X-Target"); got != want {
				t.Errorf("the upstream got %q, want %q", got, want)
			}
		})
	}
	t.Run("routing on the normalised path", func(t *testing.T) {
		head := rawRequest(t, addr, "GET /api/../admin/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if got, up := headerOf(head, "X-Target"), headerOf(head, "X-Upstream"); got != "/api/../admin/x" || up != "admin" {
			t.Errorf("upstream %q got target %q", up, got)
		}
	})
}
