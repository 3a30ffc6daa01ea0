#!/usr/bin/env bash
# End-to-end test of appstack-operator on a real cluster: install, create the books stack, wait for
# Ready, send traffic through the Ingress, delete the stack and check its data is kept.
#
#   tests/e2e/run.sh KUBECONFIG
#
# E2E_OPERATOR=external  the caller runs the operator as a local process: only the CRD is applied
# E2E_SKIP_TRAFFIC=1     skip the HTTP checks (a control plane whose pods never really run)
# E2E_KEEP=1             leave the books namespace in place at the end
# E2E_INGRESS_ADDR/PORT  where the Ingress controller listens (default 127.0.0.1:80, kind's port mapping)
# On failure the namespace is always left for inspection.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 KUBECONFIG" >&2; exit 2; }
export KUBECONFIG="$1"
cd "$(dirname "$0")/../.."

NS=books
STACK=books
HOST=books.example.com
ADDR="${E2E_INGRESS_ADDR:-127.0.0.1}"
PORT="${E2E_INGRESS_PORT:-80}"
BASE="http://$HOST:$PORT"

step() { printf '\n==> %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# On any failure, show the stack and what happened in the namespace before exiting.
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "--- e2e failed (exit $rc); state of namespace $NS:" >&2
    kubectl -n "$NS" get appstack "$STACK" -o yaml >&2 || true
    kubectl -n "$NS" get all,pvc,ingress,events >&2 || true
  fi
}
trap on_exit EXIT

# retry SECONDS CMD...: run CMD until it succeeds, at most SECONDS long; its stdout passes through.
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "gave up after retrying: $*" >&2; return 1; }
    sleep 3
  done
}

# curl through the Ingress by host name, without DNS; -f turns HTTP errors into failures.
ingress_curl() {
  curl -fsS --max-time 10 --resolve "$HOST:$PORT:$ADDR" "$@"
}

if [ "${E2E_OPERATOR:-}" = external ]; then
  step "1/6 apply the CRD (the operator runs outside the cluster)"
  kubectl apply -f crd/appstack.yaml
else
  step "1/6 install the operator"
  kubectl apply -f deploy/install.yaml
  kubectl -n appstack-system rollout status deploy/appstack-operator --timeout=180s
fi
kubectl wait --for=condition=Established crd/appstacks.appstack.dev --timeout=60s

step "2/6 create namespace $NS (restricted Pod Security) and the books stack"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite
kubectl apply -n "$NS" -f examples/books.yaml

step "3/6 wait for appstack/$STACK to be Ready"
kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=300s

if [ "${E2E_SKIP_TRAFFIC:-0}" = 1 ]; then
  step "4/6 traffic checks skipped (E2E_SKIP_TRAFFIC=1)"
else
  step "4/6 traffic through the Ingress at $BASE (resolved to $ADDR)"
  command -v jq >/dev/null || fail "jq is needed for the traffic checks"
  # The Ingress controller picks up new rules a little after the stack is Ready.
  retry 180 ingress_curl -o /dev/null "$BASE/api/books"

  title="e2e $(date +%s)"
  created=$(retry 60 ingress_curl -X POST -H 'Content-Type: application/json' \
    -d "{\"title\": \"$title\", \"author\": \"appstack e2e\", \"year\": 2024}" "$BASE/api/books")
  echo "created: $created"
  id=$(jq -er .id <<<"$created") || fail "POST /api/books returned no id: $created"
  [ "$(jq -r .title <<<"$created")" = "$title" ] || fail "POST /api/books echoed a different title: $created"

  fetched=$(retry 30 ingress_curl "$BASE/api/books/$id")
  [ "$(jq -S . <<<"$fetched")" = "$(jq -S . <<<"$created")" ] || fail "GET /api/books/$id = $fetched, want $created"
  jq -e --argjson id "$id" 'any(.[]; .id == $id)' >/dev/null <<<"$(ingress_curl "$BASE/api/books")" \
    || fail "book $id missing from GET /api/books"

  page=$(retry 60 ingress_curl "$BASE/")
  grep -q '<div id="root">' <<<"$page" || fail "GET / is not the React page: $page"
  echo "API round trip and frontend page OK"
fi

step "5/6 delete the stack; the claim and credentials must stay (retainOnDelete defaults to true)"
kubectl -n "$NS" delete appstack "$STACK" --wait --timeout=120s
for obj in pvc/books-db-data secret/books-db-credentials; do
  owners=$(kubectl -n "$NS" get "$obj" -o jsonpath='{.metadata.ownerReferences}') || fail "$obj was deleted with the stack"
  [ -z "$owners" ] || fail "$obj still has ownerReferences, garbage collection would delete it: $owners"
  deleting=$(kubectl -n "$NS" get "$obj" -o jsonpath='{.metadata.deletionTimestamp}')
  [ -z "$deleting" ] || fail "$obj is being deleted"
  echo "$obj kept, no owner"
done

if [ "${E2E_KEEP:-0}" = 1 ]; then
  step "6/6 namespace $NS kept (E2E_KEEP=1)"
else
  step "6/6 delete namespace $NS"
  kubectl delete namespace "$NS" --wait --timeout=180s
fi
step "e2e passed"
