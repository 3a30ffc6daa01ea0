#!/usr/bin/env bash
# Checks that a cluster started by up.sh behaves like a real one for what the
# operator's integration tests need: version, PodSecurity, Deployments becoming
# Available on KWOK nodes, PVC binding, garbage collection and CRD validation
# rules (CEL). Run after up.sh; leaves no objects behind when it passes.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBECTL=("${BIN_DIR}/kubectl" --kubeconfig "${CLUSTER_DIR}/kubeconfig")
k() { "${KUBECTL[@]}" "$@"; }
NS="smoke-$$"
fail() { log "FAIL: $*"; exit 1; }
pass() { log "ok: $*"; }

cleanup() {
  k delete namespace "${NS}" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  k delete crd widgets.smoke.appstack.test --ignore-not-found >/dev/null 2>&1 || true
}
trap cleanup EXIT

# 1. /version reports the pinned release.
version="$(k get --raw /version)"
grep -q "\"gitVersion\": *\"${K8S_VERSION}\"" <<<"${version}" || fail "/version: ${version}"
pass "/version is ${K8S_VERSION}"

# 2. A Deployment in a namespace enforcing the restricted Pod Security Standard.
k create namespace "${NS}" >/dev/null
k label namespace "${NS}" pod-security.kubernetes.io/enforce=restricted >/dev/null
# Pods cannot be created before the namespace's default ServiceAccount exists.
for _ in {1..60}; do k -n "${NS}" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.5; done

restricted_pod_spec() { # <extra YAML, indented 6 spaces>
  cat <<EOF
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: main
        image: registry.example/app:1
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
$1
EOF
}
deployment() { # <name> <replicas> <extra pod spec YAML>
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
$(restricted_pod_spec "$3")
EOF
}

deployment web 2 "" | k -n "${NS}" apply -f - >/dev/null
k -n "${NS}" wait deployment/web --for=condition=Available --timeout=90s >/dev/null ||
  fail "deployment web not Available: $(k -n "${NS}" get deploy,rs,pods -o wide 2>&1)"
ready="$(k -n "${NS}" get deployment web -o jsonpath='{.status.readyReplicas}')"
[[ "${ready}" == 2 ]] || fail "web has ${ready} ready replicas"
pass "Deployment with 2 restricted pods is Available"

# 3. PodSecurity rejects a privileged pod there.
if out="$(k -n "${NS}" run privileged --image=registry.example/app:1 \
  --overrides='{"spec":{"containers":[{"name":"privileged","image":"registry.example/app:1","securityContext":{"privileged":true}}]}}' 2>&1)"; then
  fail "privileged pod was admitted: ${out}"
fi
grep -q 'violates PodSecurity "restricted' <<<"${out}" || fail "unexpected error: ${out}"
pass "privileged pod rejected by PodSecurity"

# 4. A 1Gi claim binds (default StorageClass), and a pod using it gets Ready.
k -n "${NS}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
k -n "${NS}" wait pvc/data --for=jsonpath='{.status.phase}'=Bound --timeout=60s >/dev/null ||
  fail "PVC not bound: $(k -n "${NS}" describe pvc data 2>&1)"
pass "PVC bound to $(k -n "${NS}" get pvc data -o jsonpath='{.spec.volumeName}')"

deployment db 1 "        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: data}" | k -n "${NS}" apply -f - >/dev/null
k -n "${NS}" wait deployment/db --for=condition=Available --timeout=90s >/dev/null ||
  fail "deployment db not Available: $(k -n "${NS}" describe pods -l app=db 2>&1)"
node="$(k -n "${NS}" get pods -l app=db -o jsonpath='{.items[0].spec.nodeName}')"
[[ "${node}" == kwok-node-* ]] || fail "db pod on node '${node}'"
pass "Deployment mounting the PVC is Available (pod on ${node})"

# 5. Garbage collection of dependents whose owner is gone.
k -n "${NS}" create configmap owner >/dev/null
uid="$(k -n "${NS}" get configmap owner -o jsonpath='{.metadata.uid}')"
dependent() { # <name>
  k -n "${NS}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: $1
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: "${uid}"}]
EOF
}
dependent child-before
k -n "${NS}" delete configmap owner >/dev/null
dependent child-after # its owner is already deleted
k -n "${NS}" wait configmap/child-before configmap/child-after --for=delete --timeout=60s >/dev/null ||
  fail "dependents not garbage-collected: $(k -n "${NS}" get configmaps 2>&1)"
pass "ConfigMaps owned by a deleted owner are garbage-collected"

# 6. CRD validation rules (CEL).
k apply -f - >/dev/null <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.appstack.test}
spec:
  group: smoke.appstack.test
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              min: {type: integer}
              max: {type: integer}
            x-kubernetes-validations:
            - rule: self.min <= self.max
              message: min must not exceed max
EOF
k wait crd/widgets.smoke.appstack.test --for=condition=Established --timeout=30s >/dev/null
widget() { # <name> <min> <max>
  printf 'apiVersion: smoke.appstack.test/v1\nkind: Widget\nmetadata: {name: %s}\nspec: {min: %s, max: %s}\n' "$@" |
    k -n "${NS}" apply -f - 2>&1
}
out="$(widget good 1 2)" || fail "valid Widget rejected: ${out}"
if out="$(widget bad 3 2)"; then fail "invalid Widget accepted: ${out}"; fi
grep -q "min must not exceed max" <<<"${out}" || fail "unexpected error: ${out}"
pass "CEL validation rule rejects an invalid custom resource"

log "all smoke tests passed"
