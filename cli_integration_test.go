package main

// Integration tests of the admin port and the command line.

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// ---------------------------------------------------------------------------
// Tests: the admin server

func TestAdmin(t *testing.T) {
	skipShort(t)
	up := startGoUpstream(t)
	client := newClient(t, ioTimeout)
	getAdmin := func(t *testing.T, tg *tailguardProc, path, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, tg.adminURL(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return client.fetch(t, req)
	}

	t.Run("Open", func(t *testing.T) {
		tg := startWithConfig(t, oneRouteConfig(up.addr))
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := getAdmin(t, tg, path, ""); resp.StatusCode != 200 {
				t.Errorf("%s: status %d, body %q", path, resp.StatusCode, body)
			}
		}
		resp, body := getAdmin(t, tg, "/config", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("/config: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var cfg struct {
			Routes []struct {
				Name     string `json:"name"`
				Upstream string `json:"upstream"`
			} `json:"routes"`
			Upstreams map[string]struct {
				Endpoints []string `json:"endpoints"`
			} `json:"upstreams"`
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatalf("/config: %v: %s", err, body)
		}
		if len(cfg.Routes) != 1 || cfg.Routes[0].Name != "default" || cfg.Routes[0].Upstream != "app" {
			t.Errorf("/config routes: %+v, want the one route default -> app", cfg.Routes)
		}
		if eps := cfg.Upstreams["app"].Endpoints; len(eps) != 1 || eps[0] != up.addr {
			t.Errorf("/config upstreams.app.endpoints: %q, want [%q]", eps, up.addr)
		}
	})

	t.Run("Token", func(t *testing.T) {
		tg := startWithConfig(t, oneRouteConfig(up.addr)+"admin_token: s3cret\n")
		for _, path := range []string{"/healthz", "/readyz"} {
			if resp, body := getAdmin(t, tg, path, ""); resp.StatusCode != 200 {
				t.Errorf("%s without token: status %d, body %q; probes need no token", path, resp.StatusCode, body)
			}
		}
		for _, token := range []string{"", "wrong"} {
			if resp, body := getAdmin(t, tg, "/config", token); resp.StatusCode != 401 || bytes.Contains(body, []byte("s3cret")) {
				t.Errorf("/config with token %q: status %d, body %.120q; want 401", token, resp.StatusCode, body)
			}
		}
		resp, body := getAdmin(t, tg, "/config", "s3cret")
		if resp.StatusCode != 200 {
			t.Fatalf("/config with the token: status %d, body %q", resp.StatusCode, body)
		}
		var cfg struct {
			AdminToken string `json:"admin_token"`
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatalf("/config: %v: %s", err, body)
		}
		if cfg.AdminToken != "REDACTED" || bytes.Contains(body, []byte("s3cret")) {
			t.Errorf("/config shows admin_token %q (token in body: %v), want REDACTED", cfg.AdminToken, bytes.Contains(body, []byte("s3cret")))
		}
	})
}

// ---------------------------------------------------------------------------
// Tests: subcommands

func TestValidateCommand(t *testing.T) {
	skipShort(t)
	cases := []struct {
		file     string
		wantCode int
		stdout   []string // substrings
		stderr   []string // substrings, in order of the file
	}{
		{"testdata/good.yaml", 0, []string{"testdata/good.yaml: ok"}, nil},
		{"testdata/bad_values.yaml", 1, nil, []string{
			"testdata/bad_values.yaml:6:22: upstreams.app.connect_timeout: ",
			"testdata/bad_values.yaml:13:14: routes[1].timeout: ",
		}},
		{"testdata/bad_keys.yaml", 1, nil, []string{
			`testdata/bad_keys.yaml:6:5: upstreams.app.conect_timeout: unknown key`,
			`testdata/bad_keys.yaml:13:5: routes[1].retries_please: unknown key`,
		}},
		{"testdata/no-such-file.yaml", 1, nil, []string{"testdata/no-such-file.yaml"}},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			stdout, stderr, code := runTailguard(t, "validate", "-config", c.file)
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.wantCode, stdout, stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout %q lacks %q", stdout, s)
				}
			}
			at := 0
			for _, s := range c.stderr {
				i := strings.Index(stderr[at:], s)
				if i < 0 {
					t.Errorf("stderr lacks %q (in file order):\n%s", s, stderr)
					continue
				}
				at += i + len(s)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	skipShort(t)
	stdout, stderr, code := runTailguard(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "tailguard") {
		t.Errorf("version: exit code %d, stdout %q, stderr %q; want 0 and a line starting with tailguard", code, stdout, stderr)
	}
}

// ---------------------------------------------------------------------------
// Tests: the quick form, environment and flags. Without a file the drain
// delay is its 5s default, so these run in parallel.

func TestQuickForm(t *testing.T) {
	skipShort(t)
	t.Parallel()
	up := startGoUpstream(t)
	tg := startTailguard(t, nil, "-upstream", "http://"+up.addr, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	assertLoopbackEphemeral(t, "listen", tg.listen)
	assertLoopbackEphemeral(t, "admin", tg.admin)
	client := newClient(t, ioTimeout)
	resp, body := client.get(t, tg.url("/status/201"))
	if resp.StatusCode != 201 || string(body) != "upstream says 201\n" {
		t.Errorf("status %d, body %q; want the upstream's 201", resp.StatusCode, body)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	skipShort(t)
	t.Parallel()
	up := startGoUpstream(t)
	addrs := freeAddrs(t, 2)
	listen, admin := addrs[0], addrs[1]
	tg := startTailguard(t, []string{
		"TAILGUARD_UPSTREAM=http://" + up.addr,
		"TAILGUARD_LISTEN=" + listen,
		"TAILGUARD_ADMIN=" + admin,
		"TAILGUARD_ADMIN_TOKEN=envtok",
	})
	if tg.listen != listen || tg.admin != admin {
		t.Errorf("listening on %s, admin %s; want TAILGUARD_LISTEN %s, TAILGUARD_ADMIN %s", tg.listen, tg.admin, listen, admin)
	}
	client := newClient(t, ioTimeout)
	if resp, body := client.get(t, tg.url("/status/200")); resp.StatusCode != 200 || string(body) != "upstream says 200\n" {
		t.Errorf("proxied GET: status %d, body %q", resp.StatusCode, body)
	}
	if resp, _ := client.get(t, tg.adminURL("/config")); resp.StatusCode != 401 {
		t.Errorf("/config without TAILGUARD_ADMIN_TOKEN's token: status %d, want 401", resp.StatusCode)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	skipShort(t)
	t.Parallel()
	up := startGoUpstream(t)
	envListen := freeAddrs(t, 1)[0]
	tg := startTailguard(t, []string{"TAILGUARD_LISTEN=" + envListen},
		"-config", writeConfig(t, oneRouteConfig(up.addr)), "-listen", "127.0.0.1:0")
	if tg.listen == envListen {
		t.Errorf("listening on TAILGUARD_LISTEN %s; the -listen flag must win", envListen)
	}
	assertLoopbackEphemeral(t, "listen", tg.listen)
	client := newClient(t, ioTimeout)
	if resp, _ := client.get(t, tg.url("/status/200")); resp.StatusCode != 200 {
		t.Errorf("proxied GET: status %d", resp.StatusCode)
	}
}

// assertLoopbackEphemeral checks that addr is 127.0.0.1 on a port other
// than tailguard's defaults: the flag or variable asking for :0 took.
func assertLoopbackEphemeral(t *testing.T, what, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" || port == "8000" || port == "9901" {
		t.Errorf("%s address %q, want 127.0.0.1 on an ephemeral port", what, addr)
	}
}
