#!/usr/bin/env bash
# Builds, without any registry, the images the real node runs (up.sh --real-node), and imports
# them into its containerd (`ctr -n k8s.io images import`), tagged as examples/books.yaml and
# deploy/install.yaml name them, so that both run unchanged with imagePullPolicy IfNotPresent:
#
#   pause        appstack.local/pause:1            static C program (images/pause.c)
#   busybox      appstack.local/busybox:1          Debian's busybox-static: local-path helper pods
#   postgres     docker.io/library/postgres:17     Debian's postgresql-17, the official image's
#                                                  contract (images/postgres-entrypoint.sh)
#   books-api    ghcr.io/appstack-dev/books-api:0.1.0 (+ :0.1.1, same content, another image ID,
#                for rolling updates)              examples/books/api/Dockerfile's contents
#   books-web    ghcr.io/appstack-dev/books-web:0.1.0   the React build, nginx as uid 101 on 8080
#   operator     ghcr.io/appstack-dev/appstack-operator:0.1.0   `cargo build --release` + CA certs
#
# Root filesystems come from Debian packages (mmdebstrap --variant=minbase), Python packages from
# PyPI, npm packages from npm; umoci packs them as OCI images. Each image's tarball is cached in
# ${APPSTACK_IMAGE_CACHE:-~/.cache/appstack-images}/<name>-<hash of its inputs>.tar, so a warm run
# only imports. Only stdout line: nothing; progress on stderr.
#
#   images.sh              build what is missing, import everything into the running real node
#   images.sh --build-only build (and cache) only, no cluster needed
#
# Env: APPSTACK_CLUSTER_DIR (which real node), APPSTACK_IMAGE_CACHE, CARGO_TARGET_DIR,
#      APPSTACK_IMAGES (with --build-only: which images, e.g. "pause postgres").
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node.sh
source "${CLUSTER_SRC}/node.sh"

import=1
case "${1:-}" in
  --build-only) import=0 ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

IMAGE_CACHE="${APPSTACK_IMAGE_CACHE:-${HOME}/.cache/appstack-images}"
IMAGES_SRC="${CLUSTER_SRC}/images"
API_SRC="${REPO_ROOT}/examples/books/api"
WEB_SRC="${REPO_ROOT}/examples/books/frontend"
start_time=${SECONDS}

# ------------------------------------------------------------------------ names
image_names # API_IMAGE, API_IMAGE_NEXT, WEB_IMAGE, DB_IMAGE, OPERATOR_IMAGE (node.sh)

# ------------------------------------------------------------------------ tools
as_needed_packages() {
  local missing=() cmd
  declare -A provides=([mmdebstrap]=mmdebstrap [umoci]=umoci [gcc]=gcc [jq]=jq [ctr]=containerd
    [npm]=npm)
  for cmd in "${!provides[@]}"; do command -v "${cmd}" >/dev/null || missing+=("${provides[${cmd}]}"); done
  [[ -f /usr/lib/x86_64-linux-gnu/libc.a || -f /usr/lib/$(uname -m)-linux-gnu/libc.a ]] ||
    missing+=(libc6-dev)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The host's own Debian archives (as apt is set up here), for mmdebstrap: "deb URI SUITE main"
# lines for a suite, with its -updates and -security.
debian_sources() { # <suite>
  local main sec
  # apt's lists name the archives; a machine without them gets them once.
  [[ -n "$(apt-get indextargets 'Created-By: Packages')" ]] || apt-get update -qq
  # shellcheck disable=SC2016 # apt's format variables
  main="$(apt-get indextargets --format '$(REPO_URI) $(LABEL)' 'Created-By: Packages' |
    awk '$2 == "Debian" { print $1; exit }')"
  # shellcheck disable=SC2016 # apt's format variables
  sec="$(apt-get indextargets --format '$(REPO_URI) $(LABEL)' 'Created-By: Packages' |
    awk '$2 == "Debian-Security" { print $1; exit }')"
  [[ -n "${main}" ]] || { log "no Debian archive in apt's sources"; return 1; }
  echo "deb ${main} $1 main"
  echo "deb ${main} $1-updates main"
  [[ -z "${sec}" ]] || echo "deb ${sec} $1-security main"
}

# rootfs <suite> <dir> <mmdebstrap options...>: a minimal Debian root filesystem. Docs, man pages
# and translations are left out, apt's lists and caches removed.
rootfs() {
  local suite="$1" dir="$2"
  shift 2
  local sources
  sources="$(debian_sources "${suite}")"
  # shellcheck disable=SC2016 # expanded by mmdebstrap's hook shell
  mmdebstrap --variant=minbase --mode=root --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --aptopt='Acquire::Retries "3"' \
    "$@" \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log "$1"/var/log/apt/*' \
    "${suite}" "${dir}" - <<<"${sources}"
}

# oci_pack <rootfs dir> <output tar> <tag> <umoci config options...>: one layer, one tag; the
# tarball is an OCI layout that `ctr images import --base-name <repository>` names
# <repository>:<tag>.
oci_pack() {
  local dir="$1" out="$2" tag="$3" layout
  shift 3
  layout="$(mktemp -d "${WORK}/layout.XXXXXX")"
  umoci init --layout "${layout}/oci"
  umoci new --image "${layout}/oci:${tag}"
  umoci insert --image "${layout}/oci:${tag}" "${dir}" /
  umoci config --image "${layout}/oci:${tag}" --os linux --architecture amd64 \
    --author appstack-operator/tests/cluster/images.sh "$@"
  umoci gc --layout "${layout}/oci"
  tar -C "${layout}/oci" -cf "${out}.tmp" .
  mv "${out}.tmp" "${out}"
  rm -rf "${layout}"
}

# ------------------------------------------------------------------------ recipes
# Each build_<name> <out tar> makes the image's tarball; inputs_<name> prints what its cache key
# hashes besides the recipe's own code.

inputs_pause() { cat "${IMAGES_SRC}/pause.c"; }
build_pause() {
  local root="${WORK}/pause"
  mkdir -p "${root}"
  gcc -static -Os -s -Wall -Wextra -Werror -o "${root}/pause" "${IMAGES_SRC}/pause.c"
  oci_pack "${root}" "$1" "${PAUSE_IMAGE##*:}" --config.user 65535:65535 --config.entrypoint /pause
}

inputs_busybox() { echo bookworm busybox-static; }
build_busybox() {
  local root="${WORK}/busybox" deb
  mkdir -p "${root}/bin" "${WORK}/debs"
  (cd "${WORK}/debs" && apt-get download -o APT::Sandbox::User=root busybox-static >/dev/null)
  deb="$(echo "${WORK}"/debs/busybox-static_*.deb)"
  dpkg-deb -x "${deb}" "${WORK}/debs/x"
  cp "${WORK}/debs/x/bin/busybox" "${root}/bin/busybox"
  local app
  for app in sh mkdir rm rmdir chmod ls cat echo sleep; do ln -s busybox "${root}/bin/${app}"; done
  mkdir -m 1777 "${root}/tmp"
  oci_pack "${root}" "$1" "${HELPER_IMAGE##*:}" --config.env PATH=/bin --config.cmd /bin/sh
}

inputs_postgres() { cat "${IMAGES_SRC}/postgres-entrypoint.sh"; echo trixie postgresql-17; }
build_postgres() {
  local root="${WORK}/postgres"
  # The official image's user: postgres, uid and gid 999, created before the package would pick
  # another uid. No cluster is created at install time: the entry point runs initdb on an empty
  # PGDATA. listen_addresses='*' in the sample configuration initdb copies, as upstream does.
  # shellcheck disable=SC2016 # expanded by mmdebstrap's hook shell
  rootfs trixie "${root}" --include=postgresql-17 \
    --essential-hook='echo "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >>"$1/etc/passwd"; echo "postgres:x:999:" >>"$1/etc/group"' \
    --essential-hook='mkdir -p "$1/etc/postgresql-common"; echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.conf"' \
    --customize-hook='sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '"'*'"'!" "$1"/usr/share/postgresql/17/postgresql.conf.sample' \
    --customize-hook='install -d -o 999 -g 999 -m 1777 "$1/var/lib/postgresql/data"' \
    --customize-hook='mkdir -p "$1/docker-entrypoint-initdb.d"'
  # The socket directory (/var/run is /run, which mmdebstrap empties at the end).
  install -d -o 999 -g 999 -m 3777 "${root}/run/postgresql"
  install -m 0755 "${IMAGES_SRC}/postgres-entrypoint.sh" "${root}/usr/local/bin/docker-entrypoint.sh"
  oci_pack "${root}" "$1" "${DB_IMAGE##*:}" \
    --config.env PATH=/usr/lib/postgresql/17/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env PG_MAJOR=17 --config.env LANG=C.UTF-8 \
    --config.env PGDATA=/var/lib/postgresql/data \
    --config.volume /var/lib/postgresql/data \
    --config.entrypoint docker-entrypoint.sh --config.cmd postgres \
    --config.exposedports 5432/tcp --config.stopsignal SIGINT
}

api_files() { # what the Dockerfile copies, in a stable order
  (cd "${API_SRC}" && find requirements.txt wsgi.py docker-entrypoint.sh books_api migrations \
    -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | LC_ALL=C sort)
}
inputs_books_api() {
  local f
  (cd "${API_SRC}" && api_files | while read -r f; do echo "${f}"; cat "${f}"; done)
  echo bookworm python3
}
# Same contents as examples/books/api/Dockerfile: Python 3.11 (Debian's, in a venv), the pinned
# requirements from PyPI, the app in /app, uid 10001, the same environment and command.
build_books_api() {
  local root="${WORK}/books-api" f
  # pip runs in the new root (its Python), with this machine's resolver, trust store and proxy
  # settings, which are removed again afterwards.
  local ca pip_env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_NO_CACHE_DIR=1
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_CERT=/tmp/host-ca.crt) v
  for ca in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    [[ -f "${ca}" ]] && break
  done
  for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [[ -z "${!v:-}" ]] || pip_env+=("${v}=${!v}")
  done
  # shellcheck disable=SC2016 # expanded by mmdebstrap's hook shell
  rootfs bookworm "${root}" --include=python3,python3-venv \
    --customize-hook="copy-in ${API_SRC}/requirements.txt /tmp" \
    --customize-hook="cp ${ca} \"\$1/tmp/host-ca.crt\"" \
    --customize-hook='cp /etc/resolv.conf "$1/etc/resolv.conf"' \
    --customize-hook='chroot "$1" python3 -m venv /opt/venv' \
    --customize-hook="chroot \"\$1\" env -i ${pip_env[*]} /opt/venv/bin/pip install -q -r /tmp/requirements.txt" \
    --customize-hook='rm -f "$1/etc/resolv.conf" "$1/tmp/requirements.txt" "$1/tmp/host-ca.crt"; find "$1/opt/venv" -name __pycache__ -prune -exec rm -rf {} +'
  mkdir -p "${root}/app"
  while read -r f; do
    install -D -m "$([[ -x "${API_SRC}/${f}" ]] && echo 0755 || echo 0644)" "${API_SRC}/${f}" "${root}/app/${f}"
  done < <(api_files)
  oci_pack "${root}" "$1" "${API_IMAGE##*:}" \
    --config.env PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env LANG=C.UTF-8 --config.env PYTHONDONTWRITEBYTECODE=1 \
    --config.env PYTHONUNBUFFERED=1 --config.env PIP_NO_CACHE_DIR=1 \
    --config.env PIP_DISABLE_PIP_VERSION_CHECK=1 --config.env FLASK_APP=wsgi \
    --config.env WEB_CONCURRENCY=2 \
    --config.workingdir /app --config.user 10001 --config.exposedports 5000/tcp \
    --config.entrypoint /app/docker-entrypoint.sh \
    --config.cmd=gunicorn --config.cmd=--bind --config.cmd=0.0.0.0:5000 \
    --config.cmd=--worker-tmp-dir --config.cmd=/dev/shm \
    --config.cmd=--access-logfile --config.cmd=- --config.cmd=wsgi:app
}

web_files() {
  (cd "${WEB_SRC}" && find package.json package-lock.json index.html vite.config.js nginx.conf src \
    -type f | LC_ALL=C sort)
}
inputs_books_web() {
  local f
  (cd "${WEB_SRC}" && web_files | while read -r f; do echo "${f}"; cat "${f}"; done)
  cat "${IMAGES_SRC}/nginx-main.conf"
  echo bookworm nginx "$(node --version)"
}
# Same contents as examples/books/frontend/Dockerfile: `npm ci && npm run build` (here with the
# machine's Node), served by nginx (Debian's) as uid 101 on 8080 with the app's nginx.conf, the
# main configuration of nginx-unprivileged (pid and temp files in /tmp).
build_books_web() {
  local root="${WORK}/books-web" build="${WORK}/web-src" f
  mkdir -p "${build}"
  while read -r f; do install -D -m 0644 "${WEB_SRC}/${f}" "${build}/${f}"; done < <(web_files)
  (cd "${build}" && npm ci --no-audit --no-fund --silent && npm run --silent build -- --logLevel=warn)
  # shellcheck disable=SC2016 # expanded by mmdebstrap's hook shell
  rootfs bookworm "${root}" --include=nginx \
    --customize-hook='rm -rf "$1"/etc/nginx/sites-enabled "$1"/etc/nginx/sites-available "$1"/var/www/html' \
    --customize-hook='echo "nginx:x:101:101:nginx:/nonexistent:/usr/sbin/nologin" >>"$1/etc/passwd"; echo "nginx:x:101:" >>"$1/etc/group"' \
    --customize-hook='mkdir -p "$1/var/log/nginx"; ln -sf /dev/stdout "$1/var/log/nginx/access.log"; ln -sf /dev/stderr "$1/var/log/nginx/error.log"'
  install -m 0644 "${IMAGES_SRC}/nginx-main.conf" "${root}/etc/nginx/nginx.conf"
  install -D -m 0644 "${WEB_SRC}/nginx.conf" "${root}/etc/nginx/conf.d/default.conf"
  mkdir -p "${root}/usr/share/nginx/html"
  cp -r "${build}/dist/." "${root}/usr/share/nginx/html/"
  oci_pack "${root}" "$1" "${WEB_IMAGE##*:}" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.user 101 --config.exposedports 8080/tcp --config.stopsignal SIGQUIT \
    --config.cmd=nginx --config.cmd=-g --config.cmd='daemon off;'
}

operator_binary() { echo "${CARGO_TARGET_DIR:-${REPO_ROOT}/target}/release/appstack-operator"; }
inputs_operator() {
  # The release build is up to date when cargo says so (a few seconds when nothing changed).
  (cd "${REPO_ROOT}" && cargo build --release --locked --quiet --bin appstack-operator)
  sha256sum <"$(operator_binary)"
}
# Like the Dockerfile's distroless image: the release binary, the shared libraries it links
# (from this machine, where it was built), CA certificates, a nonroot user (65532).
build_operator() {
  local root="${WORK}/operator" bin lib
  bin="$(operator_binary)"
  install -D -m 0755 "${bin}" "${root}/usr/local/bin/appstack-operator"
  for lib in $(ldd "${bin}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    install -D -m 0755 "$(readlink -f "${lib}")" "${root}${lib}"
  done
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "${root}/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "${root}/etc" && mkdir -m 1777 "${root}/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"${root}/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"${root}/etc/group"
  oci_pack "${root}" "$1" "${OPERATOR_IMAGE##*:}" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.user 65532:65532 --config.exposedports 8080/tcp \
    --config.entrypoint /usr/local/bin/appstack-operator --config.cmd run
}

# The API image again under the next tag, with a label that makes its config (its image ID)
# differ: the rolling-update test switches between two real images.
build_books_api_next() {
  local layout
  layout="$(mktemp -d "${WORK}/layout.XXXXXX")"
  tar -C "${layout}" -xf "$(cached_tar books_api)"
  umoci tag --image "${layout}:${API_IMAGE##*:}" "${API_IMAGE_NEXT##*:}"
  umoci rm --image "${layout}:${API_IMAGE##*:}"
  umoci config --image "${layout}:${API_IMAGE_NEXT##*:}" --config.label "dev.appstack.variant=next"
  umoci gc --layout "${layout}"
  tar -C "${layout}" -cf "$1.tmp" . && mv "$1.tmp" "$1"
}
inputs_books_api_next() { cached_tar books_api; }

# ------------------------------------------------------------------------ cache and import
declare -A KEYS
cache_key() { # <name>: hash of the recipe, its inputs and the image names (tags are inside)
  { declare -f "build_$1" oci_pack rootfs; "inputs_$1"
    echo "${PAUSE_IMAGE} ${HELPER_IMAGE} ${DB_IMAGE} ${API_IMAGE} ${API_IMAGE_NEXT} ${WEB_IMAGE} ${OPERATOR_IMAGE}"
  } | sha256sum | cut -c1-16
}
cached_tar() { echo "${IMAGE_CACHE}/$1-${KEYS[$1]}.tar"; }

ensure_image() { # <name>
  local name="$1" tar t0=${SECONDS}
  KEYS[${name}]="$(cache_key "${name}")"
  tar="$(cached_tar "${name}")"
  if [[ -s "${tar}" ]]; then
    log "${name}: cached ($(du -h "${tar}" | cut -f1))"
    return
  fi
  log "${name}: building ..."
  "build_${name}" "${tar}"
  # Older builds of the same image are of no use any more.
  find "${IMAGE_CACHE}" -maxdepth 1 -name "${name}-*.tar" ! -name "${tar##*/}" -delete
  log "${name}: built in $((SECONDS - t0))s ($(du -h "${tar}" | cut -f1))"
}

import_image() { # <name> <full image name>
  local tar ref="$2" have want
  tar="$(cached_tar "$1")"
  want="$(jq -r '.manifests[0].digest' < <(tar -xOf "${tar}" ./index.json))"
  have="$("${CTR[@]}" images ls "name==${ref}" 2>/dev/null | awk 'NR == 2 { print $3 }')"
  if [[ "${have}" == "${want}" ]]; then
    log "${ref}: already in containerd"
    return
  fi
  "${CTR[@]}" images import --base-name "${ref%:*}" "${tar}" >/dev/null
  have="$("${CTR[@]}" images ls "name==${ref}" | awk 'NR == 2 { print $3 }')"
  [[ "${have}" == "${want}" ]] || { log "${ref}: not in containerd after importing ${tar}"; return 1; }
  log "${ref}: imported"
}

as_needed_packages
mkdir -p "${IMAGE_CACHE}"
WORK="$(mktemp -d "${IMAGE_CACHE}/work.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT

for name in ${APPSTACK_IMAGES:-pause busybox postgres books_api books_web operator books_api_next}; do
  ensure_image "${name}"
done
log "images ready in $((SECONDS - start_time))s"

if ((import)); then
  [[ -f "${NODE_ENV}" ]] || { log "no real node in ${CLUSTER_DIR} (start one with up.sh --real-node)"; exit 1; }
  # shellcheck source=/dev/null
  source "${NODE_ENV}"
  CTR=(ctr --address "${CONTAINERD_SOCK}" -n k8s.io)
  import_start=${SECONDS}
  import_image pause "${PAUSE_IMAGE}"
  import_image busybox "${HELPER_IMAGE}"
  import_image postgres "${DB_IMAGE}"
  import_image books_api "${API_IMAGE}"
  import_image books_api_next "${API_IMAGE_NEXT}"
  import_image books_web "${WEB_IMAGE}"
  import_image operator "${OPERATOR_IMAGE}"
  log "imported into ${CONTAINERD_SOCK} in $((SECONDS - import_start))s"
fi
log "images.sh done in $((SECONDS - start_time))s"
