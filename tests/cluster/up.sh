#!/usr/bin/env bash
# Starts a throw-away Kubernetes control plane for integration tests, on
# loopback only: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# and KWOK simulating three nodes. State lives in ${APPSTACK_CLUSTER_DIR:-
# <repo>/target/cluster}: kubeconfig, env, pids, pki/ (reused), logs/, etcd/
# and pv/ (wiped on every start). A cluster previously started from the same
# dir is stopped first.
#
#   up.sh [--real-node]
#
# --real-node: instead of KWOK, one real node that runs containers (node.sh,
# node-up.sh): containerd, kubelet, kube-proxy, CoreDNS and
# local-path-provisioner, in a network namespace of their own; the apiserver
# then listens on the host end of that namespace's veth instead of 127.0.0.1.
# Needs root. Images come from images.sh (no registry).
#
# Env: APPSTACK_CLUSTER_PORT (default 16443; ports PORT..PORT+4 are used),
#      APPSTACK_CLUSTER_DIR, APPSTACK_CLUSTER_CACHE (see build.sh),
#      APPSTACK_CLUSTER_PVS (size of the PersistentVolume pool, default 150: volumes are Retain and never reused, and one full test run claims about 60),
#      APPSTACK_CLUSTER_TIMEOUT (seconds to wait per component, default 120),
#      APPSTACK_KCM_QPS (kube-controller-manager's requests/s to the apiserver, burst twice
#      that; unset: its defaults, 20 and 30; the benchmark raises it),
#      APPSTACK_CLUSTER_NET (--real-node: the 10.N /16 of pods and Services;
#      derived from the port by default).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=node.sh
source "${CLUSTER_SRC}/node.sh"

real_node=0
case "${1:-}" in
  --real-node) real_node=1 ;;
  "") ;;
  *) echo "usage: $0 [--real-node]" >&2; exit 2 ;;
esac

PORT="${APPSTACK_CLUSTER_PORT:-16443}"
ETCD_PORT=$((PORT + 1))
ETCD_PEER_PORT=$((PORT + 2))
KCM_PORT=$((PORT + 3))
SCHED_PORT=$((PORT + 4))
PV_COUNT="${APPSTACK_CLUSTER_PVS:-150}"
KCM_LIMITS=()
if [[ -n "${APPSTACK_KCM_QPS:-}" ]]; then
  KCM_LIMITS=(--kube-api-qps="${APPSTACK_KCM_QPS}" --kube-api-burst=$((2 * APPSTACK_KCM_QPS)))
fi
if ((real_node)); then
  node_settings "${PORT}" # SERVICE_CIDR, SERVICE_IP, HOST_IP, ...
  API_HOST="${HOST_IP}"
else
  SERVICE_CIDR=10.96.0.0/16
  SERVICE_IP=10.96.0.1 # first IP of SERVICE_CIDR: the `kubernetes` Service
  API_HOST=127.0.0.1
fi

start_time=${SECONDS}
if ((real_node)); then
  node_packages
  "${CLUSTER_SRC}/build.sh" --real-node >/dev/null
else
  "${CLUSTER_SRC}/build.sh" >/dev/null
fi
"${CLUSTER_SRC}/down.sh"

PKI="${CLUSTER_DIR}/pki"
KUBECONFIG_FILE="${CLUSTER_DIR}/kubeconfig"
rm -rf "${CLUSTER_DIR}/etcd" "${LOGS}" "${CLUSTER_DIR}/pv" "${NODE_DIR}"
mkdir -p "${LOGS}" "${CLUSTER_DIR}/pv"
: >"${PIDS_FILE}"

# If anything fails from here on: show the relevant log, stop what was started.
current_log=""
on_exit() {
  local rc=$?
  if ((rc != 0)); then
    show_current_log
    log "cluster did not come up (exit ${rc}); stopping what was started"
    "${CLUSTER_SRC}/down.sh" || true
  fi
}
trap on_exit EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "${PORT}" "${ETCD_PORT}" "${ETCD_PEER_PORT}" "${KCM_PORT}" "${SCHED_PORT}"; do
  if port_in_use "${p}"; then
    log "port ${p} on 127.0.0.1 is already in use (another cluster? set APPSTACK_CLUSTER_PORT)"
    exit 1
  fi
done

# The real node's network first: the apiserver listens on its host end.
if ((real_node)); then
  node_preflight
  mkdir -p "${NODE_DIR}"
  node_write_env
  node_network_up
fi

# ---------------------------------------------------------------- certificates
command -v openssl >/dev/null || { log "openssl is required"; exit 1; }

new_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

# new_ca <name> <CN>
new_ca() {
  new_key "${PKI}/$1.key"
  openssl req -x509 -new -key "${PKI}/$1.key" -subj "/CN=$2" -days 365 -sha256 \
    -out "${PKI}/$1.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign"
}

# new_cert <name> <CN> <O or ""> <extensions> [<CA name>]: key + signed cert.
new_cert() {
  local name="$1" cn="$2" org="$3" ext="$4" ca="${5:-ca}" subj="/CN=$2"
  [[ -z "${org}" ]] || subj="/O=${org}/CN=${cn}"
  new_key "${PKI}/${name}.key"
  openssl req -new -key "${PKI}/${name}.key" -subj "${subj}" -out "${PKI}/${name}.csr"
  openssl x509 -req -in "${PKI}/${name}.csr" -CA "${PKI}/${ca}.crt" -CAkey "${PKI}/${ca}.key" \
    -CAcreateserial -days 365 -sha256 -out "${PKI}/${name}.crt" \
    -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "${ext}") 2>/dev/null
  rm -f "${PKI}/${name}.csr"
}

# The apiserver's names: loopback, the `kubernetes` Service and, with the real node, the host
# end of its veth. Recorded next to the certificate, which is re-issued when they change.
APISERVER_SAN="subjectAltName=IP:127.0.0.1,IP:${SERVICE_IP},$([[ "${API_HOST}" == 127.0.0.1 ]] || echo "IP:${API_HOST},")DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"

gen_pki() {
  new_ca ca appstack-test-ca
  local client="extendedKeyUsage=clientAuth"
  new_cert apiserver kube-apiserver "" "extendedKeyUsage=serverAuth
${APISERVER_SAN}"
  echo "${APISERVER_SAN}" >"${PKI}/apiserver.san"
  # system:masters bypasses RBAC; the other identities get their permissions
  # from the bootstrap RBAC policy, exactly as in a kubeadm cluster.
  new_cert admin kubernetes-admin system:masters "${client}"
  new_cert controller-manager system:kube-controller-manager "" "${client}"
  new_cert scheduler system:kube-scheduler "" "${client}"
  # Aggregation layer (request-header authentication). Nothing is aggregated,
  # but without it kube-controller-manager and kube-scheduler keep logging
  # errors about the missing requestheader CA.
  new_ca front-proxy-ca front-proxy-ca
  new_cert front-proxy-client front-proxy-client "" "${client}" front-proxy-ca
  # ServiceAccount token signing key pair.
  new_key "${PKI}/sa.key"
  openssl pkey -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub"
  chmod 600 "${PKI}"/*.key
}

# write_kubeconfig <file> <cert name>: self-contained (certs embedded).
write_kubeconfig() {
  local b64=(base64 -w0)
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: appstack
  cluster:
    server: https://${API_HOST}:${PORT}
    certificate-authority-data: $("${b64[@]}" <"${PKI}/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $("${b64[@]}" <"${PKI}/$2.crt")
    client-key-data: $("${b64[@]}" <"${PKI}/$2.key")
contexts:
- name: appstack
  context:
    cluster: appstack
    user: $2
current-context: appstack
EOF
  chmod 600 "$1"
}

# Certificates are kept across restarts (faster, and the kubeconfig stays
# valid) unless incomplete or expiring within a day.
pki_valid() {
  local f
  for f in ca front-proxy-ca apiserver admin controller-manager scheduler front-proxy-client; do
    cert_valid "${f}" || return 1
  done
  [[ -f "${PKI}/sa.key" && -f "${PKI}/sa.pub" ]] &&
    [[ "$(cat "${PKI}/apiserver.san" 2>/dev/null)" == "${APISERVER_SAN}" ]]
}
cert_valid() { # <name>
  [[ -f "${PKI}/$1.key" ]] && openssl x509 -checkend 86400 -noout -in "${PKI}/$1.crt" >/dev/null 2>&1
}
if ! pki_valid; then
  log "generating certificates in ${PKI}"
  rm -rf "${PKI}"
  mkdir -p "${PKI}"
  gen_pki
fi
write_kubeconfig "${KUBECONFIG_FILE}" admin
write_kubeconfig "${PKI}/controller-manager.kubeconfig" controller-manager
write_kubeconfig "${PKI}/scheduler.kubeconfig" scheduler

# The real node's identities, signed by the same CA: the kubelet as a node (the Node authorizer
# and NodeRestriction apply), kube-proxy (bootstrap role system:node-proxier), CoreDNS and the
# provisioner (roles in node.sh), and the apiserver's client certificate for the kubelet API.
if ((real_node)); then
  node_certs=("kubelet system:node:${NODE_NAME} system:nodes" "kube-proxy system:kube-proxy -"
    "coredns appstack:coredns -" "local-path-provisioner appstack:local-path-provisioner -"
    "apiserver-kubelet-client kube-apiserver-kubelet-client system:masters")
  for spec in "${node_certs[@]}"; do
    read -r name cn org <<<"${spec}"
    [[ "${org}" != - ]] || org=""
    cert_valid "${name}" || new_cert "${name}" "${cn}" "${org}" "extendedKeyUsage=clientAuth"
    [[ "${name}" == apiserver-kubelet-client ]] || write_kubeconfig "${PKI}/${name}.kubeconfig" "${name}"
  done
fi

# ------------------------------------------------------------------- processes
# start <name> <args...>: runs ${BIN_DIR}/<name> with start_process (lib.sh).
start() {
  local name="$1"
  shift
  start_process "${name}" "${BIN_DIR}/${name}" "$@"
}

KUBECTL=("${BIN_DIR}/kubectl" --kubeconfig "${KUBECONFIG_FILE}")

# etcd: single member, plain HTTP on loopback. Test data is disposable, so skip
# fsync (much faster on slow CI disks).
start etcd \
  --name=appstack --data-dir="${CLUSTER_DIR}/etcd" \
  --listen-client-urls="http://127.0.0.1:${ETCD_PORT}" \
  --advertise-client-urls="http://127.0.0.1:${ETCD_PORT}" \
  --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-cluster="appstack=http://127.0.0.1:${ETCD_PEER_PORT}" \
  --unsafe-no-fsync --log-level=warn
wait_for "etcd health" etcd \
  bash -c "curl -fsS --max-time 5 http://127.0.0.1:${ETCD_PORT}/health | grep -q '\"health\":\"true\"'"

# kube-apiserver, flags modelled on kubeadm's. Default admission plugins (incl.
# PodSecurity) plus NodeRestriction. --advertise-address must be given because
# the bind address is loopback (else the apiserver picks the host's interface).
# The `kubernetes` Service gets no Endpoints: their validation forbids
# loopback addresses, so the endpoint reconciler is turned off.
# With the real node the apiserver listens on the host end of the node's veth
# (pods reach it there through the `kubernetes` Service) and reaches kubelets
# by their InternalIP (not by name through the host's resolver).
if ((real_node)); then
  api_flags=(--bind-address="${API_HOST}" --advertise-address="${API_HOST}"
    --kubelet-client-certificate="${PKI}/apiserver-kubelet-client.crt"
    --kubelet-client-key="${PKI}/apiserver-kubelet-client.key"
    --kubelet-preferred-address-types=InternalIP)
else
  api_flags=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)
fi
start kube-apiserver \
  "${api_flags[@]}" --secure-port="${PORT}" \
  --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
  --tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" \
  --client-ca-file="${PKI}/ca.crt" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="${PKI}/sa.pub" \
  --service-account-signing-key-file="${PKI}/sa.key" \
  --requestheader-client-ca-file="${PKI}/front-proxy-ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="${PKI}/front-proxy-client.crt" \
  --proxy-client-key-file="${PKI}/front-proxy-client.key"
wait_for "kube-apiserver /readyz" kube-apiserver \
  curl_ok --cacert "${PKI}/ca.crt" --cert "${PKI}/admin.crt" --key "${PKI}/admin.key" \
  "https://${API_HOST}:${PORT}/readyz"

# kube-controller-manager: all default controllers (+ the bootstrap-token
# ones, like kubeadm), each with its own ServiceAccount credentials. Single
# instance with a fresh etcd, so no leader election.
KCM_KUBECONFIG="${PKI}/controller-manager.kubeconfig"
start kube-controller-manager \
  --bind-address=127.0.0.1 --secure-port="${KCM_PORT}" --cert-dir="${PKI}/kcm-serving" \
  --kubeconfig="${KCM_KUBECONFIG}" \
  --authentication-kubeconfig="${KCM_KUBECONFIG}" \
  --authorization-kubeconfig="${KCM_KUBECONFIG}" \
  --client-ca-file="${PKI}/ca.crt" \
  --controllers='*,bootstrapsigner,tokencleaner' \
  --use-service-account-credentials=true \
  --service-account-private-key-file="${PKI}/sa.key" \
  --root-ca-file="${PKI}/ca.crt" \
  --cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
  --service-cluster-ip-range="${SERVICE_CIDR}" \
  "${KCM_LIMITS[@]}" \
  --leader-elect=false
wait_for "kube-controller-manager /healthz" kube-controller-manager \
  curl_ok -k "https://127.0.0.1:${KCM_PORT}/healthz"

SCHED_KUBECONFIG="${PKI}/scheduler.kubeconfig"
start kube-scheduler \
  --bind-address=127.0.0.1 --secure-port="${SCHED_PORT}" \
  --kubeconfig="${SCHED_KUBECONFIG}" \
  --authentication-kubeconfig="${SCHED_KUBECONFIG}" \
  --authorization-kubeconfig="${SCHED_KUBECONFIG}" \
  --leader-elect=false
wait_for "kube-scheduler /healthz" kube-scheduler \
  curl_ok -k "https://127.0.0.1:${SCHED_PORT}/healthz"

if ((real_node)); then
  # shellcheck source=node-up.sh
  source "${CLUSTER_SRC}/node-up.sh"
else # ------------------------------------------------------ KWOK nodes (the default)
# KWOK plays kubelet for the nodes annotated kwok.x-k8s.io/node=fake. HOME is
# redirected because kwok otherwise reads/creates ~/.kwok.
HOME="${CLUSTER_DIR}/kwok-home" start kwok \
  --kubeconfig="${KUBECONFIG_FILE}" --config="${CLUSTER_SRC}/manifests/kwok.yaml"

# ---------------------------------------------------------------- cluster setup
current_log="${LOGS}/kube-apiserver.log"
"${KUBECTL[@]}" apply -f "${CLUSTER_SRC}/manifests/nodes.yaml" \
  -f "${CLUSTER_SRC}/manifests/storage.yaml" >/dev/null

# Pool of hostPath PersistentVolumes for the default StorageClass. Retain: a
# released volume is left alone (nothing on the host needs cleaning up).
for i in $(seq -w 1 "${PV_COUNT}"); do
  mkdir -p "${CLUSTER_DIR}/pv/pv-${i}"
  cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-${i}
  labels:
    type: kwok
spec:
  storageClassName: standard
  capacity:
    storage: 10Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath:
    path: ${CLUSTER_DIR}/pv/pv-${i}
    type: DirectoryOrCreate
EOF
done | "${KUBECTL[@]}" apply -f - >/dev/null
log "created ${PV_COUNT} PersistentVolumes"

# Nodes are Ready once KWOK has played the node-initialize stage; then the node
# lifecycle controller lifts the not-ready taint that admission put on them.
nodes_ready() {
  local ready
  ready="$("${KUBECTL[@]}" get nodes -l type=kwok -o \
    jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{.spec.taints}{"\n"}{end}')"
  [[ "$(grep -cx True <<<"${ready}")" -eq 3 ]]
}
wait_for "3 kwok nodes Ready and untainted" kwok nodes_ready
fi # ------------------------------------------------------------------ KWOK nodes
# Pods can only be created once a namespace has its `default` ServiceAccount.
wait_for "default ServiceAccount" kube-controller-manager \
  "${KUBECTL[@]}" get serviceaccount default -n default

cat >"${CLUSTER_DIR}/env" <<EOF
export KUBECONFIG='${KUBECONFIG_FILE}'
export PATH='${BIN_DIR}':"\$PATH"
EOF

down_cmd="${CLUSTER_SRC}/down.sh"
[[ -z "${APPSTACK_CLUSTER_DIR:-}" ]] || down_cmd="APPSTACK_CLUSTER_DIR='${CLUSTER_DIR}' ${down_cmd}"
current_log=""
if ((real_node)); then
  log "cluster with real node ${NODE_NAME} up in $((SECONDS - start_time))s"
  cat <<EOF
Real node ${NODE_NAME}: pods ${POD_CIDR}, Services ${SERVICE_CIDR}, network namespace ${NETNS}
  (reachable from this machine only). Build and load the images: ${CLUSTER_SRC}/images.sh
EOF
else
  log "cluster up in $((SECONDS - start_time))s"
fi
cat <<EOF
Kubernetes ${K8S_VERSION} test cluster is up: https://${API_HOST}:${PORT}
  kubeconfig: ${KUBECONFIG_FILE}
  binaries:   ${BIN_DIR}
  logs:       ${LOGS}
Use it with:   source '${CLUSTER_DIR}/env' && kubectl get nodes
Stop it with:  ${down_cmd}
EOF
