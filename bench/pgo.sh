#!/bin/sh
# Refreshes default.pgo, the CPU profile the Go toolchain optimises the
# tailguard binary with (profile-guided optimisation): the real binary,
# built without a profile, proxies the bench generator's closed loop for
# 20 s twice, once in the quick form and once with the overhead scenario's
# "tailguard, policies" config (`tailguard bench policies`: every policy
# configured, none firing), and the two CPU profiles are merged.
#
#   sh bench/pgo.sh        # from the repository's root; writes default.pgo
#
# Loopback only; every load is bounded in time. Needs Go and curl.
set -eu
dir=$(mktemp -d)
pids=
trap 'kill -9 $pids 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -pgo=off -o "$dir/tailguard" .
tg=$dir/tailguard
"$tg" bench policies -upstream 127.0.0.1:19101 -listen 127.0.0.1:19102 -admin 127.0.0.1:19103 > "$dir/policies.yaml"
"$tg" upstream -listen 127.0.0.1:19101 >/dev/null 2>&1 &
pids=$!
profile() { # $1: output; the rest: how to run the proxy
	out=$1
	shift
	"$@" >/dev/null 2>&1 &
	proxy=$!
	sleep 1
	"$tg" bench -url http://127.0.0.1:19102/ -closed -connections 64 -duration 22s -quiet >/dev/null &
	sleep 1
	curl -fsS -o "$out" "http://127.0.0.1:19103/debug/pprof/profile?seconds=20"
	wait $!
	kill -9 $proxy
	wait $proxy || true
}
profile "$dir/quick.pprof" "$tg" -upstream http://127.0.0.1:19101 -listen 127.0.0.1:19102 -admin 127.0.0.1:19103
profile "$dir/policies.pprof" "$tg" run -config "$dir/policies.yaml"
go tool pprof -proto "$dir/quick.pprof" "$dir/policies.pprof" > default.pgo
echo "wrote default.pgo"
