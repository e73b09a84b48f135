//go:build linux

package edge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// On Linux a listener's parked connections are watched by one goroutine,
// not one each (a goroutine's 2 KiB stack was the largest part of a
// parked connection's memory). Their sockets sit in an epoll set of the
// listener's own, registered one-shot for input or the client's close
// (EPOLLIN|EPOLLRDHUP|EPOLLONESHOT). The set only learns readiness: once
// a connection is handed back, fasthttp reads it through the runtime's
// poller as usual. The epoll descriptor is itself pollable, so the
// watching goroutine waits for the set in the runtime's poller too, and
// holds no thread while it waits; its read deadline wakes it to sweep
// idle deadlines, and closing the set wakes it to end.
//
// A socket that fires is taken out of the set and handed back to fasthttp
// (Server.ServeConn) on a new goroutine, once: it is in the set and in
// parking.conns together, and whoever takes it out of both, under
// parking.mu, owns it (the watcher to serve it or close it, close at a
// shutdown, or clientConn.Close when someone else closes it). One whose
// client closed without sending is closed instead.
//
// Idle deadlines are swept, not timed one by one: a parked connection is
// closed at its idle deadline or up to sweepEvery later, and a listener
// with parked connections sweeps (looks at every one) at most every
// sweepEvery, at the earliest deadline among them.
//
// Reused descriptors: parking.conns is keyed by the socket's descriptor
// number, which the kernel reuses as soon as a socket is closed. A
// socket is closed only after it has left the set and the map: the
// watcher takes it out (EPOLL_CTL_DEL) before closing it; close closes
// the whole set, and with it every registration, before the sockets; and
// clientConn.Close, whoever calls it, even as the connection is being
// parked, takes a parked one out first (parking.unpark, parking.add). So
// a number in the map, and the DEL for it, always name the socket that
// was registered under it. An event already returned
// by epoll_wait can still be stale when the watcher gets to it (its
// socket taken out and closed meanwhile and the number parked again by a
// new one): each registration carries a generation in the event's data,
// and an event whose generation is not its socket's current one is
// dropped. The set itself is closed only once the watcher has stopped
// using it (the runtime closes it after the last read on it returns), and
// no registration is made after close.

// sweepEvery is the least time between two sweeps of idle deadlines, and
// so how late past its idle deadline a parked connection may be closed.
const sweepEvery = time.Second

// watchBatch is how many readiness events the watcher takes from the set
// at a time.
const watchBatch = 128

// parking holds a listener's parked connections and the goroutine that
// watches them (started at the first park), so that closing the listener
// (a shutdown) closes them too, as fasthttp closes its idle ones. Safe
// for concurrent use.
type parking struct {
	// serve hands a woken connection back to fasthttp; nil: connections
	// are never parked.
	serve func(net.Conn) error
	mu    sync.Mutex
	// closed is set by close: nothing is parked after.
	closed bool
	// set is the epoll set of the parked sockets, epfd its descriptor;
	// nil until the first park.
	set  *os.File
	epfd int
	// conns are the parked connections, by socket descriptor.
	conns map[int32]*clientConn
	// gen is the generation of the last registration.
	gen uint32
	// sweepAt is when the watcher sweeps next (the set's read deadline;
	// zero: no sweep due); swept is when it last swept.
	sweepAt, swept time.Time
	// done is closed when the watcher has returned.
	done chan struct{}
}

// parkSpot is what a clientConn keeps of its registration in the set.
type parkSpot struct {
	// watched is set while the connection is in the set and the map (and
	// while add registers it); changed under parking.mu, read without it
	// by clientConn.Close.
	watched atomic.Bool
	// fd and gen are the socket's descriptor and its registration's
	// generation; valid while watched.
	fd  int32
	gen uint32
}

// park takes c, which fasthttp has let go of, into the set, to be served
// again when its next request comes; after close, or if it cannot be
// watched, it closes c instead.
func (p *parking) park(c *clientConn) error {
	p.mu.Lock()
	parked, err := p.add(c)
	p.mu.Unlock()
	if parked {
		return nil
	}
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// add registers c in the set, starting the watcher if need be, and
// reports whether it did: not after close, nor once c is closing. Called
// with p.mu held.
func (p *parking) add(c *clientConn) (bool, error) {
	if p.closed {
		return false, nil
	}
	if p.set == nil {
		if err := p.start(); err != nil {
			return false, err
		}
	}
	// A Close racing the park (fasthttp closing the connection again)
	// sets closed, then looks at watched; this sets watched, then looks
	// at closed: one of the two sees the other, and either the park is
	// given up or Close takes c out of the set (under p.mu, once this is
	// done) before its socket closes.
	c.spot.watched.Store(true)
	if c.closed.Load() {
		c.spot.watched.Store(false)
		return false, nil
	}
	p.gen++
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		c.spot.fd, c.spot.gen = int32(fd), p.gen
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd), Pad: int32(p.gen)}
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil || err != nil {
		c.spot.watched.Store(false)
		if cerr != nil {
			return false, fmt.Errorf("park: %w", cerr)
		}
		return false, fmt.Errorf("park: epoll_ctl add: %w", err)
	}
	p.conns[c.spot.fd] = c
	c.l.stats.parked.Add(1)
	p.sweepBy(c.deadline())
	return true, nil
}

// start creates the set and starts its watcher. Called with p.mu held.
func (p *parking) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("park: epoll_create1: %w", err)
	}
	// Non-blocking, so that the runtime's poller takes the set in.
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("park: epoll set non-blocking: %w", err)
	}
	set := os.NewFile(uintptr(epfd), "parked connections")
	raw, err := set.SyscallConn()
	if err == nil {
		err = set.SetReadDeadline(time.Time{}) // fails if the poller did not take it
	}
	if err != nil {
		_ = set.Close()
		return fmt.Errorf("park: epoll set in the runtime's poller: %w", err)
	}
	p.set, p.epfd = set, epfd
	p.conns = make(map[int32]*clientConn)
	p.done = make(chan struct{})
	go p.watch(raw)
	return nil
}

// watch is the watcher: it takes what is ready from the set and serves
// or closes it, and sweeps idle deadlines when the set's read deadline
// passes, until the set is closed.
func (p *parking) watch(set syscall.RawConn) {
	defer close(p.done)
	events := make([]unix.EpollEvent, watchBatch)
	for {
		var n int
		err := set.Read(func(fd uintptr) bool {
			var werr error
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr != nil {
				n = 0
				return werr == unix.EINTR
			}
			return n > 0
		})
		switch {
		case err == nil:
			p.wake(events[:n])
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.sweep()
		default: // the set is closed
			return
		}
	}
}

// wake serves, or closes, the parked connections of ready events.
func (p *parking) wake(events []unix.EpollEvent) {
	for i := range events {
		ev := &events[i]
		p.mu.Lock()
		c := p.conns[ev.Fd]
		if c == nil || c.spot.gen != uint32(ev.Pad) { // taken out since
			p.mu.Unlock()
			continue
		}
		p.remove(c)
		p.mu.Unlock()
		p.resume(c, ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// resume hands c, taken out of the set as it became readable, back to
// fasthttp on a goroutine of its own; hangup says the client closed or
// reset it, which closes it unless it sent a request before.
func (p *parking) resume(c *clientConn, hangup bool) {
	c.idle.Store(false)
	if (hangup && !unread(c.raw)) || c.Conn.SetReadDeadline(time.Time{}) != nil {
		_ = c.Close()
		return
	}
	go p.serve(c) // fasthttp closes c, or parks it again through Close
}

// sweep closes the parked connections whose idle deadline has passed and
// sets when the next sweep is due.
func (p *parking) sweep() {
	now := time.Now()
	var expired []*clientConn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var next time.Time
	for _, c := range p.conns {
		switch d := c.deadline(); {
		case d.IsZero():
		case !d.After(now):
			p.remove(c)
			expired = append(expired, c)
		case next.IsZero() || d.Before(next):
			next = d
		}
	}
	p.swept, p.sweepAt = now, time.Time{}
	_ = p.set.SetReadDeadline(time.Time{}) // see sweepBy
	p.sweepBy(next)
	p.mu.Unlock()
	for _, c := range expired {
		_ = c.Close()
	}
}

// sweepBy makes the watcher sweep by d (zero: no deadline), but not
// sooner than sweepEvery after its last sweep. Called with p.mu held,
// before close: the set is open and in the runtime's poller (start
// checked), where setting a deadline cannot fail.
func (p *parking) sweepBy(d time.Time) {
	if d.IsZero() || !p.sweepAt.IsZero() && !d.Before(p.sweepAt) {
		return
	}
	if soonest := p.swept.Add(sweepEvery); d.Before(soonest) {
		d = soonest
	}
	p.sweepAt = d
	_ = p.set.SetReadDeadline(d)
}

// remove takes c out of the set and the map; its socket must still be
// open. Called with p.mu held.
func (p *parking) remove(c *clientConn) {
	// The DEL cannot fail on an open socket that is in the set; if it did,
	// a late event for it would be dropped by its generation.
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.spot.fd), nil)
	delete(p.conns, c.spot.fd)
	c.spot.watched.Store(false)
	c.l.stats.parked.Add(-1)
}

// unpark takes c out of the set if it is parked: clientConn.Close calls
// it before closing the socket, so that a parked connection closed by
// someone else than the parking (fasthttp's shutdown closing an idle
// connection just as it was parked) leaves the set before its descriptor
// number can be reused.
func (p *parking) unpark(c *clientConn) {
	if !c.spot.watched.Load() {
		return
	}
	p.mu.Lock()
	if c.spot.watched.Load() {
		p.remove(c)
	}
	p.mu.Unlock()
}

// stop ends the parking: nothing is parked after, the watcher stops, and
// the connections parked are returned for close to close. The set is
// closed first: with it go all its registrations, so their sockets need
// no DEL.
func (p *parking) stop() []*clientConn {
	p.mu.Lock()
	p.closed = true
	conns := make([]*clientConn, 0, len(p.conns))
	for _, c := range p.conns {
		c.spot.watched.Store(false)
		c.l.stats.parked.Add(-1)
		conns = append(conns, c)
	}
	set := p.set
	p.conns, p.set = nil, nil
	p.mu.Unlock()
	if set != nil {
		_ = set.Close()
		<-p.done
	}
	return conns
}
