#!/usr/bin/env bash
# Real-pod tests: what KWOK cannot show, on the real node of `tests/cluster/up.sh --real-node`
# with the images of tests/cluster/images.sh. The operator runs as a pod (deploy/install.yaml);
# one stack, `shop` in namespace `realpods` (restricted Pod Security), serves all four tests:
#
#   1. the database pod is Ready only when Postgres accepts connections: from its creation on,
#      Ready is never seen without a working connection, and a Postgres that stops answering
#      (its postmaster frozen with SIGSTOP) takes the pod out of Ready until it answers again;
#   2. deleting the database pod loses no rows;
#   3. a rolling update of the API to another image loses no request (a bounded loop of
#      requests to the API's Service during the rollout, 0 errors);
#   4. restricted Pod Security is enforced on every pod of the stack and on the operator: the
#      apiserver finds no violation, and the kernel shows each container process as non-root,
#      without capabilities, with no_new_privs and a seccomp filter.
#
#   tests/real-node/run.sh          (APPSTACK_CLUSTER_DIR: which real node; default target/cluster)
#
# Traffic goes from this machine to the cluster's pod and Service addresses only (routed into
# the node's network namespace), in bounded loops with timeouts. Ends with "N passed, N failed".
# REAL_NODE_KEEP=1 keeps the namespace.
set -euo pipefail

# shellcheck source=../cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"
# shellcheck source=../cluster/node.sh
source "${CLUSTER_SRC}/node.sh"
cd "${REPO_ROOT}"

[[ -f "${NODE_ENV}" ]] || { echo "no real node in ${CLUSTER_DIR}: run tests/cluster/up.sh --real-node" >&2; exit 1; }
# shellcheck source=/dev/null
source "${NODE_ENV}"
image_names
export KUBECONFIG="${CLUSTER_DIR}/kubeconfig"
KUBECTL="${BIN_DIR}/kubectl"
k() { "${KUBECTL}" "$@"; }
CTR=(ctr --address "${CONTAINERD_SOCK}" -n k8s.io)

NS=realpods
STACK=shop
say() { printf '\n==> %s  %s\n' "$(date +%H:%M:%S)" "$*"; }
note() { printf '    %s\n' "$*"; }
FAILED=()
PASSED=()
fail() { printf 'FAIL: %s\n' "$*" >&2; return 1; }

for tool in psql jq curl; do
  command -v "${tool}" >/dev/null && continue
  log "installing postgresql-client, jq, curl (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client jq curl >/dev/null
  break
done

# ------------------------------------------------------------------------ helpers
# pods_of <component>: "name uid image deleting?" of the stack's pods of that component.
pods_of() {
  k -n "${NS}" get pods -l "app.kubernetes.io/instance=${STACK},app.kubernetes.io/component=$1" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.uid}{" "}{.spec.containers[0].image}{" "}{.metadata.deletionTimestamp}{"\n"}{end}' 2>/dev/null
}
db_pod() { pods_of database | awk 'NF == 3 { print $1; exit }'; } # the one not being deleted
pod_field() { k -n "${NS}" get pod "$1" -o jsonpath="$2" 2>/dev/null; }
pod_ready() { [[ "$(pod_field "$1" '{.status.conditions[?(@.type=="Ready")].status}')" == True ]]; }
pod_not_ready() { ! pod_ready "$1"; }
secret_value() { k -n "${NS}" get secret "${STACK}-db-credentials" -o jsonpath="{.data.$1}" | base64 -d; }
svc_ip() { k -n "${NS}" get service "$1" -o jsonpath='{.spec.clusterIP}'; }

# psql_at <host> <sql>: one query with the stack's credentials, 2 s to connect.
psql_at() {
  PGPASSWORD="$(secret_value password)" PGCONNECT_TIMEOUT=2 psql -X -q -t -A -v ON_ERROR_STOP=1 \
    -h "$1" -p 5432 -U "$(secret_value username)" -d "$(secret_value database)" -c "$2" 2>/dev/null
}

# Host PID of a container: pod status → container ID → containerd task.
container_pid() { # <namespace> <pod> [container index]
  local id
  id="$(k -n "$1" get pod "$2" -o jsonpath="{.status.containerStatuses[${3:-0}].containerID}")"
  id="${id#containerd://}"
  [[ -n "${id}" ]] || return 1
  "${CTR[@]}" tasks ls | awk -v id="${id}" '$1 == id { print $2 }'
}

# wait_until <seconds> <what> <command...>
wait_until() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || { fail "timed out after $1 s waiting for ${what}"; return 1; }
    sleep 0.5
  done
}

run_test() { # <name> <function>
  say "$1"
  if "$2"; then
    PASSED+=("$1")
    note "ok: $1"
  else
    FAILED+=("$1")
    note "FAILED: $1"
    k -n "${NS}" get appstack,pods,pvc -o wide 2>&1 | sed 's/^/    /' || true
  fi
}

# ------------------------------------------------------------------------ setup
say "setup: operator as a pod (deploy/install.yaml), namespace ${NS} (restricted)"
k apply -f deploy/install.yaml >/dev/null
k -n appstack-system rollout status deploy/appstack-operator --timeout=180s
k wait --for=condition=Established crd/appstacks.appstack.dev --timeout=60s >/dev/null
k delete namespace "${NS}" --ignore-not-found --wait --timeout=180s >/dev/null
k create namespace "${NS}" >/dev/null
k label namespace "${NS}" pod-security.kubernetes.io/enforce=restricted >/dev/null
wait_until 60 "the default ServiceAccount" k -n "${NS}" get serviceaccount default >/dev/null 2>&1

stack_yaml() { # <api image>
  cat <<EOF
apiVersion: appstack.dev/v1alpha1
kind: AppStack
metadata: {name: ${STACK}}
spec:
  api:
    image: $1
    replicas: 2
    migrations: {command: [flask, db, upgrade]}
  frontend: {image: ${WEB_IMAGE}, replicas: 1}
  database:
    image: ${DB_IMAGE}
    storage: {size: 1Gi}
    retainOnDelete: false
EOF
}

# ------------------------------------------------------------------------ 1
test_database_ready_means_accepting() {
  local pod="" ip ready accepted samples=0 not_ready_running=0 t0=${SECONDS} pid
  stack_yaml "${API_IMAGE}" | k -n "${NS}" apply -f - >/dev/null || return 1
  # From creation on: whenever the pod reports Ready, a query must succeed.
  while ((SECONDS - t0 < 240)); do
    pod="$(db_pod)"
    ip="$( [[ -z "${pod}" ]] || pod_field "${pod}" '{.status.podIP}')"
    if [[ -n "${ip}" ]]; then
      ready=0
      pod_ready "${pod}" && ready=1
      accepted=0
      [[ "$(psql_at "${ip}" 'SELECT 1')" == 1 ]] && accepted=1
      samples=$((samples + 1))
      if ((ready && !accepted)); then
        # Readiness is sampled before the query: only a Ready pod that still refuses is wrong.
        pod_ready "${pod}" && { fail "${pod} is Ready but Postgres at ${ip} refuses a query"; return 1; }
      fi
      ((ready || accepted)) || not_ready_running=$((not_ready_running + 1))
      ((ready && accepted)) && break
    fi
    sleep 0.5
  done
  pod_ready "${pod}" || { fail "database pod never became Ready"; return 1; }
  note "${pod} Ready after $((SECONDS - t0)) s; ${samples} samples, ${not_ready_running} before Postgres accepted (initdb), none Ready without a working connection"
  # Whether a sample lands in initdb's short window is luck; the freeze below is the proof that
  # readiness follows Postgres.

  # A Postgres that stops answering must take the pod out of Ready, and back in when it answers.
  pid="$(container_pid "${NS}" "${pod}")"
  [[ -n "${pid}" ]] || { fail "no containerd task for ${pod}"; return 1; }
  kill -STOP "${pid}"
  note "postmaster (host PID ${pid}) frozen with SIGSTOP"
  if ! wait_until 60 "${pod} to leave Ready" pod_not_ready "${pod}"; then
    kill -CONT "${pid}"
    return 1
  fi
  [[ "$(psql_at "${ip}" 'SELECT 1')" != 1 ]] || { kill -CONT "${pid}"; fail "query answered while frozen"; return 1; }
  note "not Ready while frozen, and the query times out"
  kill -CONT "${pid}"
  wait_until 60 "${pod} Ready again" pod_ready "${pod}" || return 1
  [[ "$(psql_at "${ip}" 'SELECT 1')" == 1 ]] || { fail "Ready again but the query fails"; return 1; }
  [[ "$(pod_field "${pod}" '{.status.containerStatuses[0].restartCount}')" == 0 ]] ||
    { fail "the container was restarted"; return 1; }
  note "SIGCONT: Ready again, query answered, no restart"
  k -n "${NS}" wait --for=condition=Ready "appstack/${STACK}" --timeout=180s >/dev/null
}

# ------------------------------------------------------------------------ 2
API=""
api_url() { API="http://$(svc_ip "${STACK}-api"):5000"; }
OLD_UID=""
new_db_pod_ready() {
  local pod
  pod="$(db_pod)"
  [[ -n "${pod}" && "$(pod_field "${pod}" '{.metadata.uid}')" != "${OLD_UID}" ]] && pod_ready "${pod}"
}
stack_ready() { k -n "${NS}" wait --for=condition=Ready "appstack/${STACK}" --timeout=240s >/dev/null; }
test_database_pod_delete_keeps_rows() {
  local i ids=() old new before after ip
  stack_ready || { fail "appstack/${STACK} not Ready"; return 1; }
  api_url
  for i in $(seq 1 20); do
    ids+=("$(curl -fsS --max-time 5 -H 'Content-Type: application/json' \
      -d "{\"title\": \"kept ${i}\", \"author\": \"real-node test\"}" "${API}/api/books" | jq -er .id)") ||
      { fail "POST ${API}/api/books"; return 1; }
  done
  before="$(psql_at "$(svc_ip "${STACK}-db")" 'SELECT count(*) FROM books')"
  [[ "${before}" -ge 20 ]] || { fail "only '${before}' rows after 20 inserts"; return 1; }
  old="$(db_pod)"
  OLD_UID="$(pod_field "${old}" '{.metadata.uid}')"
  note "${#ids[@]} books written through ${API}; ${before} rows; deleting pod ${old}"
  k -n "${NS}" delete pod "${old}" --wait --timeout=120s >/dev/null || return 1
  wait_until 180 "a new database pod Ready" new_db_pod_ready || return 1
  new="$(db_pod)"
  ip="$(pod_field "${new}" '{.status.podIP}')"
  after="$(psql_at "${ip}" 'SELECT count(*) FROM books')"
  [[ "${after}" == "${before}" ]] || { fail "rows before ${before}, after ${after}"; return 1; }
  for i in "${ids[@]}"; do
    curl -fsS --max-time 5 "${API}/api/books/${i}" >/dev/null || { fail "book ${i} lost"; return 1; }
  done
  note "new pod ${new} (${ip}): ${after} rows, every book readable through the API"
}

# ------------------------------------------------------------------------ 3
api_template_image() { k -n "${NS}" get deploy "${STACK}-api" -o jsonpath='{.spec.template.spec.containers[0].image}'; }
api_updated() { [[ "$(api_template_image)" == "${API_IMAGE_NEXT}" ]]; }
old_api_pods_gone() { ! pods_of api | awk '{ print $3 }' | grep -vqx "${API_IMAGE_NEXT}"; }
test_rolling_update_loses_no_request() {
  local id stop="${CLUSTER_DIR}/rollout.stop" out="${CLUSTER_DIR}/rollout.requests" loop images
  stack_ready || { fail "appstack/${STACK} not Ready"; return 1; }
  api_url
  id="$(curl -fsS --max-time 5 -H 'Content-Type: application/json' \
    -d '{"title": "read during the rollout", "author": "real-node test"}' "${API}/api/books" | jq -er .id)" ||
    { fail "POST ${API}/api/books"; return 1; }
  rm -f "${stop}"
  # The loop: one request every 50 ms, each with a 5 s timeout, for at most 300 s or 6000
  # requests; one line per request: the HTTP status (000 for a connection error).
  (
    for _ in $(seq 1 6000); do
      [[ -e "${stop}" ]] && break
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 "${API}/api/books/${id}" || true
      sleep 0.05
    done
  ) >"${out}" &
  loop=$!
  sleep 2
  note "requests to ${API}/api/books/${id} running; switching the API to ${API_IMAGE_NEXT}"
  # Old pods keep serving through their stop delay: go on until every one is gone.
  if ! k -n "${NS}" patch appstack "${STACK}" --type merge \
    -p "{\"spec\":{\"api\":{\"image\":\"${API_IMAGE_NEXT}\"}}}" >/dev/null ||
    ! wait_until 60 "the Deployment to get the new image" api_updated ||
    ! k -n "${NS}" rollout status "deploy/${STACK}-api" --timeout=240s >/dev/null ||
    ! wait_until 120 "the old API pods to be gone" old_api_pods_gone; then
    touch "${stop}"
    wait "${loop}"
    return 1
  fi
  sleep 3
  touch "${stop}"
  wait "${loop}"
  local total errors
  total="$(wc -l <"${out}")"
  errors="$(grep -cvx 200 "${out}" || true)"
  images="$(k -n "${NS}" get pods -l "app.kubernetes.io/instance=${STACK},app.kubernetes.io/component=api" \
    -o jsonpath='{range .items[*]}{.status.containerStatuses[0].image}{" "}{end}')"
  note "${total} requests during the rollout, ${errors} errors ($(sort "${out}" | uniq -c | tr -s ' ' | tr '\n' ';')); API pods now run: ${images}"
  ((total >= 100)) || { fail "only ${total} requests were sent"; return 1; }
  ((errors == 0)) || { fail "${errors} requests failed during the rolling update"; return 1; }
  [[ "${images}" != *"${API_IMAGE} "* ]] || { fail "pods still run ${API_IMAGE}"; return 1; }
}

# ------------------------------------------------------------------------ 4
# expected uid per component (the images' users; Postgres as the operator sets it)
test_restricted_pod_security() {
  local ns pod status uid line want checked=0 warn
  for ns in "${NS}" appstack-system; do
    [[ "$(k get namespace "${ns}" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" == restricted ]] ||
      { fail "namespace ${ns} does not enforce restricted"; return 1; }
    # The apiserver checks every existing pod against the level when the label is (re)applied.
    warn="$(k label --dry-run=server --overwrite namespace "${ns}" pod-security.kubernetes.io/enforce=restricted 2>&1 >/dev/null)"
    [[ "${warn}" != *violate* ]] || { fail "pods in ${ns} violate restricted: ${warn}"; return 1; }
  done
  if k -n "${NS}" run privileged --image="${API_IMAGE}" --dry-run=server \
    --overrides='{"spec":{"containers":[{"name":"privileged","image":"'"${API_IMAGE}"'","securityContext":{"privileged":true}}]}}' >/dev/null 2>&1; then
    fail "a privileged pod was admitted in ${NS}"
    return 1
  fi
  note "namespaces ${NS} and appstack-system enforce restricted; no existing pod violates it; a privileged pod is refused"
  while read -r ns pod want; do
    status="/proc/$(container_pid "${ns}" "${pod}")/status"
    [[ -r "${status}" ]] || { fail "no process for ${ns}/${pod}"; return 1; }
    uid="$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "${status}")"
    line="$(grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs|Seccomp):' "${status}" | tr -s '\t ' ' ' | tr '\n' ' ')"
    [[ "${uid}" == "${want} ${want} ${want} ${want}" ]] || { fail "${ns}/${pod} runs as uid ${uid}, want ${want}"; return 1; }
    [[ "${line}" == *"CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 "* ]] ||
      { fail "${ns}/${pod} has capabilities: ${line}"; return 1; }
    [[ "${line}" == *"NoNewPrivs: 1 Seccomp: 2 "* ]] || { fail "${ns}/${pod}: ${line}"; return 1; }
    note "${ns}/${pod}: uid ${want}, no capabilities, no_new_privs, seccomp filter"
    checked=$((checked + 1))
  done < <(
    # The tiers' running pods (finished Job pods have no process left to look at).
    k -n "${NS}" get pods --field-selector=status.phase=Running \
      -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.labels.app\.kubernetes\.io/component}{"\n"}{end}' |
      awk -v ns="${NS}" '$2 == "database" { print ns, $1, 999 } $2 == "api" { print ns, $1, 10001 } $2 == "frontend" { print ns, $1, 101 }'
    k -n appstack-system get pods -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' |
      awk '{ print "appstack-system", $1, 65532 }'
  )
  ((checked >= 5)) || { fail "only ${checked} pods checked"; return 1; }
}

run_test "database pod Ready only when Postgres accepts connections" test_database_ready_means_accepting
run_test "deleting the database pod loses no rows" test_database_pod_delete_keeps_rows
run_test "rolling update of the API image loses no request" test_rolling_update_loses_no_request
run_test "restricted Pod Security on every pod of the stack and on the operator" test_restricted_pod_security

if [[ "${REAL_NODE_KEEP:-0}" != 1 && ${#FAILED[@]} -eq 0 ]]; then
  k delete namespace "${NS}" --wait --timeout=180s >/dev/null
fi
echo
for t in "${FAILED[@]}"; do echo "failed: ${t}"; done
echo "real-node: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
((${#FAILED[@]} == 0))
