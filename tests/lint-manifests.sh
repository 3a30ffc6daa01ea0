#!/usr/bin/env bash
# Lints what users apply with kube-score (https://kube-score.com, built once from its Go module
# and cached under ~/.cache/appstack-tools, like actionlint): the render of every example
# (`appstack-operator render -f examples/*.yaml`), deploy/install.yaml, and every kustomization
# under deploy/ as `kubectl kustomize` builds it. Each is scored on its own, for the oldest
# supported Kubernetes (1.33).
#
# Fails on any finding (critical or warning) that no entry of tests/kube-score-ignore matches, and
# on any entry that matches nothing (it would hide the next real finding). Prints each finding
# with the input it came from, and the time of the build (cold) or "cached" (warm).
#
# Needs Go (first run only), jq, cargo, and kubectl (on PATH, or the one tests/cluster/build.sh
# builds).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.20.0
KUBERNETES_VERSION=v1.33
IGNORE_FILE=tests/kube-score-ignore
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/appstack-tools/kube-score-$VERSION"
start=$SECONDS

if [ -x "$BIN_DIR/kube-score" ]; then
  echo "kube-score $VERSION: cached in $BIN_DIR (warm)"
else
  echo "building kube-score $VERSION into $BIN_DIR (cold) ..."
  # Into a scratch dir first, so that an interrupted build never looks like a cached one.
  mkdir -p "$(dirname "$BIN_DIR")"
  scratch="$(mktemp -d "$BIN_DIR.tmp.XXXXXX")"
  GOBIN="$scratch" go install -trimpath "github.com/zegl/kube-score/cmd/kube-score@$VERSION"
  rm -rf "$BIN_DIR"
  mv "$scratch" "$BIN_DIR"
  echo "kube-score $VERSION: built in $((SECONDS - start))s (cold)"
fi
KUBE_SCORE="$BIN_DIR/kube-score"

KUBECTL="$(command -v kubectl || true)"
if [ -z "$KUBECTL" ]; then
  KUBECTL="$(bash tests/cluster/bin-dir.sh)/kubectl"
  [ -x "$KUBECTL" ] || { echo "kubectl not found: put it on PATH or run tests/cluster/build.sh" >&2; exit 1; }
fi

# The inputs, each a file: "<label> <file>" lines.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
inputs=()
for example in examples/*.yaml; do
  out="$WORK/render-$(basename "$example")"
  cargo run -q --locked -- render -f "$example" >"$out"
  inputs+=("render:$example $out")
done
inputs+=("deploy/install.yaml deploy/install.yaml")
while read -r kustomization; do
  dir="$(dirname "$kustomization")"
  out="$WORK/kustomize-${dir//\//-}.yaml"
  "$KUBECTL" kustomize "$dir" >"$out"
  inputs+=("kustomize:$dir/ $out")
done < <(find deploy -name kustomization.yaml | LC_ALL=C sort)

# The ignore list: "<check id> <Kind/name> <finding>" (shell patterns), comments and blanks aside.
ignores=()
while IFS= read -r line; do
  [[ -z "${line// /}" || "$line" == \#* ]] || ignores+=("$line")
done <"$IGNORE_FILE"
declare -A used=()

# One finding per line: "<check id>\t<Kind/name>\t<finding>" (a failing check without comments
# counts once, under its name). kube-score exits 1 when it has critical findings: its verdict is
# taken from its JSON, which must list the input's objects.
findings() { # <file> <json out>
  "$KUBE_SCORE" score --output-format json --kubernetes-version "$KUBERNETES_VERSION" "$1" >"$2" || true
  jq -e 'type == "array" and length > 0' "$2" >/dev/null ||
    { echo "kube-score scored nothing in $1: $(head -c 500 "$2")" >&2; return 1; }
  jq -r '.[] | (.type_meta.kind + "/" + .object_meta.name) as $object
      | .checks[] | select(.grade < 10 and (.skipped | not))
      | .check.id as $id
      | (if (.comments // []) == [] then [{summary: .check.name}] else .comments end)[]
      | [$id, $object, .summary] | @tsv' "$2"
}

failed=0
total=0
for input in "${inputs[@]}"; do
  label="${input% *}"
  file="${input##* }"
  count=0 ignored=0
  findings "$file" "$WORK/score.json" >"$WORK/findings.tsv"
  while IFS=$'\t' read -r id object summary; do
    count=$((count + 1))
    matched=""
    for index in "${!ignores[@]}"; do
      read -r want_id want_object want_summary <<<"${ignores[$index]}"
      # shellcheck disable=SC2053 # the ignore list's fields are patterns
      if [[ "$id" == $want_id && "$object" == $want_object && "$summary" == $want_summary ]]; then
        matched=1
        used[$index]=1
        break
      fi
    done
    if [ -n "$matched" ]; then
      ignored=$((ignored + 1))
    else
      echo "FINDING $label: $id $object: $summary"
      failed=1
    fi
  done <"$WORK/findings.tsv"
  total=$((total + count))
  echo "kube-score $label: $count findings, $ignored in $IGNORE_FILE"
done

for index in "${!ignores[@]}"; do
  if [ -z "${used[$index]:-}" ]; then
    echo "UNUSED entry of $IGNORE_FILE (it matches no finding: remove it): ${ignores[$index]}"
    failed=1
  fi
done
echo "kube-score $VERSION: ${#inputs[@]} inputs, $total findings, ${#ignores[@]} ignore entries, $((SECONDS - start))s"
if [ "$failed" -ne 0 ]; then
  echo "kube-score: findings above are not in $IGNORE_FILE: fix them, or add an entry saying why it does not apply" >&2
  exit 1
fi
echo "kube-score: clean"
