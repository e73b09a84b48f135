package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const uplotJS = AssetPrefix + "uplot-" + UPlotVersion + "/uPlot.iife.min.js"
const uplotCSS = AssetPrefix + "uplot-" + UPlotVersion + "/uPlot.min.css"

func get(t *testing.T, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func TestHandlerServesPageAndAssets(t *testing.T) {
	for _, tc := range []struct {
		path, ctype, cache, contains string
	}{
		{"/", "text/html; charset=utf-8", "no-cache", `id="chart-latency"`},
		{AssetPrefix + "app.js", "text/javascript; charset=utf-8", "no-cache", "stats?window=10s"},
		{AssetPrefix + "style.css", "text/css; charset=utf-8", "no-cache", ".charts"},
		{uplotJS, "text/javascript; charset=utf-8", "immutable", "(v" + UPlotVersion + ")"},
		{uplotCSS, "text/css; charset=utf-8", "immutable", ".uplot"},
		{AssetPrefix + "uplot-" + UPlotVersion + "/LICENSE", "text/plain; charset=utf-8", "immutable", "Leon Sorokin"},
	} {
		w := get(t, http.MethodGet, tc.path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tc.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := w.Header().Get("Cache-Control"); !strings.Contains(got, tc.cache) {
			t.Errorf("GET %s: Cache-Control %q, want it to contain %q", tc.path, got, tc.cache)
		}
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
		}
		if !strings.Contains(w.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}

	page := get(t, http.MethodGet, "/")
	csp := page.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("page CSP %q lacks %q", csp, want)
		}
	}
}

func TestHandlerNotFoundAndMethods(t *testing.T) {
	for _, p := range []string{
		"/nope", "/index.html", "/assets/", "/assets/nope.js", "/assets/../index.html",
		"/assets/uplot-0.0.0/uPlot.iife.min.js", "/assets/vendor/uPlot.iife.min.js", "/stats",
	} {
		if w := get(t, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
	}
	w := get(t, http.MethodPost, "/")
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: status %d Allow %q, want 405 with Allow: GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	if w := get(t, http.MethodHead, uplotJS); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD %s: status %d, %d body bytes; want 200 and none", uplotJS, w.Code, w.Body.Len())
	}
}

func TestHandlerConditionalGet(t *testing.T) {
	etag := get(t, http.MethodGet, uplotJS).Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, http.MethodGet, uplotJS, "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", w.Code)
	}
}

// TestPageReferencesResolve checks that every src/href in the page is a
// relative URL the handler serves (so the page works under a path prefix,
// and the uPlot version in the HTML matches UPlotVersion).
func TestPageReferencesResolve(t *testing.T) {
	page := get(t, http.MethodGet, "/").Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("found %d references in the page, want the 2 scripts and 2 stylesheets at least", len(refs))
	}
	base, _ := url.Parse("http://admin.invalid/")
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if strings.HasPrefix(ref, "/") {
			t.Errorf("reference %q is absolute; it would break under a path prefix", ref)
		}
		u, err := base.Parse(ref)
		if err != nil {
			t.Errorf("reference %q: %v", ref, err)
			continue
		}
		if w := get(t, http.MethodGet, u.Path); w.Code != http.StatusOK {
			t.Errorf("page references %q, handler answers %d", ref, w.Code)
		}
	}
}

// TestOffline is the offline guarantee: no embedded file names an http(s)
// URL, except the vendored uPlot's attribution banner, which is a comment.
func TestOffline(t *testing.T) {
	banner := "/*! https://github.com/leeoniya/uPlot (v" + UPlotVersion + ") */"
	url := regexp.MustCompile(`(?i)https?://`)
	n := 0
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(b)
		if path == "vendor/uPlot.iife.min.js" {
			if !strings.HasPrefix(s, banner) {
				t.Errorf("%s does not start with %q: vendored a different version than UPlotVersion?", path, banner)
			}
			s = strings.TrimPrefix(s, banner)
		}
		if loc := url.FindStringIndex(s); loc != nil {
			t.Errorf("%s references a URL: %q", path, s[loc[0]:min(len(s), loc[0]+60)])
		}
		if strings.Contains(s, `"//`) || strings.Contains(s, `'//`) {
			t.Errorf("%s has a protocol-relative URL", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("walked %d embedded files, want 6", n)
	}
}

// fakeStats serves DESIGN.md-shaped /stats JSON whose numbers change on
// every call. With a token, it answers 401 unless the request carries it.
type fakeStats struct {
	token string
	calls atomic.Int64
}

func (f *fakeStats) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tailguard"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	n := float64(f.calls.Add(1))
	wave := 1 + math.Sin(n/3)
	lat := func(base float64) map[string]float64 {
		return map[string]float64{"p50": base, "p90": base * 2, "p99": base * 5, "p999": base * 9, "max": base * 12}
	}
	route := func(name string, rps, svc float64, slo bool) map[string]any {
		req := int(rps * 10)
		r := map[string]any{
			"name": name, "requests": req, "rps": rps,
			"status":            map[string]int{"2xx": req - 9 - int(n)%5, "3xx": 0, "4xx": 2, "5xx": 7 + int(n)%5},
			"shed":              int(n) % 4,
			"timeouts":          1,
			"breaker_rejects":   0,
			"retries":           3,
			"hedges":            map[string]int{"sent": 12, "won": 7},
			"breaker":           "closed",
			"concurrency_limit": 64,
			"latency_ms": map[string]any{
				"queue":    lat(0.01 * wave),
				"service":  lat(svc * wave),
				"response": lat(svc*wave + 0.05),
			},
		}
		if slo {
			r["slo"] = map[string]float64{
				"latency_sli": 0.995, "availability_sli": 0.9993, "error_budget_remaining": 0.7 - n/1000,
				"burn_rate_5m": 0.4 * wave, "burn_rate_1h": 0.3,
			}
		}
		return r
	}
	w.Header().Set("Content-Type", "application/json")
	endpoint := func(addr string, healthy, ejected bool, requests, failures int) map[string]any {
		return map[string]any{"address": addr, "healthy": healthy, "ejected": ejected, "outstanding": 2,
			"latency_ewma_ms": 3.5 * wave, "requests": requests + int(n), "failures": failures}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"uptime_s": 12.5 + n, "window": r.URL.Query().Get("window"),
		"routes": []any{route("api", 200+n*1.7, 3.1, true), route("static", 50+n, 0.8, false)},
		"listener": map[string]any{"connections": 12, "errors": map[string]int{
			"bad_request": 3, "no_route": int(n), "header_timeout": 0, "headers_too_large": 0,
			"too_many_headers": 0, "uri_too_long": 0, "connection_limit": 0}},
		"upstreams": []any{
			map[string]any{"name": "app", "breaker": "closed", "endpoints": []any{
				endpoint("10.0.0.1:8080", true, false, 100, 0), endpoint("10.0.0.2:8080", true, true, 40, 20)}},
			map[string]any{"name": "files", "breaker": "", "endpoints": []any{endpoint("10.0.0.3:8080", false, false, 5, 0)}},
		},
	})
}

// newServer mounts Handler at "/" and stats at "/stats", as the admin
// server does.
func newServer(t *testing.T, stats http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/stats", stats)
	mux.Handle("/", Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// pageErrors collects what the page reports as errors: console.error
// calls, uncaught exceptions and error entries of the browser log.
type pageErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (p *pageErrors) listen(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(args, " ")
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg = fmt.Sprintf("exception: %s %s at %s:%d:%d", d.Text, exceptionDescription(d), d.URL, d.LineNumber+1, d.ColumnNumber+1)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				msg = fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			p.mu.Lock()
			p.msgs = append(p.msgs, msg)
			p.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
}

func exceptionDescription(d *runtime.ExceptionDetails) string {
	if d.Exception != nil {
		return d.Exception.Description
	}
	return ""
}

func (p *pageErrors) all() []string {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.msgs...)
}

const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium for the test, bounded by timeout, and
// returns a context whose first tab is open. It skips the test when
// Chromium is not installed.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the headless Chromium test")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the headless browser test: %s not found (apt-get install chromium, as .ci/run does)", chromiumPath)
	}
	// One deadline for the whole browser: chromedp wants no timeout on the
	// context of the first Run, other than the browser's own lifetime.
	root, cancelRoot := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancelRoot)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	t.Cleanup(cancelAlloc) // waits for the browser process to exit
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, opens the tab
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return ctx
}

// poll waits, bounded, until the JavaScript predicate is truthy. On a
// timeout it reports what the page showed and logged, to say why.
func poll(t *testing.T, ctx context.Context, errs *pageErrors, what, predicate string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		banner, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("banner")?.textContent ?? ""`))
		t.Fatalf("waiting for %s: %v\nbanner: %q\npage errors:\n%s", what, err, banner, strings.Join(errs.all(), "\n"))
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// inked counts the pixels of a chart's canvas drawn in a series' stroke
// colour: proof that the data, not only the axes, was drawn.
const inked = `(sel, r, g, b) => {
	const c = document.querySelector(sel + " canvas");
	if (!c || !c.width || !c.height) return 0;
	const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
	let n = 0;
	for (let i = 0; i < d.length; i += 4)
		if (Math.abs(d[i]-r) < 8 && Math.abs(d[i+1]-g) < 8 && Math.abs(d[i+2]-b) < 8 && d[i+3] > 200) n++;
	return n;
}`

func TestBrowserDashboard(t *testing.T) {
	start := time.Now()
	ctx := browser(t, 60*time.Second)
	srv := newServer(t, &fakeStats{})
	var errs pageErrors
	errs.listen(t, ctx)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	poll(t, ctx, &errs, "both routes in the table", `document.querySelectorAll("tbody tr[data-route]").length === 2`)

	// Charts: two uPlot canvases with a size, and series drawn on them
	// (queue p99 and service p99 in blue and orange, req/s in slate).
	poll(t, ctx, &errs, "the charts' series drawn", `(`+inked+`)("#chart-latency", 0x1d, 0x4e, 0xd8) > 20 &&
		(`+inked+`)("#chart-latency", 0xc2, 0x41, 0x0c) > 20 && (`+inked+`)("#chart-rates", 0x33, 0x41, 0x55) > 20`)
	sizes := eval[[][2]int](t, ctx, `[...document.querySelectorAll(".uplot canvas")].map(c => [c.width, c.height])`)
	if len(sizes) != 2 {
		t.Fatalf("found %d uPlot canvases, want 2", len(sizes))
	}
	for i, s := range sizes {
		if s[0] < 300 || s[1] < 100 {
			t.Errorf("canvas %d is %dx%d, want a readable chart", i, s[0], s[1])
		}
	}

	// The numbers update: a cell changes a few polls later.
	for _, cell := range []string{`tr[data-route="api"] td[data-col="rps"]`, `tr[data-route="static"] td[data-col="s99"]`} {
		before := eval[string](t, ctx, `document.querySelector('`+cell+`').textContent`)
		poll(t, ctx, &errs, cell+" to change from "+before, `document.querySelector('`+cell+`').textContent !== `+jsString(before))
	}

	// The route with an SLO shows its budget, the other says it has none.
	if got := eval[string](t, ctx, `document.querySelector('tr[data-route="api"] td[data-col="budget"]').textContent`); !strings.HasSuffix(got, "%") {
		t.Errorf("api error budget cell %q, want a percentage", got)
	}
	if got := eval[string](t, ctx, `document.querySelector('tr[data-route="static"] td[data-col="budget"]').textContent`); got != "no SLO" {
		t.Errorf("static error budget cell %q, want \"no SLO\"", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("cards").textContent`); !strings.Contains(got, "burn rate 5m / 1h") || !strings.Contains(got, "0.30×") || !strings.Contains(got, "latency 99.50%") {
		t.Errorf("cards of the selected route (api, with an SLO) lack the burn rates and SLIs: %q", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("hedge-note").textContent`); !strings.Contains(got, "single upstream endpoint") {
		t.Errorf("hedge note missing: %q", got)
	}
	if !eval[bool](t, ctx, `document.getElementById("banner").hidden`) {
		t.Errorf("error banner shown: %q", eval[string](t, ctx, `document.getElementById("banner").textContent`))
	}

	// The listener's refusals and one row an endpoint, its state named.
	poll(t, ctx, &errs, "the endpoints table", `document.querySelectorAll("#endpoints tbody tr").length === 3`)
	for ep, want := range map[string]string{"app/10.0.0.1:8080": "serving", "app/10.0.0.2:8080": "ejected", "files/10.0.0.3:8080": "unhealthy"} {
		if got := eval[string](t, ctx, `document.querySelector('tr[data-endpoint="`+ep+`"] td:nth-child(4)').textContent`); got != want {
			t.Errorf("endpoint %s state %q, want %q", ep, got, want)
		}
	}
	if got := eval[string](t, ctx, `document.querySelector('tr[data-endpoint="app/10.0.0.2:8080"] td:nth-child(8)').textContent`); !strings.HasPrefix(got, "20 (") {
		t.Errorf("ejected endpoint's failures %q, want 20 and a share", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("listener").textContent`); !strings.Contains(got, "12 client connections") || !strings.Contains(got, "bad_request 3") || strings.Contains(got, "header_timeout") {
		t.Errorf("listener line %q: want the connections and the non-zero refusals only", got)
	}

	// Selecting the other route charts it.
	if err := chromedp.Do(ctx, chromedp.Click(`tr[data-route="static"]`)); err != nil {
		t.Fatalf("click: %v", err)
	}
	poll(t, ctx, &errs, "the static route selected", `document.querySelector(".tab.sel")?.textContent === "static" && location.hash === "#route=static"`)

	if path := os.Getenv("DASHBOARD_SCREENSHOT"); path != "" {
		if err := chromedp.Do(ctx, chromedp.Click(`tr[data-route="api"]`)); err != nil {
			t.Fatalf("click: %v", err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}

	if msgs := errs.all(); len(msgs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(msgs, "\n"))
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

func TestBrowserAuth(t *testing.T) {
	ctx := browser(t, 60*time.Second)
	srv := newServer(t, &fakeStats{token: "s3cret"})

	for _, tc := range []struct{ query, banner string }{
		{"", "requires a token"},
		{"?token=wrong", "rejected the token"},
	} {
		tab, cancel := chromedp.NewContext(ctx) // a new tab in the same browser
		var errs pageErrors
		errs.listen(t, tab)
		if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/"+tc.query)); err != nil {
			t.Fatalf("navigate: %v", err)
		}
		poll(t, tab, &errs, "the 401 banner for "+tc.query, `!document.getElementById("banner").hidden &&
			document.getElementById("banner").textContent.includes(`+jsString(tc.banner)+`) &&
			document.getElementById("banner").textContent.includes("401")`)
		// The browser logs the failed fetch (a network error entry); the
		// page itself must throw nothing.
		for _, m := range errs.all() {
			if !strings.HasPrefix(m, "log (network)") {
				t.Errorf("page %s: %s", tc.query, m)
			}
		}
		cancel()
	}

	// With the right token the Authorization header is sent and data shows.
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/?token=s3cret")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	poll(t, tab, nil, "data with the token", `document.querySelectorAll("tbody tr[data-route]").length === 2 && document.getElementById("banner").hidden`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
