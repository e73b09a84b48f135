package client

import (
	"bufio"
	"net"
	"time"
)

// An Upgraded is an upstream connection that switched protocols: after
// its 101, it carries whatever the two ends speak. It keeps its place in
// the endpoint's pool (max_connections) until Close, and is never pooled
// again. Reads return first what the upstream sent right behind its 101.
type Upgraded struct {
	net.Conn
	e  *Endpoint
	c  connRef
	br *bufio.Reader
}

func (e *Endpoint) upgraded(c connRef, uc *upstreamConn, br *bufio.Reader) (*Upgraded, error) {
	if err := uc.SetDeadline(time.Time{}); err != nil {
		e.hc.ReleaseReader(br)
		pooledConns.close(e.hc, c)
		return nil, errReset
	}
	return &Upgraded{Conn: uc, e: e, c: c, br: br}, nil
}

// Read implements net.Conn.
func (u *Upgraded) Read(p []byte) (int, error) { return u.br.Read(p) }

// CloseWrite shuts the connection's write side: the tunnel's other end
// has finished sending.
func (u *Upgraded) CloseWrite() error {
	if cw, ok := u.Conn.(*upstreamConn).Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection and frees its place in the pool. Its read
// buffer is not handed back to the pool: a tunnel closes one end while
// the other direction may still be inside a Read on it, and a buffer
// reused by another request then would mix two connections' bytes.
func (u *Upgraded) Close() error {
	pooledConns.close(u.e.hc, u.c)
	return nil
}
