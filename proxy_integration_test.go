package main

// Integration tests of forwarding through the real binary.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestProxyToGoUpstream(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))
	client := newClient(t, ioTimeout)

	t.Run("StatusPassesThrough", func(t *testing.T) {
		for _, code := range []int{200, 201, 404, 500, 503} {
			resp, body := client.get(t, tg.url(fmt.Sprintf("/status/%d", code)))
			if resp.StatusCode != code {
				t.Errorf("/status/%d: status %d", code, resp.StatusCode)
			}
			if want := fmt.Sprintf("upstream says %d\n", code); string(body) != want {
				t.Errorf("/status/%d: body %q, want %q", code, body, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("/status/%d: Content-Type %q, want the upstream's text/plain", code, ct)
			}
			noTailguardError(t, fmt.Sprintf("/status/%d", code), resp.Header)
		}
	})

	t.Run("GetBody", func(t *testing.T) {
		const n = 200_000
		resp, body := client.get(t, tg.url(fmt.Sprintf("/big?n=%d", n)))
		if resp.StatusCode != 200 || resp.ContentLength != n {
			t.Errorf("status %d, Content-Length %d; want 200, %d", resp.StatusCode, resp.ContentLength, n)
		}
		if !bytes.Equal(body, patternBytes(n)) {
			t.Errorf("body differs from what the upstream sent (%d bytes received)", len(body))
		}
	})

	t.Run("Head", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("HEAD /big?n=12345 HTTP/1.1", "Host: app.test"),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		head := rs[0]
		if head.StatusCode != 200 || head.Header.Get("Content-Length") != "12345" || len(head.body) != 0 {
			t.Errorf("HEAD: status %d, Content-Length %q, body %d bytes; want 200, 12345, none",
				head.StatusCode, head.Header.Get("Content-Length"), len(head.body))
		}
		if rs[1].StatusCode != 200 || string(rs[1].body) != "upstream says 200\n" {
			t.Errorf("GET after HEAD on the same connection: status %d, body %q (HEAD response carried a body?)", rs[1].StatusCode, rs[1].body)
		}
	})

	t.Run("NoContentAndNotModified", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("GET /nocontent HTTP/1.1", "Host: app.test"),
			rawRequest("GET /notmodified HTTP/1.1", "Host: app.test", `If-None-Match: "v1"`),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		if r := rs[0]; r.StatusCode != 204 || len(r.body) != 0 || r.Header.Get("X-Upstream") != "nocontent" {
			t.Errorf("204: status %d, body %q, X-Upstream %q", r.StatusCode, r.body, r.Header.Get("X-Upstream"))
		}
		if r := rs[1]; r.StatusCode != 304 || len(r.body) != 0 || r.Header.Get("ETag") != `"v1"` {
			t.Errorf("304: status %d, body %q, ETag %q; want 304, none, \"v1\"", r.StatusCode, r.body, r.Header.Get("ETag"))
		}
		if r := rs[2]; r.StatusCode != 200 || string(r.body) != "upstream says 200\n" {
			t.Errorf("GET after 204 and 304 on the same connection: status %d, body %q", r.StatusCode, r.body)
		}
		for i, r := range rs[:2] {
			noTailguardError(t, fmt.Sprintf("response %d", i), r.Header)
		}
	})

	t.Run("ChunkedResponseArrivesWhole", func(t *testing.T) {
		const chunks, size = 64, 4000
		resp, body := client.get(t, tg.url(fmt.Sprintf("/chunked?n=%d&size=%d", chunks, size)))
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
		if !bytes.Equal(body, patternBytes(chunks*size)) {
			t.Errorf("chunked body: got %d bytes, want %d identical bytes", len(body), chunks*size)
		}
	})

	t.Run("Echo10MiB", func(t *testing.T) {
		sent := patternBytes(10 << 20)
		req, err := http.NewRequest(http.MethodPost, tg.url("/echo"), bytes.NewReader(sent))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, body := client.fetch(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, body %.200q", resp.StatusCode, body)
		}
		if len(body) != len(sent) || sha256Hex(body) != sha256Hex(sent) {
			t.Errorf("echo: got %d bytes sha256 %s, want %d bytes sha256 %s", len(body), sha256Hex(body), len(sent), sha256Hex(sent))
		}
	})

	t.Run("RequestHopByHopHeadersStripped", func(t *testing.T) {
		rs := exchangeRaw(t, tg.listen,
			rawRequest("GET /headers?q=1&r=%2Fx HTTP/1.1",
				"Host: client.example:8443",
				"Connection: X-Foo",
				"X-Foo: must-not-pass",
				"Keep-Alive: timeout=5",
				"Proxy-Authorization: Basic dXNlcjpwYXNz",
				"TE: trailers",
				"Upgrade: websocket",
				"X-End-To-End: kept"),
			rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		seen := decodeSeen(t, rs[0])
		headerAbsent(t, "request", seen.Header, "X-Foo", "Keep-Alive", "Proxy-Authorization", "TE", "Upgrade")
		for _, name := range connectionNames(seen.Header) {
			if name != "keep-alive" && name != "close" {
				t.Errorf("upstream got Connection: %q, naming a header the client's hop defined", seen.Header.Values("Connection"))
			}
		}
		if got := seen.Header.Get("X-End-To-End"); got != "kept" {
			t.Errorf("end-to-end header X-End-To-End: %q, want kept", got)
		}
		if seen.Host != "client.example:8443" {
			t.Errorf("upstream saw Host %q, want the client's client.example:8443", seen.Host)
		}
		if seen.URI != "/headers?q=1&r=%2Fx" {
			t.Errorf("upstream saw request URI %q, want it unchanged", seen.URI)
		}
		if rs[1].StatusCode != 200 {
			t.Errorf("next request on the connection: status %d", rs[1].StatusCode)
		}
	})

	t.Run("ForwardedHeaders", func(t *testing.T) {
		cases := []struct {
			name      string
			headers   []string
			wantXFF   string
			wantReqID string // "" means a generated one
		}{
			{"none from client", nil, "127.0.0.1", ""},
			{"client XFF and request id",
				[]string{"X-Forwarded-For: 203.0.113.7", "X-Request-Id: req-abc-123"},
				"203.0.113.7, 127.0.0.1", "req-abc-123"},
			{"two XFF headers, spoofed proto and host",
				[]string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 203.0.113.7, 192.0.2.1",
					"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example"},
				"198.51.100.1, 203.0.113.7, 192.0.2.1, 127.0.0.1", ""},
		}
		ids := map[string]bool{}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				const host = "svc.example"
				lines := append([]string{"GET /headers HTTP/1.1", "Host: " + host}, c.headers...)
				seen := decodeSeen(t, exchangeRaw(t, tg.listen, rawRequest(lines...))[0])
				if got := oneValue(t, seen.Header, "X-Forwarded-For"); got != c.wantXFF {
					t.Errorf("X-Forwarded-For %q, want %q", got, c.wantXFF)
				}
				if got := oneValue(t, seen.Header, "X-Forwarded-Proto"); got != "http" {
					t.Errorf("X-Forwarded-Proto %q, want http", got)
				}
				if got := oneValue(t, seen.Header, "X-Forwarded-Host"); got != host {
					t.Errorf("X-Forwarded-Host %q, want the client's Host %q", got, host)
				}
				if seen.Host != host {
					t.Errorf("Host %q, want %q", seen.Host, host)
				}
				id := oneValue(t, seen.Header, "X-Request-Id")
				switch {
				case c.wantReqID != "" && id != c.wantReqID:
					t.Errorf("X-Request-Id %q, want the client's %q", id, c.wantReqID)
				case c.wantReqID == "" && !requestIDPattern.MatchString(id):
					t.Errorf("generated X-Request-Id %q, want 32 hex digits", id)
				case c.wantReqID == "" && ids[id]:
					t.Errorf("generated X-Request-Id %q twice", id)
				}
				ids[id] = true
			})
		}
	})

	t.Run("ResponseHopByHopHeadersStripped", func(t *testing.T) {
		req := rawRequest("GET /hop HTTP/1.1", "Host: app.test")
		direct := exchangeRaw(t, up.addr, req)[0]
		if direct.Header.Get("X-Hop") != "1" || direct.Header.Get("Upgrade") != "foo" {
			t.Fatalf("precondition: the upstream itself does not send the hop headers: %v", direct.Header)
		}
		rs := exchangeRaw(t, tg.listen, req, rawRequest("GET /status/200 HTTP/1.1", "Host: app.test"))
		got := rs[0]
		if got.StatusCode != 200 || string(got.body) != "hop\n" {
			t.Errorf("status %d, body %q", got.StatusCode, got.body)
		}
		headerAbsent(t, "response", got.Header, "X-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade")
		for _, name := range connectionNames(got.Header) {
			if name != "keep-alive" && name != "close" {
				t.Errorf("client got Connection: %q, the upstream hop's", got.Header.Values("Connection"))
			}
		}
		if got.Header.Get("X-End-To-End") != "1" {
			t.Errorf("end-to-end response header X-End-To-End lost: %v", got.Header)
		}
		if rs[1].StatusCode != 200 {
			t.Errorf("next request on the connection: status %d", rs[1].StatusCode)
		}
	})
}

// decodeSeen decodes a /headers response.
func decodeSeen(t *testing.T, r rawResponse) seenRequest {
	t.Helper()
	if r.StatusCode != 200 {
		t.Fatalf("/headers: status %d, body %q", r.StatusCode, r.body)
	}
	var seen seenRequest
	if err := json.Unmarshal(r.body, &seen); err != nil {
		t.Fatalf("/headers: %v: %q", err, r.body)
	}
	return seen
}

func TestKeepAliveReusesConnections(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))
	client := newClient(t, ioTimeout)
	const requests = 20
	reused := 0
	for i := range requests {
		var info httptrace.GotConnInfo
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { info = ci }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, tg.url("/status/200"), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := client.fetch(t, req)
		if resp.StatusCode != 200 || string(body) != "upstream says 200\n" {
			t.Fatalf("request %d: status %d, body %q", i, resp.StatusCode, body)
		}
		if info.Reused {
			reused++
		}
	}
	if reused != requests-1 || client.dials.Load() != 1 {
		t.Errorf("client: %d of %d requests reused a connection, %d dialled; want %d and 1", reused, requests, client.dials.Load(), requests-1)
	}
	if n := up.accepted.Load(); n != 1 {
		t.Errorf("upstream accepted %d connections for %d sequential requests, want 1", n, requests)
	}
}

// ---------------------------------------------------------------------------
// Tests: a legacy HTTP/1.0 app (Python's http.server)

// legacyFiles are served by Python's http.server.
var legacyFiles = map[string][]byte{
	"hello.txt": []byte("hello from the legacy app\n"),
	"data.json": []byte(`{"legacy": true, "items": [1, 2, 3]}` + "\n"),
	"blob.bin":  patternBytes(300 << 10), // larger than any proxy buffer
}

func TestLegacyPythonUpstream(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	for name, data := range legacyFiles {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	py := startPythonUpstream(t, dir)
	tg := startWithConfig(t, oneRouteConfig(py))

	// Python guesses Content-Type from its mimetypes tables; ask it
	// directly what it sends, then expect the same through tailguard.
	direct := newClient(t, ioTimeout)
	wantType := map[string]string{}
	for name := range legacyFiles {
		resp, _ := direct.get(t, "http://"+py+"/"+name)
		wantType[name] = resp.Header.Get("Content-Type")
		if resp.StatusCode != 200 || wantType[name] == "" {
			t.Fatalf("precondition: python /%s: status %d, Content-Type %q", name, resp.StatusCode, wantType[name])
		}
	}
	direct404, direct404Body := direct.get(t, "http://"+py+"/missing.txt")
	if direct404.StatusCode != 404 {
		t.Fatalf("precondition: python /missing.txt: status %d", direct404.StatusCode)
	}

	t.Run("GoClient", func(t *testing.T) {
		client := newClient(t, ioTimeout)
		for round := range 3 {
			for _, name := range []string{"hello.txt", "data.json", "blob.bin"} {
				resp, body := client.get(t, tg.url("/"+name))
				what := fmt.Sprintf("round %d /%s", round, name)
				if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
					t.Errorf("%s: %s %d, want HTTP/1.1 200", what, resp.Proto, resp.StatusCode)
				}
				if !bytes.Equal(body, legacyFiles[name]) {
					t.Errorf("%s: body of %d bytes differs from the file's %d", what, len(body), len(legacyFiles[name]))
				}
				if ct := resp.Header.Get("Content-Type"); ct != wantType[name] {
					t.Errorf("%s: Content-Type %q, want %q", what, ct, wantType[name])
				}
				noTailguardError(t, what, resp.Header)
			}
			resp, body := client.get(t, tg.url("/missing.txt"))
			if resp.StatusCode != 404 || !bytes.Equal(body, direct404Body) {
				t.Errorf("round %d /missing.txt: status %d, body %q; want python's 404 %q", round, resp.StatusCode, body, direct404Body)
			}
			noTailguardError(t, "/missing.txt", resp.Header)
		}
		if n := client.dials.Load(); n != 1 {
			t.Errorf("client dialled %d connections for 12 sequential requests, want 1: the upstream closing its connection must not close the client's", n)
		}
	})

	t.Run("Curl", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-i", tg.url("/hello.txt")))
		if r.statusLine != "HTTP/1.1 200 OK" {
			t.Errorf("status line %q, want HTTP/1.1 200 OK", r.statusLine)
		}
		if ct := r.header.Get("Content-Type"); ct != wantType["hello.txt"] {
			t.Errorf("Content-Type %q, want %q", ct, wantType["hello.txt"])
		}
		if !bytes.Equal(r.body, legacyFiles["hello.txt"]) {
			t.Errorf("body %q, want %q", r.body, legacyFiles["hello.txt"])
		}

		// One curl, several sequential transfers: it reuses its connection
		// to tailguard while Python closes each of its own.
		out := t.TempDir()
		names := []string{"hello.txt", "blob.bin", "data.json", "missing.txt", "hello.txt"}
		args := []string{"-w", "%{http_code} %{num_connects}\n"}
		for i, name := range names {
			args = append(args, "-o", filepath.Join(out, strconv.Itoa(i)), tg.url("/"+name))
		}
		lines := strings.Split(strings.TrimSpace(string(runCurl(t, args...))), "\n")
		if len(lines) != len(names) {
			t.Fatalf("curl wrote %d status lines for %d transfers: %q", len(lines), len(names), lines)
		}
		for i, name := range names {
			wantCode, wantBody := "200", legacyFiles[name]
			if name == "missing.txt" {
				wantCode, wantBody = "404", direct404Body
			}
			wantConnects := "0"
			if i == 0 {
				wantConnects = "1"
			}
			if want := wantCode + " " + wantConnects; lines[i] != want {
				t.Errorf("transfer %d /%s: curl reports %q (status, new connections), want %q", i, name, lines[i], want)
			}
			got, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)))
			if err != nil || !bytes.Equal(got, wantBody) {
				t.Errorf("transfer %d /%s: body of %d bytes (%v), want %d bytes", i, name, len(got), err, len(wantBody))
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: curl against the Go upstream

func TestCurlThroughTailguard(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	tg := startWithConfig(t, oneRouteConfig(up.addr))

	t.Run("Get", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-i", tg.url("/big?n=5000")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != "5000" {
			t.Errorf("status line %q, Content-Length %q; want HTTP/1.1 200 OK, 5000", r.statusLine, r.header.Get("Content-Length"))
		}
		if !bytes.Equal(r.body, patternBytes(5000)) {
			t.Errorf("body: %d bytes, not the upstream's 5000", len(r.body))
		}
	})

	t.Run("Head", func(t *testing.T) {
		r := parseCurlOutput(t, runCurl(t, "-I", tg.url("/big?n=5000")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != "5000" || len(r.body) != 0 {
			t.Errorf("status line %q, Content-Length %q, %d body bytes; want HTTP/1.1 200 OK, 5000, none",
				r.statusLine, r.header.Get("Content-Length"), len(r.body))
		}
		noTailguardError(t, "HEAD", r.header)
	})

	t.Run("PostFile", func(t *testing.T) {
		data := patternBytes(1 << 20)
		file := filepath.Join(t.TempDir(), "upload.bin")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := parseCurlOutput(t, runCurl(t, "-i", "-H", "Content-Type: application/octet-stream",
			"--data-binary", "@"+file, tg.url("/echo")))
		if r.statusLine != "HTTP/1.1 200 OK" || r.header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Errorf("status line %q, Content-Length %q; want HTTP/1.1 200 OK, %d", r.statusLine, r.header.Get("Content-Length"), len(data))
		}
		if sha256Hex(r.body) != sha256Hex(data) {
			t.Errorf("echoed %d bytes that differ from the 1 MiB file", len(r.body))
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: tailguard's own errors

func TestTailguardErrors(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	tg := startWithConfig(t, configHead+fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
  down:
    endpoints: [%q]
routes:
  - name: api
    match: {path_prefix: /api/}
    upstream: app
  - name: gone
    match: {path_prefix: /status/}
    upstream: down
  - name: slow
    match: {path_prefix: /sleep}
    upstream: app
    timeout: 200ms
`, up.addr, freeAddrs(t, 1)[0]))
	client := newClient(t, ioTimeout)

	cases := []struct {
		name, path string
		status     int
		cause      string
		route      string // named in the body; "" for no route
	}{
		{"no route", "/elsewhere", 404, "no_route", ""},
		{"upstream down", "/status/200", 502, "connect_failure", "gone"},
		{"route timeout", "/sleep?d=2s", 504, "timeout", "slow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := client.get(t, tg.url(c.path))
			assertTailguardError(t, resp, body, c.status, c.cause, c.route)
		})
	}

	// A body over limits.max_body_bytes (default 10MiB) is refused on its
	// Content-Length, and never reaches the upstream.
	t.Run("body too large", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, tg.url("/api/upload"), bytes.NewReader(patternBytes(10<<20+1)))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := client.fetch(t, req)
		assertTailguardError(t, resp, body, 413, "body_too_large", "api")
	})
}

// assertTailguardError checks a response tailguard made itself: its status,
// X-Tailguard-Error cause, and short plain-text body naming the route.
func assertTailguardError(t *testing.T, resp *http.Response, body []byte, status int, cause, route string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if got := resp.Header.Get("X-Tailguard-Error"); got != cause {
		t.Errorf("X-Tailguard-Error %q, want %q", got, cause)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if !bytes.HasPrefix(body, []byte("tailguard: ")) || len(body) > 200 {
		t.Errorf("body %q: want a short text starting with \"tailguard: \"", body)
	}
	if route != "" && !bytes.Contains(body, []byte(strconv.Quote(route))) {
		t.Errorf("body %q does not name the route %q", body, route)
	}
}
