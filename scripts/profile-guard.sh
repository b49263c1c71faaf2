#!/usr/bin/env bash
# Where the engine's CPU goes under the guard benchmark's load (issue 18): the engine as
# bench-vs-nginx.sh runs it (release build, TLS from files, LOG_LEVEL=warn), `wrk -t2 -c32` on
# one review, `perf record -e cpu-clock -g` on the engine process meanwhile. Prints the top
# symbols (self time) and the syscall counts of a shorter run (`strace -c -f`).
#
#   scripts/profile-guard.sh [BINARY] [REQUEST.json] [SECONDS]
#     BINARY   default target/release/coordination-engine
#     REQUEST  default target/bench-guard/denied.json (written by bench-guard-vs-nginx.sh)
#   KEEP=path/perf.data keeps the profile for `perf report -i path/perf.data --children ...`.
# Needs wrk, perf, strace, openssl, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/coordination-engine}")
REQ=$(realpath "${2:-target/bench-guard/denied.json}")
SECS=${3:-10}
T=$(mktemp -d); EPID=""
trap '[ -n "$EPID" ] && kill $EPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
EP=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PORT=$EP METRICS_PORT=0 DATA_DIR="$T/data" API_TOKEN=bench-token-0123456789abcdef LOG_LEVEL=warn \
  TLS_MODE=files TLS_CERT_FILE="$T/c.pem" TLS_KEY_FILE="$T/k.pem" "$BIN" serve >"$T/engine.log" 2>&1 & EPID=$!
for _ in $(seq 1 100); do curl -skf "https://127.0.0.1:$EP/health" >/dev/null 2>&1 && break; sleep 0.1; done
cat >"$T/post.lua" <<LUA
wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
local f = io.open("$REQ"); wrk.body = f:read("*a"); f:close()
LUA
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: $(ls /proc/$EPID/task | while read t; do cat /proc/$EPID/task/$t/comm; done | sort | uniq -c | tr -s ' ' | paste -sd,)"
wrk -t2 -c32 -d"$((SECS + 2))s" -s "$T/post.lua" "https://127.0.0.1:$EP/webhooks/validate" >"$T/wrk.txt" 2>&1 &
WPID=$!
sleep 1
perf record -q -e cpu-clock -g -p "$EPID" -o "$T/perf.data" -- sleep "$SECS" >/dev/null 2>&1
wait $WPID
[ -n "${KEEP:-}" ] && cp "$T/perf.data" "$KEEP"
grep -E "Requests/sec" "$T/wrk.txt"
echo "--- top symbols (self) ---"
perf report -i "$T/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
  | grep -E "^ +[0-9]" | sed -E "s/ +-? +-? *$//" | cut -c1-130 | head -40 || true
echo "--- by thread ---"
perf report -i "$T/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E "^ +[0-9]" | sed -E "s/ +-? +-? *$//" | head || true
echo "--- syscalls over 3 s of load (strace -c -f) ---"
wrk -t2 -c32 -d4s -s "$T/post.lua" "https://127.0.0.1:$EP/webhooks/validate" >"$T/wrk2.txt" 2>&1 &
WPID=$!
sleep 0.5
timeout -s INT 3 strace -c -f -p "$EPID" -o "$T/strace.txt" >/dev/null 2>&1 || true
wait $WPID
head -20 "$T/strace.txt" || true
grep -E "Requests/sec" "$T/wrk2.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
