package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

// The websocket scenario's two programs: an echo upstream and a load
// generator that echoes through it. Both are this binary's subcommands,
// so that each runs as a process of its own, pinned like overhead's.

// wsBuffer is the read and write buffer of both ends: large enough for
// the scenario's largest message in one frame.
const wsBuffer = 32 << 10

// wsEcho is a WebSocket server that sends every message back as it came,
// same type, until the client closes. Origins are not checked: it serves
// loopback benchmarks only.
func wsEcho() http.Handler {
	up := websocket.Upgrader{ReadBufferSize: wsBuffer, WriteBufferSize: wsBuffer,
		CheckOrigin: func(*http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered the client
		}
		defer c.Close()
		for {
			mt, msg, err := c.NextReader()
			if err != nil {
				return
			}
			out, err := c.NextWriter(mt)
			if err != nil {
				return
			}
			if _, err := io.Copy(out, msg); err != nil || out.Close() != nil {
				return
			}
		}
	})
}

// wsecho is `tailguard bench wsecho -listen ADDR`: wsEcho on ADDR until
// SIGINT or SIGTERM.
func (c *cli) wsecho(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench wsecho", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	listen := fs.String("listen", "127.0.0.1:8002", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("bench wsecho: %w", err)
	}
	srv := &http.Server{Handler: wsEcho(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	return srv.Close() // hijacked connections close as their clients go
}

// wsLoad is a closed loop of WebSocket echoes: Connections connections,
// opened before the clock starts, each sending a binary message of Size
// bytes and waiting for its echo before the next, until Count messages
// were sent or Duration passed (at least one must be set). Each message
// is recorded as a request: class "echo" when it came back whole, an
// "error …" class otherwise.
type wsLoad struct {
	URL               string
	Size, Connections int
	Count             int64
	Duration, Timeout time.Duration
}

// run sends the load and returns what it measured.
func (l wsLoad) run(ctx context.Context) (*Result, error) {
	if l.Count <= 0 && l.Duration <= 0 || l.Connections <= 0 || l.Size <= 0 {
		return nil, errors.New("ws load: need -connections and -size > 0 and a -count or -duration: a run must stop by itself")
	}
	d := websocket.Dialer{ReadBufferSize: wsBuffer, WriteBufferSize: wsBuffer, HandshakeTimeout: l.Timeout}
	pool := make(chan *websocket.Conn, l.Connections)
	defer func() {
		for range len(pool) {
			_ = (<-pool).Close()
		}
	}()
	for range l.Connections {
		c, resp, err := d.DialContext(ctx, l.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("ws load: dial %s: %w", l.URL, err)
		}
		_ = resp.Body.Close()
		pool <- c
	}
	msg := make([]byte, l.Size)
	rec := newRecorder(false)
	start := time.Now()
	runClosed(ctx, Load{Closed: true, Count: l.Count, Duration: l.Duration, Connections: l.Connections}, func() (string, int) {
		c := <-pool
		defer func() { pool <- c }()
		return l.echo(c, msg), 1
	}, rec, start)
	res := rec.total
	res.Elapsed = time.Since(start)
	return res, ctx.Err()
}

// echo sends msg on c and reads its echo: "echo", or the error's class.
func (l wsLoad) echo(c *websocket.Conn, msg []byte) string {
	deadline := time.Now().Add(l.Timeout)
	_ = c.SetWriteDeadline(deadline)
	_ = c.SetReadDeadline(deadline)
	if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		return "error " + wsErrorKind(err)
	}
	_, r, err := c.NextReader()
	if err != nil {
		return "error " + wsErrorKind(err)
	}
	n, err := io.Copy(io.Discard, r)
	switch {
	case err != nil:
		return "error " + wsErrorKind(err)
	case n != int64(len(msg)):
		return "error short echo"
	}
	return "echo"
}

// wsErrorKind names a failed echo's failure.
func wsErrorKind(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout"
	}
	return errorKind(err)
}

// ws is `tailguard bench ws -url ws://HOST:PORT/ [flags]`: one wsLoad,
// its JSON report on stdout.
func (c *cli) ws(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench ws", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	l := wsLoad{}
	fs.StringVar(&l.URL, "url", "", "WebSocket echo server, ws://host:port/path (required)")
	fs.IntVar(&l.Size, "size", 64, "message size in bytes")
	fs.IntVar(&l.Connections, "connections", 64, "connections, each with one message in flight")
	fs.Int64Var(&l.Count, "count", 0, "how many messages to send (0: until -duration)")
	fs.DurationVar(&l.Duration, "duration", 5*time.Second, "how long to send (0: until -count)")
	fs.DurationVar(&l.Timeout, "timeout", 5*time.Second, "timeout of one echo, and of the opening handshake")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if l.URL == "" || fs.NArg() > 0 {
		return fmt.Errorf("bench ws: need -url and no other arguments: %w", flag.ErrHelp)
	}
	res, err := l.run(ctx)
	if res == nil {
		return err
	}
	rep := NewReport("", Load{URL: l.URL, Closed: true, Connections: l.Connections, Fanout: 1}, res)
	return firstErr(err, writeReportJSON(c.out, rep))
}
