package main

// Integration tests of hot reload: SIGHUP, a change of the file, POST
// /reload, under load, with nothing failing.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reloadYAML is a config whose route timeout the test changes on every
// reload.
func reloadYAML(addr string, timeout time.Duration) string {
	return configHead + fmt.Sprintf(`upstreams:
  app:
    endpoints: [%q]
routes:
  - name: default
    upstream: app
    timeout: %s
`, addr, timeout)
}

// steadyLoad sends GETs to url at rate per second until stop closes, at
// most max in flight, and counts answers that are not 200.
func steadyLoad(url string, rate int, stop <-chan struct{}) (sent, failed *atomic.Int64, wait func()) {
	sent, failed = new(atomic.Int64), new(atomic.Int64)
	client := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}
	slots := make(chan struct{}, 64)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			slots <- struct{}{}
			sent.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				resp, err := client.Get(url)
				if err != nil {
					failed.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}()
		}
	}()
	return sent, failed, func() { wg.Wait(); client.CloseIdleConnections() }
}

// replaceFile replaces the file at path with content in one rename, as
// editors and Kubernetes do: written in place, a stall between the
// truncation and the write longer than the watch's debounce (a loaded
// machine under -race) would have tailguard read a half-written file and
// count one refused reload more than the test makes.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad: ten reloads (file changes, SIGHUP and POST
// /reload) during a steady 2,000 req/s fail no request; a bad file is
// refused, counted, and the running config keeps serving.
func TestReloadUnderLoad(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	path := writeConfig(t, reloadYAML(up.addr, 2*time.Second))
	p := startTailguard(t, nil, "-config", path)
	stop := make(chan struct{})
	sent, failed, wait := steadyLoad(p.url("/status/200"), 2000, stop)

	reloaded := func() int { return strings.Count(p.stderr.String(), `"config reloaded"`) }
	for i := 1; i <= 10; i++ {
		replaceFile(t, path, reloadYAML(up.addr, time.Duration(2+i%2)*time.Second))
		switch i % 3 {
		case 1:
			p.signal(t, syscall.SIGHUP)
		case 2:
			resp, err := http.Post(p.adminURL("/reload"), "", nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("POST /reload: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		// Case 0, and every other case too: the file watch notices.
		if !pollUntil(200, 25*time.Millisecond, func() bool { return reloaded() >= i }) {
			t.Fatalf("reload %d never happened:\n%s", i, p.stderr.String())
		}
		time.Sleep(200 * time.Millisecond) // traffic between reloads
	}

	replaceFile(t, path, reloadYAML(up.addr, time.Second)+"bogus_key: 1\n")
	if !pollUntil(200, 25*time.Millisecond, func() bool {
		return strings.Contains(p.stderr.String(), "config reload refused")
	}) {
		t.Fatal("a bad file was not refused")
	}
	time.Sleep(200 * time.Millisecond) // traffic on the old config after the refusal
	close(stop)
	wait()

	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across the reloads", n, sent.Load())
	}
	t.Logf("%d requests at 2,000/s across %d reloads and one refused file, %d failed", sent.Load(), reloaded(), failed.Load())
	resp, err := http.Get(p.adminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "tailguard_config_reload_failures_total 1") {
		t.Errorf("the refused reload is not counted in /metrics")
	}
	resp, err = http.Get(p.url("/status/200"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the old config stopped serving after a refused reload: %v", err)
	}
	resp.Body.Close()
}
