#!/usr/bin/env bash
# Prints the directory holding the cluster binaries (kubectl, kube-apiserver,
# ...) for the pinned versions, without building anything (see build.sh).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "${BIN_DIR}"
