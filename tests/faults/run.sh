#!/usr/bin/env bash
# The fault-injection suite (tests/fault_injection.rs) against the running local control plane
# (tests/cluster/up.sh; KUBECONFIG from target/cluster/env, else that file): two operator replicas
# as processes over 100 stacks being created, updated and deleted, the leader SIGKILLed at random
# moments, the API server restarted in one run and etcd in another (tests/cluster/restart.sh).
# Each run prints its table of invariants; the last line is `R runs, F faults, V violations`.
#
#   FAULT_RUNS=N tests/faults/run.sh      N runs (default 20, the CI size)
#   FAULT_RUNS=1000 FAULT_RELEASE=1 FAULT_LEASE_SECONDS=2 FAULT_PAUSE_MS=300 \
#     FAULT_RESTART_MS=6000 tests/faults/run.sh
#                                         the on-demand size, as the README's figures were taken
#
# Also FAULT_STACKS (100), FAULT_OPS (operations per run, 12), FAULT_SEED (random; printed),
# FAULT_LEASE_SECONDS (the replicas' Lease, 4), FAULT_PAUSE_MS (longest pause between two
# operations, 600), FAULT_RESTART_MS (the longest a killed replica stays down, 12000),
# FAULT_RELEASE=1 (the replicas run the release binary, built here: a run
# takes about a second less).
# The operations and faults, one per line, go to target/faults.log. Exits non-zero on any
# violation.
set -euo pipefail
cd "$(dirname "$0")/../.."
export FAULT_RUNS="${FAULT_RUNS:-20}"
if [[ -z "${KUBECONFIG:-}" && -f target/cluster/env ]]; then
  # shellcheck source=/dev/null
  source target/cluster/env
fi
trace=target/faults.log
mkdir -p target
if [[ "${FAULT_RELEASE:-0}" == 1 ]]; then
  cargo build --locked --release --bin appstack-operator
  export APPSTACK_OPERATOR_BIN="${CARGO_TARGET_DIR:-${PWD}/target}/release/appstack-operator"
fi
out="$(mktemp)"
status=0
cargo test --locked --test fault_injection -- --ignored --exact fault_suite --nocapture \
  2>"${trace}" | tee "${out}" || status=$?
summary="$(grep -E '^[0-9]+ runs, [0-9]+ faults, [0-9]+ violations$' "${out}" | tail -n 1 || true)"
rm -f "${out}"
if [[ -z "${summary}" ]]; then
  tail -n 40 "${trace}" >&2
  echo "the fault suite stopped before its summary (trace: ${trace})" >&2
  exit 1
fi
((status == 0)) || tail -n 40 "${trace}" >&2
echo "${summary}"
exit "${status}"
