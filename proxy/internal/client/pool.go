package client

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// connRef is a connection checked out of a fasthttp.HostClient pool. Its
// concrete type, *fasthttp.clientConn, is unexported, so it travels as this
// interface (a pointer: storing it allocates nothing) and goes back through
// pooledConns.
type connRef interface{ Conn() net.Conn }

// connPool is the part of fasthttp.HostClient that tailguard uses: a
// bounded pool of keep-alive connections with its own dialer. tailguard
// writes requests and reads responses itself (roundtrip.go), so that it can
// refuse a connection that is out of step with its responses.
type connPool struct {
	acquire func(hc *fasthttp.HostClient, dialTimeout time.Duration) (connRef, error)
	release func(hc *fasthttp.HostClient, c connRef)
	close   func(hc *fasthttp.HostClient, c connRef)
}

// pooledConns binds connPool to HostClient's methods. Type inference names
// the unexported connection type once, here.
var pooledConns = newConnPool(
	(*fasthttp.HostClient).AcquireConn,
	(*fasthttp.HostClient).ReleaseConn,
	(*fasthttp.HostClient).CloseConn,
)

func newConnPool[C connRef](
	acquire func(*fasthttp.HostClient, time.Duration, bool) (C, error),
	release, closeConn func(*fasthttp.HostClient, C),
) connPool {
	return connPool{
		acquire: func(hc *fasthttp.HostClient, dialTimeout time.Duration) (connRef, error) {
			c, err := acquire(hc, dialTimeout, false)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		release: func(hc *fasthttp.HostClient, c connRef) { release(hc, c.(C)) },
		close:   func(hc *fasthttp.HostClient, c connRef) { closeConn(hc, c.(C)) },
	}
}
