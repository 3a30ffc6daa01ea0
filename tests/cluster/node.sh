# shellcheck shell=bash disable=SC2034
# The real node of `up.sh --real-node`: containerd, kubelet, kube-proxy (iptables), CoreDNS and
# local-path-provisioner, run as plain processes beside the control plane. Sourced after lib.sh
# by up.sh (node_settings, node_network_up, then node-up.sh starts the processes), down.sh
# (node_stop_tasks, node_sweep), images.sh and the real-pod tests. Defines variables and
# functions only.
#
# Network: everything that touches the pod network runs in a network namespace of its own (kept
# by a bind mount at ${NETNS_FILE}, not in /run/netns), whose only interfaces are loopback, the pod
# bridge and one end of a veth pair whose other end sits on the host. Neither the namespace nor
# the pods have a default route, so nothing they send can leave the machine. The host routes the pod and Service ranges into the namespace
# through the veth; the apiserver listens on the host end of it (HOST_IP), which is also the
# address pods reach it at (the `kubernetes` Service). kube-proxy's iptables rules and the
# forwarding/bridge sysctls live in the namespace, so the host's iptables are never touched.
#
#   host: HOST_VETH HOST_IP/30 ── veth ── namespace: uplink NS_IP/30, bridge BRIDGE NODE_IP/24, pods
#
# Mounts: containerd and kubelet each get a mount namespace of their own with tmpfs over /run,
# /var/lib and /var/log (see node_exec), because containerd 1.6 puts its shims' sockets in
# /run/containerd/s and kubelet writes /var/lib/kubelet/device-plugins and /var/log/containers
# whatever their configuration says. The machine's own paths are never written.
#
# State: ${NODE_DIR} (wiped by up.sh on start); ${NODE_DIR}/env records the settings so down.sh
# tears down exactly what up.sh made whatever the environment says then.

NODE_DIR="${CLUSTER_DIR}/node"
NODE_ENV="${NODE_DIR}/env"
NETNS_FILE="${NODE_DIR}/ns/net"
NODE_NAME=real-node
BRIDGE=appstack0
CLUSTER_DOMAIN=cluster.local
PAUSE_IMAGE=appstack.local/pause:1
HELPER_IMAGE=appstack.local/busybox:1
STORAGE_NAMESPACE=appstack-storage

# The images of the real node (images.sh builds them), named as examples/books.yaml and
# deploy/install.yaml name them, fully qualified as containerd stores them (postgres:17 is
# docker.io/library/postgres:17). Sets API_IMAGE, API_IMAGE_NEXT (the rolling-update test's
# second tag), WEB_IMAGE, DB_IMAGE, OPERATOR_IMAGE.
image_names() {
  API_IMAGE="$(image_of "${REPO_ROOT}/examples/books.yaml" "  api:")"
  WEB_IMAGE="$(image_of "${REPO_ROOT}/examples/books.yaml" "  frontend:")"
  DB_IMAGE="$(image_of "${REPO_ROOT}/examples/books.yaml" "  database:")"
  OPERATOR_IMAGE="$(image_of "${REPO_ROOT}/deploy/install.yaml" "kind: Deployment")"
  API_IMAGE="$(normalize_image "${API_IMAGE}")"
  WEB_IMAGE="$(normalize_image "${WEB_IMAGE}")"
  DB_IMAGE="$(normalize_image "${DB_IMAGE}")"
  OPERATOR_IMAGE="$(normalize_image "${OPERATOR_IMAGE}")"
  API_IMAGE_NEXT="${API_IMAGE%:*}:0.1.1"
}
# image_of <file> <line that starts the section>: the first `image: <name>` after that line.
image_of() {
  local name
  name="$(awk -v start="$2" '
    $0 == start { inside = 1 }
    inside && $1 == "image:" && $2 != "" { print $2; exit }
  ' "$1")"
  [[ -n "${name}" ]] || { log "no image after '$2' in $1"; return 1; }
  echo "${name}"
}
normalize_image() {
  local name="$1" first="${1%%/*}"
  if [[ "${name}" != */* ]]; then
    name="docker.io/library/${name}"
  elif [[ "${first}" != *.* && "${first}" != *:* && "${first}" != localhost ]]; then
    name="docker.io/${name}"
  fi
  [[ "${name##*/}" == *:* || "${name}" == *@* ]] || name="${name}:latest"
  echo "${name}"
}

# node_settings <apiserver port>: every name, address and port of the real node. All derive from
# the apiserver port, so clusters on different ports never collide (ports inside the namespace
# cannot collide with the host's anyway). APPSTACK_CLUSTER_NET=10.N picks the /16 by hand.
node_settings() {
  local port="$1"
  NET="${APPSTACK_CLUSTER_NET:-10.$((16 + port % 199))}"
  if [[ ! "${NET}" =~ ^10\.([0-9]+)$ ]] || ((BASH_REMATCH[1] > 254)); then
    log "APPSTACK_CLUSTER_NET must look like 10.N (N ≤ 254), not '${NET}'"
    return 1
  fi
  NETNS="appstack-${port}" # its name in logs and as the CNI network's name
  HOST_VETH="appstack${port}" # ≤ 15 characters
  POD_CIDR="${NET}.0.0/24"
  NODE_IP="${NET}.0.1"          # bridge gateway: kubelet, CoreDNS, the node's InternalIP
  SERVICE_CIDR="${NET}.128.0/24"
  SERVICE_IP="${NET}.128.1"     # the `kubernetes` Service
  HOST_IP="${NET}.255.1"        # host end of the veth: the apiserver
  NS_IP="${NET}.255.2"          # namespace end of the veth
  KUBELET_PORT=$((port + 5))
  KUBELET_HEALTHZ_PORT=$((port + 6)) # on the namespace's loopback, like the next ones
  PROXY_HEALTHZ_PORT=$((port + 7))
  PROXY_METRICS_PORT=$((port + 8))
  DNS_READY_PORT=$((port + 9))
  CGROUP="appstack-${port}"     # cgroup (v1 hierarchies and the v2 one) of every node process
  CONTAINERD_SOCK="${NODE_DIR}/containerd/containerd.sock"
}

# Writes the settings for down.sh, images.sh and the tests.
node_write_env() {
  cat >"${NODE_ENV}" <<EOF
NET='${NET}'
NETNS='${NETNS}'
HOST_VETH='${HOST_VETH}'
POD_CIDR='${POD_CIDR}'
NODE_IP='${NODE_IP}'
SERVICE_CIDR='${SERVICE_CIDR}'
SERVICE_IP='${SERVICE_IP}'
HOST_IP='${HOST_IP}'
NS_IP='${NS_IP}'
CGROUP='${CGROUP}'
CONTAINERD_SOCK='${CONTAINERD_SOCK}'
EOF
}

# in_netns <command...>: runs a command in the node's network namespace (only: the mount
# namespace stays the caller's).
in_netns() { nsenter --net="${NETNS_FILE}" -- "$@"; }

# Debian packages the real node needs; installed when missing (apt-get update once).
node_packages() {
  local missing=() pkg
  declare -A provides=([containerd]=containerd [runc]=runc [iptables]=iptables
    [conntrack]=conntrack [/usr/lib/cni/bridge]=containernetworking-plugins
    [nsenter]=util-linux [ip]=iproute2)
  for pkg in "${!provides[@]}"; do
    if [[ "${pkg}" == /* ]]; then [[ -x "${pkg}" ]] && continue; else command -v "${pkg}" >/dev/null && continue; fi
    missing+=("${provides[${pkg}]}")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Fails unless this machine can run the real node: root, cgroups, no address clash.
node_preflight() {
  if (($(id -u) != 0)); then
    log "--real-node needs root (network namespace, cgroups, containerd)"
    return 1
  fi
  if ip link show "${HOST_VETH}" >/dev/null 2>&1; then
    if [[ -n "$(node_cgroup_pids)" ]]; then
      log "interface ${HOST_VETH} already exists and a real node on this port is up (run down.sh)"
      return 1
    fi
    # A run killed before down.sh (a session's end, SIGKILL) leaves its veth and cgroups behind,
    # possibly from another clone: no process is left in them, so they are swept here.
    log "sweeping what a killed real node on this port left: interface ${HOST_VETH}, cgroup ${CGROUP}"
    ip link delete "${HOST_VETH}"
    node_remove_cgroups
  fi
  # The /16 must be unused on the host: no address, no route other than the default one.
  if ip -o addr | grep -q " ${NET//./\\.}\." || ip route | grep -q "^${NET//./\\.}\."; then
    log "${NET}.0.0/16 is already in use on this machine; choose another with APPSTACK_CLUSTER_NET=10.N"
    return 1
  fi
}

# The cgroup directories of the node, in every mounted hierarchy (the host is cgroup v1 with
# the unified v2 hierarchy beside it, or pure v2).
node_cgroup_dirs() {
  local fs mnt _
  while read -r _ mnt fs _; do
    [[ "${fs}" == cgroup || "${fs}" == cgroup2 ]] && echo "${mnt}/${CGROUP}"
  done </proc/mounts
}

# The PIDs of every process in the node's cgroups.
node_cgroup_pids() {
  local dir
  while read -r dir; do
    [[ -d "${dir}" ]] && find "${dir}" -name cgroup.procs -exec cat {} + 2>/dev/null
  done < <(node_cgroup_dirs)
}

# Removes the node's (empty) cgroups, children first.
node_remove_cgroups() {
  local dir
  while read -r dir; do
    [[ -d "${dir}" ]] && find "${dir}" -depth -type d -exec rmdir {} + 2>/dev/null
  done < <(node_cgroup_dirs)
  return 0
}

node_cgroups_up() {
  local dir parent
  while read -r dir; do
    mkdir -p "${dir}/daemons"
    parent="$(dirname "${dir}")"
    # New cpuset cgroups start with no CPUs and no memory nodes: inherit the parent's.
    if [[ -f "${parent}/cpuset.cpus" ]]; then
      cat "${parent}/cpuset.cpus" >"${dir}/cpuset.cpus"
      cat "${parent}/cpuset.mems" >"${dir}/cpuset.mems"
      cat "${dir}/cpuset.cpus" >"${dir}/daemons/cpuset.cpus"
      cat "${dir}/cpuset.mems" >"${dir}/daemons/cpuset.mems"
    fi
  done < <(node_cgroup_dirs)
}

# node_exec <netns|runtime|host> <command...>: the command line start_process runs for a node
# daemon. It joins the node's `daemons` cgroup (so containerd's shims are found and stopped with
# it), then execs the daemon: in the node's network namespace (netns), also in a mount namespace
# of its own (runtime: containerd and kubelet), or as is (host). Every step execs, so the
# recorded PID is the daemon's.
#
# The runtime mount namespace: tmpfs over /run, /var/lib and /var/log, with the node's own
# directories on /var/lib/kubelet and /var/log/containers. (`mount -n` everywhere: without it
# mount(8) creates /run/mount on the host for its utab.) kubelet's root dir is a shared mount
# (node_kubelet_mounts) made before either namespace, so the volumes kubelet mounts there reach
# containerd; containerd's own mounts (root filesystems, pod network namespaces) stay in its
# namespace and vanish with it.
node_exec() {
  local where="$1" procs=() dir
  shift
  while read -r dir; do procs+=("${dir}/daemons/cgroup.procs"); done < <(node_cgroup_dirs)
  if [[ "${where}" == netns || "${where}" == runtime ]]; then
    set -- nsenter --net="${NETNS_FILE}" -- "$@"
  fi
  if [[ "${where}" == runtime ]]; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    set -- unshare --mount --propagation unchanged -- bash -euc '
      for d in /run /var/lib /var/log; do mount -n -t tmpfs -o mode=0755 appstack-node "$d"; done
      mkdir /var/lib/kubelet /var/log/containers
      mount -n --bind "$1/var-lib-kubelet" /var/lib/kubelet
      mount -n --bind "$1/containers-logs" /var/log/containers
      shift
      exec "$@"' node-mounts "${NODE_DIR}/kubelet" "$@"
  fi
  # shellcheck disable=SC2016 # expanded by the inner bash
  NODE_CMD=(bash -c 'while [[ "$1" != -- ]]; do echo $$ >"$1"; shift; done; shift; exec "$@"'
    node-exec "${procs[@]}" -- "$@")
}

# start_node_process <name> <netns|runtime|host> <executable> <args...>
start_node_process() {
  local name="$1" where="$2"
  shift 2
  node_exec "${where}" "$@"
  start_process "${name}" "${NODE_CMD[@]}"
}

# Route the pod and Service ranges from the host into the namespace; nothing else goes there and
# nothing comes out but replies and connections to HOST_IP.
node_network_up() {
  # The namespace, kept by a bind mount on a file of the node's dir (on a private mount, as
  # `ip netns` does for /run/netns).
  mkdir -p "${NODE_DIR}/ns"
  mount -n --bind "${NODE_DIR}/ns" "${NODE_DIR}/ns"
  mount -n --make-private "${NODE_DIR}/ns"
  touch "${NETNS_FILE}"
  unshare --net="${NETNS_FILE}" true
  in_netns ip link set lo up
  # The veth is made inside and its host end moved to this shell's (the host's) namespace.
  in_netns ip link add uplink type veth peer name "${HOST_VETH}" netns "$$"
  ip addr add "${HOST_IP}/30" dev "${HOST_VETH}"
  ip link set "${HOST_VETH}" up
  in_netns ip addr add "${NS_IP}/30" dev uplink
  in_netns ip link set uplink up
  # The bridge exists before CNI (which adopts it) so that kubelet and CoreDNS can bind NODE_IP.
  in_netns ip link add "${BRIDGE}" type bridge
  in_netns ip addr add "${NODE_IP}/24" dev "${BRIDGE}"
  in_netns ip link set "${BRIDGE}" up
  # Service traffic that kube-proxy has not translated (yet) stays on the bridge and dies there.
  in_netns ip route add "${SERVICE_CIDR}" dev "${BRIDGE}"
  ip route add "${POD_CIDR}" via "${NS_IP}" dev "${HOST_VETH}"
  ip route add "${SERVICE_CIDR}" via "${NS_IP}" dev "${HOST_VETH}"
  # Per-namespace sysctls: routing between bridge and uplink, iptables for bridged traffic
  # (kube-proxy's hairpin and same-bridge Service replies need it).
  in_netns sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # Pods have routes to the pod and Service ranges only, so what the host sends straight to a
  # pod (psql to a pod IP, ...) leaves with the node's address, as on any node. Namespace-internal:
  # the rule goes with the namespace.
  in_netns iptables -w 5 -t nat -A POSTROUTING -s "${HOST_IP}/32" -o "${BRIDGE}" -j MASQUERADE
  node_check_routes
}

# Where packets would go (`ip route get` sends nothing). Fails if anything of ours could take the
# host's default route, or if the namespace had a route off the machine.
node_check_routes() {
  local got
  for addr in "${SERVICE_IP}" "${NODE_IP}" "${NET}.0.9"; do
    got="$(ip route get "${addr}")"
    [[ "${got}" == *" dev ${HOST_VETH} "* ]] || { log "host route to ${addr} is not via ${HOST_VETH}: ${got}"; return 1; }
  done
  got="$(in_netns ip route get "${SERVICE_IP}")"
  [[ "${got}" == *" dev ${BRIDGE} "* ]] || { log "namespace route to ${SERVICE_IP}: ${got}"; return 1; }
  if got="$(in_netns ip route get 192.0.2.1 2>&1)"; then
    log "the namespace has a route off the machine: ${got}"
    return 1
  fi
  log "routes: ${POD_CIDR} and ${SERVICE_CIDR} → ${HOST_VETH} → ${NETNS}; untranslated Service traffic → ${BRIDGE}; no default route in ${NETNS}"
}

# Kernel settings kubelet changes at start (vm.overcommit_memory, kernel.panic, ...): it has no
# option to leave them alone. up.sh records their values, down.sh restores them.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
node_save_sysctls() {
  local k
  for k in "${KUBELET_SYSCTLS[@]}"; do echo "${k}=$(sysctl -n "${k}")"; done >"${NODE_DIR}/sysctl.saved"
}

node_write_configs() {
  local pki="$1"
  mkdir -p "${NODE_DIR}"/{containerd,cni/net.d,cni/ipam,kubelet/root,kubelet/pod-logs,kube-proxy,coredns,storage/volumes}

  cat >"${NODE_DIR}/containerd/config.toml" <<EOF
# containerd of the real node: every path under ${NODE_DIR}/containerd (none of the machine's
# defaults), CRI with runc and the CNI bridge, sandbox image built by images.sh.
version = 2
root = "${NODE_DIR}/containerd/root"
state = "${NODE_DIR}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${NODE_DIR}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Pod network namespaces under state, not /run/netns.
  netns_mounts_under_state_dir = true
  # Root may not lower oom_score_adj here (no CAP_SYS_RESOURCE): without this the first
  # containers fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${NODE_DIR}/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${NODE_DIR}/cni/net.d"
EOF

  # Pods get an address on the bridge and routes to the pod and Service ranges only: no default
  # route, no masquerading (ipMasq false).
  cat >"${NODE_DIR}/cni/net.d/10-appstack.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "${NETNS}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "${POD_CIDR}", "gateway": "${NODE_IP}"}]],
        "routes": [{"dst": "${SERVICE_CIDR}"}],
        "dataDir": "${NODE_DIR}/cni/ipam"
      }
    }
  ]
}
EOF

  # Pods' DNS: the cluster's CoreDNS only (kubelet adds the search domains).
  echo "nameserver ${NODE_IP}" >"${NODE_DIR}/kubelet/resolv.conf"
  cat >"${NODE_DIR}/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${NODE_IP}
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT}
# Only the apiserver (client certificate of our CA, group system:masters) may use the kubelet API.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${pki}/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
# The host is cgroup v1 and systemd is not PID 1.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /${CGROUP}
clusterDNS: [${NODE_IP}]
clusterDomain: ${CLUSTER_DOMAIN}
resolvConf: ${NODE_DIR}/kubelet/resolv.conf
podLogsDir: ${NODE_DIR}/kubelet/pod-logs
volumePluginDir: ${NODE_DIR}/kubelet/volume-plugins
# A test node on a shared disk: evict only when really short, never garbage-collect images
# (they come from images.sh, there is no registry to pull them again).
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
EOF

  cat >"${NODE_DIR}/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: ${pki}/kube-proxy.kubeconfig}
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
healthzBindAddress: 127.0.0.1:${PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:${PROXY_METRICS_PORT}
nodePortAddresses: [${NODE_IP}/32]
# Root here may not lower its oom_score_adj; conntrack limits are the host's business (0: keep).
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 0s, syncPeriod: 30s, localhostNodePorts: false}
EOF

  # Serves cluster.local from the API and nothing else: no forward plugin, no upstream. Queries
  # for other zones get REFUSED.
  cat >"${NODE_DIR}/coredns/Corefile" <<EOF
${CLUSTER_DOMAIN}:53 {
    bind ${NODE_IP}
    errors
    ready 127.0.0.1:${DNS_READY_PORT}
    kubernetes ${CLUSTER_DOMAIN} {
        kubeconfig ${pki}/coredns.kubeconfig appstack
    }
    cache 30
    loadbalance
}
EOF

  # local-path-provisioner: volumes are directories under storage/volumes, made 0777 by a helper
  # pod (so uid 999 can write), removed with their claim.
  cat >"${NODE_DIR}/storage/config.json" <<EOF
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["${NODE_DIR}/storage/volumes"]}]}
EOF
  cat >"${NODE_DIR}/storage/helperPod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: helper-pod}
spec:
  containers:
  - name: helper-pod
    image: ${HELPER_IMAGE}
    imagePullPolicy: Never
EOF
}

# Cluster objects the node needs: RBAC for CoreDNS and the provisioner (each has its own client
# certificate), the provisioner's namespace and scripts, the default StorageClass.
node_manifests() {
  cat <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "appstack:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "appstack:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "appstack:coredns"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "appstack:coredns"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: ${STORAGE_NAMESPACE}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner-service-account, namespace: ${STORAGE_NAMESPACE}}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "appstack:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "appstack:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "appstack:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "appstack:local-path-provisioner"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: "appstack:local-path-provisioner", namespace: ${STORAGE_NAMESPACE}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, patch, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: "appstack:local-path-provisioner", namespace: ${STORAGE_NAMESPACE}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: "appstack:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "appstack:local-path-provisioner"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: ${STORAGE_NAMESPACE}}
data:
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
---
# The default class, as on most clusters: a volume per claim, on the node the pod runs on.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
EOF
}

# ---------------------------------------------------------------- teardown (down.sh)

# Stops every container of the node through containerd while it still runs, so that the shims
# exit and clean up after themselves.
node_stop_tasks() {
  [[ -S "${CONTAINERD_SOCK}" ]] || return 0
  local ctr=(ctr --address "${CONTAINERD_SOCK}" --timeout 10s -n k8s.io) id
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -s SIGKILL "${id}" >/dev/null 2>&1 || true
  done
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "${id}" >/dev/null 2>&1 || true
  done
}

# kubelet's root dir: a shared mount, so that what kubelet mounts there in its own mount namespace
# (secrets, projected tokens, emptyDirs in memory) is seen by containerd in its own.
node_kubelet_mounts() {
  local root="${NODE_DIR}/kubelet/root"
  mkdir -p "${root}" "${NODE_DIR}/kubelet/var-lib-kubelet" "${NODE_DIR}/kubelet/containers-logs"
  mount -n --bind "${root}" "${root}"
  mount -n --make-rshared "${root}"
}

# Removes whatever is left of the node: processes in its cgroups (by PID), mounts under the
# node's dir, the network namespace (and with it the veth, the bridge, the routes and
# kube-proxy's rules), the cgroups, and restores the kernel settings.
node_sweep() {
  local pid mnt i left
  # Processes: everything still in the node's cgroups (shims, containers) gets SIGKILL.
  for i in {1..50}; do
    left=0
    while read -r pid; do
      [[ -n "${pid}" ]] || continue
      kill -KILL "${pid}" 2>/dev/null && left=1
    done < <(node_cgroup_pids)
    ((left)) || break
    sleep 0.1
  done
  # The host end of the veth (with it the other end and the routes through it), now: the
  # namespace itself goes when its last reference does, which the kernel may finish later.
  if [[ -n "${HOST_VETH:-}" ]] && ip link show "${HOST_VETH}" >/dev/null 2>&1; then
    ip link delete "${HOST_VETH}"
  fi
  # Mounts seen from here (kubelet's root dir and the volumes in it, the network namespace's
  # file), deepest first. Unmounting the file releases the namespace: bridge, kube-proxy's rules.
  while read -r mnt; do
    umount -n -l "${mnt}" 2>/dev/null || true
  done < <(awk -v d="${NODE_DIR}/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  [[ -z "${HOST_VETH:-}" ]] ||
    log "removed the network namespace ${NETNS} (veth ${HOST_VETH}, routes, bridge, iptables rules)"
  node_remove_cgroups
  if [[ -f "${NODE_DIR}/sysctl.saved" ]]; then
    sysctl -q -p "${NODE_DIR}/sysctl.saved" >/dev/null
    rm -f "${NODE_DIR}/sysctl.saved"
  fi
}
