//go:build !linux

package edge

import (
	"net"
	"sync"
	"time"

	"tailguard/proxy/internal/peek"
)

// Outside Linux (tailguard's target; this keeps other builds working) each
// parked connection waits on a small goroutine of its own, in the
// runtime's poller, for its next request: no read, only readiness, so the
// goroutine stays on its first, smallest stack.

// parking holds a listener's parked connections, so that closing the
// listener (a shutdown) closes them too, as fasthttp closes its idle
// ones. Safe for concurrent use.
type parking struct {
	// serve hands a woken connection back to fasthttp; nil: connections
	// are never parked.
	serve  func(net.Conn) error
	mu     sync.Mutex
	conns  map[*clientConn]struct{}
	closed bool
}

// parkSpot is what a clientConn keeps for its parking: nothing here, the
// waiting goroutine holds it.
type parkSpot struct{}

// park takes c, which fasthttp has let go of, and waits for its next
// request on a goroutine of its own; after close it closes c instead.
func (p *parking) park(c *clientConn) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return c.Close()
	}
	if p.conns == nil {
		p.conns = make(map[*clientConn]struct{})
	}
	p.conns[c] = struct{}{}
	c.l.stats.parked.Add(1)
	p.mu.Unlock()
	go p.wait(c)
	return nil
}

// wait waits until c is readable, then serves it, or closes it when its
// idle deadline passes or the client has closed it.
func (p *parking) wait(c *clientConn) {
	readable := c.awaitRequest()
	p.mu.Lock()
	_, mine := p.conns[c]
	delete(p.conns, c)
	if mine {
		c.l.stats.parked.Add(-1)
	}
	closed := p.closed
	p.mu.Unlock()
	if !mine { // close took it
		return
	}
	if closed { // the listener closed as the request arrived: no serving after shutdown
		_ = c.Close()
		return
	}
	c.idle.Store(false)
	if !readable || c.Conn.SetReadDeadline(time.Time{}) != nil {
		_ = c.Close()
		return
	}
	_ = p.serve(c) // fasthttp closes c, or parks it again through Close
}

// unpark is called as c closes: its waiting goroutine notices by itself.
func (p *parking) unpark(*clientConn) {}

// stop ends the parking: nothing is parked after, and the connections
// parked are returned for close to close.
func (p *parking) stop() []*clientConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	conns := make([]*clientConn, 0, len(p.conns))
	for c := range p.conns {
		c.l.stats.parked.Add(-1)
		conns = append(conns, c)
	}
	p.conns = nil
	return conns
}

// awaitRequest waits, under the idle deadline fasthttp last set, until
// the parked connection has bytes to read (true), or its client closed it,
// or the deadline passed (false). It reads nothing: the request is left
// whole for fasthttp.
func (c *clientConn) awaitRequest() bool {
	if c.Conn.SetReadDeadline(c.deadline()) != nil {
		return false
	}
	var r peek.Result
	err := c.raw.Read(func(fd uintptr) bool {
		r = peek.Socket(fd)
		return r != peek.Clean
	})
	return err == nil && r == peek.Stray
}
