#!/usr/bin/env bash
# Try appstack-operator with no cluster, in one command.
#
#   try.sh              starts the local control plane (up.sh) with KWOK nodes, installs the CRD,
#                       runs the operator as a local process, applies examples/books.yaml in
#                       namespace `books`, waits for Ready and shows the stack (pods are simulated).
#   try.sh --real-node  the same on a real node that runs the containers (up.sh --real-node,
#                       images.sh): the operator runs as a pod from deploy/install.yaml, the books
#                       app really answers, and the URLs to curl are printed at the end.
#
# Everything keeps running afterwards; down.sh stops it all (the local operator's PID is recorded
# with the control plane's).
#
# Env: TRY_NAMESPACE (default books), TRY_METRICS_ADDRESS (default 127.0.0.1:18080, KWOK only),
# and those of up.sh. Uses CARGO_TARGET_DIR when set.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "${REPO_ROOT}"

real_node=0
case "${1:-}" in
  --real-node) real_node=1 ;;
  "") ;;
  *) echo "usage: $0 [--real-node]" >&2; exit 2 ;;
esac

NS="${TRY_NAMESPACE:-books}"
METRICS="${TRY_METRICS_ADDRESS:-127.0.0.1:18080}"
down_cmd="tests/cluster/down.sh"
[[ -z "${APPSTACK_CLUSTER_DIR:-}" ]] || down_cmd="APPSTACK_CLUSTER_DIR='${CLUSTER_DIR}' ${down_cmd}"

create_books() {
  kubectl create namespace "${NS}" --dry-run=client -o yaml | kubectl apply -f -
  kubectl label namespace "${NS}" pod-security.kubernetes.io/enforce=restricted --overwrite
  applied_at="$(date +%s%N)"
  kubectl apply -n "${NS}" -f examples/books.yaml
  kubectl wait -n "${NS}" --for=condition=Ready appstack/books --timeout=300s
  log "Ready $(( ($(date +%s%N) - applied_at) / 1000000 )) ms after kubectl apply"
  kubectl get -n "${NS}" stack
}

if ((real_node)); then
  start=${SECONDS}
  "${CLUSTER_SRC}/up.sh" --real-node >/dev/null
  "${CLUSTER_SRC}/images.sh"
  # shellcheck source=/dev/null
  source "${CLUSTER_DIR}/env"
  kubectl apply -f deploy/install.yaml
  kubectl -n appstack-system rollout status deploy/appstack-operator --timeout=180s
  create_books
  api="http://$(kubectl -n "${NS}" get service books-api -o jsonpath='{.spec.clusterIP}'):5000"
  web="http://$(kubectl -n "${NS}" get service books-frontend -o jsonpath='{.spec.clusterIP}'):8080"
  # The API answers: a first book, read back.
  curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' \
    -d '{"title": "The Mythical Man-Month", "author": "Frederick P. Brooks", "year": 1975}' \
    "${api}/api/books" >/dev/null
  echo "GET ${api}/api/books:"
  curl -fsS --max-time 10 "${api}/api/books"
  echo
  log "books app answering $((SECONDS - start))s after try.sh --real-node started"
  cat <<EOF

The books stack runs on a real node: Postgres, two API pods and two frontend pods are containers
on this machine, the operator is a pod in appstack-system. From this machine (the Service
addresses are routed into the node's network namespace, and nowhere else):
  curl ${api}/api/books
  curl -X POST -H 'Content-Type: application/json' -d '{"title": "Dune", "author": "Frank Herbert"}' ${api}/api/books
  curl ${web}/                  # the React page (its /api calls need an Ingress: see the kind section)
Or on 127.0.0.1:
  source ${CLUSTER_DIR}/env
  kubectl -n ${NS} port-forward service/books-api 5000 &   # then curl 127.0.0.1:5000/api/books
Look around:
  kubectl get -n ${NS} stack,all,pvc,secret
  kubectl logs -n appstack-system deploy/appstack-operator
Stop everything:  ${down_cmd}
EOF
  exit 0
fi

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
# One replica outside the cluster: no Lease to elect a leader on (no operator namespace).
start_process appstack-operator "${operator}" run --metrics-address "${METRICS}" --leader-election=false
wait_for "operator /readyz (http://${METRICS})" appstack-operator curl_ok "http://${METRICS}/readyz"

create_books

cat <<EOF

The books stack is Ready (KWOK plays the pods: objects and status are real, processes are not).
  source ${CLUSTER_DIR}/env
  kubectl get -n ${NS} stack,all,pvc,secret,ingress,hpa,pdb
  kubectl describe -n ${NS} appstack books
  curl -s http://${METRICS}/metrics | grep appstack_
Stop everything:  ${down_cmd}
Real containers instead of KWOK:  tests/cluster/try.sh --real-node
EOF
