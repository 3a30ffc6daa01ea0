# shellcheck shell=bash disable=SC2034
# Shared settings for build.sh / up.sh / down.sh / bin-dir.sh. Source it; it
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

# Runtime state of a running cluster (kubeconfig, certs, logs, pids, data).
CLUSTER_DIR="${APPSTACK_CLUSTER_DIR:-${REPO_ROOT}/target/cluster}"
[[ "${CLUSTER_DIR}" == /* ]] || CLUSTER_DIR="${PWD}/${CLUSTER_DIR}"
PIDS_FILE="${CLUSTER_DIR}/pids"

log() { echo "[cluster] $*" >&2; }
