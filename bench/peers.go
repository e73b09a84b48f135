package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Peers are the proxies tailguard is compared with, run from their
// Debian packages with configs generated here: one worker (process or
// thread) each, keep-alive to the upstream, no logging per request.

// nginxConf is nginx as a one-process reverse proxy: no master, one
// worker, upstream keep-alive, every temp path in dir.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream backend { server %[3]s; keepalive 128; }
  server {
    listen %[2]s%[4]s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

// haproxyOptions are HAProxy's threads and static admission limits: at
// most maxconn requests at the server, maxqueue waiting in HAProxy for at
// most queue. Zero maxconn means no limits, zero threads one.
type haproxyOptions struct {
	threads           int
	maxconn, maxqueue int
	queue             time.Duration
	// frontend are lines added to the frontend section (use_backend
	// rules), and sections text added after the default backend (more
	// backends), in which UPSTREAM stands for the upstream's address.
	frontend []string
	sections string
}

// haproxyConf is HAProxy as a one-thread reverse proxy with server
// keep-alive: %[1]s listens, %[2]s is the server, %[3]s its limits, %[4]s
// the server timeout, %[5]s the queue timeout line, %[6]d the threads,
// %[7]s more frontend lines and %[8]s more sections.
const haproxyConf = `global
  nbthread %[6]d
  maxconn 8000
defaults
  mode http
  maxconn 8000
  timeout connect 1s
  timeout client 30s
  timeout server %[4]s
  %[5]s
  option http-keep-alive
  http-reuse always
frontend fe
  bind %[1]s%[7]s
  default_backend be
backend be
  server s1 %[2]s %[3]s
%[8]s`

// tlsPair is a certificate and key, PEM files, that a peer serves TLS
// with.
type tlsPair struct{ cert, key string }

// nginxTLS are the server directives that make nginx terminate TLS with
// a certificate (%[1]s) and key (%[2]s): TLS 1.2 and 1.3, HTTP/1.1 (no
// http2), no session tickets and no session cache, so that a handshake is
// never cheaper than a full one.
const nginxTLS = ` ssl;
    ssl_certificate %[1]s;
    ssl_certificate_key %[2]s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off`

// startNginx runs nginx in front of upstream on listen, pinned to cpu,
// terminating TLS with pair unless it is nil.
func (e *Env) startNginx(ctx context.Context, dir, listen, upstream, cpu string, pair *tlsPair) (*process, error) {
	bin, err := findProgram("nginx")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	ssl := ""
	if pair != nil {
		ssl = fmt.Sprintf(nginxTLS, pair.cert, pair.key)
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, listen, upstream, ssl), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess("nginx", pinned(ctx, e.Pin, cpu, []string{bin, "-e", filepath.Join(dir, "nginx-error.log"), "-p", dir, "-c", conf}))
	if err != nil {
		return nil, err
	}
	return ready(p, listen)
}

// startHAProxy runs HAProxy in front of upstream on listen with limits,
// pinned to cpu. serverTimeout bounds a request at the server.
func (e *Env) startHAProxy(ctx context.Context, dir, listen, upstream, cpu string, lim haproxyOptions, serverTimeout time.Duration) (*process, error) {
	bin, err := findProgram("haproxy")
	if err != nil {
		return nil, err
	}
	server, queue := "", ""
	if lim.maxconn > 0 {
		server = fmt.Sprintf("maxconn %d maxqueue %d", lim.maxconn, lim.maxqueue)
		queue = fmt.Sprintf("timeout queue %dms", lim.queue.Milliseconds())
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	frontend := ""
	for _, l := range lim.frontend {
		frontend += "\n  " + l
	}
	text := fmt.Sprintf(haproxyConf, listen, upstream, server, fmt.Sprintf("%dms", serverTimeout.Milliseconds()), queue,
		max(lim.threads, 1), frontend, strings.ReplaceAll(lim.sections, "UPSTREAM", upstream))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess("haproxy", pinned(ctx, e.Pin, cpu, []string{bin, "-db", "-f", conf}))
	if err != nil {
		return nil, err
	}
	return ready(p, listen)
}
