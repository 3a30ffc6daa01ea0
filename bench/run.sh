#!/usr/bin/env bash
# The benchmark: the operator beside the same objects applied directly (the `render` output, plus
# the Secret and claim the operator makes, through server-side apply), on the local control plane
# with KWOK nodes (tests/cluster/up.sh, started afresh here and stopped at the end). Operator and
# baseline runs alternate, so that drift of this machine cancels out of their ratios.
#
#   bench/run.sh                    1,000 stacks (BENCH_STACKS), one table, target/bench/results.json
#   BENCH_STACKS=50 bench/run.sh    the CI smoke: fails only if a no-op resync writes
#   BENCH_STACKS=10000 BENCH_BASELINE=0 bench/run.sh   the operator alone at 10,000 (memory)
#
# Scenarios and figures (README, "Benchmarks"):
#   one stack:  apply→Ready of one AppStack ÷ apply→Available of its objects; median of
#               BENCH_ONE_RUNS (10) alternating pairs;
#   N stacks:   N AppStacks applied at once by BENCH_CLIENTS (8) server-side apply clients, until
#               all are Ready ÷ the same for their objects until all are Available; stacks spread
#               over namespaces of BENCH_PER_NAMESPACE (100); what each side cost the API server
#               (its writes from every client, Events and AppStacks apart) and the operator's
#               reconciles, child and status writes and requests by verb meanwhile;
#   resync:     the operator restarted over the N unchanged stacks (every stack reconciled once):
#               mutating requests the API server counted (apiserver_request_total, the kinds the
#               operator writes), API requests per reconcile (the operator's
#               appstack_api_requests_total), no-op reconcile latency p50/p99;
#   memory:     operator RSS at 0 and N stacks (after the resync), per stack;
#   binary:     the stripped release binary.
# BENCH_KRO=1 adds kro (kubernetes-sigs/kro, built from its Go module by tests/tools/build.sh) as a
# third column: the same objects as a ResourceGraphDefinition, its instances ACTIVE.
# Env: BENCH_STACKS, BENCH_ONE_RUNS, BENCH_CLIENTS, BENCH_PER_NAMESPACE, BENCH_DB_IMAGE (see
# appstack() below), BENCH_PROFILE_SECONDS (a CPU profile of the API server over that many seconds of
# each side's N-stack phase, from 20 s after its apply starts: target/bench/apiserver-<side>.pprof,
# for `go tool pprof -top`), BENCH_KCM_QPS (200: the
# control plane's kube-controller-manager requests/s), BENCH_BIN (another
# operator binary instead of the release build), BENCH_METRICS_PORT, APPSTACK_CLUSTER_PORT and
# APPSTACK_CLUSTER_DIR (see tests/cluster/README.md), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
STACKS="${BENCH_STACKS:-1000}"
ONE_RUNS="${BENCH_ONE_RUNS:-10}"
CLIENTS="${BENCH_CLIENTS:-8}"
PER_NAMESPACE="${BENCH_PER_NAMESPACE:-100}"
CLUSTER_DIR="${APPSTACK_CLUSTER_DIR:-target/cluster}"
OUT=target/bench
WORK="${OUT}/work"
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/appstack-operator}"
METRICS_PORT="${BENCH_METRICS_PORT:-$((${APPSTACK_CLUSTER_PORT:-16443} + 5))}"
KRO_ON="${BENCH_KRO:-0}"
DB_IMAGE="${BENCH_DB_IMAGE:-appstack.invalid/postgres:17}"
# BENCH_BASELINE=0: the operator alone (its N stacks, resync and memory), for sizes such as
# 10,000 where the direct apply would double a long run.
BASELINE="${BENCH_BASELINE:-1}"
if ((!BASELINE)); then ONE_RUNS=0 KRO_ON=0; fi
# How long N stacks may take to come up: 30 minutes, or 0.5 s a stack beyond 3,600.
DEADLINE=$((STACKS > 3600 ? STACKS / 2 : 1800))
KRO_PORT=$((METRICS_PORT + 1))
started=${SECONDS}

log() { printf '==> %s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

rm -rf "${OUT}"
mkdir -p "${WORK}"

if [[ -z "${BENCH_BIN:-}" ]]; then
  log "release build"
  cargo build --release --locked --quiet --bin appstack-operator
fi
binary_bytes=$(stat -c %s "${BIN}")

# Every stack claims a volume, and volumes are never reused (Retain): one per stack and run.
pvs=$(((BASELINE ? 2 + KRO_ON : 1) * (ONE_RUNS + STACKS) + 20))
log "control plane (tests/cluster/up.sh, ${pvs} volumes)"
# kube-controller-manager at 200 requests/s instead of its default 20: at 20 it alone needs about
# 8 minutes to make the pods of 1,000 stacks, whoever applies them (both columns run on it).
APPSTACK_CLUSTER_PVS=${pvs} APPSTACK_KCM_QPS="${BENCH_KCM_QPS:-200}" bash tests/cluster/up.sh >&2
operator_pid=""
cleanup() {
  [[ -z "${operator_pid}" ]] || kill "${operator_pid}" 2>/dev/null || true
  [[ -z "${kro_pid}" ]] || kill "${kro_pid}" 2>/dev/null || true
  bash tests/cluster/down.sh >&2 || true
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "${CLUSTER_DIR}/env"

# Room for the pods: three per stack (API, frontend, database), 1,000 per extra node.
nodes=$(((3 * STACKS + 999) / 1000))
for ((n = 0; n < nodes; n++)); do
  cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-bench-${n}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/os: linux, kubernetes.io/arch: amd64, kubernetes.io/hostname: kwok-bench-${n}}
status:
  allocatable: &r {cpu: "1000", memory: 4Ti, ephemeral-storage: 10Ti, pods: "1000"}
  capacity: *r
EOF
done | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null

# The CRD and the operator's RBAC from deploy/install.yaml (not its Deployment: the operator runs
# here as a local process, under the install manifest's ServiceAccount by impersonation).
awk 'function flush() { if (doc !~ /\nkind: (Deployment|PodDisruptionBudget|NetworkPolicy)\n/) printf "%s", doc; doc = "" }
     /^---$/ { flush() } { doc = doc $0 "\n" } END { flush() }' deploy/install.yaml |
  kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd/appstacks.appstack.dev --timeout=60s >/dev/null
kubectl config view --raw --flatten -o json | python3 -c '
import json, sys
config = json.load(sys.stdin)
for user in config["users"]:
    user["user"]["as"] = "system:serviceaccount:appstack-system:appstack-operator"
    user["user"]["as-groups"] = ["system:serviceaccounts", "system:serviceaccounts:appstack-system", "system:authenticated"]
json.dump(config, sys.stdout)' >"${WORK}/operator.kubeconfig"

if ((KRO_ON)); then
  log "kro (tests/tools/build.sh kro)"
  KRO="$(bash tests/tools/build.sh kro)"
  kro_module="$(go env GOMODCACHE)/github.com/kubernetes-sigs/kro@$(sed -n 's/^KRO_VERSION=//p' tests/tools/build.sh)"
  kubectl apply --server-side -f "${kro_module}/helm/crds/" >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
fi
# kro, up and ready for BenchStacks: one warm-up instance ACTIVE.
warm_kro() {
  start_kro
  local deadline=$((SECONDS + 120))
  until kubectl get crd benchstacks.kro.run >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { tail -n 20 "${OUT}/kro.log" >&2; exit 1; }
    sleep 0.5
  done
  kubectl wait --for=condition=Established crd/benchstacks.kro.run --timeout=60s >/dev/null
  kubectl create namespace kro-warm >/dev/null
  kro warm kro-warm | kubectl apply --server-side --field-manager=bench -f - >/dev/null
  kubectl wait -n kro-warm --for=jsonpath='{.status.state}'=ACTIVE benchstack/warm --timeout=180s >/dev/null
  kubectl delete namespace kro-warm --wait=true --timeout=5m >/dev/null
}

# wait_ready <url> <log>: until <url> answers, for 2 minutes at most (then the log's tail, and exit).
wait_ready() {
  local deadline=$((SECONDS + 120))
  until curl -fsS "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { tail -n 20 "$2" >&2; exit 1; }
    sleep 0.2
  done
}
start_operator() {
  KUBECONFIG="${WORK}/operator.kubeconfig" RUST_LOG=warn "${BIN}" run --leader-election=false \
    --instance=bench --metrics-address="127.0.0.1:${METRICS_PORT}" >>"${OUT}/operator.log" 2>&1 &
  operator_pid=$!
  wait_ready "http://127.0.0.1:${METRICS_PORT}/readyz" "${OUT}/operator.log"
}
stop_operator() {
  kill "${operator_pid}"
  wait "${operator_pid}" || true
  operator_pid=""
}
kro_pid=""
start_kro() {
  "${KRO}" --kubeconfig="${KUBECONFIG}" --metrics-bind-address="127.0.0.1:${KRO_PORT}" \
    --health-probe-bind-address="127.0.0.1:$((KRO_PORT + 1))" --pprof-bind-address=0 \
    --dynamic-controller-concurrent-reconciles=4 >>"${OUT}/kro.log" 2>&1 &
  kro_pid=$!
  wait_ready "http://127.0.0.1:$((KRO_PORT + 1))/readyz" "${OUT}/kro.log"
}
stop_kro() {
  kill "${kro_pid}"
  wait "${kro_pid}" || true
  kro_pid=""
}
scrape() { curl -fsS "http://127.0.0.1:${METRICS_PORT}/metrics" >"$1"; }
rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/${operator_pid}/status"; }
# The sum of a metric's series in a scrape (0 when absent).
metric_sum() { awk -v name="$2" '$1 ~ "^"name"([{]|$)" { s += $NF } END { printf "%d", s }' "$1"; }
# Every request the API server has counted, from every client (the controller manager, the
# scheduler and KWOK included), by verb and resource: lines "<VERB>/<resource> <count>" in a file.
apiserver_requests() { # <file>
  kubectl get --raw /metrics | awk '
    /^apiserver_request_total[{]/ && match($0, /verb="[^"]*"/) {
      v = substr($0, RSTART + 6, RLENGTH - 7)
      if (match($0, /resource="[^"]*"/)) n[v "/" substr($0, RSTART + 10, RLENGTH - 11)] += $NF }
    END { for (k in n) print k, n[k] }' >"$1"
}
MUTATING='(APPLY|PATCH|POST|PUT|DELETE|DELETECOLLECTION)'
# The kinds the operator reads and writes.
OPERATOR_KINDS='(appstacks|deployments|statefulsets|services|secrets|persistentvolumeclaims|ingresses|horizontalpodautoscalers|poddisruptionbudgets|jobs|networkpolicies)'
# CPU seconds each process of the test cluster and the operator have used so far: lines
# "<process> <seconds>" (the apply clients are short-lived kubectl processes, not counted).
CPU_PROCESSES=(kube-apiserver etcd kube-controller kube-scheduler kwok appstack-operat)
cpu_seconds() { # <file>
  local hz pid
  hz=$(getconf CLK_TCK)
  for pid in $(pgrep -x "$(IFS='|'; echo "${CPU_PROCESSES[*]}")"); do
    # Fields 14 and 15 of /proc/<pid>/stat: user and system time in clock ticks.
    awk -v hz="${hz}" '{ gsub(/[()]/, "", $2); printf "%s %.2f\n", $2, ($14 + $15) / hz }' "/proc/${pid}/stat"
  done | awk '{ s[$1] += $2 } END { for (p in s) print p, s[p] }' >"$1"
}
# A JSON object of the CPU seconds each process used between two cpu_seconds files.
cpu_between() { # <before> <after>
  differences "$1" "$2" | awk '{ printf "%s\"%s\": %.1f", sep, $1, $2; sep = ", " } END { print "" }' |
    sed 's/^/{/; s/$/}/'
}
# "<key> <after - before>" for each line "<key> ... <value>" of a later file (metric scrapes and
# apiserver_requests files alike; a key absent before counts from 0).
differences() { # <before> <after>
  awk 'FILENAME == ARGV[1] { b[$1] = $NF; next } $1 !~ /^#/ { print $1, $NF - b[$1] }' "$1" "$2"
}
# The sum of the differences whose key matches a regular expression (all of them without one).
grown_between() { # <before> <after> [regex]
  differences "$1" "$2" | awk -v re="${3:-.}" '$1 ~ re { s += $2 } END { printf "%d", s }'
}

# A quantile of reconcile_duration_seconds{outcome=success} between two scrapes, in ms
# (linear within a bucket, as Prometheus' histogram_quantile).
quantile() { # <q> <before> <after>
  python3 - "$@" <<'EOF'
import re, sys
q, files = float(sys.argv[1]), sys.argv[2:]
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'appstack_reconcile_duration_seconds_bucket\{(.*)\} (\S+)', line)
        if m and 'outcome="success"' in m.group(1):
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            out[float(le)] = out.get(float(le), 0) + float(m.group(2))
    return out
before, after = buckets(files[0]), buckets(files[1])
cum = sorted((le, after.get(le, 0) - before.get(le, 0)) for le in after)
total = cum[-1][1] if cum else 0
if total <= 0:
    print("n/a"); sys.exit()
rank, lower, below = q * total, 0.0, 0.0
for le, count in cum:
    if count >= rank:
        if le == float("inf"):
            print(f">{lower * 1000:.0f}"); sys.exit()
        print(f"{(lower + (le - lower) * (rank - below) / max(count - below, 1e-9)) * 1000:.0f}")
        sys.exit()
    lower, below = le, count
EOF
}

# One stack's AppStack (replicas 1: three pods a stack). Its database image is one whose check Job
# pod KWOK completes as a real Postgres 17 would, printing its version (tests/cluster/manifests/
# kwok.yaml): the operator records the major version on the claim, as on a real cluster, and then
# stops reading the check Job's pods. (A check pod that prints nothing, as KWOK makes of
# BENCH_DB_IMAGE=postgres:17, keeps the operator listing them at every reconcile, which no real
# Postgres image does.)
appstack() { # <name> <namespace>
  cat <<EOF
---
apiVersion: appstack.dev/v1alpha1
kind: AppStack
metadata: {name: $1, namespace: $2}
spec:
  api: {image: registry.example.com/books-api:1, replicas: 1}
  frontend: {image: registry.example.com/books-web:1, replicas: 1}
  database: {image: ${DB_IMAGE}, storage: {size: 1Gi}}
EOF
}
# The same stack applied directly: `render` output plus the Secret and claim it leaves to the
# operator (a fixed password).
direct() { # <name> <namespace>
  appstack "$1" "$2" | "${BIN}" render -f - | grep -v '^#'
  cat <<EOF
---
apiVersion: v1
kind: Secret
metadata: {name: $1-db-credentials, namespace: $2}
stringData: {username: app, password: bench-password, database: app}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $1-db-data, namespace: $2}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
}

# The same stack as an instance of the ResourceGraphDefinition made below (kro).
kro() { # <name> <namespace>
  printf -- '---\napiVersion: kro.run/v1alpha1\nkind: BenchStack\nmetadata: {name: %s, namespace: %s}\nspec: {}\n' "$1" "$2"
}
# A ResourceGraphDefinition of one stack's objects (`direct`), its names templated, each Deployment
# ready when Available, the StatefulSet when its pod is ready.
kro_graph() {
  # shellcheck disable=SC2016 # ${…} is kro's template syntax, for python to write
  direct kroplaceholder kro-template | kubectl create --dry-run=client -o json -f - | python3 -c '
import json, sys
text, decoder, objects, at = sys.stdin.read(), json.JSONDecoder(), [], 0
while text[at:].strip():
    obj, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
    objects.append(obj)
resources = []
for i, obj in enumerate(objects):
    obj["metadata"].pop("namespace", None)
    template = json.loads(json.dumps(obj).replace("kroplaceholder", "${schema.metadata.name}"))
    rid = obj["kind"].lower() + str(i)
    resource = {"id": rid, "template": template}
    if obj["kind"] == "Deployment":
        resource["readyWhen"] = ["${%s.status.?availableReplicas.orValue(0) >= 1}" % rid]
    if obj["kind"] == "StatefulSet":
        resource["readyWhen"] = ["${%s.status.?readyReplicas.orValue(0) >= 1}" % rid]
    resources.append(resource)
json.dump({"apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
           "metadata": {"name": "benchstacks.kro.run"},
           "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "BenchStack",
                               "spec": {"note": "string | default=bench"}},
                    "resources": resources}}, sys.stdout)'
}

# Stacks s-0..s-(count-1) of run `tag` over namespaces of PER_NAMESPACE, written as one file per
# apply client (what `kind` selects: appstack or direct).
write_files() { # <tag> <count> <kind>
  local tag=$1 count=$2 kind=$3 i
  rm -f "${WORK}/${tag}".*.yaml
  for ((i = 0; i < count; i++)); do
    "${kind}" "s-${i}" "${tag}-$((i / PER_NAMESPACE))" >>"${WORK}/${tag}.$((i % CLIENTS)).yaml"
  done
  for ((i = 0; i <= (count - 1) / PER_NAMESPACE; i++)); do echo "${tag}-${i}"; done >"${WORK}/${tag}.namespaces"
}
# With BENCH_PROFILE_SECONDS, in the background: the API server's CPU profile of this side.
profile_apiserver() { # <side>
  local seconds="${BENCH_PROFILE_SECONDS:-0}"
  ((seconds > 0)) || return 0
  (sleep 20 && kubectl get --raw "/debug/pprof/profile?seconds=${seconds}" >"${OUT}/apiserver-$1.pprof") &
}
apply_files() { # <tag>
  printf '%s\n' "${WORK}/$1".*.yaml |
    xargs -P "${CLIENTS}" -I{} kubectl apply --server-side --field-manager=bench -f {} >/dev/null
}
create_namespaces() { xargs -n 1 kubectl create namespace <"${WORK}/$1.namespaces" >/dev/null; }
delete_namespaces() {
  xargs kubectl delete namespace --wait=true --timeout=15m <"${WORK}/$1.namespaces" >/dev/null
}
# Lines "<namespace> <status>" of `jsonpath` over every object of `resource`, counted where the
# namespace is one of `tag`'s and the status is `want`.
count_where() { # <tag> <resource> <jsonpath of the status> <want>
  kubectl get "$2" -A -o jsonpath="{range .items[*]}{.metadata.namespace} $3{\"\\n\"}{end}" |
    awk -v tag="$1-" -v want="$4" 'index($1, tag) == 1 && $2 == want { n++ } END { printf "%d", n }'
}
ready_stacks() { count_where "$1" appstacks '{.status.conditions[?(@.type=="Ready")].status}' True; }
available_objects() {
  echo $(($(count_where "$1" deployments '{.status.conditions[?(@.type=="Available")].status}' True) +
    $(count_where "$1" statefulsets '{.status.readyReplicas}' 1)))
}
wait_count() { # <want> <deadline s> <command...>: poll until the command prints want
  local want=$1 deadline=$((SECONDS + $2))
  shift 2
  until [[ "$("$@")" == "${want}" ]]; do
    ((SECONDS < deadline)) || { log "timed out waiting for ${want} from $*"; return 1; }
    sleep 1
  done
}

# apply→Ready of one stack (operator) and apply→Available of its objects (baseline), in ms.
one_operator() { # <run>
  local ns="one-op-$1" t0
  kubectl create namespace "${ns}" >/dev/null
  appstack s "${ns}" >"${WORK}/one.yaml"
  t0=$(now_ms)
  kubectl apply --server-side --field-manager=bench -f "${WORK}/one.yaml" >/dev/null
  kubectl wait -n "${ns}" --for=condition=Ready appstack/s --timeout=120s >/dev/null
  echo $(($(now_ms) - t0))
  kubectl delete namespace "${ns}" --wait=false >/dev/null
}
one_direct() { # <run>
  local ns="one-direct-$1" t0
  kubectl create namespace "${ns}" >/dev/null
  direct s "${ns}" >"${WORK}/one.yaml"
  t0=$(now_ms)
  kubectl apply --server-side --field-manager=bench -f "${WORK}/one.yaml" >/dev/null
  kubectl wait -n "${ns}" --for=condition=Available deployment --all --timeout=120s >/dev/null &
  kubectl wait -n "${ns}" --for=jsonpath='{.status.readyReplicas}'=1 statefulset/s-db \
    --timeout=120s >/dev/null
  wait $!
  echo $(($(now_ms) - t0))
  kubectl delete namespace "${ns}" --wait=false >/dev/null
}
one_kro() { # <run>
  local ns="one-kro-$1" t0
  kubectl create namespace "${ns}" >/dev/null
  kro s "${ns}" >"${WORK}/one.yaml"
  t0=$(now_ms)
  kubectl apply --server-side --field-manager=bench -f "${WORK}/one.yaml" >/dev/null
  kubectl wait -n "${ns}" --for=jsonpath='{.status.state}'=ACTIVE benchstack/s --timeout=120s >/dev/null
  echo $(($(now_ms) - t0))
  kubectl delete namespace "${ns}" --wait=false >/dev/null
}
active_instances() { count_where "$1" benchstacks '{.status.state}' ACTIVE; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------------------------
start_operator
rss_zero=$(rss_mib)
log "operator ready, RSS ${rss_zero} MiB at 0 stacks"

one_op_ms=null one_direct_ms=null one_kro_ms=null many_direct_ms=null
contenders=()
if ((BASELINE)); then contenders=(operator direct); fi
if ((KRO_ON)); then
  kro_graph | kubectl apply --server-side --field-manager=bench -f - >/dev/null
  warm_kro
  contenders+=(kro)
fi
if ((BASELINE)); then
  log "one stack: ${ONE_RUNS} alternating runs of ${contenders[*]}"
  for c in "${contenders[@]}"; do : >"${WORK}/one-${c}"; done
  for ((r = 0; r < ONE_RUNS; r++)); do
    # Each run another order: who goes first alternates.
    for ((k = 0; k < ${#contenders[@]}; k++)); do
      c=${contenders[$(((r + k) % ${#contenders[@]}))]}
      "one_${c}" "${r}" >>"${WORK}/one-${c}"
    done
  done
  one_op_ms=$(median <"${WORK}/one-operator")
  one_direct_ms=$(median <"${WORK}/one-direct")
  one_kro_ms=$( ((KRO_ON)) && median <"${WORK}/one-kro" || echo null)
  log "one stack: operator ${one_op_ms} ms, direct ${one_direct_ms} ms, kro ${one_kro_ms} ms (medians)"
  kubectl get namespaces -o name | grep -E '^namespace/one-' | xargs -r kubectl delete --ignore-not-found --wait=true --timeout=5m >/dev/null
  ((KRO_ON)) && stop_kro
fi

# N stacks, baseline first (the operator then measures its resync and memory on its own stacks).
stop_operator
if ((BASELINE)); then
  log "${STACKS} stacks applied directly by ${CLIENTS} clients"
  write_files many-direct "${STACKS}" direct
  create_namespaces many-direct
  apiserver_requests "${WORK}/direct-before"
  cpu_seconds "${WORK}/direct-cpu-before"
  t0=$(now_ms)
  profile_apiserver direct
  apply_files many-direct
  wait_count $((3 * STACKS)) "${DEADLINE}" available_objects many-direct
  many_direct_ms=$(($(now_ms) - t0))
  apiserver_requests "${WORK}/direct-after"
  cpu_seconds "${WORK}/direct-cpu-after"
  log "all Available after ${many_direct_ms} ms; deleting"
  delete_namespaces many-direct
fi

many_kro_ms=null
rss_kro=null
if ((KRO_ON)); then
  log "${STACKS} kro instances applied by ${CLIENTS} clients"
  warm_kro
  write_files many-kro "${STACKS}" kro
  create_namespaces many-kro
  t0=$(now_ms)
  apply_files many-kro
  wait_count "${STACKS}" "${DEADLINE}" active_instances many-kro
  many_kro_ms=$(($(now_ms) - t0))
  rss_kro=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/${kro_pid}/status")
  log "all ACTIVE after ${many_kro_ms} ms, kro RSS ${rss_kro} MiB; deleting"
  delete_namespaces many-kro
  stop_kro
fi

log "${STACKS} AppStacks applied by ${CLIENTS} clients"
start_operator
write_files many-op "${STACKS}" appstack
create_namespaces many-op
scrape "${WORK}/create-before"
apiserver_requests "${WORK}/op-before"
cpu_seconds "${WORK}/op-cpu-before"
t0=$(now_ms)
profile_apiserver operator
apply_files many-op
wait_count "${STACKS}" "${DEADLINE}" ready_stacks many-op
many_op_ms=$(($(now_ms) - t0))
apiserver_requests "${WORK}/op-after"
cpu_seconds "${WORK}/op-cpu-after"
scrape "${WORK}/create-after"
log "all Ready after ${many_op_ms} ms"

# Quiet: no child or status write for 10 s. (Not "no reconcile": once creating took longer than
# the resync period, resyncs of the first stacks go on at N/300 a second.)
quiet() {
  local last="" now
  while :; do
    scrape "${WORK}/quiet"
    now="$(metric_sum "${WORK}/quiet" appstack_child_writes_total) $(metric_sum "${WORK}/quiet" appstack_status_writes_total)"
    [[ "${now}" != "${last}" ]] || return 0
    last=${now}
    sleep 10
  done
}
quiet

log "resync: the operator restarted over ${STACKS} unchanged stacks"
stop_operator
apiserver_requests "${WORK}/resync-requests-before"
start_operator
scrape "${WORK}/resync-before"
until (($(metric_sum "${WORK}/resync-before" appstack_reconciles_total) >= STACKS)); do
  sleep 1
  scrape "${WORK}/resync-before"
done
quiet
scrape "${WORK}/resync"
apiserver_requests "${WORK}/resync-requests-after"
resync_writes=$(grown_between "${WORK}/resync-requests-"{before,after} "^${MUTATING}/${OPERATOR_KINDS}$")
resync_gets=$(grown_between "${WORK}/resync-requests-"{before,after} "^GET/${OPERATOR_KINDS}$")
reconciles=$(metric_sum "${WORK}/resync" appstack_reconciles_total)
requests=$(metric_sum "${WORK}/resync" appstack_api_requests_total)
operator_writes=$((requests - $(awk '$1 ~ /^appstack_api_requests_total\{verb="(get|list|watch)"\}$/ { s += $NF } END { printf "%d", s }' "${WORK}/resync")))
rss_many=$(rss_mib)
: >"${WORK}/empty"
noop_p50=$(quantile 0.5 "${WORK}/empty" "${WORK}/resync")
noop_p99=$(quantile 0.99 "${WORK}/empty" "${WORK}/resync")
create_p50=$(quantile 0.5 "${WORK}/create-before" "${WORK}/create-after")
create_p99=$(quantile 0.99 "${WORK}/create-before" "${WORK}/create-after")
log "resync: ${reconciles} reconciles, ${requests} API requests, ${resync_writes} writes at the API server"

# What the N stacks cost while they came up: the API server's writes from every client, Events
# and AppStacks apart, beside the direct apply's; the operator's own reconciles and requests.
grown() { grown_between "${WORK}/create-"{before,after} "^$1([{]|$)"; }
requests_by_verb=$(differences "${WORK}/create-"{before,after} | awk '
  $1 ~ /^appstack_api_requests_total[{]/ && match($1, /verb="[^"]*"/) {
    printf "%s\"%s\": %d", sep, substr($1, RSTART + 6, RLENGTH - 7), $2; sep = ", " }')
op_writes=$(grown_between "${WORK}/op-"{before,after} "^${MUTATING}/")
op_event_writes=$(grown_between "${WORK}/op-"{before,after} "^${MUTATING}/events$")
op_stack_writes=$(grown_between "${WORK}/op-"{before,after} "^${MUTATING}/appstacks$")
op_cpu=$(cpu_between "${WORK}/op-cpu-"{before,after})
direct_writes=null direct_event_writes=null direct_cpu=null
if ((BASELINE)); then
  direct_cpu=$(cpu_between "${WORK}/direct-cpu-"{before,after})
  direct_writes=$(grown_between "${WORK}/direct-"{before,after} "^${MUTATING}/")
  direct_event_writes=$(grown_between "${WORK}/direct-"{before,after} "^${MUTATING}/events$")
fi
stop_operator

python3 - "${OUT}/results.json" <<EOF
import json, sys
null = None
ratio = lambda a, b: round(a / b, 3) if b else None
results = {
    "stacks": ${STACKS},
    "one_stack_operator_ms": ${one_op_ms},
    "one_stack_direct_ms": ${one_direct_ms},
    "one_stack_ratio": ratio(${one_op_ms}, ${one_direct_ms}),
    "one_stack_kro_ms": ${one_kro_ms},
    "one_stack_kro_ratio": ratio(${one_kro_ms}, ${one_direct_ms}) if ${one_kro_ms} else None,
    "many_stacks_operator_ms": ${many_op_ms},
    "many_stacks_direct_ms": ${many_direct_ms},
    "many_stacks_ratio": ratio(${many_op_ms}, ${many_direct_ms}),
    "many_stacks_kro_ms": ${many_kro_ms},
    "many_stacks_kro_ratio": ratio(${many_kro_ms}, ${many_direct_ms}) if ${many_kro_ms} else None,
    "kro_rss_mib": ${rss_kro},
    "resync_reconciles": ${reconciles},
    "resync_mutating_requests": ${resync_writes},
    "resync_operator_writes": ${operator_writes},
    "requests_per_noop_reconcile": round(${requests} / max(${reconciles}, 1), 3),
    "apiserver_gets_per_noop_reconcile": round(${resync_gets} / max(${reconciles}, 1), 3),
    "noop_reconcile_ms_p50": "${noop_p50}",
    "noop_reconcile_ms_p99": "${noop_p99}",
    "create_reconcile_ms_p50": "${create_p50}",
    "create_reconcile_ms_p99": "${create_p99}",
    "many_stacks_apiserver_writes": {"operator": ${op_writes}, "direct": ${direct_writes}},
    "many_stacks_apiserver_event_writes": {"operator": ${op_event_writes}, "direct": ${direct_event_writes}},
    "many_stacks_apiserver_appstack_writes": ${op_stack_writes},
    "many_stacks_reconciles": $(grown appstack_reconciles_total),
    "many_stacks_child_writes": $(grown appstack_child_writes_total),
    "many_stacks_status_writes": $(grown appstack_status_writes_total),
    "many_stacks_operator_requests": {${requests_by_verb}},
    "many_stacks_cpu_seconds": {"operator": ${op_cpu}, "direct": ${direct_cpu}},
    "rss_mib": {"0": ${rss_zero}, "${STACKS}": ${rss_many}},
    "rss_kib_per_stack": round((${rss_many} - ${rss_zero}) * 1024 / ${STACKS}, 1),
    "binary_mib": round(${binary_bytes} / 1048576, 2),
}
json.dump(results, open(sys.argv[1], "w"), indent=2)
r = results
w, e = r['many_stacks_apiserver_writes'], r['many_stacks_apiserver_event_writes']
kro = lambda v, f: "" if v is None else f(v)
ms = lambda v: "—" if v is None else f"{v} ms"
sec = lambda v: "—" if v is None else f"{v / 1000:.1f} s"
c = r['many_stacks_cpu_seconds']
parts = [("kube-apiserver", "API server"), ("etcd", "etcd"), ("kube-controller", "controller manager"),
         ("kube-scheduler", "scheduler"), ("kwok", "KWOK"), ("appstack-operat", "operator")]
cpu_label = " / ".join(label for _, label in parts)
cpu = lambda d: "—" if d is None else " / ".join(f"{d.get(p, 0):.0f}" for p, _ in parts) + f" (total {sum(d.values()):.0f})"
print(f"""
| Figure ({r['stacks']} stacks, {${CLIENTS}} apply clients) | Operator | Direct | Ratio | kro (ratio) |
|---|---|---|---|---|
| apply→Ready of one stack, median of ${ONE_RUNS} | {ms(r['one_stack_operator_ms'])} | {ms(r['one_stack_direct_ms'])} | {r['one_stack_ratio']} | {kro(r['one_stack_kro_ms'], lambda v: f"{v} ms ({r['one_stack_kro_ratio']})")} |
| {r['stacks']} stacks applied at once, until all Ready | {sec(r['many_stacks_operator_ms'])} | {sec(r['many_stacks_direct_ms'])} | {r['many_stacks_ratio']} | {kro(r['many_stacks_kro_ms'], lambda v: f"{v / 1000:.1f} s ({r['many_stacks_kro_ratio']})")} |
| mutating requests in a full resync (API server) | {r['resync_mutating_requests']} | | | |
| API requests per no-op reconcile (operator; GETs at the API server) | {r['requests_per_noop_reconcile']} ({r['apiserver_gets_per_noop_reconcile']}) | | | |
| reconcile latency p50 / p99, no-op | {r['noop_reconcile_ms_p50']} / {r['noop_reconcile_ms_p99']} ms | | | |
| reconcile latency p50 / p99, while creating | {r['create_reconcile_ms_p50']} / {r['create_reconcile_ms_p99']} ms | | | |
| API server writes while the {r['stacks']} stacks came up (every client) | {w['operator']} | {kro(w['direct'], str)} | {ratio(w['operator'], w['direct']) if w['direct'] else ''} | |
| of which Events; AppStacks (spec, status, finalizer) | {e['operator']}; {r['many_stacks_apiserver_appstack_writes']} | {kro(e['direct'], str)}; — | | |
| operator while creating: reconciles; child / status writes | {r['many_stacks_reconciles']}; {r['many_stacks_child_writes']} / {r['many_stacks_status_writes']} | | | |
| CPU seconds while they came up: {cpu_label} | {cpu(c['operator'])} | {cpu(c['direct'])} | {ratio(sum(c['operator'].values()), sum(c['direct'].values())) if c['direct'] else ''} | |
| operator's requests while creating, by verb | {', '.join(f"{k} {v}" for k, v in sorted(r['many_stacks_operator_requests'].items()))} | | | |
| RSS at 0 / {r['stacks']} stacks | {r['rss_mib']['0']} / {r['rss_mib'][str(r['stacks'])]} MiB | | | {kro(r['kro_rss_mib'], lambda v: f"— / {v} MiB")} |
| memory per stack | {r['rss_kib_per_stack']} KiB | | | |
| release binary, stripped | {r['binary_mib']} MiB | | | |
""")
EOF
log "results in ${OUT}/results.json; took $((SECONDS - started)) s"
if ((resync_writes > 0)); then
  echo "FAIL: a full resync of unchanged stacks made ${resync_writes} mutating requests" >&2
  exit 1
fi
