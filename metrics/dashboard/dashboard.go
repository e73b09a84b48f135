// Package dashboard serves tailguard's live admin dashboard: one
// self-contained page that polls the admin server's /stats JSON every
// second and charts, per route, p50/p99 of queueing latency versus service
// time, request and error rates, shedding, breaker state and SLO budget.
//
// Everything the page needs (its HTML, script, stylesheet and the uPlot
// charting library, vendored from npm) is embedded in the binary, so the
// dashboard works offline; a Content-Security-Policy keeps the page from
// loading anything from another origin.
//
// The page fetches "stats?window=10s" relative to its own URL, so it keeps
// working when the admin server is mounted under a path prefix (serve the
// page at a URL ending in "/"). When the admin API requires a token, open the
// page as "/?token=…": the page sends it as "Authorization: Bearer …" on its
// fetches. The page and its assets hold no data and need no token.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// UPlotVersion is the version of the vendored uPlot (npm package "uplot").
// It is part of the asset URL, so the files can be cached as immutable.
const UPlotVersion = "1.6.32"

// AssetPrefix is the path under which the page's assets are served.
const AssetPrefix = "/assets/"

//go:embed index.html app.js style.css vendor/uPlot.iife.min.js vendor/uPlot.min.css vendor/LICENSE
var files embed.FS

// Cache policies: the page and its own script/stylesheet are revalidated on
// every load (cheap with the ETag), so a new binary's page is picked up at
// once; vendored files carry their version in the URL and never change.
const (
	cacheRevalidate = "no-cache"
	cacheImmutable  = "public, max-age=31536000, immutable"
)

// contentSecurityPolicy allows the page to load only its own scripts,
// styles and fetches: the offline guarantee, enforced by the browser.
// uPlot sizes its elements through the CSSOM, which style-src does not
// govern, so no 'unsafe-inline' is needed.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file ready to serve.
type asset struct {
	name        string // file name, for http.ServeContent
	body        []byte
	contentType string
	cache       string
	etag        string
}

// assets maps request paths (relative to the handler's root) to files.
var assets = func() map[string]asset {
	uplot := AssetPrefix + "uplot-" + UPlotVersion + "/"
	m := map[string]asset{}
	add := func(path, file, ctype, cache string) {
		body, err := files.ReadFile(file)
		if err != nil {
			panic("dashboard: embedded file missing: " + file) // a build error, caught by any test
		}
		sum := sha256.Sum256(body)
		m[path] = asset{
			name:        file,
			body:        body,
			contentType: ctype,
			cache:       cache,
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
	}
	add("/", "index.html", "text/html; charset=utf-8", cacheRevalidate)
	add(AssetPrefix+"app.js", "app.js", "text/javascript; charset=utf-8", cacheRevalidate)
	add(AssetPrefix+"style.css", "style.css", "text/css; charset=utf-8", cacheRevalidate)
	add(uplot+"uPlot.iife.min.js", "vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8", cacheImmutable)
	add(uplot+"uPlot.min.css", "vendor/uPlot.min.css", "text/css; charset=utf-8", cacheImmutable)
	add(uplot+"LICENSE", "vendor/LICENSE", "text/plain; charset=utf-8", cacheImmutable)
	return m
}()

// Handler returns the dashboard's handler: the page at "/" and its assets
// under AssetPrefix; any other path is 404. Mount it at the admin server's
// root (or under a prefix with http.StripPrefix, keeping the trailing "/").
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", a.cache)
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(a.contentType, "text/html") {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer") // the URL may carry ?token=
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
