#!/bin/sh
# Counts the system calls tailguard makes per proxied request: the quick
# form in front of `tailguard upstream`, both on CPU 0 (a sidecar shares
# its pod's CPU), the bench generator's closed loop of 64 connections on
# CPU 1 for 3 s, and perf stat's syscall tracepoints on the proxy for
# that time (perf counts in the kernel: unlike strace, it does not slow
# the process down and change what it does).
#
#   sh bench/syscalls.sh [BINARY [ARM]]   # default: builds ./tailguard from the tree
#
# ARM is what proxies: tailguard (the default), tls (tailguard
# terminating TLS with a throwaway self-signed ECDSA P-256 certificate,
# the generator a keep-alive TLS client), policies (tailguard with every
# policy configured and none firing: `tailguard bench policies`), the
# overhead scenario's floor arms, relay (`tailguard bench relay`) or
# evrelay (`tailguard bench evrelay`), or nginx as the overhead scenario
# runs it (one process, keep-alive to the upstream), for a count side by
# side.
#
# Needs perf (Debian's linux-perf) with tracepoint access (root), taskset;
# openssl for tls, nginx for nginx.
# Loopback only; the load is bounded in time.
set -eu
dir=$(mktemp -d)
pids=
trap 'kill -9 $pids 2>/dev/null || true; rm -rf "$dir"' EXIT
tg=${1:-}
arm=${2:-tailguard}
if [ -z "$tg" ]; then
	go build -o "$dir/tailguard" .
	tg=$dir/tailguard
fi
taskset -c 0 "$tg" upstream -listen 127.0.0.1:19201 >/dev/null 2>&1 &
pids=$!
url=http://127.0.0.1:19202/ ca=
case $arm in
tailguard) set -- -upstream http://127.0.0.1:19201 -admin 127.0.0.1:19203 ;;
tls)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
		-addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	set -- -upstream http://127.0.0.1:19201 -admin 127.0.0.1:19203 -tls-cert "$dir/cert.pem" -tls-key "$dir/key.pem"
	url=https://127.0.0.1:19202/ ca="-tls-ca $dir/cert.pem"
	;;
policies)
	"$tg" bench policies -upstream 127.0.0.1:19201 -listen 127.0.0.1:19202 -admin 127.0.0.1:19203 >"$dir/policies.yaml"
	set -- -config "$dir/policies.yaml"
	;;
relay) set -- bench relay -upstream 127.0.0.1:19201 ;;
evrelay) set -- bench evrelay -upstream http://127.0.0.1:19201 ;;
nginx)
	# bench/peers.go's nginxConf, the overhead scenario's nginx arm.
	for d in body proxy fastcgi uwsgi scgi; do mkdir -p "$dir/$d"; done
	cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream backend { server 127.0.0.1:19201; keepalive 128; }
  server {
    listen 127.0.0.1:19202;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
	;;
*) echo "ARM: tailguard, tls, policies, relay, evrelay or nginx" >&2; exit 2 ;;
esac
case $arm in
nginx) taskset -c 0 nginx -e "$dir/nginx-error.log" -p "$dir" -c "$dir/nginx.conf" & ;;
policies) taskset -c 0 "$tg" "$@" >/dev/null 2>&1 & ;;
*) taskset -c 0 "$tg" "$@" -listen 127.0.0.1:19202 >/dev/null 2>&1 & ;;
esac
proxy=$!
pids="$pids $proxy"
sleep 1
load() { taskset -c 1 "$tg" bench -url $url $ca -closed -connections 64 "$@"; }
load -duration 1s -quiet >/dev/null
perf stat -x, -o "$dir/perf.csv" -p $proxy \
	-e raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom \
	-e syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep \
	-e syscalls:sys_enter_writev,syscalls:sys_enter_sendto,syscalls:sys_enter_getsockopt \
	-e syscalls:sys_exit_read --filter 'ret == -11' -e syscalls:sys_exit_recvfrom --filter 'ret == -11' &
perf=$!
sleep 0.3
load -duration 3s -json - -quiet > "$dir/load.json"
kill -INT $perf
wait $perf || true
requests=$(sed -n 's/^  "requests": \([0-9]*\),$/\1/p' "$dir/load.json")
echo "requests: $requests (syscalls:sys_exit_read and _recvfrom below: those that found nothing, EAGAIN; a clean reuse check's peek is one)"
awk -F, -v r="$requests" '$1 ~ /^[0-9]/ { printf "%-32s %9d  %5.2f a request\n", $3, $1, $1 / r }' "$dir/perf.csv"
