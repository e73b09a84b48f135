package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"tailguard/bench"
)

// prometheusBin is Debian's prometheus package's binary (2.42 in
// bookworm), which .ci/run installs.
const prometheusBin = "/usr/bin/prometheus"

// fleetQuery is the fleet's p99 response time, from the native histograms
// of every instance scraped.
const fleetQuery = `histogram_quantile(0.99, sum(rate(tailguard_response_seconds[30s])))`

// TestPrometheusFleetP99 runs three tailguard processes in front of an
// upstream with a log-normal service time, and a real Prometheus (native
// histograms on, so it negotiates protobuf) that scrapes their /metrics
// every second; puts a few seconds of load through the three; and checks
// that the fleet p99 Prometheus computes from the native histograms is
// within 5% of the exact p99 of the three instances' HdrHistograms merged
// from /stats/hdr; and that Prometheus (exemplar storage on) stored the
// response histograms' exemplars, each a request's X-Request-Id. It logs
// both figures:
//
//	go test -count=1 -v -run '^TestPrometheusFleetP99$' .
func TestPrometheusFleetP99(t *testing.T) {
	skipShort(t)
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("no Prometheus here (%v): apt-get install prometheus", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	up, err := bench.StartUpstream(bench.UpstreamOptions{Seed: 16, Faults: bench.Faults{
		Latency: bench.Latency{Median: 4 * time.Millisecond, Sigma: 0.5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	var procs []*tailguardProc
	var admins []string
	for range 3 {
		p := startWithConfig(t, oneRouteConfig(up.Addr()))
		procs, admins = append(procs, p), append(admins, p.admin)
	}
	prom := startPrometheus(t, ctx, admins)

	// Every instance scraped before the load: the rate's window starts
	// at those samples, without a request in them.
	prom.waitFor(t, ctx, `count(up{job="tailguard"} == 1)`, func(v float64) bool { return v == 3 })

	requests, failures := fleetLoad(ctx, procs, 4, 6*time.Second)
	if requests == 0 || failures > 0 {
		t.Fatalf("load: %d requests, %d failed", requests, failures)
	}

	// Once a tick (every second) has taken the last requests into each
	// instance's histograms, the merged HdrHistogram holds every request,
	// and Prometheus has all of them once its sum of counts says so.
	// histogram_count reads native histograms only: this wait also
	// proves that Prometheus ingested them as such.
	var merged *hdr.Histogram
	for merged = mergedResponseHDR(t, ctx, procs); merged.TotalCount() != requests; merged = mergedResponseHDR(t, ctx, procs) {
		select {
		case <-ctx.Done():
			t.Fatalf("/stats/hdr: %d responses in the merged histogram, %d requests sent", merged.TotalCount(), requests)
		case <-time.After(200 * time.Millisecond):
		}
	}
	prom.waitFor(t, ctx, `sum(histogram_count(tailguard_response_seconds))`,
		func(v float64) bool { return v == float64(requests) })

	got := prom.query(t, ctx, fleetQuery)
	exact := float64(merged.ValueAtQuantile(99)) / 1e6
	off := math.Abs(got-exact) / exact
	t.Logf("fleet p99: Prometheus %.3f ms (native histograms, %s), exact %.3f ms (3 instances' HdrHistograms merged), %.2f%% off; %d requests",
		got*1e3, fleetQuery, exact*1e3, off*100, requests)
	if off > 0.05 {
		t.Errorf("fleet p99 from Prometheus %.3f ms, exact %.3f ms: %.2f%% off, want within 5%%", got*1e3, exact*1e3, off*100)
	}

	// The load's requests carry no traceparent: tailguard gave each an
	// X-Request-Id, and the histograms' exemplars are those.
	ex := prom.exemplars(t, ctx, `{__name__=~"tailguard_response_seconds.*"}`)
	t.Logf("exemplars of the response time Prometheus stored: %d, e.g. %v", len(ex), ex[:min(len(ex), 1)])
	if len(ex) == 0 {
		t.Error("Prometheus stored no exemplar of tailguard_response_seconds")
	}
	for _, e := range ex {
		if len(e["request_id"]) != 32 {
			t.Errorf("exemplar %v: want a 32-digit request_id", e)
		}
	}
}

// exemplars returns the exemplars Prometheus stored for the series of q
// over the last minute, as their label sets.
func (p *promProc) exemplars(t *testing.T, ctx context.Context, q string) []map[string]string {
	t.Helper()
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels map[string]string `json:"labels"`
				Value  string            `json:"value"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	now := time.Now()
	getJSON(t, ctx, fmt.Sprintf("%s/api/v1/query_exemplars?query=%s&start=%d&end=%d",
		p.base, url.QueryEscape(q), now.Add(-time.Minute).Unix(), now.Unix()), &resp)
	if resp.Status != "success" {
		t.Fatalf("query_exemplars %s: %s", q, resp.Error)
	}
	var out []map[string]string
	for _, series := range resp.Data {
		t.Logf("%d exemplars of %v", len(series.Exemplars), series.SeriesLabels)
		for _, e := range series.Exemplars {
			out = append(out, e.Labels)
		}
	}
	return out
}

// fleetLoad sends GET requests to the instances, workers at a time on
// each, for d (or until ctx ends), and returns how many it sent and how
// many failed (an error or a status other than 200).
func fleetLoad(ctx context.Context, procs []*tailguardProc, workers int, d time.Duration) (requests, failures int64) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for _, p := range procs {
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					sent.Add(1)
					// No ctx on the request: one cut off at the deadline would
					// count as failed here and as answered in the metrics.
					resp, err := client.Get(p.url("/fleet"))
					if err != nil {
						failed.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	return sent.Load(), failed.Load()
}

// mergedResponseHDR fetches each instance's /stats/hdr and merges the
// default route's response histograms.
func mergedResponseHDR(t *testing.T, ctx context.Context, procs []*tailguardProc) *hdr.Histogram {
	t.Helper()
	var merged *hdr.Histogram
	for _, p := range procs {
		var doc struct {
			Routes map[string]map[string]string `json:"routes"`
		}
		getJSON(t, ctx, p.adminURL("/stats/hdr"), &doc)
		h, err := hdr.Decode([]byte(doc.Routes["default"]["response"]))
		if err != nil {
			t.Fatalf("%s /stats/hdr: decode the response histogram: %v", p.admin, err)
		}
		if merged == nil {
			merged = h
		} else if dropped := merged.Merge(h); dropped != 0 {
			t.Fatalf("merging %s's histogram dropped %d values", p.admin, dropped)
		}
	}
	return merged
}

// promProc is a Prometheus server the test started.
type promProc struct {
	base string // http://host:port
}

// startPrometheus starts Prometheus on loopback with native histograms on,
// its storage in a temporary directory, scraping targets' /metrics every
// second, and waits until it is ready. It is stopped when the test ends.
func startPrometheus(t *testing.T, ctx context.Context, targets []string) *promProc {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tailguard
    static_configs:
      - targets: [%s]
`, strings.Join(targets, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddrs(t, 1)[0]
	cmd := exec.Command(prometheusBin,
		"--config.file="+cfgFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=native-histograms,exemplar-storage",
		"--log.level=warn",
	)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(exitTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	p := &promProc{base: "http://" + addr}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(p.base + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited before it was ready:\n%s", out.String())
		case <-ctx.Done():
			t.Fatalf("prometheus not ready: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within %v:\n%s", startTimeout, out.String())
		}
	}
}

// query runs an instant PromQL query whose result is one sample, and
// returns its value.
func (p *promProc) query(t *testing.T, ctx context.Context, q string) float64 {
	t.Helper()
	v, err := p.tryQuery(t, ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor runs q every 200 ms until ok accepts its value, or ctx ends.
func (p *promProc) waitFor(t *testing.T, ctx context.Context, q string, ok func(float64) bool) {
	t.Helper()
	for {
		v, err := p.tryQuery(t, ctx, q)
		if err == nil && ok(v) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: last value %v (%v): %v", q, v, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tryQuery is query, with an error where the result is not one sample.
func (p *promProc) tryQuery(t *testing.T, ctx context.Context, q string) (float64, error) {
	t.Helper()
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	getJSON(t, ctx, p.base+"/api/v1/query?query="+url.QueryEscape(q), &resp)
	switch {
	case resp.Status != "success":
		return math.NaN(), fmt.Errorf("query %s: %s", q, resp.Error)
	case len(resp.Data.Result) != 1:
		return math.NaN(), fmt.Errorf("query %s: %d samples, want 1", q, len(resp.Data.Result))
	}
	s, ok := resp.Data.Result[0].Value[1].(string)
	if !ok {
		return math.NaN(), errors.New("query " + q + ": the value is not a string")
	}
	return strconv.ParseFloat(s, 64)
}

// getJSON fetches u and decodes its JSON body into v, whatever the status
// (Prometheus' API reports errors in JSON).
func getJSON(t *testing.T, ctx context.Context, u string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %d, body not JSON: %v", u, resp.StatusCode, err)
	}
}
