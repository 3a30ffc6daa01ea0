#!/usr/bin/env bash
# End-to-end test of appstack-operator on a real cluster: install, create the books stack (its
# migration Job creates the tables), wait for Ready, send traffic, roll out bad image tags (every
# request answered, Degraded within 60 s; the frontend and the API rolled back, the API held by
# its migration Job when it has one, the database by its image check) and a failing migration (the old version answers,
# MigrationFailed), delete the stack and check its data is kept, re-create it and check that it
# finds its password and its data again.
#
#   tests/e2e/run.sh KUBECONFIG
#
# Traffic goes through the Ingress when the cluster has an Ingress controller for the stack's
# class (kind with ingress-nginx, as in .github/workflows/e2e.yml), and otherwise straight to the
# Services through `kubectl port-forward` on 127.0.0.1 (the local real node: up.sh --real-node).
#
# E2E_OPERATOR=external  the caller runs the operator as a local process: only the CRD is applied
# E2E_SKIP_TRAFFIC=1     skip the HTTP checks (a control plane whose pods never really run)
# E2E_TRAFFIC=ingress|port-forward   force how traffic reaches the stack
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

step() { printf '\n==> %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

FORWARDS=()     # PIDs of kubectl port-forward
FORWARD_LOGS=$(mktemp -d)
stop_forwards() {
  local pid
  for pid in "${FORWARDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${FORWARDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  FORWARDS=()
}

# On any failure, show the stack and what happened in the namespace before exiting.
on_exit() {
  local rc=$?
  stop_forwards
  [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
  rm -rf "$FORWARD_LOGS" "${LOAD_LOG:-}"
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

# How traffic reaches the stack: through the Ingress if a controller serves the stack's class.
if [ "${E2E_SKIP_TRAFFIC:-0}" = 1 ]; then
  TRAFFIC=skip
elif [ -n "${E2E_TRAFFIC:-}" ]; then
  TRAFFIC="$E2E_TRAFFIC"
elif kubectl get ingressclass nginx >/dev/null 2>&1; then
  TRAFFIC=ingress
else
  TRAFFIC=port-forward
fi
case "$TRAFFIC" in ingress | port-forward | skip) ;; *) fail "E2E_TRAFFIC must be ingress or port-forward" ;; esac

# forward SERVICE PORT: `kubectl port-forward` to a free port on 127.0.0.1, put in FORWARD_PORT.
forward() {
  local log="$FORWARD_LOGS/$1.log" pid
  FORWARD_PORT=""
  kubectl -n "$NS" port-forward --address 127.0.0.1 "service/$1" ":$2" >"$log" 2>&1 &
  pid=$!
  FORWARDS+=("$pid")
  for _ in $(seq 100); do
    FORWARD_PORT=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -n1)
    [ -z "$FORWARD_PORT" ] || return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "kubectl port-forward service/$1: $(cat "$log")"
}

# open_traffic: sets API_BASE and WEB_BASE (where the API's /api/books and the page are).
open_traffic() {
  if [ "$TRAFFIC" = ingress ]; then
    API_BASE="http://$HOST:$PORT"
    WEB_BASE="http://$HOST:$PORT"
  else
    stop_forwards
    forward "$STACK-api" 5000
    API_BASE="http://127.0.0.1:$FORWARD_PORT"
    forward "$STACK-frontend" 8080
    WEB_BASE="http://127.0.0.1:$FORWARD_PORT"
  fi
}

# curl through the Ingress by host name, without DNS (or straight to a forwarded port);
# -f turns HTTP errors into failures.
app_curl() {
  curl -fsS --max-time 10 --resolve "$HOST:$PORT:$ADDR" "$@"
}

# set_spec JSON: merge JSON into the stack's spec, then wait for the operator to see it.
set_spec() {
  kubectl -n "$NS" patch appstack "$STACK" --type=merge -p "{\"spec\": $1}" >/dev/null
  local generation
  generation=$(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.metadata.generation}')
  kubectl -n "$NS" wait --for=jsonpath='{.status.observedGeneration}'="$generation" \
    "appstack/$STACK" --timeout=60s >/dev/null
}

# image_of KIND NAME: the first container's image in a workload's pod template.
image_of() {
  kubectl -n "$NS" get "$1" "$2" -o jsonpath='{.spec.template.spec.containers[0].image}'
}

# expect_rolled_back CONDITION DEPLOYMENT GOOD_IMAGE: the stack Degraded within 60 s, then the
# tier's condition says RolledBack and the Deployment is back on GOOD_IMAGE and rolled out.
expect_rolled_back() {
  local t0=$SECONDS
  kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Degraded "appstack/$STACK" --timeout=60s
  echo "$2: Degraded $((SECONDS - t0)) s after the change: $(ready_message)"
  kubectl -n "$NS" wait --for=jsonpath="{.status.conditions[?(@.type==\"$1\")].reason}"=RolledBack \
    "appstack/$STACK" --timeout=60s
  kubectl -n "$NS" rollout status "deploy/$2" --timeout=120s
  [ "$(image_of deploy "$2")" = "$3" ] || fail "$2 is not back on $3"
  echo "$2 rolled back to $3"
}

ready_message() {
  kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.status.conditions[?(@.type=="Ready")].message}'
}

# start_load URL: GET URL every 0.2 s in the background, counting failures; stop_load fails the
# test if any request failed.
LOAD_PID=""
LOAD_LOG=$(mktemp)
start_load() {
  : >"$LOAD_LOG"
  (
    while :; do
      if app_curl -o /dev/null "$1" 2>/dev/null; then echo ok; else echo FAILED; fi
      sleep 0.2
    done >>"$LOAD_LOG"
  ) &
  LOAD_PID=$!
}
stop_load() {
  [ -z "$LOAD_PID" ] || { kill "$LOAD_PID" 2>/dev/null || true; wait "$LOAD_PID" 2>/dev/null || true; }
  LOAD_PID=""
  local ok failed
  ok=$(grep -c '^ok$' "$LOAD_LOG" || true)
  failed=$(grep -c '^FAILED$' "$LOAD_LOG" || true)
  echo "requests during the change: $ok answered, $failed failed"
  [ "$failed" -eq 0 ] || fail "$failed requests failed while the old version should have answered"
  [ "$ok" -gt 0 ] || fail "no request was answered"
}

if [ "${E2E_OPERATOR:-}" = external ]; then
  step "1/9 apply the CRD (the operator runs outside the cluster)"
  kubectl apply -f crd/appstack.yaml
else
  step "1/9 install the operator"
  kubectl apply -f deploy/install.yaml
  kubectl -n appstack-system rollout status deploy/appstack-operator --timeout=180s
fi
kubectl wait --for=condition=Established crd/appstacks.appstack.dev --timeout=60s

step "2/9 create namespace $NS (restricted Pod Security) and the books stack"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite
kubectl apply -n "$NS" -f examples/books.yaml

step "3/9 wait for appstack/$STACK to be Ready"
kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=300s

id=""
if [ "$TRAFFIC" = skip ]; then
  step "4/9 traffic checks skipped (E2E_SKIP_TRAFFIC=1)"
else
  command -v jq >/dev/null || fail "jq is needed for the traffic checks"
  open_traffic
  step "4/9 traffic ($TRAFFIC): API at $API_BASE, frontend at $WEB_BASE"
  # The Ingress controller picks up new rules a little after the stack is Ready.
  retry 180 app_curl -o /dev/null "$API_BASE/api/books"

  title="e2e $(date +%s)"
  created=$(retry 60 app_curl -X POST -H 'Content-Type: application/json' \
    -d "{\"title\": \"$title\", \"author\": \"appstack e2e\", \"year\": 2024}" "$API_BASE/api/books")
  echo "created: $created"
  id=$(jq -er .id <<<"$created") || fail "POST /api/books returned no id: $created"
  [ "$(jq -r .title <<<"$created")" = "$title" ] || fail "POST /api/books echoed a different title: $created"

  fetched=$(retry 30 app_curl "$API_BASE/api/books/$id")
  [ "$(jq -S . <<<"$fetched")" = "$(jq -S . <<<"$created")" ] || fail "GET /api/books/$id = $fetched, want $created"
  jq -e --argjson id "$id" 'any(.[]; .id == $id)' >/dev/null <<<"$(app_curl "$API_BASE/api/books")" \
    || fail "book $id missing from GET /api/books"

  page=$(retry 60 app_curl "$WEB_BASE/")
  grep -q '<div id="root">' <<<"$page" || fail "GET / is not the React page: $page"
  echo "API round trip and frontend page OK"

  api_image=$(image_of deploy "$STACK-api")
  migrations=$(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.spec.api.migrations.command}')

  web_image=$(image_of deploy "$STACK-frontend")
  db_image=$(image_of statefulset "$STACK-db")

  step "5/9 bad image tags: every request answered, Degraded within 60 s; web tiers rolled back, migration and database checks hold"
  start_load "$WEB_BASE/"
  set_spec "{\"frontend\": {\"image\": \"${web_image%:*}:no-such-tag\"}}"
  expect_rolled_back FrontendReady "$STACK-frontend" "$web_image"
  stop_load
  set_spec "{\"frontend\": {\"image\": \"$web_image\"}}"
  kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=120s

  # Without migrations a bad API image reaches the Deployment, and is rolled back.
  start_load "$API_BASE/api/books/$id"
  set_spec "{\"api\": {\"image\": \"${api_image%:*}:no-such-tag\", \"migrations\": null}}"
  expect_rolled_back ApiReady "$STACK-api" "$api_image"
  [ "$(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.status.components.api.failedImage}')" = "${api_image%:*}:no-such-tag" ] \
    || fail "status.components.api.failedImage does not name the bad image"
  stop_load
  set_spec "{\"api\": {\"image\": \"$api_image\", \"migrations\": {\"command\": $migrations}}}"
  kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=120s

  # With api.migrations the bad API image is caught by its migration Job: the Deployment never
  # moves, nothing needs rolling back.
  start_load "$API_BASE/api/books/$id"
  set_spec "{\"api\": {\"image\": \"${api_image%:*}:no-such-tag\"}}"
  t0=$SECONDS
  kubectl -n "$NS" wait --for=jsonpath='{.status.conditions[?(@.type=="ApiReady")].reason}'=MigrationFailed \
    "appstack/$STACK" --timeout=60s
  echo "api: MigrationFailed $((SECONDS - t0)) s after the change: $(ready_message)"
  [ "$(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.status.phase}')" = Degraded ] || fail "not Degraded"
  [ "$(image_of deploy "$STACK-api")" = "$api_image" ] \
    || fail "the API Deployment moved to an image that cannot be pulled"
  stop_load
  set_spec "{\"api\": {\"image\": \"$api_image\"}}"
  kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=120s

  # A database image must prove it starts before the database moves to it.
  start_load "$API_BASE/api/books/$id"
  set_spec "{\"database\": {\"image\": \"${db_image%:*}:no-such-tag\"}}"
  kubectl -n "$NS" wait --for=jsonpath='{.status.conditions[?(@.type=="DatabaseReady")].reason}'=DatabaseImageUnusable \
    "appstack/$STACK" --timeout=60s
  [ "$(image_of statefulset "$STACK-db")" = "$db_image" ] \
    || fail "the database moved to an image that cannot start"
  stop_load
  echo "database kept on $db_image: $(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.status.conditions[?(@.type=="DatabaseReady")].message}')"
  set_spec "{\"database\": {\"image\": \"$db_image\"}}"
  kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=120s

  step "6/9 a failing migration: the old version keeps answering, MigrationFailed"
  start_load "$API_BASE/api/books/$id"
  set_spec "{\"api\": {\"image\": \"${api_image%:*}:0.1.1\", \"migrations\": {\"command\": [\"sh\", \"-c\", \"echo 'e2e: this migration fails on purpose' >&2; exit 1\"], \"backoffLimit\": 0}}}"
  kubectl -n "$NS" wait --for=jsonpath='{.status.conditions[?(@.type=="ApiReady")].reason}'=MigrationFailed \
    "appstack/$STACK" --timeout=120s
  [ "$(kubectl -n "$NS" get appstack "$STACK" -o jsonpath='{.status.phase}')" = Degraded ] || fail "not Degraded"
  ready_message | grep -q 'this migration fails on purpose' || fail "the status does not quote the migration's output: $(ready_message)"
  [ "$(image_of deploy "$STACK-api")" = "$api_image" ] \
    || fail "the API Deployment moved although its migration failed"
  stop_load
  ready_message; echo

  step "   back to the running image and the real migration: Ready again"
  set_spec "{\"api\": {\"image\": \"$api_image\", \"migrations\": {\"command\": $migrations, \"backoffLimit\": 1}}}"
  kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=180s
  open_traffic
  retry 60 app_curl -o /dev/null "$API_BASE/api/books/$id"
  stop_forwards
fi

step "7/9 delete the stack; the claim and credentials must stay (retainOnDelete defaults to true)"
password=$(kubectl -n "$NS" get secret "$STACK-db-credentials" -o jsonpath='{.data.password}')
claim_uid=$(kubectl -n "$NS" get pvc "$STACK-db-data" -o jsonpath='{.metadata.uid}')
kubectl -n "$NS" delete appstack "$STACK" --wait --timeout=120s
for obj in pvc/books-db-data secret/books-db-credentials; do
  owners=$(kubectl -n "$NS" get "$obj" -o jsonpath='{.metadata.ownerReferences}') || fail "$obj was deleted with the stack"
  [ -z "$owners" ] || fail "$obj still has ownerReferences, garbage collection would delete it: $owners"
  deleting=$(kubectl -n "$NS" get "$obj" -o jsonpath='{.metadata.deletionTimestamp}')
  [ -z "$deleting" ] || fail "$obj is being deleted"
  echo "$obj kept, no owner"
done

step "8/9 re-create the stack: same claim, same password$([ -z "$id" ] || echo ", book $id still there")"
kubectl apply -n "$NS" -f examples/books.yaml
kubectl -n "$NS" wait --for=condition=Ready "appstack/$STACK" --timeout=300s
[ "$(kubectl -n "$NS" get secret "$STACK-db-credentials" -o jsonpath='{.data.password}')" = "$password" ] \
  || fail "the re-created stack has a different database password"
[ "$(kubectl -n "$NS" get pvc "$STACK-db-data" -o jsonpath='{.metadata.uid}')" = "$claim_uid" ] \
  || fail "the re-created stack has a new data claim"
echo "same claim ($claim_uid) and password"
if [ -n "$id" ]; then
  open_traffic
  again=$(retry 180 app_curl "$API_BASE/api/books/$id")
  [ "$(jq -S . <<<"$again")" = "$(jq -S . <<<"$created")" ] || fail "after re-creation GET /api/books/$id = $again, want $created"
  echo "book $id read back after re-creation: $again"
  stop_forwards
fi

if [ "${E2E_KEEP:-0}" = 1 ]; then
  step "9/9 namespace $NS kept (E2E_KEEP=1)"
else
  step "9/9 delete namespace $NS"
  kubectl delete namespace "$NS" --wait --timeout=180s
fi
step "e2e passed"
