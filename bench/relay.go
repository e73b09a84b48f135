package bench

import (
	"context"
	"flag"
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
)

// relay is `tailguard bench relay -listen ADDR -upstream HOST:PORT`: the
// least a proxy built on fasthttp can do, each request handed to a
// HostClient as it came and the response passed back, nothing checked,
// rewritten, routed or measured. It is the overhead scenario's floor arm:
// what the fasthttp server, client and Go's runtime cost per request
// before tailguard does anything, measured side by side with nginx.
// Not a proxy to use: it forwards hop-by-hop headers and trusts its input.
func (c *cli) relay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench relay", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	listen := fs.String("listen", "127.0.0.1:8001", "address to serve on")
	upstream := fs.String("upstream", "", "upstream host:port (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("bench relay: -upstream is required: %w", flag.ErrHelp)
	}
	client := &fasthttp.HostClient{Addr: *upstream, MaxConns: 1024, MaxIdemponentCallAttempts: 1}
	srv := &fasthttp.Server{
		Handler: func(rc *fasthttp.RequestCtx) {
			if err := client.Do(&rc.Request, &rc.Response); err != nil {
				rc.Error("relay: upstream failed", fasthttp.StatusBadGateway)
			}
		},
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		NoDefaultContentType:  true,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("bench relay: %w", err)
	}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	return srv.Shutdown()
}
