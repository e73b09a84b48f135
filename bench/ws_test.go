package bench

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestWSLoadEchoes: the load generator's WebSocket loop against the echo
// upstream, in-process: the count bounds the run, every message comes
// back whole, and a target that is not a WebSocket server fails the run
// before its clock starts.
func TestWSLoadEchoes(t *testing.T) {
	srv := httptest.NewServer(wsEcho())
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	for _, size := range []int{1, 16 << 10} {
		res, err := wsLoad{URL: url, Size: size, Connections: 3, Count: 50, Duration: time.Minute, Timeout: 5 * time.Second}.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Count() != 50 || res.CountOf(func(c string) bool { return c == "echo" }) != 50 {
			t.Errorf("size %d: classes %v; want 50 echoes", size, classCounts(res))
		}
	}
	if _, err := (wsLoad{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/", Size: 1, Connections: 1}).run(context.Background()); err == nil {
		t.Error("a run without a count or a duration started")
	}
	plain := httptest.NewServer(nil)
	defer plain.Close()
	if _, err := (wsLoad{URL: "ws" + strings.TrimPrefix(plain.URL, "http") + "/", Size: 1, Connections: 1, Count: 1, Timeout: time.Second}).run(context.Background()); err == nil {
		t.Error("a server that does not upgrade: no error")
	}
}
