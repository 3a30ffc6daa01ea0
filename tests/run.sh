#!/usr/bin/env bash
# Every test of the project, as the README's "Testing" section and CI run it:
#   1. formatting and lints (cargo fmt, clippy, shellcheck);
#   2. the local control plane (built from the Kubernetes Go modules, cached), the Go test tools
#      (tests/tools/build.sh: the GitOps health checker and promtool, cached), then `cargo test`:
#      unit tests plus the integration tests against that control plane, and the fault-injection
#      suite at its CI size (tests/faults/run.sh), and the benchmark's smoke size (bench/run.sh);
#   3. the README's one-command trial (tests/cluster/try.sh) and the e2e script against it;
#   4. the sample app's pytest (real Postgres) and Vitest suites, actionlint, and kube-score on
#      the render of every example and on deploy/ (tests/lint-manifests.sh);
#   5. the real node: the KWOK cluster is stopped, `tests/cluster/up.sh --real-node` starts one
#      that runs containers, tests/cluster/images.sh builds and loads the images, then the e2e
#      script (operator as a pod, traffic on) and the real-pod tests run against it.
# The cluster is always stopped at the end. APPSTACK_CLUSTER_DIR/PORT move it (see
# tests/cluster/README.md); the real node needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER_DIR="${APPSTACK_CLUSTER_DIR:-target/cluster}"

STEP="start"
log() { STEP="$*"; printf '\n==> %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The whole output also goes to ~/.cache/appstack-operator/runs (the newest runs kept), and
# on a failure the cluster's logs and the containers' logs beside it: a CI service may show only
# part of the output, and the cluster is gone once this script ends.
RUNS="${HOME}/.cache/appstack-operator/runs"
RUN="${RUNS}/$(date +%Y%m%d-%H%M%S)"
mkdir -p "${RUNS}"
find "${RUNS}" -mindepth 1 -maxdepth 1 -printf "%T@ %p\n" | sort -rn | tail -n +9 | cut -d" " -f2- | xargs -r -d "\n" rm -rf
exec > >(tee -a "${RUN}.log") 2>&1
on_exit() {
  local status=$?
  if ((status != 0)); then
    mkdir -p "${RUN}-logs"
    cp -r "${CLUSTER_DIR}/logs" "${RUN}-logs/cluster" 2>/dev/null || true
    if [[ -f "${CLUSTER_DIR}/kubeconfig" ]]; then
      kubectl --kubeconfig "${CLUSTER_DIR}/kubeconfig" get all,appstacks,pvc,events -A -o wide \
        >"${RUN}-logs/objects.txt" 2>&1 || true
      kubectl --kubeconfig "${CLUSTER_DIR}/kubeconfig" get pods -A --no-headers \
        -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null |
        while read -r ns pod; do
          kubectl --kubeconfig "${CLUSTER_DIR}/kubeconfig" -n "${ns}" logs "${pod}" \
            --all-containers --prefix --tail=300 >"${RUN}-logs/pod-${ns}-${pod}.log" 2>&1 || true
        done
    fi
    cp target/faults.log "${RUN}-logs/" 2>/dev/null || true
    printf '\n==> %s  FAILED (exit %s) during: %s\n    output: %s.log, logs: %s-logs\n' \
      "$(date +%H:%M:%S)" "${status}" "${STEP}" "${RUN}" "${RUN}"
  fi
  bash tests/cluster/down.sh || true
}

trap on_exit EXIT

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
shellcheck -x tests/*.sh tests/cluster/*.sh tests/cluster/images/*.sh tests/e2e/*.sh \
  tests/faults/*.sh tests/real-node/*.sh bench/*.sh tests/tools/*.sh examples/books/api/*.sh deploy/*.sh .ci/run

log "local control plane (tests/cluster/up.sh)"
bash tests/cluster/up.sh
bash tests/cluster/smoke-test.sh
# shellcheck source=/dev/null
source "$CLUSTER_DIR/env"

# The Go programs the tests run: built once, cached under ~/.cache/appstack-tools (cold: minutes,
# see the README; warm: 0 s). Then the Argo CD health check and kstatus on the checked-in captures,
# offline (tests/gitops.rs captures them afresh from the control plane below).
log "Go test tools (tests/tools/build.sh), GitOps health on the checked-in captures"
t0=$SECONDS
GITOPS_CHECK="$(bash tests/tools/build.sh gitops-check)"
t1=$SECONDS
bash tests/tools/build.sh promtool >/dev/null
echo "tools: gitops-check $((t1 - t0))s, promtool $((SECONDS - t1))s"
"${GITOPS_CHECK}" tests/gitops/fixtures

log "cargo test (unit + integration)"
# The property test, the fault walk and the GitOps captures report figures (specs tried and
# accepted; rounds, faults, violations; each phase's Argo CD health and kstatus): run them apart
# with their output shown. The leader failover test prints its hand-over times.
reporting=(accepted_means_renderable faults leader_election gitops)
cargo test --locked -- --skip every_accepted_spec_renders_children_the_server_accepts \
  --skip deletes_recreates_and_operator_kills_lose_nothing \
  --skip a_standby_takes_over_after_sigkill_and_at_once_after_sigterm \
  --skip every_phase_has_the_expected_argo_cd_health_and_kstatus
cargo test --locked "${reporting[@]/#/--test=}" -- --show-output

# The fault-injection suite at its CI size (it restarts this cluster's API server and etcd).
log "fault-injection suite (tests/faults/run.sh, FAULT_RUNS=${FAULT_RUNS:-20})"
fault_t0=${SECONDS}
bash tests/faults/run.sh
log "fault-injection suite took $((SECONDS - fault_t0))s"

# The benchmark at its smoke size, on a control plane of its own (up.sh afresh; try.sh below starts
# another): it prints its table, and fails only if a full resync of unchanged stacks writes.
log "benchmark smoke (BENCH_STACKS=50 bench/run.sh)"
bench_t0=${SECONDS}
BENCH_STACKS=50 BENCH_ONE_RUNS=4 bash bench/run.sh
log "benchmark smoke took $((SECONDS - bench_t0))s"

# The README's one-command trial (a fresh control plane, the operator as a local process, the
# books stack Ready), then the e2e script against it with that operator. The trial uses its own
# namespace so that the e2e script creates, waits for and deletes a stack of its own.
log "tests/cluster/try.sh, then the e2e script against it"
TRY_NAMESPACE=try bash tests/cluster/try.sh
E2E_OPERATOR=external E2E_SKIP_TRAFFIC=1 bash tests/e2e/run.sh "$KUBECONFIG"

log "sample app (pytest + Vitest) and workflow lint"
bash tests/sample-app.sh
bash tests/lint-workflows.sh

# kube-score on the render of every example and on deploy/ (built from its Go module once:
# it prints its build time cold, "cached" warm); findings not in tests/kube-score-ignore fail.
log "manifest lint (tests/lint-manifests.sh)"
bash tests/lint-manifests.sh

# The real node: containers for real, the operator as a pod from deploy/install.yaml, the images
# built without a registry. Each step's time is printed (cold on a fresh machine: builds; warm:
# everything cached under ~/.cache).
[ "$(id -u)" -eq 0 ] || { echo "the real node needs root (network namespace, cgroups, containerd)" >&2; exit 1; }
timed() { # <label> <command...>
  local label="$1" t0=$SECONDS
  shift
  "$@"
  TIMES+=("$label $((SECONDS - t0))s")
}
TIMES=()
log "real node: stop the KWOK cluster; build (tests/cluster/build.sh --real-node)"
bash tests/cluster/down.sh
timed build bash tests/cluster/build.sh --real-node >/dev/null
log "real node: tests/cluster/up.sh --real-node"
timed up bash tests/cluster/up.sh --real-node
log "real node: tests/cluster/images.sh"
timed images bash tests/cluster/images.sh
# kubectl appstack for the real-pod tests' psql test: the release build images.sh just made for
# the operator leaves only the plugin's binary to build and link.
timed plugin cargo build --release --locked --quiet --bin kubectl-appstack
log "real node: the e2e script (operator as a pod, traffic on)"
timed e2e bash tests/e2e/run.sh "$CLUSTER_DIR/kubeconfig"
log "real node: real-pod tests (tests/real-node/run.sh)"
timed real-pod-tests bash tests/real-node/run.sh
timed down bash tests/cluster/down.sh
log "real node times: ${TIMES[*]}"

log "all tests passed"
