#!/usr/bin/env bash
# Tests of the books sample app: pytest for the API against a real (throwaway) Postgres, Vitest for
# the React frontend, plus a production build of the frontend. Installs what is missing first:
# Postgres server binaries (apt), a Python venv, node_modules. Re-runs skip installs that are current.
set -euo pipefail
cd "$(dirname "$0")/.."

API=examples/books/api
WEB=examples/books/frontend
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/appstack-sample"
VENV="$CACHE/venv"
PYTHON="${PYTHON:-python3}"

log() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Postgres: the tests start their own cluster with initdb/pg_ctl (see $API/tests/postgres.py).
if ! command -v pg_ctl >/dev/null && ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
  log "installing postgresql"
  apt_install postgresql
fi

# Python venv, reinstalled only when the requirement files change.
"$PYTHON" -c 'import ensurepip' 2>/dev/null || { log "installing python3-venv"; apt_install python3-venv; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp=$(cat "$API"/requirements*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$stamp" ]; then
  log "installing Python requirements into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$API/requirements-dev.txt"
  echo "$stamp" > "$VENV/.requirements.sha256"
fi

# node_modules, reinstalled (npm ci) only when package-lock.json changes.
command -v npm >/dev/null || { echo "npm is required (Node >= 20.19)" >&2; exit 1; }
stamp=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$WEB/node_modules/.lock.sha256" 2>/dev/null)" != "$stamp" ]; then
  log "npm ci in $WEB"
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$stamp" > "$WEB/node_modules/.lock.sha256"
fi

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT

log "pytest ($API)"
(cd "$API" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$reports/pytest.xml")

log "vitest ($WEB)"
(cd "$WEB" && npx vitest run --reporter=default --reporter=junit --outputFile.junit="$reports/vitest.xml")

log "vite build ($WEB)"
(cd "$WEB" && npm run --silent build -- --logLevel=warn)

# One closing line for both suites (every failure above has already stopped the script).
"$VENV/bin/python" - "$reports"/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    for case in ET.parse(path).iter("testcase"):
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            failed += 1
        elif "skipped" in kinds:
            skipped += 1
        else:
            passed += 1
print(f"sample-app: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not passed else 0)
PY
