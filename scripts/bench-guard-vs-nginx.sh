#!/usr/bin/env bash
# The admission guard's throughput as a ratio to nginx (issue 18): builds the release binary,
# then runs ../shared/tools/bench-vs-nginx.sh (three alternating wrk rounds, median ratio) on an
# allowed and on a denied review of webhooks/samples/admission/cases.json, with the machine's
# load before and after each. With WRITE=1 the output replaces the `bench:nginx` section of
# docs/perf.md.
#
#   ./scripts/bench-guard-vs-nginx.sh              build, measure, print
#   WRITE=1 ./scripts/bench-guard-vs-nginx.sh      ... and record in docs/perf.md
#   NO_BUILD=1 BIN=path/to/binary ./scripts/...    measure another binary
#   SECONDS_PER_RUN=10 ...                         longer wrk runs (default 5)
#   HARNESS=/path/to/bench-vs-nginx.sh ...         the harness (default ../shared/tools/)
# After each harness run, the engine's CPU time per review and its idle and peak RSS: the
# machine is shared, the ratio moves by ±0.1 between runs of one binary, the CPU time less.
# Needs wrk, nginx, openssl, curl and python3 (apt-get install -y wrk nginx-light openssl curl).
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS=${HARNESS:-../shared/tools/bench-vs-nginx.sh}
BIN=${BIN:-target/release/coordination-engine}
[ -x "$HARNESS" ] || [ -f "$HARNESS" ] || { echo "no harness at $HARNESS (set HARNESS)" >&2; exit 2; }
[ "${NO_BUILD:-0}" = "1" ] || cargo build --release --bin coordination-engine

# The two reviews: a denial (an image changed by hand on a managed Deployment: the full diff,
# the most expensive path) and an allowed sync by ArgoCD's own identity.
out=target/bench-guard
mkdir -p "$out"
python3 - "$out" <<'PY'
import json, sys
cases = {c["name"]: c for c in json.load(open("webhooks/samples/admission/cases.json"))["cases"]}
for file, name in [("denied", "kubectl set image on a managed deployment"),
                   ("allowed", "sync by argocd-application-controller in argocd")]:
    with open(f"{sys.argv[1]}/{file}.json", "w") as f:
        json.dump(cases[name]["review"], f)
PY

report=$(mktemp); T=$(mktemp -d); EPID=""
trap 'rm -f "$report"; [ -n "$EPID" ] && kill $EPID 2>/dev/null; rm -rf "$T"' EXIT

# The engine's CPU time per review (user + system time of its process over a 5 s wrk run,
# divided by the reviews answered): unlike the throughput ratio, it barely moves with what
# else the machine runs.
cpu_per_review() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
  local port; port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  rm -rf "$T/data"
  PORT=$port METRICS_PORT=0 DATA_DIR="$T/data" API_TOKEN=bench-token-0123456789abcdef LOG_LEVEL=warn \
    TLS_MODE=files TLS_CERT_FILE="$T/c.pem" TLS_KEY_FILE="$T/k.pem" "$BIN" serve >"$T/engine.log" 2>&1 &
  EPID=$!
  for _ in $(seq 1 100); do curl -skf "https://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local idle; idle=$(awk '/VmRSS/{print int($2/1024)}' /proc/$EPID/status)
  printf 'wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"\nlocal f = io.open("%s"); wrk.body = f:read("*a"); f:close()\n' \
    "$(realpath "$1")" >"$T/post.lua"
  local before after out n
  before=$(awk '{print $14+$15}' /proc/$EPID/stat)
  out=$(wrk -t2 -c32 -d5s -s "$T/post.lua" "https://127.0.0.1:$port/webhooks/validate")
  after=$(awk '{print $14+$15}' /proc/$EPID/stat)
  n=$(awk '/requests in/{print $1}' <<<"$out")
  echo "engine CPU per review: $(python3 -c "print(round(($after-$before)*1e6/$(getconf CLK_TCK)/$n,1))") µs ($n reviews in 5 s); RSS idle ${idle} MiB, peak $(awk '/VmHWM/{print int($2/1024)}' /proc/$EPID/status) MiB"
  kill $EPID; wait $EPID 2>/dev/null || true; EPID=""
}
{
  echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`./scripts/bench-guard-vs-nginx.sh\`"
  echo "(release build, \`bench-vs-nginx.sh\`: \`wrk -t2 -c32\`, ${SECONDS_PER_RUN:-5} s per run, three"
  echo "alternating rounds; $(nproc) CPUs)."
  for kind in denied allowed; do
    echo
    echo "### ${kind^} review ($(wc -c <"$out/$kind.json") bytes)"
    echo
    echo '```'
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    bash "$HARNESS" "$BIN" "$out/$kind.json" /webhooks/validate "${SECONDS_PER_RUN:-5}"
    cpu_per_review "$out/$kind.json"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo '```'
  done
} | tee "$report"

if [ "${WRITE:-0}" = "1" ]; then
  python3 - "$report" <<'PY'
import sys
start, end = "<!-- bench:nginx:start -->", "<!-- bench:nginx:end -->"
section = open(sys.argv[1]).read()
doc = open("docs/perf.md").read()
block = f"{start}\n## Admission guard beside nginx\n\n{section}{end}"
if start in doc and end in doc:
    doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip() + "\n\n" + block + "\n"
open("docs/perf.md", "w").write(doc)
print("wrote docs/perf.md", file=sys.stderr)
PY
fi
