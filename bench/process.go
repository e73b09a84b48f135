package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is a program a scenario started (tailguard, an upstream,
// nginx, HAProxy) and must stop.
type process struct {
	name   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	exited chan struct{}
}

// startProcess starts cmd; its stderr is kept for error messages.
func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
	cmd.Stderr = &p.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// pid is the process's id (taskset execs its command, so the same).
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to end (SIGTERM), and kills it after 5 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitListening waits until addr accepts connections, the process ends,
// or 15 s pass.
func (p *process) waitListening(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited at start: %s", p.name, strings.TrimSpace(p.stderr.String()))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after 15s", p.name, addr)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for programs that need their port in a config file.
func freeAddr() (string, error) {
	a, err := freeAddrs(1)
	if err != nil {
		return "", err
	}
	return a[0], nil
}

// freeAddrs is n distinct such addresses (a program's listen and admin):
// each port is held until all are chosen, so that the kernel cannot hand
// out one twice.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// findProgram looks for a peer's program on PATH and in /usr/sbin, where
// Debian puts nginx and haproxy.
func findProgram(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", &skipped{fmt.Sprintf("%s not found (apt-get install %s)", name, name)}
}

// skipped is why an arm cannot run on this machine (a peer not installed):
// the scenario notes it and goes on.
type skipped struct{ why string }

func (s *skipped) Error() string { return s.why }

// isSkipped reports whether err means the arm is skipped, not failed.
func isSkipped(err error) bool {
	var s *skipped
	return errors.As(err, &s)
}

// ready waits for p to listen on addr, and stops it if it does not.
func ready(p *process, addr string) (*process, error) {
	if err := p.waitListening(addr); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}
