package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// strictUpstream reads what tailguard forwards with a parser stricter than
// any real server's, and records every way the bytes could be read as
// something other than one plain HTTP/1.1 request after another: anything
// but CRLF line ends, obs-fold, a name that is not a token, a hop-by-hop
// header, a target not in origin form, a version other than HTTP/1.1,
// Transfer-Encoding other than one "chunked", Transfer-Encoding with
// Content-Length, a malformed Content-Length or chunk. A request cut short
// by a closing connection is no violation: it was never a request. Each
// complete request gets a 200 with its sequence number.
type strictUpstream struct {
	ln         net.Listener
	wg         sync.WaitGroup
	mu         sync.Mutex
	violations []string
	targets    []string // of whole requests, in order
	requests   int
}

func startStrictUpstream(t testing.TB) *strictUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &strictUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				u.serveConn(c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); u.wg.Wait() })
	return u
}

func (u *strictUpstream) addr() string { return u.ln.Addr().String() }

// requestCount is how many whole requests the upstream has answered.
func (u *strictUpstream) requestCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests
}

// takeTargets returns and forgets the request targets seen so far.
func (u *strictUpstream) takeTargets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.targets
	u.targets = nil
	return t
}

// takeViolations returns and forgets the violations seen so far.
func (u *strictUpstream) takeViolations() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := u.violations
	u.violations = nil
	return v
}

func (u *strictUpstream) serveConn(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		target, err := readStrictRequest(br)
		var v violation
		if errors.As(err, &v) {
			u.mu.Lock()
			u.violations = append(u.violations, v.Error())
			u.mu.Unlock()
			return
		}
		if err != nil {
			return // the connection ended, perhaps mid-request
		}
		u.mu.Lock()
		u.requests++
		u.targets = append(u.targets, target)
		n := u.requests
		u.mu.Unlock()
		body := strconv.Itoa(n)
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// violation is a framing fault in what tailguard forwarded.
type violation string

func (v violation) Error() string { return string(v) }

func violationf(format string, a ...any) error { return violation(fmt.Sprintf(format, a...)) }

// hopByHop are the headers tailguard must never forward (RFC 9110 §7.6.1),
// lower case; Expect is answered by tailguard itself.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "upgrade": true, "proxy-authorization": true, "http2-settings": true,
	"expect": true,
}

// readStrictRequest reads one request and returns its target; a
// violation error says what was wrong with it, any other error that the
// connection ended.
func readStrictRequest(br *bufio.Reader) (string, error) {
	line, err := strictLine(br)
	if err != nil {
		return "", err
	}
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || !oracleToken(parts[0]) || len(parts[1]) == 0 || parts[1][0] != '/' || string(parts[2]) != "HTTP/1.1" {
		return "", violationf("request line %q", line)
	}
	// The target is copied before the head is read: line points into br's
	// buffer, which reading the head overwrites.
	target := string(parts[1])
	return target, readStrictHead(br)
}

// readStrictHead reads a request's header block and body.
func readStrictHead(br *bufio.Reader) error {
	hosts, te, cl := 0, 0, -1
	for {
		line, err := strictLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !oracleToken(name) {
			return violationf("header line %q", line)
		}
		value = bytes.Trim(value, " \t")
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return violationf("control byte in %q", line)
			}
		}
		lower := string(bytes.ToLower(name))
		switch {
		case hopByHop[lower]:
			return violationf("hop-by-hop header %q", line)
		case lower == "host":
			hosts++
		case lower == "transfer-encoding":
			if te++; string(value) != "chunked" {
				return violationf("transfer-encoding %q", value)
			}
		case lower == "content-length":
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil || cl >= 0 || len(value) > 1 && value[0] == '0' {
				return violationf("content-length %q", value)
			}
			cl = int(n)
		}
	}
	switch {
	case hosts != 1:
		return violationf("%d Host headers", hosts)
	case te > 1 || te == 1 && cl >= 0:
		return violationf("transfer-encoding %d times with content-length %d", te, cl)
	case te == 1:
		return readStrictChunked(br)
	case cl > 0:
		_, err := io.CopyN(io.Discard, br, int64(cl))
		return err
	}
	return nil
}

// readStrictChunked reads a chunked body as tailguard writes it: bare hex
// sizes, no extensions, CRLF everywhere, harmless trailers.
func readStrictChunked(br *bufio.Reader) error {
	for {
		line, err := strictLine(br)
		if err != nil {
			return err
		}
		size, perr := strconv.ParseUint(string(line), 16, 40)
		if perr != nil || len(line) == 0 {
			return violationf("chunk size line %q", line)
		}
		if size == 0 {
			return readStrictTrailers(br)
		}
		if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
			return err
		}
		crlf, err := strictLine(br)
		if err == nil && len(crlf) != 0 {
			return violationf("chunk data overruns its size by %q", crlf)
		}
		if err != nil {
			return err
		}
	}
}

// readStrictTrailers reads the trailer section ending a chunked body:
// field lines like the head's, none of them framing, routing or
// hop-by-hop (RFC 9110 §6.5.1).
func readStrictTrailers(br *bufio.Reader) error {
	for {
		line, err := strictLine(br)
		if err != nil || len(line) == 0 {
			return err
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		lower := string(bytes.ToLower(name))
		if !ok || !oracleToken(name) || hopByHop[lower] || lower == "host" ||
			lower == "content-length" || lower == "transfer-encoding" {
			return violationf("trailer %q", line)
		}
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return violationf("control byte in trailer %q", line)
			}
		}
	}
}

// strictLine reads a line that must end in CRLF and hold no other CR or
// LF, and returns it without the CRLF.
func strictLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, violationf("line over %d bytes", br.Size())
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
		return nil, violationf("line not ending in CRLF: %q", line)
	}
	return line[:len(line)-2], nil
}

// oracleToken reports whether b is an RFC 9110 token. It is the strict
// upstream's own, written apart from the edge's check it verifies.
func oracleToken(b []byte) bool {
	for _, c := range b {
		ok := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return len(b) > 0
}
