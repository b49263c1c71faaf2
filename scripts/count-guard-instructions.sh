#!/usr/bin/env bash
# The engine's user-space instructions per admission review (issue 18), counted by valgrind's
# callgrind: unlike a throughput ratio or a CPU time, the count does not move with the load of
# a shared machine, so a change of a few percent shows. It starts the engine under callgrind
# (TLS from files, LOG_LEVEL=warn, as bench-vs-nginx.sh runs it), warms it up with wrk, zeroes
# the counters, sends exactly N reviews over 4 keep-alive connections, and divides. The count
# includes the 4 TLS handshakes (about 22 000 instructions a review at N=2000: compare counts
# taken with the same N).
#
#   scripts/count-guard-instructions.sh [BINARY] [REQUEST.json]
#     BINARY   default target/release/coordination-engine
#     REQUEST  default target/bench-guard/denied.json (written by bench-guard-vs-nginx.sh)
#   N=4000 ...                          more reviews (default 2000)
#   KEEP=path/callgrind.out ...         keeps the profile (callgrind_annotate path/callgrind.out)
# Needs valgrind, wrk, openssl, curl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/coordination-engine}")
REQ=$(realpath "${2:-target/bench-guard/denied.json}")
N=${N:-2000}
T=$(mktemp -d); EPID=""
trap '[ -n "$EPID" ] && kill $EPID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PORT=$port METRICS_PORT=0 DATA_DIR="$T/data" API_TOKEN=bench-token-0123456789abcdef LOG_LEVEL=warn \
  TLS_MODE=files TLS_CERT_FILE="$T/c.pem" TLS_KEY_FILE="$T/k.pem" \
  valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" "$BIN" serve >"$T/engine.log" 2>&1 & EPID=$!
for _ in $(seq 1 600); do curl -skf "https://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
printf 'wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"\nlocal f = io.open("%s"); wrk.body = f:read("*a"); f:close()\n' "$REQ" >"$T/post.lua"
wrk -t1 -c4 -d3s -s "$T/post.lua" "https://127.0.0.1:$port/webhooks/validate" >/dev/null
callgrind_control -z $EPID >/dev/null 2>&1
python3 - "$port" "$REQ" "$N" <<'PY'
import http.client, ssl, sys, threading
port, body, n = int(sys.argv[1]), open(sys.argv[2], 'rb').read(), int(sys.argv[3])
ctx = ssl._create_unverified_context()
def run():
    c = http.client.HTTPSConnection('127.0.0.1', port, context=ctx, timeout=60)
    for _ in range(n // 4):
        c.request('POST', '/webhooks/validate', body, {'Content-Type': 'application/json'})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
threads = [threading.Thread(target=run) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
PY
callgrind_control -d $EPID >/dev/null 2>&1
for _ in $(seq 1 50); do [ -s "$T/cg.out.1" ] && grep -q '^totals:\|^summary:' "$T/cg.out.1" && break; sleep 0.2; done
total=$(awk '/^(summary|totals):/{print $2; exit}' "$T/cg.out.1")
echo "$(basename "$BIN"): $N reviews, $((total / N)) instructions per review"
[ -n "${KEEP:-}" ] && cp "$T/cg.out.1" "$KEEP"
exit 0
