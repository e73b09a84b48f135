package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestSlowReaderIsNotUpstreamFailure: a streamed response read by a slow
// client is bounded by the route's deadline, not the attempt's, and is
// never the upstream's failure. A client slower than per_try_timeout but
// within the route's timeout gets the whole body (once the head is
// relayed the try cannot be retried, so per_try_timeout no longer
// applies); one slower than the route's timeout is cut off short. In
// neither case does the upstream count a failure or the route a 5xx: the
// upstream sent its whole response at once.
func TestSlowReaderIsNotUpstreamFailure(t *testing.T) {
	const size = 8 << 20
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
	body := make([]byte, size)
	tests := []struct {
		name, route string
		whole       bool
	}{
		{"slower than per_try_timeout", "    per_try_timeout: 1s\n", true},
		{"slower than the route timeout", "", false},
	}
	for _, tt := range tests {
		for _, v := range streamingRoutes {
			t.Run(tt.name+", "+v.name, func(t *testing.T) {
				t.Parallel()
				up := startRaw(t, func(c net.Conn, _ int, _ string) {
					io.WriteString(c, head) // at once: the head is never late
					c.Write(body)
				})
				timeout := "10s"
				if !tt.whole {
					timeout = "1s"
				}
				srv, addr := startServer(t, fmt.Sprintf(streamFailConfig, v.limits, timeout, tt.route+v.route), up.addr())
				n, took := readSlowly(t, addr, size)
				if took < time.Second {
					t.Skipf("the client read %d bytes in %v: not slower than the 1s deadline", n, took)
				}
				if tt.whole && n < size {
					t.Errorf("client read %d bytes in %v, want the whole response (%d bytes of body)", n, took, size)
				}
				if !tt.whole && n >= size {
					t.Errorf("client read %d bytes in %v, past the route's 1s timeout; want it cut off", n, took)
				}
				var st streamStats
				waitFor(t, "the request recorded", func() bool {
					st = streamStatsOf(t, srv)
					return st.Routes[0].Status["2xx"]+st.Routes[0].Status["5xx"] == 1
				})
				e, u := st.Upstreams[0].Endpoints[0], st.Upstreams[0]
				if st.Routes[0].Status["2xx"] != 1 || e.Failures != 0 || e.Outstanding != 0 || u.Breaker != "closed" {
					t.Errorf("status %v, endpoint %d failures, %d outstanding, breaker %s; want one 2xx, 0, 0, closed",
						st.Routes[0].Status, e.Failures, e.Outstanding, u.Breaker)
				}
			})
		}
	}
}

// readSlowly GETs / from addr on a connection with a small receive
// window, so that tailguard's writes wait for it, taking 64 KiB at a time
// 20 ms apart (at least 2.5 s for 8 MiB), until the response's body (size bytes) is
// in, the connection ends, or 8 s pass. It returns the body bytes read and
// how long that took.
func readSlowly(t *testing.T, addr string, size int) (int, time.Duration) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(8 * time.Second))
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || status != "HTTP/1.1 200 OK\r\n" {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("response %q %q (%v), want the upstream's 200", status, rest, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("response head: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	n, buf := 0, make([]byte, 64<<10)
	for n < size {
		m, err := br.Read(buf)
		n += m
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n, time.Since(start)
}

// countingHandover is a client.Handover that counts its reads.
type countingHandover struct{ reads int }

func (h *countingHandover) Read(p []byte) (int, error) { h.reads++; return len(p), nil }
func (h *countingHandover) HandOver()                  {}
func (h *countingHandover) ReadUntil(time.Time)        {}

// TestSentBodyReadPastDeadline: a read of the upstream's stream that would
// start after the request's deadline (the client took the body too
// slowly) is not made, and is not the upstream's failure; before the
// deadline, or with none, reads go through, as do a buffered body's,
// which holds no upstream connection.
func TestSentBodyReadPastDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Time
		stream   bool // from the upstream, not a buffered body
		late     bool
	}{
		{"deadline passed", time.Now().Add(-time.Millisecond), true, true},
		{"deadline ahead", time.Now().Add(time.Hour), true, false},
		{"no deadline", time.Time{}, true, false},
		{"buffered body, deadline passed", time.Now().Add(-time.Millisecond), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &countingHandover{}
			b := sentBody{x: &exchange{arrived: time.Now(), deadline: tt.deadline}, r: h, stream: tt.stream}
			n, err := b.Read(make([]byte, 8))
			if tt.late && (err != errClientLate || n != 0 || h.reads != 0) {
				t.Errorf("Read = %d, %v after %d reads of the stream; want 0, errClientLate, none", n, err, h.reads)
			}
			if !tt.late && (err != nil || n != 8 || h.reads != 1) {
				t.Errorf("Read = %d, %v after %d reads of the stream; want 8, nil, one", n, err, h.reads)
			}
			if b.failed {
				t.Error("counted as the upstream's failure")
			}
		})
	}
}
