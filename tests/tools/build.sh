#!/usr/bin/env bash
# Builds (once) the Go test tools and prints the path of the binary, like tests/cluster/build.sh:
#   GITOPS_CHECK=$(tests/tools/build.sh gitops-check)   # tests/gitops: Argo CD Lua + kstatus
#   PROMTOOL=$(tests/tools/build.sh promtool)           # Prometheus' promtool, pinned below
# Binaries are cached under ${APPSTACK_TOOLS_CACHE:-~/.cache/appstack-tools}/<name>-<key>/, keyed
# by the pinned version (promtool) or by a digest of the sources and the Go version
# (gitops-check), so a warm run builds nothing. Progress and the build time go to stderr; the
# only stdout line is the binary's path.
set -euo pipefail
cd "$(dirname "$0")/../.."

# promtool of Prometheus v3.16 (Go module versions are v0.3xx.y). remove_all_sd leaves out the
# service-discovery plugins (cloud SDKs) that checking and testing rules never use.
PROMTOOL_VERSION=v0.316.0
CACHE="${APPSTACK_TOOLS_CACHE:-$HOME/.cache/appstack-tools}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
log() { printf '[tools] %s\n' "$*" >&2; }

name="${1:-}"
case "${name}" in
  gitops-check)
    key="$(cat tests/gitops/go.mod tests/gitops/go.sum tests/gitops/*.go | sha256sum | cut -c1-16)"
    key+="-$("${GO}" env GOVERSION)"
    ;;
  promtool) key="${PROMTOOL_VERSION}" ;;
  *) echo "usage: $0 gitops-check|promtool" >&2; exit 2 ;;
esac
dir="${CACHE}/${name}-${key}"
if [[ -x "${dir}/${name}" ]]; then
  echo "${dir}/${name}"
  exit 0
fi

[[ -x "${GO}" ]] || { log "go not found (set GO=/path/to/go)"; exit 1; }
mkdir -p "${CACHE}"
tmp="$(mktemp -d "${dir}.tmp.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
start=${SECONDS}
log "building ${name} (${key}) ..."
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
case "${name}" in
  gitops-check)
    (cd tests/gitops && "${GO}" build -p 2 -trimpath -mod=readonly -ldflags "-s -w" -o "${tmp}/${name}" .)
    ;;
  promtool)
    # `go install module@version` uses Prometheus' own go.mod; GOBIN must be absolute.
    (cd "${tmp}" && GOBIN="${tmp}" "${GO}" install -p 2 -trimpath -tags remove_all_sd \
      -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION}")
    ;;
esac
mkdir -p "${dir}"
mv -f "${tmp}/${name}" "${dir}/${name}"
log "built ${name} in $((SECONDS - start))s (cold build time)"
echo "${dir}/${name}"
