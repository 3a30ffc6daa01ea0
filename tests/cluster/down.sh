#!/usr/bin/env bash
# Stops the test cluster started by up.sh from the same APPSTACK_CLUSTER_DIR:
# SIGTERM to every recorded PID, SIGKILL to whatever is left after a grace
# period. Safe to run when nothing is running. Keeps logs and kubeconfig.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GRACE="${APPSTACK_CLUSTER_STOP_GRACE:-10}"

[[ -f "${PIDS_FILE}" ]] || exit 0

# Only signal a PID that still runs the binary we started, in case it has
# been reused by an unrelated process since.
ours() { # <name> <pid>
  local exe
  exe="$(readlink "/proc/$2/exe" 2>/dev/null)" || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$1" ]]
}

# "<name> <pid>" lines, last started first.
mapfile -t entries < <(tac "${PIDS_FILE}")
pids=()
for entry in "${entries[@]}"; do
  read -r name pid <<<"${entry}"
  [[ -n "${pid:-}" ]] || continue
  if ours "${name}" "${pid}"; then
    log "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    pids+=("${pid}")
  fi
done

deadline=$((SECONDS + GRACE))
for pid in "${pids[@]}"; do
  while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "${pid}" 2>/dev/null; then
    log "pid ${pid} still running after ${GRACE}s, sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
  fi
done
rm -f "${PIDS_FILE}"
