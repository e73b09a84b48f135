package client

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestSendSeesWhatCameFirst: bytes or a close that reached a fresh
// connection before its request are answered for (a bad response, a
// reset), not waited on until the deadline. The request is written inside
// the poller's wait (upstreamConn.send); an arrival the poller delivered
// before that wait was armed wakes nothing, so send must look at the
// socket first. The dial here waits until the upstream's bytes have been
// delivered, which makes the case certain rather than a race.
func TestSendSeesWhatCameFirst(t *testing.T) {
	tests := []struct {
		name  string
		first func(c net.Conn)
		want  error
	}{
		{"bytes", func(c net.Conn) { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") }, errBadResponse},
		{"close", func(c net.Conn) { c.Close() }, errReset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tt.first(c)
				_, _ = io.Copy(io.Discard, c)
			}()
			e := NewEndpoint(ln.Addr().String(), 1, time.Second, nil)
			dial := e.hc.DialTimeout
			e.hc.DialTimeout = func(addr string, d time.Duration) (net.Conn, error) {
				c, err := dial(addr, d)
				time.Sleep(100 * time.Millisecond) // the poller sees the arrival meanwhile
				return c, err
			}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + ln.Addr().String() + "/")
			now := time.Now()
			err = e.RoundTrip(req, resp, now, now.Add(5*time.Second))
			if !errors.Is(err, tt.want) {
				t.Fatalf("RoundTrip: %v, want %v", err, tt.want)
			}
		})
	}
}
