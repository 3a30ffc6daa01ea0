#!/usr/bin/env bash
# Restarts one component of a running test cluster (started by up.sh from the same
# APPSTACK_CLUSTER_DIR) in place, for fault tests: the process is stopped (SIGTERM, SIGKILL after
# 10 s), started again with the same binary and flags (read from /proc/<pid>/cmdline) on the same
# log (appended), its line in the pids file updated (so down.sh stops it, in the same order), and
# waited for until healthy. etcd keeps its data directory: the cluster's state survives.
#
#   restart.sh apiserver|etcd [--down SECONDS]
#
# --down: how long the component stays stopped before it starts again (default 0).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: $0 apiserver|etcd [--down SECONDS]" >&2; exit 2; }
case "${1:-}" in
  apiserver) name=kube-apiserver ;;
  etcd) name=etcd ;;
  *) usage ;;
esac
down=0
if [[ "${2:-}" == --down ]]; then
  [[ "${3:-}" =~ ^[0-9]+([.][0-9]+)?$ ]] || usage
  down="$3"
fi

[[ -f "${PIDS_FILE}" ]] || { log "no cluster running from ${CLUSTER_DIR}"; exit 1; }
pid="$(awk -v n="${name}" '$1 == n { print $2 }' "${PIDS_FILE}")"
if [[ -z "${pid}" ]] || ! kill -0 "${pid}" 2>/dev/null; then
  log "${name} is not running (pids file ${PIDS_FILE})"
  exit 1
fi
mapfile -d '' -t command <"/proc/${pid}/cmdline"

# flag <name>: the value of --<name>=... in the component's command line.
flag() {
  local arg
  for arg in "${command[@]}"; do
    if [[ "${arg}" == "--$1="* ]]; then echo "${arg#*=}"; return; fi
  done
}

started=${SECONDS}
log "stopping ${name} (pid ${pid})"
kill -TERM "${pid}"
for _ in {1..100}; do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
if kill -0 "${pid}" 2>/dev/null; then
  kill -KILL "${pid}"
  for _ in {1..50}; do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
fi
sleep "${down}"

current_log="${LOGS}/${name}.log"
"${command[@]}" </dev/null >>"${current_log}" 2>&1 &
new_pid=$!
awk -v n="${name}" -v p="${new_pid}" '$1 == n { $2 = p } { print }' "${PIDS_FILE}" >"${PIDS_FILE}.new"
mv "${PIDS_FILE}.new" "${PIDS_FILE}"
log "started ${name} again (pid ${new_pid}, log ${current_log})"

case "${name}" in
  etcd)
    url="$(flag listen-client-urls)"
    wait_for "etcd health" etcd \
      bash -c "curl -fsS --max-time 5 '${url%%,*}/health' | grep -q '\"health\":\"true\"'"
    ;;
  kube-apiserver)
    wait_for "kube-apiserver /readyz" kube-apiserver \
      curl_ok --cacert "${CLUSTER_DIR}/pki/ca.crt" --cert "${CLUSTER_DIR}/pki/admin.crt" \
      --key "${CLUSTER_DIR}/pki/admin.key" "https://$(flag bind-address):$(flag secure-port)/readyz"
    ;;
esac
log "${name} restarted in $((SECONDS - started))s"
