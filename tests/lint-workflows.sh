#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint (built once from its Go module, then reused).
# actionlint also runs shellcheck on `run:` blocks when shellcheck is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.7.12
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/appstack-tools/actionlint-$VERSION"
if [ ! -x "$BIN_DIR/actionlint" ]; then
  echo "building actionlint $VERSION into $BIN_DIR"
  GOBIN="$BIN_DIR" go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
fi
command -v shellcheck >/dev/null || echo "note: shellcheck not on PATH, run: blocks are not checked" >&2

"$BIN_DIR/actionlint" -no-color .github/workflows/*.yml
echo "actionlint $VERSION: workflows clean"
