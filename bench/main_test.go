package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// tailguardBin is the tailguard binary TestMain builds: the scenarios'
// tailguard in these tests (as a process, through binaryProxy) and the
// Self that overhead runs. Empty with -short.
var tailguardBin string

// TestMain builds tailguard (unless -short, which skips every test that
// runs it), runs the tests, and fails the package if a goroutine outlives
// them.
func TestMain(m *testing.M) {
	flag.Parse() // testing.Short needs the flags parsed
	var dir string
	if !testing.Short() {
		var err error
		dir, err = os.MkdirTemp("", "tailguard-bench-test-")
		if err == nil {
			tailguardBin, err = buildTailguard(dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir) // "" with -short: nothing to remove
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buildTailguard builds the tailguard binary into dir.
func buildTailguard(dir string) (string, error) {
	bin := filepath.Join(dir, "tailguard")
	cmd := exec.Command("go", "build", "-o", bin, "tailguard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build tailguard: %w\n%s", err, out)
	}
	return bin, nil
}

// skipShort skips a test that runs the tailguard binary under -short,
// which builds no binary.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the tailguard binary: -short")
	}
}

// leakOptions ignore the sweepers of fasthttp and net/http that notice
// they are done only after their next sleep.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
}

// binaryProxy is a Proxy that runs the built tailguard as a process:
// `tailguard run -config FILE` on free loopback ports.
func binaryProxy(t *testing.T) Proxy {
	skipShort(t)
	return func(ctx context.Context, yaml string) (string, string, func() error, error) {
		file := filepath.Join(t.TempDir(), "tailguard.yaml")
		addrs, err := freeAddrs(2)
		if err != nil {
			return "", "", nil, err
		}
		listen, admin := addrs[0], addrs[1]
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			return "", "", nil, err
		}
		p, err := startProcess("tailguard", exec.Command(tailguardBin, "run", "-config", file, "-listen", listen, "-admin", admin))
		if err != nil {
			return "", "", nil, err
		}
		if _, err := ready(p, listen); err != nil {
			return "", "", nil, err
		}
		stop := func() error {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				p.stop()
			}
			if !p.cmd.ProcessState.Success() {
				return fmt.Errorf("tailguard exited %v: %s", p.cmd.ProcessState, p.stderr.String())
			}
			return nil
		}
		return listen, admin, stop, nil
	}
}
