#!/usr/bin/env bash
# Stops the test cluster started by up.sh from the same APPSTACK_CLUSTER_DIR:
# SIGTERM to every recorded PID, SIGKILL to whatever is left after a grace
# period. Safe to run when nothing is running. Keeps logs and kubeconfig.
# With a real node (up.sh --real-node) it also stops the containers, then
# removes what up.sh added to the machine: mounts, the network namespace (with
# its bridge, veth, routes and iptables rules), cgroups,
# and restores the kernel settings kubelet changed (node.sh: node_sweep).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node.sh
source "${CLUSTER_SRC}/node.sh"

GRACE="${APPSTACK_CLUSTER_STOP_GRACE:-10}"

real_node=0
if [[ -f "${NODE_ENV}" ]]; then
  real_node=1
  # shellcheck source=/dev/null
  source "${NODE_ENV}"
fi

if [[ ! -f "${PIDS_FILE}" ]]; then
  # Nothing running; a real node whose processes are gone may still have left state behind.
  if ((real_node)); then node_sweep; rm -f "${NODE_ENV}"; fi
  exit 0
fi

# Only signal a PID that still runs the binary we started, in case it has
# been reused by an unrelated process since.
ours() { # <name> <pid>
  local exe
  exe="$(readlink "/proc/$2/exe" 2>/dev/null)" || return 1
  [[ "$(basename "${exe% (deleted)}")" == "$1" ]]
}

# Stop in reverse start order, one at a time: the apiserver shuts down in ~2s
# while etcd is still there, but hangs until SIGKILL if etcd goes first.
# `ours` rather than `kill -0` to wait: it is also false for a zombie.
while read -r name pid _; do
  if [[ -z "${pid:-}" ]] || ! ours "${name}" "${pid}"; then continue; fi
  # Containers go while containerd still runs (kubelet is already stopped): their shims exit
  # cleanly instead of being killed in the sweep.
  if [[ "${name}" == containerd ]]; then node_stop_tasks; fi
  log "stopping ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  deadline=$((SECONDS + GRACE))
  while ours "${name}" "${pid}" && ((SECONDS < deadline)); do sleep 0.1; done
  if ours "${name}" "${pid}"; then
    log "${name} (pid ${pid}) still running after ${GRACE}s, sending SIGKILL"
    kill -KILL "${pid}" 2>/dev/null || true
    for _ in {1..50}; do ours "${name}" "${pid}" || break; sleep 0.1; done
  fi
done < <(tac "${PIDS_FILE}")
rm -f "${PIDS_FILE}"
if ((real_node)); then
  node_sweep
  rm -f "${NODE_ENV}"
fi
