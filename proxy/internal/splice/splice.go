// Package splice joins two connections into one byte stream each way: a
// tunnel, once a request has switched protocols (WebSocket). It reads
// nothing of what passes: no frames, no messages. Each direction copies
// with a blocking write, so a slow reader holds back its writer
// (backpressure both ways) and no buffer grows.
package splice

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bufSize is each direction's copy buffer.
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Join copies a to b and b to a until both directions have ended, then
// closes both connections. A direction ends at its reader's EOF, which is
// passed on as a half close where the other connection can take one (and
// ends the whole tunnel where it cannot), or at any error. The tunnel
// ends when idle passes with no byte either way (0: never), or when stop
// closes. Join returns when both connections are closed.
func Join(a, b net.Conn, idle time.Duration, stop <-chan struct{}) {
	t := &tunnel{a: a, b: b, idle: idle}
	t.touch()
	done := make(chan struct{})
	go func() {
		select {
		case <-stop:
			t.close()
		case <-done:
		}
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); t.pump(b, a) }()
	t.pump(a, b)
	wg.Done()
	wg.Wait()
	close(done)
	t.close()
}

type tunnel struct {
	a, b   net.Conn
	idle   time.Duration
	last   atomic.Int64 // unix nanoseconds of the last byte either way
	closed sync.Once
}

func (t *tunnel) touch() { t.last.Store(time.Now().UnixNano()) }

func (t *tunnel) close() {
	t.closed.Do(func() {
		_ = t.a.Close()
		_ = t.b.Close()
	})
}

// pump copies src to dst until src ends. At EOF it half-closes dst if dst
// can, so that the other direction may go on (a close handshake); else,
// and on any error, it ends the tunnel.
func (t *tunnel) pump(dst, src net.Conn) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if t.idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(t.idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			if t.idle > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(t.idle))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				t.close()
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, t.last.Load())) < t.idle:
			// Silent this way, but the other way spoke within idle.
		case err == io.EOF:
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
			t.close()
			return
		default:
			t.close()
			return
		}
	}
}
