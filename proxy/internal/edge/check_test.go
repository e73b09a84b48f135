package edge

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"tailguard/proxy/internal/cause"
)

// parsedCtx returns a RequestCtx whose request head fasthttp parsed from
// raw, as the server does before calling the handler, or nil if fasthttp
// itself refuses raw.
func parsedCtx(t testing.TB, raw string) *fasthttp.RequestCtx {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	if err := ctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		return nil
	}
	return ctx
}

// TestCheckRequest: what fasthttp parses but tailguard refuses, and what
// it lets through. Each row is a whole request head as a client sent it.
func TestCheckRequest(t *testing.T) {
	const maxURI = 64
	tests := []struct {
		name string
		raw  string
		want cause.Cause // cause.None: forwarded
	}{
		{"plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", cause.None},
		{"HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: x\r\n\r\n", cause.None},
		{"chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", cause.None},
		{"chunked, any case", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD \r\n\r\n", cause.None},
		{"absolute form http", "GET http://h/x HTTP/1.1\r\nHost: y\r\n\r\n", cause.None},
		{"absolute form HTTPS", "GET HTTPS://h/x HTTP/1.1\r\nHost: y\r\n\r\n", cause.None},
		{"absolute form, HTTP/1.0 without Host", "GET http://h/x HTTP/1.0\r\nAccept: */*\r\n\r\n", cause.None},
		{"double slashes with Host", "GET //a//b HTTP/1.1\r\nHost: x\r\n\r\n", cause.None},
		{"websocket upgrade: stripped, not refused", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", cause.None},
		{"leading empty lines", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", cause.None},
		{"header value with tab and obs-text", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb \xe9\r\n\r\n", cause.None},
		{"target at the limit", "GET /" + strings.Repeat("a", maxURI-1) + " HTTP/1.1\r\nHost: x\r\n\r\n", cause.None},
		{"headers at the limit", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: b\r\n", maxHeaders-1) + "\r\n", cause.None},

		{"CL with TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", cause.BadRequest},
		{"TE with CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", cause.BadRequest},
		{"TE identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", cause.BadRequest},
		{"TE identity with CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\n", cause.BadRequest},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", cause.BadRequest},
		{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", cause.BadRequest},
		{"obs-fold into TE", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", cause.BadRequest},
		{"bare LF in a header line", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", cause.BadRequest},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\n\r\n\r\n", cause.BadRequest},
		{"space in a name", "GET / HTTP/1.1\r\nHost: x\r\nFoo Bar: x\r\n\r\n", cause.BadRequest},
		{"Transfer_Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n", cause.BadRequest},
		{"content_length", "POST / HTTP/1.1\r\nHost: x\r\ncontent_length: 5\r\n\r\n", cause.BadRequest},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", cause.BadRequest},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", cause.BadRequest},
		{"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", cause.BadRequest},
		{"CONNECT", "CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n", cause.BadRequest},
		{"h2c upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", cause.BadRequest},
		{"h2c in a list", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket, H2C\r\n\r\n", cause.BadRequest},
		{"HTTP2-Settings alone", "GET / HTTP/1.1\r\nHost: x\r\nHTTP2-Settings: AAMA\r\n\r\n", cause.BadRequest},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", cause.BadRequest},
		{"ftp scheme", "GET ftp://h/x HTTP/1.1\r\nHost: x\r\n\r\n", cause.BadRequest},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", cause.BadRequest},
		{"HTTP/1.0 without Host, a target fasthttp reads as an authority", "GET //evil/admin HTTP/1.0\r\nAccept: */*\r\n\r\n", cause.BadRequest},
		{"target over the limit", "GET /" + strings.Repeat("a", maxURI) + " HTTP/1.1\r\nHost: x\r\n\r\n", cause.URITooLong},
		{"headers over the limit", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("A: b\r\n", maxHeaders) + "\r\n", cause.TooManyHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := parsedCtx(t, tt.raw)
			if ctx == nil {
				t.Fatalf("fasthttp refuses %q itself: the row tests nothing", tt.raw)
			}
			if got := Check(ctx, maxURI); got != tt.want {
				t.Errorf("Check = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestCheckHeaderBlockRaw covers blocks fasthttp never hands over (it
// refuses them first), so that the check holds on its own.
func TestCheckHeaderBlockRaw(t *testing.T) {
	for _, raw := range []string{
		"",                        // no block at all
		"Host: x\r\n",             // no blank line
		"Host: x\r\n\r\nX: y\r\n", // bytes after the blank line
		"Host: x\r\r\n\r\n",       // bare CR
		"Host: x\r\n\n",           // bare LF blank line
		": x\r\n\r\n",             // empty name
		"Host\r\n\r\n",            // no colon
		"Ho\x00st: x\r\n\r\n",     // NUL in a name
		"Host : x\r\n\r\n",        // space before the colon
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Transfer-Encoding: gzip, chunked\r\n\r\n",
	} {
		if c := checkHeaderBlock([]byte(raw)); c == cause.None {
			t.Errorf("checkHeaderBlock(%q) = none, want a refusal", raw)
		}
	}
}

// A request checked and let through costs nothing: the check is on the
// plain path (proxy/alloc_test.go covers it end to end).
func TestCheckRequestAllocatesNothing(t *testing.T) {
	ctx := parsedCtx(t, browserGET)
	if allocs := testing.AllocsPerRun(1000, func() {
		if c := Check(ctx, 8<<10); c != cause.None {
			t.Fatalf("refused: %s", c)
		}
	}); allocs != 0 {
		t.Errorf("allocs per check = %v, want 0", allocs)
	}
}

// browserGET is what a browser sends: a dozen headers, a cookie.
const browserGET = "GET /api/v1/items/42?expand=owner HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-GB,en;q=0.7\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://app.example.com/items\r\n" +
	"Origin: https://app.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n" +
	"Sec-Fetch-Dest: empty\r\n" +
	"Sec-Fetch-Mode: cors\r\n" +
	"Sec-Fetch-Site: same-site\r\n" +
	"X-Request-Id: 5f0c6f3e2b1a4d8e9f7a6b5c4d3e2f1a\r\n\r\n"

// BenchmarkCheckRequest measures the strict check of a browser's GET.
func BenchmarkCheckRequest(b *testing.B) {
	ctx := parsedCtx(b, browserGET)
	b.ReportAllocs()
	for b.Loop() {
		if Check(ctx, 8<<10) != cause.None {
			b.Fatal("refused")
		}
	}
}
