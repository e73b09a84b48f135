package main

// Integration tests: they build the real tailguard binary once and run it
// as a process on loopback, in front of real upstreams (a Go net/http
// server in this process, Python's http.server as a legacy app), driven by
// real clients (Go net/http, raw TCP, curl). With -short, the fast inner
// loop, no binary is built and they are skipped.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tailguardBin is the binary built by TestMain; empty with -short.
var tailguardBin string

func TestMain(m *testing.M) {
	flag.Parse() // testing.Short needs the flags parsed
	if testing.Short() {
		os.Exit(m.Run())
	}
	os.Exit(buildAndRun(m))
}

// skipShort skips a process-level test (one that runs the tailguard
// binary) under -short, which builds no binary.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the tailguard binary: -short")
	}
}

// buildAndRun builds the binary into a temporary directory, runs the
// tests, and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tailguard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "main_test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tailguardBin = filepath.Join(dir, "tailguard")
	cmd := exec.Command("go", "build", "-o", tailguardBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "main_test: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Safety limits. They bound how long a broken binary can hang a test; no
// assertion depends on them.
const (
	startTimeout = 15 * time.Second
	exitTimeout  = 15 * time.Second
	ioTimeout    = 30 * time.Second
)

// ---------------------------------------------------------------------------
// The tailguard process

// tailguardProc is one running tailguard process.
type tailguardProc struct {
	cmd    *exec.Cmd
	listen string // proxy address, host:port, from the start-up line
	admin  string // admin address, host:port, from the start-up line

	stderr  lockedBuffer
	exited  chan struct{} // closed once the process has exited
	waitErr error         // cmd.Wait's result, set before exited closes
	stopped bool
}

// startLine is the fields of the "tailguard started" log line we use.
type startLine struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// startTailguard runs the binary with args and extra environment entries
// (KEY=VALUE; the test's own TAILGUARD_* variables are never passed on) and
// waits for its start-up line. The process is stopped with SIGTERM when the
// test ends, and must then exit 0.
func startTailguard(t *testing.T, env []string, args ...string) *tailguardProc {
	t.Helper()
	skipShort(t)
	p := &tailguardProc{exited: make(chan struct{})}
	p.cmd = exec.Command(tailguardBin, args...)
	p.cmd.Env = append(environWithoutTailguard(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan startLine, 1)
	go p.readStderr(stderr, started)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("tailguard %q stderr:\n%s", args, p.stderr.String())
		}
	})
	select {
	case sl := <-started:
		p.listen, p.admin = sl.Listen, sl.Admin
	case <-p.exited:
		p.stopped = true
		t.Fatalf("tailguard %q exited before starting (%v):\n%s", args, p.waitErr, p.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("tailguard %q logged no start-up line within %v", args, startTimeout)
	}
	if p.listen == "" || p.admin == "" {
		t.Fatalf("start-up line lacks listen or admin address: listen=%q admin=%q", p.listen, p.admin)
	}
	return p
}

// readStderr keeps the process's stderr, hands the start-up line to
// started, and reaps the process at EOF.
func (p *tailguardProc) readStderr(r io.Reader, started chan<- startLine) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		p.stderr.Write(line)
		p.stderr.Write([]byte{'\n'})
		var sl startLine
		if !found && json.Unmarshal(line, &sl) == nil && sl.Msg == "tailguard started" {
			found = true
			started <- sl
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line too long for the scanner
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

func (p *tailguardProc) url(path string) string      { return "http://" + p.listen + path }
func (p *tailguardProc) adminURL(path string) string { return "http://" + p.admin + path }

// signal sends sig to the process.
func (p *tailguardProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process to exit (killing it after exitTimeout)
// and requires exit code 0.
func (p *tailguardProc) waitExit(t *testing.T) {
	t.Helper()
	if code, ok := p.waitExitCode(t); ok && code != 0 {
		t.Errorf("tailguard exited with %v (exit code %d), want exit code 0", p.waitErr, code)
	}
}

// waitExitCode waits for the process to exit and returns its exit code.
// A process still running after exitTimeout is killed, the test fails,
// and ok is false.
func (p *tailguardProc) waitExitCode(t *testing.T) (code int, ok bool) {
	t.Helper()
	p.stopped = true
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("tailguard did not exit within %v of SIGTERM; killed", exitTimeout)
		return 0, false
	}
	return p.cmd.ProcessState.ExitCode(), true
}

// stop sends SIGTERM, once, and requires a clean exit.
func (p *tailguardProc) stop(t *testing.T) {
	t.Helper()
	if p.stopped {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitExit(t)
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func (p *tailguardProc) peakRSS(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading peak RSS: %v", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	return 0
}

// environWithoutTailguard is the test's environment minus TAILGUARD_*.
func environWithoutTailguard() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAILGUARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// runTailguard runs a short command of the binary (validate, version) and
// returns its stdout, stderr and exit code.
func runTailguard(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tailguardBin, args...)
	cmd.Env = environWithoutTailguard()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("tailguard %q: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// ---------------------------------------------------------------------------
// Configs

// configHead listens on ephemeral loopback ports and drains at once.
const configHead = `listen: "127.0.0.1:0"
admin: "127.0.0.1:0"
drain: {delay: 0s, timeout: 5s}
`

// oneRouteConfig sends every request to one upstream at addr.
func oneRouteConfig(addr string) string {
	return configHead + fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: default
    upstream: app
`, addr)
}

// writeConfig writes yaml to a file in a fresh temporary directory.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tailguard.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startWithConfig runs tailguard with yaml as its config file.
func startWithConfig(t *testing.T, yaml string) *tailguardProc {
	t.Helper()
	return startTailguard(t, nil, "-config", writeConfig(t, yaml))
}

// ---------------------------------------------------------------------------

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
