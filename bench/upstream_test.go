package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// get makes one request with net/http and returns status and body, or
// the error.
func get(t *testing.T, url string, timeout time.Duration) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestCapacityQueues: with N workers, N+k concurrent requests have N in
// service and k queued, and all are answered in the end.
func TestCapacityQueues(t *testing.T) {
	const workers, extra = 2, 3
	up := startTestUpstream(t, UpstreamOptions{Workers: workers, Faults: Faults{Latency: Latency{Median: 300 * time.Millisecond}}})
	var wg sync.WaitGroup
	codes := make(chan int, workers+extra)
	for range workers + extra {
		wg.Go(func() {
			code, _, _ := get(t, "http://"+up.Addr()+"/", 10*time.Second)
			codes <- code
		})
	}
	waitFor(t, "2 busy and 3 queued", func() bool { s := up.Stats(); return s.Busy == workers && s.Queued == extra })
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("status %d, want 200", c)
		}
	}
}

// TestQueueBoundRefuses: over the queue bound a request gets 503 at once.
func TestQueueBoundRefuses(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Workers: 1, Queue: 1, Faults: Faults{Latency: Latency{Median: 300 * time.Millisecond}}})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _, _ = get(t, "http://"+up.Addr()+"/", 10*time.Second) })
	}
	waitFor(t, "1 busy and 1 queued", func() bool { s := up.Stats(); return s.Busy == 1 && s.Queued == 1 })
	code, _, err := get(t, "http://"+up.Addr()+"/", 10*time.Second)
	wg.Wait()
	if err != nil || code != 503 || up.Stats().Refused != 1 {
		t.Errorf("third request: %d, %v, refused %d; want 503 and refused 1", code, err, up.Stats().Refused)
	}
}

func TestErrorAndPathOverride(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Faults: Faults{Paths: map[string]*Faults{
		"/err":  {ErrorShare: 1, ErrorStatus: 503},
		"/errx": {BodyBytes: 5},
	}}})
	for path, want := range map[string]string{"/": `200 {"ok":true}`, "/err/a": "503 injected error\n", "/errx": "200 xxxxx"} {
		code, body, err := get(t, "http://"+up.Addr()+path, 5*time.Second)
		if got := strings.Join([]string{itoa(code), body}, " "); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", path, got, err, want)
		}
	}
}

func TestResetIsSeenByTheClient(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Faults: Faults{ResetShare: 1}})
	_, _, err := get(t, "http://"+up.Addr()+"/", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "reset") && !errors.Is(err, io.EOF) {
		t.Errorf("got %v, want a connection reset", err)
	}
	if up.Stats().Resets != 1 {
		t.Errorf("resets %d, want 1", up.Stats().Resets)
	}
}

func TestStallNeverAnswers(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Faults: Faults{StallShare: 1}})
	_, _, err := get(t, "http://"+up.Addr()+"/", 200*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("got %v, want a client timeout", err)
	}
	if up.Stats().Stalls != 1 {
		t.Errorf("stalls %d, want 1", up.Stats().Stalls)
	}
}

// TestStrayBytesFollowTheResponse: on the wire, a complete response is
// followed by a second one nobody asked for.
func TestStrayBytesFollowTheResponse(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Faults: Faults{StrayShare: 1}})
	c, err := net.Dial("tcp", up.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c) // until the upstream closes
	if n := strings.Count(string(b), "HTTP/1.1 200 OK"); n != 2 || !strings.HasSuffix(string(b), "stray") {
		t.Errorf("read %q; want a response followed by a stray one", b)
	}
}

// TestSlowBodyArrivesWhole: a trickled body is framed and complete.
func TestSlowBodyArrivesWhole(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Faults: Faults{BodyBytes: 300, BodyRate: 1000}})
	c, err := net.Dial("tcp", up.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || len(b) != 300 || resp.ContentLength != 300 {
		t.Errorf("body %d bytes (Content-Length %d), %v; want 300", len(b), resp.ContentLength, err)
	}
}

// TestAdminChangesFaults: PUT /faults merges into the faults in force;
// a bad one changes nothing.
func TestAdminChangesFaults(t *testing.T) {
	up := startTestUpstream(t, UpstreamOptions{Admin: "127.0.0.1:0", Faults: Faults{Latency: Latency{Median: time.Millisecond}}})
	admin := "http://" + up.AdminAddr()
	put := func(body string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, admin+"/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(`{"error_share": 1, "error_status": 418}`); code != 200 {
		t.Fatalf("PUT: %d", code)
	}
	if code, _, _ := get(t, "http://"+up.Addr()+"/", 5*time.Second); code != 418 {
		t.Errorf("after PUT: status %d, want 418", code)
	}
	if code := put(`{"error_share": 2}`); code != 400 {
		t.Errorf("PUT of a share of 2: %d, want 400", code)
	}
	f := up.Faults()
	if f.ErrorShare != 1 || f.Latency.Median != time.Millisecond {
		t.Errorf("faults now %+v; want error_share 1 and the 1ms median kept", f)
	}
	_, body, err := get(t, admin+"/stats", 5*time.Second)
	var s UpstreamStats
	if err != nil || json.Unmarshal([]byte(body), &s) != nil || s.Requests != 1 || s.Errors != 1 {
		t.Errorf("GET /stats: %q, %v; want 1 request, 1 error", body, err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
