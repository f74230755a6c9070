#!/usr/bin/env bash
# Closed-loop maximum of the decision server with wrk (Debian: apt-get
# install -y wrk): GET /healthz (the trivial handler) then POST /v1/decide
# (decide.lua) against one server, the same connections and duration.
#
#   scripts/loadtest/serve.sh                 # starts the server: aelp bench-serve --hold
#   scripts/loadtest/serve.sh http://host:8080  # loads a running aelp serve instead
#
# Without a URL the server is `aelp bench-serve --hold`: aelp serve in-process
# on 127.0.0.1 with an embedded broker and a PPO snapshot of the simulator's
# shape (version 1), every decision logged to aelp.decisions (asynchronous log
# buffer; BENCH_FLAGS=--log-sync for the acknowledged mode). It prints how
# many decisions it answered and logged when the script stops it.
#
# Environment: THREADS (2), CONNECTIONS (64), DURATION (10s), AELP (a built
# aelp binary; default: go build into a temporary directory).
# wrk is closed-loop (each connection sends its next request when the last is
# answered): this is the maximum throughput and its latency at that load; the
# fixed-rate, coordinated-omission-safe figures are `aelp bench-serve`'s.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v wrk >/dev/null || { echo "serve.sh: wrk is not on PATH (Debian: apt-get install -y wrk)" >&2; exit 2; }
THREADS=${THREADS:-2} CONNECTIONS=${CONNECTIONS:-64} DURATION=${DURATION:-10s}
tmp=$(mktemp -d)
server=
cleanup() {
	if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then kill -INT "$server"; wait "$server" || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
url=${1:-}
if [ -z "$url" ]; then
	aelp=${AELP:-}
	if [ -z "$aelp" ]; then
		go build -o "$tmp/aelp" ./cmd/aelp
		aelp=$tmp/aelp
	fi
	: >"$tmp/server.err" # there before the loop below reads it (the server's shell may not have opened it yet)
	# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
	"$aelp" bench-serve --hold ${BENCH_FLAGS:-} >"$tmp/server.out" 2>"$tmp/server.err" &
	server=$!
	for _ in $(seq 600); do
		url=$(sed -n 's/^bench-serve: serving on \(http[^ ]*\) .*/\1/p' "$tmp/server.err")
		[ -n "$url" ] && break
		kill -0 "$server" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
		sleep 0.1
	done
	[ -n "$url" ] || { echo "serve.sh: the server did not start within 60s" >&2; cat "$tmp/server.err" >&2; exit 1; }
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== GET $url/healthz (trivial handler)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url/healthz"
echo "== POST $url/v1/decide"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s scripts/loadtest/decide.lua "$url/v1/decide"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$server" ]; then
	kill -INT "$server"
	wait "$server" || { echo "serve.sh: the server's drain failed" >&2; cat "$tmp/server.err" >&2; exit 1; }
	server=
	cat "$tmp/server.out"
fi
