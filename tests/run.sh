#!/usr/bin/env bash
# Every test of the project, as the README's "Testing" section and CI run it:
#   1. formatting and lints (cargo fmt, clippy, shellcheck);
#   2. the local control plane (built from the Kubernetes Go modules, cached), then
#      `cargo test`: unit tests plus the integration tests against that control plane;
#   3. the e2e script against the same control plane, with the operator as a local process;
#   4. the sample app's pytest (real Postgres) and Vitest suites, and actionlint.
# The control plane is always stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for tool in shellcheck jq curl openssl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "cargo fmt --check, clippy, shellcheck"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
shellcheck -x tests/*.sh tests/cluster/*.sh tests/e2e/*.sh deploy/*.sh .ci/run

log "local control plane (tests/cluster/up.sh)"
operator_pid=""
cleanup() {
  [ -z "$operator_pid" ] || kill "$operator_pid" 2>/dev/null || true
  bash tests/cluster/down.sh || true
}
trap cleanup EXIT
bash tests/cluster/up.sh
bash tests/cluster/smoke-test.sh
# shellcheck source=/dev/null
source target/cluster/env

log "cargo test (unit + integration)"
cargo test --locked

log "e2e script against the local control plane (operator as a local process)"
cargo build --locked --quiet
mkdir -p target/cluster/logs
"${CARGO_TARGET_DIR:-target}/debug/appstack-operator" run --metrics-address 127.0.0.1:18080 \
  > target/cluster/logs/e2e-operator.log 2>&1 &
operator_pid=$!
E2E_OPERATOR=external E2E_SKIP_TRAFFIC=1 bash tests/e2e/run.sh "$KUBECONFIG"
kill "$operator_pid"
wait "$operator_pid" 2>/dev/null || true
operator_pid=""

log "sample app (pytest + Vitest) and workflow lint"
bash tests/sample-app.sh
bash tests/lint-workflows.sh

log "all tests passed"
