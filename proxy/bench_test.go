package proxy

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

var upstreamBody = []byte(`{"id":42,"name":"item"}`)

// startFastUpstream runs a minimal fasthttp upstream on loopback, so that
// benchmarks measure tailguard rather than the service.
func startFastUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(upstreamBody)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// BenchmarkProxiedGET measures one proxied GET end to end over loopback,
// client and upstream included, one request at a time.
func BenchmarkProxiedGET(b *testing.B) {
	client, req, resp := proxiedGET(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Do(req, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxiedGETParallel is the same with concurrent clients.
func BenchmarkProxiedGETParallel(b *testing.B) {
	client, req, _ := proxiedGET(b)
	client.MaxConns = 1024
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		req.CopyTo(r)
		for pb.Next() {
			if err := client.Do(r, resp); err != nil {
				b.Fatal(err)
			}
		}
		fasthttp.ReleaseRequest(r)
		fasthttp.ReleaseResponse(resp)
	})
}

// BenchmarkMatch measures a route lookup in a table of several routes.
func BenchmarkMatch(b *testing.B) {
	t := testTable(b)
	host, path, method := []byte("api.example.com:8000"), []byte("/api/v1/items/42"), []byte("GET")
	b.ReportAllocs()
	for b.Loop() {
		if t.Match(host, path, method) == nil {
			b.Fatal("no route")
		}
	}
}

// proxiedGET starts a fasthttp upstream and tailguard in front of it, and
// returns a client and a request for a GET through tailguard.
func proxiedGET(t testing.TB) (*fasthttp.HostClient, *fasthttp.Request, *fasthttp.Response) {
	up := startFastUpstream(t)
	addr := startProxy(t, oneRoute, up)
	client := &fasthttp.HostClient{Addr: addr, MaxIdemponentCallAttempts: 1}
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://" + addr + "/api/items?id=42")
	req.Header.Set("Accept", "application/json")
	resp := fasthttp.AcquireResponse()
	t.Cleanup(func() {
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		client.CloseIdleConnections()
	})
	for range 100 { // warm pools
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
	}
	return client, req, resp
}
