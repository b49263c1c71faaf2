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

report=$(mktemp)
trap 'rm -f "$report"' EXIT
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
