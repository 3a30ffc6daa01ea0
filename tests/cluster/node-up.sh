# shellcheck shell=bash disable=SC2034
# Part of up.sh --real-node, sourced once the control plane is up: starts the real node's
# processes (node.sh) and waits for each. Uses up.sh's variables (PKI, KUBECTL, ...).

current_log="${LOGS}/kube-apiserver.log"
node_save_sysctls
node_write_configs "${PKI}"
node_kubelet_mounts
node_cgroups_up
"${KUBECTL[@]}" apply -f <(node_manifests) >/dev/null

start_node_process containerd runtime /usr/bin/containerd --config "${NODE_DIR}/containerd/config.toml"
wait_for "containerd" containerd ctr --address "${CONTAINERD_SOCK}" version

start_node_process kubelet runtime "${NODE_BIN_DIR}/kubelet" \
  --config="${NODE_DIR}/kubelet/config.yaml" \
  --kubeconfig="${PKI}/kubelet.kubeconfig" \
  --root-dir="${NODE_DIR}/kubelet/root" --cert-dir="${NODE_DIR}/kubelet/pki" \
  --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" \
  --node-labels=type=real
wait_for "node ${NODE_NAME} registered" kubelet "${KUBECTL[@]}" get node "${NODE_NAME}"

# kube-proxy must have written the Service rules before any pod can use a Service.
start_node_process kube-proxy netns "${NODE_BIN_DIR}/kube-proxy" \
  --config="${NODE_DIR}/kube-proxy/config.yaml"
proxy_synced() {
  curl_ok_netns "http://127.0.0.1:${PROXY_HEALTHZ_PORT}/healthz" &&
    in_netns iptables -w 5 -t nat -S KUBE-SERVICES | grep -q 'default/kubernetes:https'
}
curl_ok_netns() { in_netns curl -fsS --max-time 5 -o /dev/null "$1"; }
wait_for "kube-proxy first sync (iptables rules of the kubernetes Service)" kube-proxy proxy_synced

start_node_process coredns netns "${NODE_BIN_DIR}/coredns" -conf "${NODE_DIR}/coredns/Corefile"
wait_for "CoreDNS ready" coredns curl_ok_netns "http://127.0.0.1:${DNS_READY_PORT}/ready"

start_node_process local-path-provisioner host "${NODE_BIN_DIR}/local-path-provisioner" --debug start \
  --kubeconfig="${PKI}/local-path-provisioner.kubeconfig" \
  --namespace="${STORAGE_NAMESPACE}" --service-account-name=local-path-provisioner-service-account \
  --config="${NODE_DIR}/storage/config.json" --configmap-name=local-path-config \
  --helper-pod-file="${NODE_DIR}/storage/helperPod.yaml" --helper-image="${HELPER_IMAGE}" \
  --provisioner-name=rancher.io/local-path
wait_for "local-path-provisioner started" local-path-provisioner \
  grep -q "Provisioner started" "${LOGS}/local-path-provisioner.log"

node_ready() {
  [[ "$("${KUBECTL[@]}" get node "${NODE_NAME}" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}{.spec.taints}')" == True ]]
}
wait_for "node ${NODE_NAME} Ready and untainted" kubelet node_ready
