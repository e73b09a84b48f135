#!/bin/bash
# Tells a machine's phases from a process's: N tailguard processes (the
# overhead scenario's config) run at once on CPU 0 beside `tailguard
# upstream`, and are measured in turn, ROUNDS times round, each with a
# 2 s closed loop of 64 connections from the bench generator on CPU 1
# (after 0.5 s of warm-up), printing each one's CPU per request (µs,
# user + system from /proc/PID/stat). If a process kept its own speed,
# its column would stay put; on the project's VM whole stretches of
# consecutive measurements are fast or slow together, whichever process
# they fall on.
#
#   bash bench/phases.sh BINARY [N [ROUNDS]]   # default 6 processes, 4 rounds
set -eu
tg=$1 n=${2:-6} rounds=${3:-4}
dir=$(mktemp -d)
pids=
trap 'exec 2>/dev/null; kill -9 $pids; wait; rm -rf "$dir"' EXIT
taskset -c 0 "$tg" upstream -listen 127.0.0.1:19601 >/dev/null 2>&1 &
pids=$!
proc=()
for i in $(seq "$n"); do
	cat >"$dir/tg$i.yaml" <<Y
listen: "127.0.0.1:$((19610 + i))"
admin: "127.0.0.1:$((19640 + i))"
log: {level: warn, access: off}
upstreams:
  app:
    endpoints: ["127.0.0.1:19601"]
routes:
  - name: default
    upstream: app
Y
	taskset -c 0 "$tg" run -config "$dir/tg$i.yaml" >/dev/null 2>&1 &
	proc[i]=$!
	pids="$pids $!"
done
sleep 1.5
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
	line="round $r:"
	for i in $(seq "$n"); do
		url=http://127.0.0.1:$((19610 + i))/
		taskset -c 1 "$tg" bench -url "$url" -closed -connections 64 -duration 0.5s -quiet >/dev/null
		t0=$(ticks "${proc[i]}")
		req=$(taskset -c 1 "$tg" bench -url "$url" -closed -connections 64 -duration 2s -json - -quiet |
			sed -n 's/^  "requests": \([0-9]*\),$/\1/p')
		t1=$(ticks "${proc[i]}")
		line="$line $(awk -v t="$((t1 - t0))" -v hz="$hz" -v r="$req" 'BEGIN { printf "%.1f", t / hz * 1e6 / r }')"
	done
	echo "$line µs"
done
