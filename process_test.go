package main

// Unit tests of Process, in-process, in front of a net/http upstream on
// loopback. They assert order (what happens before what), never how long
// anything took: every wait is a bounded poll or a channel.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// runningProcess is a started Process and what a test reads of it.
type runningProcess struct {
	*Process
	file                 string // the config file
	proxyAddr, adminAddr string // bound
	logs                 *observer.ObservedLogs
}

// startProcess starts a Process on the config file yaml (it must listen on
// ephemeral loopback ports); it is stopped when the test ends.
func startProcess(t *testing.T, yaml string) *runningProcess {
	t.Helper()
	rp := &runningProcess{file: writeConfig(t, yaml)}
	p, err := NewProcess(configSource{file: rp.file})
	if err != nil {
		t.Fatalf("NewProcess: %v", err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	p.log, rp.logs = zap.New(core), logs
	rp.Process = p
	if rp.proxyAddr, rp.adminAddr, err = p.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return rp
}

// logged counts the log lines so far with message msg and field key
// equal to value.
func (p *runningProcess) logged(msg, key, value string) int {
	return p.logs.FilterMessage(msg).Filter(func(e observer.LoggedEntry) bool {
		return e.ContextMap()[key] == value
	}).Len()
}

// drainYAML is oneRouteConfig with the given drain settings.
func drainYAML(addr string, delay, timeout time.Duration) string {
	return strings.Replace(oneRouteConfig(addr), "drain: {delay: 0s, timeout: 5s}",
		fmt.Sprintf("drain: {delay: %s, timeout: %s}", delay, timeout), 1)
}

// get fetches url and returns the status and body, or the error.
func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// accepting reports whether something accepts connections at addr.
func accepting(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// leakOptions ignore goroutines that were there before the test and the
// sweepers of fasthttp and net/http that end only after their next sleep.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	}
}

// TestProcessServes: once Start returns, the proxy forwards, the admin
// server answers, and the start-up line names the bound address.
func TestProcessServes(t *testing.T) {
	up := startGoUpstream(t)
	p := startProcess(t, oneRouteConfig(up.addr))
	client := newClient(t, ioTimeout).Client
	tests := []struct {
		name, url  string
		wantStatus int
		wantBody   string
	}{
		{"proxied", "http://" + p.proxyAddr + "/status/201", 201, "upstream says 201\n"},
		{"healthz", "http://" + p.adminAddr + "/healthz", 200, ""},
		{"readyz", "http://" + p.adminAddr + "/readyz", 200, ""},
		{"config", "http://" + p.adminAddr + "/config", 200, `"` + up.addr + `"`},
	}
	for _, tt := range tests {
		status, body, err := get(client, tt.url)
		if err != nil || status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%s: GET %s = %d %q, %v; want %d with %q", tt.name, tt.url, status, body, err, tt.wantStatus, tt.wantBody)
		}
	}
	if logged := p.logged("tailguard started", "listen", p.proxyAddr); logged != 1 {
		t.Errorf("%d start-up lines with listen %s, want 1", logged, p.proxyAddr)
	}
}

// TestProcessStartFails: an address in use fails Start, and what Start
// had begun (the routing table's health checks here) is stopped.
func TestProcessStartFails(t *testing.T) {
	up := startGoUpstream(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name, listen, admin, wantErr string
	}{
		{"proxy address taken", taken.Addr().String(), "127.0.0.1:0", "listen: "},
		{"admin address taken", "127.0.0.1:0", taken.Addr().String(), "admin listen: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks := leakOptions()
			yaml := strings.NewReplacer(
				`listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", tt.listen),
				`admin: "127.0.0.1:0"`, fmt.Sprintf("admin: %q", tt.admin),
				"    endpoints:", "    health_check: {path: /status/200, interval: 1s, timeout: 1s}\n    endpoints:",
			).Replace(oneRouteConfig(up.addr))
			p, err := NewProcess(configSource{file: writeConfig(t, yaml)})
			if err != nil {
				t.Fatal(err)
			}
			p.log = zap.NewNop()
			if _, _, err := p.Start(); err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Start = %v, want an error starting %q", err, tt.wantErr)
			}
			goleak.VerifyNone(t, leaks...)
		})
	}
}

// metricValue returns the value of the unlabelled metric name in the
// admin server's /metrics.
func metricValue(t *testing.T, p *runningProcess, name string) string {
	t.Helper()
	status, body, err := get(http.DefaultClient, "http://"+p.adminAddr+"/metrics")
	if err != nil || status != 200 {
		t.Fatalf("GET /metrics: %d, %v", status, err)
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

func TestProcessReload(t *testing.T) {
	up := startGoUpstream(t)
	base := oneRouteConfig(up.addr)
	second := base + "  - name: second\n    upstream: app\n    match: {path_prefix: /second}\n"
	tests := []struct {
		name        string
		yaml        string
		wantErr     string
		wantRoutes  []string
		wantApplied string // times the test's own reload was applied
		wantFailed  string // and refused
	}{
		{"same file", base, "", []string{"default"}, "1", "0"},
		{"route added", second, "", []string{"default", "second"}, "1", "0"},
		{"unknown key", base + "bogus_key: 1\n", "bogus_key: unknown key", []string{"default"}, "0", "1"},
		{"listener setting", strings.Replace(base, "timeout: 5s", "timeout: 6s", 1), "drain: changing it needs a restart", []string{"default"}, "0", "1"},
	}
	client := newClient(t, ioTimeout).Client
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProcess(t, base)
			if err := os.WriteFile(p.file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			err := p.Reload("test")
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Reload = %v, want error %q", err, tt.wantErr)
			}
			if got := routeNames(p.srv.Config()); !slices.Equal(got, tt.wantRoutes) {
				t.Errorf("routes after Reload: %q, want %q", got, tt.wantRoutes)
			}
			if status, _, err := get(client, "http://"+p.proxyAddr+"/status/200"); err != nil || status != 200 {
				t.Errorf("GET after Reload: %d, %v; want 200", status, err)
			}
			// The file watcher may reload the written file too, on a
			// busy machine after the test's own Reload: every reload,
			// whatever its trigger, is counted and logged (one may be
			// between the two for a moment), and the test's own ended
			// as it should.
			var counted, logged [2]string
			for range 100 {
				counted = [2]string{metricValue(t, p, "tailguard_config_reloads_total"), metricValue(t, p, "tailguard_config_reload_failures_total")}
				logged = [2]string{fmt.Sprint(p.logs.FilterMessage("config reloaded").Len()), fmt.Sprint(p.logs.FilterMessage(reloadRefused).Len())}
				if counted == logged {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if counted != logged {
				t.Errorf("reloads and failures counted: %q, logged %q", counted, logged)
			}
			if got := fmt.Sprint(p.logged("config reloaded", "trigger", "test")); got != tt.wantApplied {
				t.Errorf("the test's reload applied %s times, want %s", got, tt.wantApplied)
			}
			if got := fmt.Sprint(p.logged(reloadRefused, "trigger", "test")); got != tt.wantFailed {
				t.Errorf("the test's reload refused %s times, want %s", got, tt.wantFailed)
			}
		})
	}
}

// reloadRefused is the log message of a refused reload.
const reloadRefused = "config reload refused; the running config keeps serving"

// TestProcessReloadTriggers: SIGHUP, a change of the file and POST /reload
// each reload the config, and say so in the log.
func TestProcessReloadTriggers(t *testing.T) {
	up := startGoUpstream(t)
	yaml := oneRouteConfig(up.addr)
	tests := []struct {
		trigger string
		fire    func(t *testing.T, p *runningProcess)
	}{
		{"SIGHUP", func(t *testing.T, p *runningProcess) {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}},
		{"file change", func(t *testing.T, p *runningProcess) {
			if err := os.WriteFile(p.file, []byte(yaml+"# changed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"POST /reload", func(t *testing.T, p *runningProcess) {
			resp, err := http.Post("http://"+p.adminAddr+"/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("POST /reload: status %d", resp.StatusCode)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.trigger, func(t *testing.T) {
			p := startProcess(t, yaml)
			tt.fire(t, p)
			if !pollUntil(400, 25*time.Millisecond, func() bool { return p.logged("config reloaded", "trigger", tt.trigger) > 0 }) {
				t.Errorf("no reload logged with trigger %q; log: %v", tt.trigger, p.logs.All())
			}
		})
	}
}

// TestProcessStoppedRefusesReload: once stopping, a trigger builds nothing.
func TestProcessStoppedRefusesReload(t *testing.T) {
	up := startGoUpstream(t)
	p := startProcess(t, oneRouteConfig(up.addr))
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := p.Reload("test"); !errors.Is(err, errStopped) {
		t.Errorf("Reload after Stop = %v, want %v", err, errStopped)
	}
}

// holdingUpstream adds /hold to up: each request reports its arrival on
// the returned channel and is answered once release is called.
func holdingUpstream(t *testing.T, up *goUpstream) (arrived <-chan struct{}, release func()) {
	arrivals := make(chan struct{}, 16)
	held := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(release)
	up.mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		arrivals <- struct{}{}
		<-held
		fmt.Fprintln(w, "released")
	})
	return arrivals, release
}

// receive waits for one value from c, failing the test after ioTimeout.
func receive[T any](t *testing.T, what string, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(ioTimeout):
		t.Fatalf("no %s within %v", what, ioTimeout)
		panic("unreachable")
	}
}

// TestProcessDrainOrder: /readyz fails first while the listener still
// accepts; the listener closes when the delay ends (cut short here through
// ctx, the delay being an hour); a request in flight finishes after that,
// and only then does Drain return.
func TestProcessDrainOrder(t *testing.T) {
	up := startGoUpstream(t)
	arrived, release := holdingUpstream(t, up)
	p := startProcess(t, drainYAML(up.addr, time.Hour, time.Minute))
	client := newClient(t, ioTimeout)
	inFlight := getAsync(client, "http://"+p.proxyAddr+"/hold")
	receive(t, "arrival upstream", arrived)

	delayCtx, endDelay := context.WithCancel(context.Background())
	defer endDelay()
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(delayCtx) }()
	if !pollUntil(400, 25*time.Millisecond, func() bool {
		status, _, err := get(client.Client, "http://"+p.adminAddr+"/readyz")
		return err == nil && status == http.StatusServiceUnavailable
	}) {
		t.Fatal("/readyz never failed after Drain began")
	}
	if !accepting(p.proxyAddr) {
		t.Error("the proxy listener closed before the drain delay ended")
	}

	endDelay()
	if !pollUntil(400, 25*time.Millisecond, func() bool { return !accepting(p.proxyAddr) }) {
		t.Fatal("the proxy listener still accepts after the drain delay ended")
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a request in flight", err)
	default:
	}
	release()
	if r := receive(t, "in-flight response", inFlight); r.err != nil || r.status != 200 || string(r.body) != "released\n" {
		t.Errorf("in-flight request: %d %q, %v; want 200 released", r.status, r.body, r.err)
	}
	if err := receive(t, "Drain result", drained); err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
}

// TestProcessDrainTimeout: a request still in flight when drain.timeout
// ends makes Drain fail.
func TestProcessDrainTimeout(t *testing.T) {
	up := startGoUpstream(t)
	arrived, release := holdingUpstream(t, up)
	p := startProcess(t, drainYAML(up.addr, 0, 50*time.Millisecond))
	client := newClient(t, ioTimeout)
	inFlight := getAsync(client, "http://"+p.proxyAddr+"/hold")
	receive(t, "arrival upstream", arrived)
	if err := p.Drain(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a request held past drain.timeout = %v, want %v", err, context.DeadlineExceeded)
	}
	release()
	receive(t, "in-flight response", inFlight)
}

// TestProcessEnds: however it ends (Wait's ctx, a server stopping on its
// own, Stop, Drain), the listeners close and no goroutine it started
// outlives it.
func TestProcessEnds(t *testing.T) {
	up := startGoUpstream(t)
	tests := []struct {
		name string
		end  func(p *runningProcess) error
	}{
		{"Wait, ctx ends", func(p *runningProcess) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return p.Wait(ctx)
		}},
		{"Wait, a server stops", func(p *runningProcess) error {
			_ = p.Process.admin.Close()
			return p.Wait(context.Background())
		}},
		{"Stop", func(p *runningProcess) error { return p.Stop() }},
		{"Drain", func(p *runningProcess) error { return p.Drain(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks := leakOptions()
			p := startProcess(t, oneRouteConfig(up.addr))
			client := newClient(t, ioTimeout)
			if status, _, err := get(client.Client, "http://"+p.proxyAddr+"/status/200"); err != nil || status != 200 {
				t.Fatalf("GET: %d, %v", status, err)
			}
			if err := tt.end(p); err != nil {
				t.Errorf("ended with %v, want nil", err)
			}
			for _, addr := range []string{p.proxyAddr, p.adminAddr} {
				if accepting(addr) {
					t.Errorf("%s still accepts connections", addr)
				}
			}
			client.Transport.(*http.Transport).CloseIdleConnections()
			goleak.VerifyNone(t, leaks...)
		})
	}
}

// TestDemoProxy: the demo's and the scenarios' tailguard takes their YAML
// but always listens on ephemeral loopback ports, logs warnings only and
// has no drain delay; stop ends it.
func TestDemoProxy(t *testing.T) {
	up := startGoUpstream(t)
	yaml := strings.NewReplacer(`listen: "127.0.0.1:0"`, `listen: ":8000"`, `admin: "127.0.0.1:0"`, `admin: "127.0.0.1:9901"`,
		"drain: {delay: 0s, timeout: 5s}", "drain: {delay: 5s, timeout: 5s}").Replace(oneRouteConfig(up.addr))
	proxyAddr, adminAddr, stop, err := demoProxy(context.Background(), yaml)
	if err != nil {
		t.Fatalf("demoProxy: %v", err)
	}
	assertLoopbackEphemeral(t, "listen", proxyAddr)
	assertLoopbackEphemeral(t, "admin", adminAddr)
	client := newClient(t, ioTimeout).Client
	if status, _, err := get(client, "http://"+proxyAddr+"/status/200"); err != nil || status != 200 {
		t.Errorf("proxied GET: %d, %v", status, err)
	}
	_, body, err := get(client, "http://"+adminAddr+"/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Log   struct{ Level string }
		Drain struct{ Delay, Timeout string }
	}
	if err := json.Unmarshal([]byte(body), &cfg); err != nil {
		t.Fatalf("/config: %v", err)
	}
	if cfg.Log.Level != "warn" || cfg.Drain.Delay != "0s" || cfg.Drain.Timeout != "5s" {
		t.Errorf("/config: log level %q, drain %+v; want warn, delay 0s and the YAML's timeout 5s", cfg.Log.Level, cfg.Drain)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if accepting(proxyAddr) {
		t.Error("the proxy listener still accepts after stop")
	}
}
