package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"tailguard/config"
	"tailguard/metrics"
)

// Fuzz targets. Each has seeds here and in testdata/fuzz/<name>/; CI runs
// each for a few seconds (.ci/run), and `go test -fuzz=<name> ./proxy/`
// runs one for as long as you like.

// smugglingSeeds are request-smuggling vectors and their benign cousins.
var smugglingSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nab",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nFoo Bar: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("e", 70000) + "\r\nx\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nContent-Length: 9\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMA\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET http://evil.example/x HTTP/1.1\r\nHost: good\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: X-A, Content-Length, Host\r\nX-A: 1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabGET /2 HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a%2Fb/../c//d/./e?x=%7E+y%20#f HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET HTTP://h:8/%2e%2e/x;p=1?q HTTP/1.1\r\nHost: y\r\n\r\n",
	"GET http://h?q=1 HTTP/1.0\r\nHost: h\r\n\r\n",
}

// FuzzRequestParsing sends arbitrary bytes to a tailguard Server, as a
// client over loopback, in front of strictUpstream: whatever the bytes, the
// proxy does not panic, the upstream sees only unambiguous framing, and
// every request target it sees is one the client sent, byte for byte (in
// origin form).
func FuzzRequestParsing(f *testing.F) {
	for _, s := range smugglingSeeds {
		f.Add([]byte(s))
	}
	up := startStrictUpstream(f)
	addr := startProxy(f, `
listen: "127.0.0.1:0"
limits: {read_header_timeout: 1s, max_body_bytes: 1MiB}
upstreams: {app: {endpoints: ["%s"]}}
routes: [{name: default, match: {path_prefix: /}, upstream: app, timeout: 1s}]
`, up.addr())
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(4 * time.Second))
		go func() {
			_, _ = c.Write(raw)
			_ = c.(*net.TCPConn).CloseWrite() // so the proxy sees where the bytes end
		}()
		if _, err := io.Copy(io.Discard, c); err != nil {
			// Every timeout of the proxy is a second: it must have
			// answered and closed long before.
			t.Fatalf("the proxy neither answered nor closed: %v, for %q", err, raw)
		}
		if v := up.takeViolations(); len(v) > 0 {
			t.Fatalf("the upstream saw ambiguous framing for %q: %q", raw, v)
		}
		sent := clientTargets(raw)
		for _, target := range up.takeTargets() {
			if !sent[target] {
				t.Fatalf("the upstream saw target %q, which the client never sent as it is: %q", target, raw)
			}
		}
	})
}

// clientTargets is every request target in raw's request lines, as the
// upstream must see it: an origin-form target as it is; an absolute-form
// one as the path and query after its authority, "/" if it has no path.
func clientTargets(raw []byte) map[string]bool {
	targets := map[string]bool{}
	for _, line := range bytes.Split(raw, []byte("\n")) {
		parts := bytes.Split(bytes.TrimSuffix(line, []byte("\r")), []byte(" "))
		if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
			continue
		}
		target := string(parts[1])
		if _, rest, ok := strings.Cut(target, "://"); ok && !strings.HasPrefix(target, "/") {
			i := strings.IndexAny(rest, "/?")
			if i < 0 {
				i = len(rest)
			}
			if target = rest[i:]; !strings.HasPrefix(target, "/") {
				target = "/" + target
			}
		}
		targets[target] = true
	}
	return targets
}

// FuzzHeaderHygiene applies tailguard's header hygiene to any header block
// fasthttp parses: hop-by-hop headers and those Connection names never
// survive; Host and the framing headers are never deleted; X-Forwarded-*
// come out exactly as documented, for a trusted peer and any other.
func FuzzHeaderHygiene(f *testing.F) {
	f.Add([]byte("Host: x\r\nConnection: keep-alive, X-Hop, Host, Content-Length\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\n"), []byte{10, 1, 2, 3}, false)
	f.Add([]byte("Host: a\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n"), []byte{127, 0, 0, 1}, true)
	f.Add([]byte("Host: a\r\nConnection: close, Proxy-Authorization\r\nProxy-Authorization: Basic x\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n"), []byte(net.ParseIP("2001:db8::1")), true)
	f.Add([]byte("Host: a\r\nConnection: ,, ,x-forwarded-for,\r\nProxy-Connection: keep-alive\r\n\r\n"), []byte{}, false)
	f.Add([]byte("Host: a\r\nConnection:\nX-Hop: 1\r\nconnection: x-hop\n\r\n"), []byte{}, false) // bare LF ends a line
	f.Fuzz(func(t *testing.T, block, ip []byte, trusted bool) {
		var h fasthttp.RequestHeader
		if h.Read(bufio.NewReader(io.MultiReader(strings.NewReader("GET / HTTP/1.1\r\n"), bytes.NewReader(block)))) != nil {
			return
		}
		named := connectionNames(h.RawHeaders())
		host := string(h.Host())
		cl, te := h.ContentLength(), string(h.Peek(fasthttp.HeaderTransferEncoding))
		xff := strings.Join(peekAll(&h, fasthttp.HeaderXForwardedFor), ", ")
		wantProto, wantHost := "http", host
		if p := peekAll(&h, fasthttp.HeaderXForwardedProto); trusted && len(p) == 1 {
			wantProto = p[0]
		}
		if v := peekAll(&h, fasthttp.HeaderXForwardedHost); trusted && len(v) == 1 {
			wantHost = v[0]
		}

		set, conn := requestHeaderSet(&h, nil)
		stripHeaders(&h, set&(hopHeaders|hasExpect), conn)
		for _, name := range slices.Concat(passNames[:hopCount], named, []string{fasthttp.HeaderExpect}) {
			if v := peekAll(&h, name); len(v) > 0 {
				t.Fatalf("%s survived: %q\nblock %q", name, v, block)
			}
		}
		if string(h.Host()) != host || h.ContentLength() != cl || string(h.Peek(fasthttp.HeaderTransferEncoding)) != te {
			t.Fatalf("Host, Content-Length or Transfer-Encoding changed: %q %d %q, was %q %d %q\nblock %q",
				h.Host(), h.ContentLength(), h.Peek(fasthttp.HeaderTransferEncoding), host, cl, te, block)
		}

		clientIP := net.IP(ip)
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			clientIP = net.IPv4(127, 0, 0, 1)
		}
		setForwarded(&h, set, clientIP, trusted, []byte("http"), []byte(host), nil)
		wantXFF := clientIP.String()
		if xff != "" {
			wantXFF = xff + ", " + wantXFF
		}
		for name, want := range map[string]string{
			fasthttp.HeaderXForwardedFor:   wantXFF,
			fasthttp.HeaderXForwardedProto: wantProto,
			fasthttp.HeaderXForwardedHost:  wantHost,
		} {
			if got := peekAll(&h, name); len(got) != 1 || got[0] != want {
				t.Fatalf("%s = %q, want [%q]\nblock %q", name, got, want, block)
			}
		}
	})
}

// connectionNames returns the header names a raw block's Connection
// headers list, except those tailguard protects.
func connectionNames(raw []byte) []string {
	var names []string
	for line := range strings.SplitSeq(string(raw), "\n") { // fasthttp ends a line at a bare LF too
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "connection") {
			continue
		}
		for tok := range strings.SplitSeq(value, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !protectedHeader([]byte(tok)) {
				names = append(names, tok)
			}
		}
	}
	return names
}

func peekAll(h *fasthttp.RequestHeader, name string) []string {
	var out []string
	for _, v := range h.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

// routeSpec is one route of FuzzRouteMatch's tables.
type routeSpec struct {
	name, host, prefix string
	methods            []string
}

// FuzzRouteMatch builds a routing table from fuzzed routes and matches a
// fuzzed request against it: Match never panics and always agrees with
// refMatch, a plain reading of the documented rule.
func FuzzRouteMatch(f *testing.F) {
	f.Add("api.example.com /api/ GET,HEAD\napi.example.com /api/ \n - /api/ \n - /static/ GET\n - / ", "API.example.com:8443", "/api/x", "POST")
	f.Add(" - /a/ GET\n - /a/b/ POST\n - /a/b/c/ ", "x", "/a/b/c", "GET")
	f.Add("[::1] / \n::1 /x/ GET", "[::1]:80", "/x/y", "GET")
	f.Add("h.example / PUT\n - /", "h.example.", "/", "PUT")
	f.Fuzz(func(t *testing.T, spec, host, path, method string) {
		routes := parseRouteSpecs(spec)
		if len(routes) == 0 {
			return
		}
		tbl := buildRouteTable(routes)
		if tbl == nil {
			return // a config tailguard refuses to load
		}
		got := ""
		if r := tbl.Match([]byte(host), []byte(path), []byte(method)); r != nil {
			got = r.name
		}
		if want := refMatch(routes, host, path, method); got != want {
			t.Fatalf("Match(%q, %q, %q) = %q, want %q\nroutes %+v", host, path, method, got, want, routes)
		}
	})
}

// parseRouteSpecs reads up to 8 lines of "host prefix methods" ("-": any
// host; methods comma-separated, empty: any).
func parseRouteSpecs(spec string) []routeSpec {
	var routes []routeSpec
	for i, line := range strings.SplitN(spec, "\n", 9) {
		if i == 8 {
			break
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) < 2 {
			continue
		}
		r := routeSpec{name: "r" + strconv.Itoa(i), host: f[0], prefix: f[1]}
		if r.host == "-" {
			r.host = ""
		}
		if len(f) == 3 && f[2] != "" {
			r.methods = strings.Split(f[2], ",")
		}
		routes = append(routes, r)
	}
	return routes
}

// buildRouteTable builds routes through config, as tailguard does, or
// returns nil if config refuses them.
func buildRouteTable(routes []routeSpec) *Table {
	var y strings.Builder
	y.WriteString("upstreams: {app: {endpoints: [\"127.0.0.1:1\"]}}\nroutes:\n")
	for _, r := range routes {
		fmt.Fprintf(&y, "  - name: %s\n    upstream: app\n    match:\n      path_prefix: %s\n", r.name, strconv.Quote(r.prefix))
		if r.host != "" {
			fmt.Fprintf(&y, "      host: %s\n", strconv.Quote(r.host))
		}
		if len(r.methods) > 0 {
			y.WriteString("      methods: [")
			for i, m := range r.methods {
				if i > 0 {
					y.WriteString(", ")
				}
				y.WriteString(strconv.Quote(m))
			}
			y.WriteString("]\n")
		}
	}
	cfg, err := config.Parse("fuzz.yaml", []byte(y.String()))
	if err != nil {
		return nil
	}
	tbl, err := Build(cfg, metrics.NewRegistry(metrics.RegistryOptions{}), zap.NewNop(), nil)
	if err != nil {
		return nil
	}
	return tbl
}

// refMatch is the documented rule, read plainly: among the routes for the
// request's host (case-insensitive, port ignored), else among those for
// any host, the one with the longest prefix of the path whose methods
// allow the request's; on a tie, the first in the config.
func refMatch(routes []routeSpec, host, path, method string) string {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Trim(h[i+1:], "0123456789") == "" {
		h = h[:i]
	}
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = asciiLower(h)
	hostKnown := false
	for _, r := range routes {
		hostKnown = hostKnown || r.host != "" && len(h) <= maxHostLen && routeHost(r) == h
	}
	for _, wantHost := range []bool{true, false} {
		if wantHost && !hostKnown {
			continue
		}
		best := -1
		for i, r := range routes {
			if (r.host != "") != wantHost || wantHost && routeHost(r) != h {
				continue
			}
			if !strings.HasPrefix(path, r.prefix) || len(r.methods) > 0 && !contains(r.methods, method) {
				continue
			}
			if best < 0 || len(r.prefix) > len(routes[best].prefix) {
				best = i
			}
		}
		if best >= 0 {
			return routes[best].name
		}
	}
	return ""
}

func routeHost(r routeSpec) string { return strings.Trim(strings.ToLower(r.host), "[]") }

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
