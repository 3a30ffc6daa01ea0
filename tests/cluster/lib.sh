# shellcheck shell=bash disable=SC2034
# Shared settings for build.sh / up.sh / down.sh / try.sh / bin-dir.sh. Source it; it
# defines variables and helpers only and has no side effects.

CLUSTER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${CLUSTER_SRC}/../.." && pwd)"

# Version a module is pinned to in one of our go.mod files. Parsed with awk (not
# `go list`) so that finding the bin dir needs neither Go nor the network.
pinned_version() { # <module dir> <module path>
  awk -v m="$2" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ && $3 != "=>" { print $2; exit }
  ' "${CLUSTER_SRC}/$1/go.mod"
}

K8S_VERSION="$(pinned_version k8s k8s.io/kubernetes)"
ETCD_VERSION="$(pinned_version etcd go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(pinned_version kwok sigs.k8s.io/kwok)"
if [[ -z "${K8S_VERSION}" || -z "${ETCD_VERSION}" || -z "${KWOK_VERSION}" ]]; then
  echo "lib.sh: cannot read pinned versions from ${CLUSTER_SRC}/*/go.mod" >&2
  exit 1
fi

CACHE_ROOT="${APPSTACK_CLUSTER_CACHE:-${HOME}/.cache/appstack-cluster}"
BIN_DIR="${CACHE_ROOT}/${K8S_VERSION}-etcd${ETCD_VERSION#v}-kwok${KWOK_VERSION#v}/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

# The real node (up.sh --real-node): kubelet and kube-proxy from the same k8s module (k8s/tools.go),
# CoreDNS and local-path-provisioner with `go install <module>@<version>` (their own go.mod).
COREDNS_VERSION=v1.14.7
LPP_VERSION=v0.0.30
NODE_BIN_DIR="${CACHE_ROOT}/${K8S_VERSION}-coredns${COREDNS_VERSION#v}-lpp${LPP_VERSION#v}/bin"
NODE_BINARIES=(kubelet kube-proxy coredns local-path-provisioner)

# Runtime state of a running cluster (kubeconfig, certs, logs, pids, data).
CLUSTER_DIR="${APPSTACK_CLUSTER_DIR:-${REPO_ROOT}/target/cluster}"
[[ "${CLUSTER_DIR}" == /* ]] || CLUSTER_DIR="${PWD}/${CLUSTER_DIR}"
PIDS_FILE="${CLUSTER_DIR}/pids"
LOGS="${CLUSTER_DIR}/logs"
TIMEOUT="${APPSTACK_CLUSTER_TIMEOUT:-120}" # seconds wait_for waits

log() { echo "[cluster] $*" >&2; }

# start_process <name> <executable> <args...>: runs it in the background, logging
# to logs/<name>.log, and records "<name> <pid>" in the pids file for down.sh.
start_process() {
  local name="$1" executable="$2"
  shift 2
  current_log="${LOGS}/${name}.log"
  "${executable}" "$@" </dev/null >"${current_log}" 2>&1 &
  echo "${name} $!" >>"${PIDS_FILE}"
  log "started ${name} (pid $!, log ${current_log})"
}

# wait_for <what> <pid name> <command...>: polls the command until it succeeds;
# fails early if the process died and after TIMEOUT seconds.
wait_for() {
  local what="$1" name="$2" deadline=$((SECONDS + TIMEOUT)) pid
  shift 2
  pid="$(awk -v n="${name}" '$1 == n { print $2 }' "${PIDS_FILE}")"
  current_log="${LOGS}/${name}.log"
  until "$@" >/dev/null 2>&1; do
    if ! kill -0 "${pid}" 2>/dev/null; then
      log "${name} exited while waiting for ${what}"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
  log "${what}: ok"
}

# The check of the apiserver /readyz and component /healthz endpoints: body "ok".
curl_ok() { [[ "$(curl -fsS --max-time 5 "$@")" == ok ]]; }

# On failure: the last lines of the log of the process being started or waited for.
show_current_log() {
  if [[ -n "${current_log:-}" && -f "${current_log}" ]]; then
    log "last lines of ${current_log}:"
    tail -n 40 "${current_log}" >&2
  fi
}
