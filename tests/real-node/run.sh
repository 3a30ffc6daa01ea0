#!/usr/bin/env bash
# Real-pod tests: what KWOK cannot show, on the real node of `tests/cluster/up.sh --real-node`
# with the images of tests/cluster/images.sh. The operator runs as a pod (deploy/install.yaml);
# one stack, `shop` in namespace `realpods` (restricted Pod Security), serves all six tests:
#
#   1. the database pod is Ready only when Postgres accepts connections: from its creation on,
#      Ready is never seen without a working connection, and a Postgres that stops answering
#      (its postmaster frozen with SIGSTOP) takes the pod out of Ready until it answers again;
#   2. deleting the database pod loses no rows;
#   3. a rolling update of the API to another image loses no request (a bounded loop of
#      requests to the API's Service during the rollout, 0 errors);
#   4. restricted Pod Security is enforced on every pod of the stack and on the operator: the
#      apiserver finds no violation, and the kernel shows each container process as non-root,
#      without capabilities, with no_new_privs and a seccomp filter;
#   5. a Postgres that answers but rejects connections for 70 s, longer than the liveness budget
#      (here a smart shutdown held by open sessions: pg_isready sees the same during crash
#      recovery or a shutdown checkpoint) leaves Ready but fails no liveness probe and is not
#      restarted; it is restarted once, after its own clean exit;
#   6. every container of the stack and the operator runs on a read-only root filesystem (the
#      kernel's mount table says so, a write to / fails), and each tier can write exactly where
#      its image must (the API and frontend /tmp, Postgres /var/run/postgresql and /tmp); the
#      migration and database-check Jobs ran to success on read-only roots;
#   7. `kubectl appstack psql` (target/release/kubectl-appstack, from `cargo build --release`)
#      runs psql in the database pod as the stack's user, with SQL from an argument or from
#      standard input, and the password is on no process's command line on this machine.
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
  local seconds="$1" what="$2"
  local deadline=$((SECONDS + seconds))
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || { fail "timed out after ${seconds} s waiting for ${what}"; return 1; }
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
  # First the stack's migration Job must be done: frozen under it, both its attempts fail and
  # the stack stops at MigrationFailed (seen on this node).
  k -n "${NS}" wait --for=condition=Ready "appstack/${STACK}" --timeout=180s >/dev/null ||
    { fail "appstack/${STACK} not Ready before the freeze"; return 1; }
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

# ------------------------------------------------------------------------ 5
# Sum of the counts of the pod's "Unhealthy" Events that say "<probe> probe failed". Not those that
# say "<probe> probe errored": the kubelet writes one when its exec probe meets a container that
# has just exited (a clean exit included), and throws that result away instead of counting it
# towards the failure threshold.
probe_failures() { # <pod> <Liveness|Readiness> [message substring]
  k -n "${NS}" get events --field-selector "involvedObject.name=$1,reason=Unhealthy" \
    -o jsonpath='{range .items[*]}{.count}{" "}{.message}{"\n"}{end}' 2>/dev/null |
    awk -v probe="$2 probe failed" -v text="${3:-}" 'index($0, probe) && index($0, text) { n += $1 } END { print n + 0 }'
}
container_restarts() { pod_field "$1" '{.status.containerStatuses[0].restartCount}'; }
session_running() { # <ip>: the pg_sleep session is connected
  [[ "$(psql_at "$1" "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(%'")" -ge 1 ]]
}
rejecting() { # <ip>: pg_isready gets an answer, and it is "rejecting connections" (exit 1)
  local code=0
  pg_isready -q -h "$1" -p 5432 -t 3 || code=$?
  ((code == 1))
}
restarted_and_ready() { # <pod> <restarts before>
  [[ "$(container_restarts "$1")" -gt "$2" ]] && pod_ready "$1"
}
# Longer than the database's liveness budget (6 x 10 s): a liveness probe that wanted accepted
# connections would have restarted Postgres within this window.
REJECTING_WINDOW=70
test_database_liveness_tolerates_rejecting() {
  local pod ip pid restarts liveness readiness session t0 exit_code
  stack_ready || { fail "appstack/${STACK} not Ready"; return 1; }
  pod="$(db_pod)"
  ip="$(pod_field "${pod}" '{.status.podIP}')"
  restarts="$(container_restarts "${pod}")"
  liveness="$(probe_failures "${pod}" Liveness)"
  readiness="$(probe_failures "${pod}" Readiness rejecting)"
  # A smart shutdown (SIGTERM) waits for every session to end and rejects new connections
  # meanwhile; this session (and the API's pooled ones) holds it until a fast shutdown ends it.
  psql_at "${ip}" "SELECT pg_sleep(600)" >/dev/null &
  session=$!
  wait_until 10 "the session to be connected" session_running "${ip}" || { kill "${session}"; return 1; }
  pid="$(container_pid "${NS}" "${pod}")"
  [[ -n "${pid}" ]] || { kill "${session}"; fail "no containerd task for ${pod}"; return 1; }
  kill -TERM "${pid}"
  t0=${SECONDS}
  note "postmaster (host PID ${pid}) in smart shutdown, held by open sessions"
  if ! wait_until 10 "Postgres to reject connections" rejecting "${ip}" ||
    ! wait_until 30 "${pod} to leave Ready" pod_not_ready "${pod}"; then
    kill -INT "${pid}"
    return 1
  fi
  note "pg_isready: rejecting connections; ${pod} not Ready after $((SECONDS - t0)) s"
  # Watch the whole window: no liveness failure, no restart.
  while ((SECONDS - t0 < REJECTING_WINDOW)); do
    if [[ "$(probe_failures "${pod}" Liveness)" != "${liveness}" || "$(container_restarts "${pod}")" != "${restarts}" ]]; then
      kill -INT "${pid}"
      fail "liveness failed or the container restarted $((SECONDS - t0)) s into the rejecting window"
      return 1
    fi
    rejecting "${ip}" || { kill -INT "${pid}"; fail "Postgres stopped rejecting before the window ended"; return 1; }
    sleep 2
  done
  [[ "$(probe_failures "${pod}" Readiness rejecting)" -gt "${readiness}" ]] ||
    { kill -INT "${pid}"; fail "no readiness failure recorded while Postgres rejected connections"; return 1; }
  note "rejecting for ${REJECTING_WINDOW} s: readiness failed, liveness never did, no restart"
  # A fast shutdown ends the sessions; the postmaster exits by itself and the kubelet starts it.
  kill -INT "${pid}"
  wait "${session}" || true
  wait_until 120 "${pod} restarted and Ready again" restarted_and_ready "${pod}" "${restarts}" || return 1
  [[ "$(container_restarts "${pod}")" == $((restarts + 1)) ]] ||
    { fail "restarted $(($(container_restarts "${pod}") - restarts)) times, want once (its own exit)"; return 1; }
  exit_code="$(pod_field "${pod}" '{.status.containerStatuses[0].lastState.terminated.exitCode}')"
  [[ "${exit_code}" == 0 ]] || { fail "the postmaster ended with ${exit_code}, not its own clean exit"; return 1; }
  [[ "$(probe_failures "${pod}" Liveness)" == "${liveness}" ]] || { fail "liveness failed during the restart"; return 1; }
  [[ "$(psql_at "${ip}" 'SELECT 1')" == 1 ]] || { fail "Ready again but the query fails"; return 1; }
  note "fast shutdown: clean exit (code 0), one restart, Ready and answering again"
}

# ------------------------------------------------------------------------ 6
# "<namespace> <pod> <writable paths, comma-separated, or - for none to try>" of every pod.
read_only_pods() {
  k -n "${NS}" get pods -l 'app.kubernetes.io/component in (api,frontend,database)' \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.labels.app\.kubernetes\.io/component}{"\n"}{end}' |
    awk -v ns="${NS}" '{ print ns, $1, ($2 == "database") ? "/var/run/postgresql,/tmp" : "/tmp" }'
  # distroless: no shell to try a write with; the mount table speaks for it.
  k -n appstack-system get pods -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' |
    awk '{ print "appstack-system", $1, "-" }'
}
test_read_only_root_filesystems() {
  local ns pod paths pid options out path checked=0
  stack_ready || { fail "appstack/${STACK} not Ready"; return 1; }
  while read -r ns pod paths; do
    [[ "$(k -n "${ns}" get pod "${pod}" -o jsonpath='{.spec.containers[0].securityContext.readOnlyRootFilesystem}')" == true ]] ||
      { fail "${ns}/${pod}: readOnlyRootFilesystem is not set"; return 1; }
    pid="$(container_pid "${ns}" "${pod}")"
    options="$(awk '$5 == "/" { print $6 }' "/proc/${pid}/mountinfo" | tail -n 1)"
    [[ "${options}" == ro,* || "${options}" == ro ]] ||
      { fail "${ns}/${pod}: / is mounted ${options:-?} in the container"; return 1; }
    if [[ "${paths}" != - ]]; then
      if out="$(k -n "${ns}" exec "${pod}" -- sh -c 'touch /appstack-write-probe' 2>&1)"; then
        fail "${ns}/${pod}: wrote to /"
        return 1
      fi
      [[ "${out}" == *"Read-only file system"* ]] || { fail "${ns}/${pod}: a write to / failed otherwise: ${out}"; return 1; }
      for path in ${paths//,/ }; do
        k -n "${ns}" exec "${pod}" -- sh -c "touch ${path}/appstack-write-probe && rm ${path}/appstack-write-probe" ||
          { fail "${ns}/${pod}: cannot write to ${path}"; return 1; }
      done
    fi
    note "${ns}/${pod}: / mounted ${options%%,*}$([[ "${paths}" == - ]] || echo ", a write to / fails (Read-only file system), ${paths} writable")"
    checked=$((checked + 1))
  done < <(read_only_pods)
  ((checked >= 5)) || { fail "only ${checked} pods checked"; return 1; }
  # The Jobs (the migrations, the database image check) have finished: every pod of theirs had a
  # read-only root, and each Job succeeded (a pod may have failed before a retry succeeded).
  local pods=0 job succeeded jobs=0
  while read -r pod; do
    [[ "$(k -n "${NS}" get pod "${pod}" -o jsonpath='{.spec.containers[0].securityContext.readOnlyRootFilesystem}')" == true ]] ||
      { fail "${NS}/${pod}: readOnlyRootFilesystem is not set"; return 1; }
    pods=$((pods + 1))
  done < <(k -n "${NS}" get pods -l 'app.kubernetes.io/component in (migrations,database-check)' \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
  while read -r job succeeded; do
    [[ "${succeeded}" -ge 1 ]] || { fail "${NS}/${job} did not succeed"; return 1; }
    jobs=$((jobs + 1))
  done < <(k -n "${NS}" get jobs -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.succeeded}{"\n"}{end}')
  ((jobs >= 2)) || { fail "only ${jobs} Jobs (migrations and a database check expected)"; return 1; }
  note "${jobs} Jobs (migrations, database check) succeeded; their ${pods} pods all had a read-only root"
}

# ------------------------------------------------------------------------ 7
PLUGIN="${CARGO_TARGET_DIR:-${REPO_ROOT}/target}/release/kubectl-appstack"
# appstack <args>: `kubectl appstack` with the plugin on PATH, as the README installs it.
appstack() { PATH="$(dirname "${PLUGIN}"):${PATH}" k appstack "$@"; }
# The processes on this machine (the containers' included) whose command line holds $1.
command_lines_with() {
  local f
  for f in /proc/[0-9]*/cmdline; do
    tr '\0' ' ' <"${f}" 2>/dev/null | grep -qF -- "$1" && echo "${f}"
  done
  return 0
}
test_kubectl_appstack_psql() {
  local out password session found running
  [[ -x "${PLUGIN}" ]] || { fail "no ${PLUGIN}: cargo build --release first"; return 1; }
  stack_ready || { fail "appstack/${STACK} not Ready"; return 1; }
  out="$(appstack psql "${STACK}" -n "${NS}" -- -X -t -A \
    -c 'SELECT current_user, current_database()' </dev/null 2>&1)" ||
    { fail "kubectl appstack psql: ${out}"; return 1; }
  [[ "${out}" == "$(secret_value username)|$(secret_value database)" ]] ||
    { fail "psql answered '${out}'"; return 1; }
  out="$(echo 'SELECT 40 + 2;' | appstack psql "${STACK}" -n "${NS}" -- -X -t -A)" ||
    { fail "SQL on standard input: ${out}"; return 1; }
  [[ "${out}" == 42 ]] || { fail "SQL on standard input answered '${out}'"; return 1; }
  note "as $(secret_value username) on database $(secret_value database), SQL from -c and from standard input"
  # While a session runs, no command line holds the password (the shell in the container, psql,
  # kubectl, the plugin's exec), and the session's psql is there to look at.
  password="$(secret_value password)"
  # psql in the container, not the kubectl line that names it: its expanded arguments.
  in_pod="^psql --host 127.0.0.1 --username $(secret_value username) "
  echo 'SELECT pg_sleep(4);' | appstack psql "${STACK}" -n "${NS}" -- -X -q >/dev/null &
  session=$!
  wait_until 20 "the session's psql" pgrep -f -- "${in_pod}" >/dev/null ||
    { wait "${session}"; return 1; }
  found="$(command_lines_with "${password}")"
  running="$(pgrep -af -- "${in_pod}" | head -1 | cut -d' ' -f2-)"
  wait "${session}" || { fail "the session failed"; return 1; }
  [[ -z "${found}" ]] || { fail "the password is on the command line of ${found}"; return 1; }
  note "during a session psql runs as '${running}'; no command line holds the password"
}

run_test "database pod Ready only when Postgres accepts connections" test_database_ready_means_accepting
run_test "deleting the database pod loses no rows" test_database_pod_delete_keeps_rows
run_test "rolling update of the API image loses no request" test_rolling_update_loses_no_request
run_test "restricted Pod Security on every pod of the stack and on the operator" test_restricted_pod_security
run_test "database liveness tolerates a Postgres that rejects connections" test_database_liveness_tolerates_rejecting
run_test "read-only root filesystems, writable only where each image must write" test_read_only_root_filesystems
run_test "kubectl appstack psql: the stack's database, no password on a command line" test_kubectl_appstack_psql

if [[ "${REAL_NODE_KEEP:-0}" != 1 && ${#FAILED[@]} -eq 0 ]]; then
  k delete namespace "${NS}" --wait --timeout=180s >/dev/null
fi
echo
for t in "${FAILED[@]}"; do echo "failed: ${t}"; done
echo "real-node: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
((${#FAILED[@]} == 0))
