#!/usr/bin/env bash
# Try appstack-operator with no cluster, in one command: starts the local control plane (up.sh),
# installs the CRD, runs the operator as a local process, applies examples/books.yaml in namespace
# `books`, waits for Ready and shows the stack. Everything keeps running afterwards; down.sh stops
# the operator together with the control plane (its PID is recorded with theirs).
#
# Env: TRY_NAMESPACE (default books), TRY_METRICS_ADDRESS (default 127.0.0.1:18080), and those of
# up.sh. Uses CARGO_TARGET_DIR when set.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"

NS="${TRY_NAMESPACE:-books}"
METRICS="${TRY_METRICS_ADDRESS:-127.0.0.1:18080}"

log "building the operator (cargo build)"
cargo build --locked --quiet
operator="${CARGO_TARGET_DIR:-${REPO_ROOT}/target}/debug/appstack-operator"

"${CLUSTER_SRC}/up.sh" >/dev/null
# shellcheck source=/dev/null
source "${CLUSTER_DIR}/env"

kubectl apply -f crd/appstack.yaml
kubectl wait --for=condition=Established crd/appstacks.appstack.dev --timeout=60s

# From here on a failure shows the operator's log (an occupied metrics port, a crash, ...).
trap 'rc=$?; ((rc == 0)) || show_current_log' EXIT
start_process appstack-operator "${operator}" run --metrics-address "${METRICS}"
wait_for "operator /readyz (http://${METRICS})" appstack-operator curl_ok "http://${METRICS}/readyz"

kubectl create namespace "${NS}" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "${NS}" pod-security.kubernetes.io/enforce=restricted --overwrite
applied_at="$(date +%s%N)"
kubectl apply -n "${NS}" -f examples/books.yaml
kubectl wait -n "${NS}" --for=condition=Ready appstack/books --timeout=180s
log "Ready $(( ($(date +%s%N) - applied_at) / 1000000 )) ms after kubectl apply"
kubectl get -n "${NS}" stack

cat <<EOF

The books stack is Ready (KWOK plays the pods: objects and status are real, processes are not).
  source ${CLUSTER_DIR}/env
  kubectl get -n ${NS} stack,all,pvc,secret,ingress,hpa,pdb
  kubectl describe -n ${NS} appstack books
  curl -s http://${METRICS}/metrics | grep appstack_
Stop everything:  tests/cluster/down.sh
EOF
