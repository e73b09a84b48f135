#!/usr/bin/env bash
# Side by side, in one run: a fasthttp upstream reached directly, through
# nginx (one worker, upstream keepalive) and through tailguard. The
# upstream and the proxy share CPU 0, as a sidecar shares its pod's CPU;
# the load generator runs on CPU 1. For each target and round it prints
# closed-loop throughput (wrk -t1 -c64), the proxy's CPU time per request,
# and open-loop latency at a fixed rate (tailguard bench, latency from each
# request's intended start).
#
# Needs: wrk and nginx (Debian packages), taskset, 2 CPUs.
# Usage: bench/compare-nginx.sh [rounds] [seconds] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}; secs=${2:-10}; rate=${3:-2000}
for cmd in wrk nginx taskset; do
  command -v $cmd >/dev/null || { echo "skipped: $cmd not installed (apt-get install wrk nginx)"; exit 0; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/tailguard" .
up=127.0.0.1:18080; ng=127.0.0.1:18001; tg=127.0.0.1:18000

taskset -c 0 "$work/tailguard" upstream -listen $up >/dev/null & pids+=($!); up_pid=$!
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server $up; keepalive 128; }
  server {
    listen $ng;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 "$work/tailguard" -upstream http://$up -listen $tg -admin 127.0.0.1:0 -log-level warn & pids+=($!); tg_pid=$!
sleep 1
ng_pid=$(pgrep -P "$(cat "$work/nginx.pid")" nginx | head -1) # the worker

# cpu_ticks PID: user+system clock ticks so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

measure() { # name addr pid
  local name=$1 addr=$2 pid=$3
  taskset -c 1 wrk -t1 -c64 -d2s "http://$addr/" >/dev/null # warm up
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(taskset -c 1 wrk -t1 -c64 -d${secs}s "http://$addr/")
  local t1; t1=$(cpu_ticks "$pid")
  local rps reqs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local cpu_us; cpu_us=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
  local lat; lat=$(taskset -c 1 "$work/tailguard" bench -url "http://$addr/" -rate "$rate" -duration ${secs}s -connections 64)
  local p50 p99 p999
  p50=$(awk '$1 == "p50" {print $2}' <<<"$lat"); p99=$(awk '$1 == "p99" {print $2}' <<<"$lat"); p999=$(awk '$1 == "p99.9" {print $2}' <<<"$lat")
  local rss; rss=$(awk '/VmRSS/ {print $2 / 1024 " MiB"}' "/proc/$pid/status")
  printf "| %s | %s | %s | %s µs | %s | %s | %s | %s |\n" "$round" "$name" "$rps" "$cpu_us" "$p50" "$p99" "$p999" "$rss"
}

echo "| round | target | req/s (wrk -t1 -c64) | CPU per request | p50 @${rate}/s | p99 @${rate}/s | p99.9 @${rate}/s | RSS |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  measure direct $up $up_pid
  measure nginx $ng "$ng_pid"
  measure tailguard $tg $tg_pid
done
echo
echo "CPU per request is the process's user+system time over wrk's request count: for direct, the upstream's; for nginx and tailguard, the proxy's alone."
