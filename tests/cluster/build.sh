#!/usr/bin/env bash
# Builds the integration-test cluster binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the pinned Go
# modules under tests/cluster/{k8s,etcd,kwok} into
#   ${APPSTACK_CLUSTER_CACHE:-~/.cache/appstack-cluster}/<k8s>-etcd<v>-kwok<v>/bin
# Does nothing when all binaries are already there. Progress goes to stderr; the
# only line on stdout is the bin dir, so `BIN_DIR=$(tests/cluster/build.sh)` works.
#
# --real-node also builds, into a bin dir of their own (NODE_BIN_DIR in lib.sh),
# kubelet and kube-proxy (same k8s module), CoreDNS and local-path-provisioner
# (`go install <module>@<version>`, versions pinned in lib.sh).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

real_node=0
case "${1:-}" in
  --real-node) real_node=1 ;;
  "") ;;
  *) echo "usage: $0 [--real-node]" >&2; exit 2 ;;
esac

have_all() { # <dir> <binaries...>
  local dir="$1" b
  shift
  for b in "$@"; do [[ -x "${dir}/${b}" ]] || return 1; done
}

if have_all "${BIN_DIR}" "${BINARIES[@]}" &&
  { ((real_node == 0)) || have_all "${NODE_BIN_DIR}" "${NODE_BINARIES[@]}"; }; then
  echo "${BIN_DIR}"
  exit 0
fi

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
[[ -x "${GO}" ]] || { log "go not found (set GO=/path/to/go)"; exit 1; }

start=${SECONDS}
# Build into a scratch dir and move into place at the end, so an interrupted
# build never leaves a bin dir that looks complete.
mkdir -p "$(dirname "${BIN_DIR}")"
tmp="$(mktemp -d "${BIN_DIR}.tmp.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# Like upstream release builds (hack/lib/golang.sh): static, stripped,
# trimmed, same build tags. -p 2: the CI machine has two cores.
common=(build -p 2 -trimpath -buildvcs=false -mod=readonly)
export CGO_ENABLED=0

# What /version reports; kube clients and kubectl look at it. The build date is
# the release's publication date so that builds are reproducible.
k8s_minor="$(echo "${K8S_VERSION}" | cut -d. -f2)"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION}"
  k8s_ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${k8s_minor}"
  k8s_ldflags+=" -X ${pkg}.gitTreeState=clean"
  k8s_ldflags+=" -X ${pkg}.buildDate=2026-04-15T18:01:22Z"
done

build_one() { # <module dir> <ldflags> <tags> <packages...>
  local dir="$1" ldflags="$2" tags="$3"
  shift 3
  log "building $* ..."
  (cd "${CLUSTER_SRC}/${dir}" && "${GO}" "${common[@]}" -tags "${tags}" \
    -ldflags "${ldflags}" -o "${tmp}/" "$@")
}

if ! have_all "${BIN_DIR}" "${BINARIES[@]}"; then
  # `go build .` names the binary after the module path's last element: "etcd".
  build_one etcd "-s -w" "" .

  build_one kwok "-s -w" "" \
    sigs.k8s.io/kwok/cmd/kwok

  build_one k8s "${k8s_ldflags}" "selinux,notest,grpcnotrace" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl

  mkdir -p "${BIN_DIR}"
  for b in "${BINARIES[@]}"; do mv -f "${tmp}/${b}" "${BIN_DIR}/${b}"; done
  log "built ${#BINARIES[@]} binaries in $((SECONDS - start))s (cold build time)"
fi

if ((real_node)) && ! have_all "${NODE_BIN_DIR}" "${NODE_BINARIES[@]}"; then
  node_start=${SECONDS}
  # kubelet and kube-proxy need cgo for nothing: static like the rest.
  build_one k8s "${k8s_ldflags}" "selinux,notest,grpcnotrace" \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy
  # Their own go.mod, unchanged: `go install module@version` ignores ours. GOBIN must be
  # absolute and outside any module.
  for mod in "github.com/coredns/coredns@${COREDNS_VERSION}" \
    "github.com/rancher/local-path-provisioner@${LPP_VERSION}"; do
    log "building ${mod} ..."
    (cd "${tmp}" && GOFLAGS=-buildvcs=false GOBIN="${tmp}" "${GO}" install -p 2 -trimpath -ldflags "-s -w" "${mod}")
  done
  mkdir -p "${NODE_BIN_DIR}"
  for b in "${NODE_BINARIES[@]}"; do mv -f "${tmp}/${b}" "${NODE_BIN_DIR}/${b}"; done
  log "built the real node's ${#NODE_BINARIES[@]} binaries in $((SECONDS - node_start))s (cold build time)"
fi
echo "${BIN_DIR}"
