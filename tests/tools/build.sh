#!/usr/bin/env bash
# Builds (once) the Go test tools and prints the path of the binary, like tests/cluster/build.sh:
#   GITOPS_CHECK=$(tests/tools/build.sh gitops-check)   # tests/gitops: Argo CD Lua + kstatus
#   PROMTOOL=$(tests/tools/build.sh promtool)           # promtool of Debian's prometheus package
#   KRO=$(tests/tools/build.sh kro)                     # kro's controller, for bench/run.sh
# Binaries are cached under ${APPSTACK_TOOLS_CACHE:-~/.cache/appstack-tools}/<name>-<key>/, keyed
# by the package's version (promtool) or by a digest of the sources and the Go version
# (gitops-check), so a warm run builds nothing. Progress and the build time go to stderr; the
# only stdout line is the binary's path.
set -euo pipefail
cd "$(dirname "$0")/../.."

# promtool comes out of Debian's prometheus package, unpacked, not installed (no service, no
# dependencies): seconds cold, where building it from Prometheus' Go module took 13 minutes here.
# kro, the peer bench/run.sh can compare with (BENCH_KRO=1), from its Go module.
KRO_VERSION=v0.9.4
CACHE="${APPSTACK_TOOLS_CACHE:-$HOME/.cache/appstack-tools}"
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
log() { printf '[tools] %s\n' "$*" >&2; }

name="${1:-}"
case "${name}" in
  gitops-check)
    key="$(cat tests/gitops/go.mod tests/gitops/go.sum tests/gitops/*.go | sha256sum | cut -c1-16)"
    key+="-$("${GO}" env GOVERSION)"
    ;;
  promtool)
    candidate() { apt-cache policy prometheus | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'; }
    key="$(candidate)"
    [[ -n "${key}" ]] || { apt-get update -qq && key="$(candidate)"; }
    [[ -n "${key}" ]] || { log "no prometheus package in apt's sources"; exit 1; }
    key="${key//[^A-Za-z0-9.+-]/_}"
    ;;
  kro) key="${KRO_VERSION}" ;;
  *) echo "usage: $0 gitops-check|promtool|kro" >&2; exit 2 ;;
esac
dir="${CACHE}/${name}-${key}"
if [[ -x "${dir}/${name}" ]]; then
  echo "${dir}/${name}"
  exit 0
fi

[[ "${name}" == promtool || -x "${GO}" ]] || { log "go not found (set GO=/path/to/go)"; exit 1; }
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
    (cd "${tmp}" && apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null &&
      dpkg-deb -x prometheus_*.deb unpacked && mv unpacked/usr/bin/promtool promtool)
    ;;
  kro)
    # `go install module@version` uses kro's own go.mod; GOBIN must be absolute.
    (cd "${tmp}" && GOBIN="${tmp}" "${GO}" install -p 2 -trimpath -ldflags "-s -w" \
      "github.com/kubernetes-sigs/kro/cmd/controller@${KRO_VERSION}" && mv controller kro)
    ;;
esac
mkdir -p "${dir}"
mv -f "${tmp}/${name}" "${dir}/${name}"
log "built ${name} in $((SECONDS - start))s (cold build time)"
echo "${dir}/${name}"
