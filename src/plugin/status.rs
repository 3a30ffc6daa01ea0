//! `kubectl appstack status NAME`: the stack and every child as a tree, with readiness and the
//! reason of anything not ready. [`read`] gathers (the only part with a client), [`report`] and
//! [`format`] are pure.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client, ResourceExt};

use crate::crd::AppStack;
use crate::names;
use crate::plan::child::{Kind, Object, Slot};
use crate::plan::migration::{JobState, job_state};
use crate::resources::job::{DATABASE_CHECK_COMPONENT, MIGRATIONS_COMPONENT};
use crate::resources::{APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME};
use crate::stack::Component;
use crate::status::{READY, RolloutState, STALLED};

/// What reading one child gave.
#[derive(Clone, Debug)]
pub enum Read {
    Found(Box<Object>),
    Missing,
    Failed(String),
}

/// Everything `status` shows, as read from the cluster.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub stack: AppStack,
    pub children: Vec<(Slot, Read)>,
    pub pods: Vec<Pod>,
}

/// Read the stack `name`, its children and its pods.
pub async fn read(client: &Client, namespace: &str, name: &str) -> anyhow::Result<Snapshot> {
    let stacks: Api<AppStack> = Api::namespaced(client.clone(), namespace);
    let stack = stacks
        .get_opt(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("AppStack {name} not found in namespace {namespace}"))?;
    let reads = child_slots(&stack).into_iter().map(|slot| async move {
        let read = read_child(client, namespace, &slot).await;
        (slot, read)
    });
    let children = futures::future::join_all(reads).await;
    let selector = format!("{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={name}");
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|list| list.items)
        .unwrap_or_default();
    Ok(Snapshot {
        stack,
        children,
        pods,
    })
}

async fn read_child(client: &Client, namespace: &str, slot: &Slot) -> Read {
    // A Secret's metadata is enough, and its data never leaves the API server.
    if slot.kind == Kind::Secret {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        return match secrets.get_metadata_opt(&slot.name).await {
            Ok(Some(partial)) => Read::Found(Box::new(Object::Secret(Secret {
                metadata: partial.metadata,
                ..Secret::default()
            }))),
            Ok(None) => Read::Missing,
            Err(error) => Read::Failed(error.to_string()),
        };
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &slot.kind.api_resource());
    match api.get_opt(&slot.name).await {
        Ok(Some(found)) => match serde_json::to_value(found)
            .and_then(|value| Object::from_value(slot.kind, value))
        {
            Ok(object) => Read::Found(Box::new(object)),
            Err(error) => Read::Failed(error.to_string()),
        },
        Ok(None) => Read::Missing,
        Err(error) => Read::Failed(error.to_string()),
    }
}

/// Every child a stack can have, in the order the operator creates them. Names come from the
/// stack's name alone, so an invalid spec still shows what exists.
pub fn child_slots(stack: &AppStack) -> Vec<Slot> {
    let name = stack.name_any();
    let child = |component| names::child(&name, component);
    let secret = (stack.spec.database.existing_secret.clone())
        .unwrap_or_else(|| names::credentials_secret(&name));
    let mut slots = vec![
        Slot::new(Kind::Secret, secret),
        Slot::new(Kind::Claim, names::data_claim(&name)),
        Slot::new(Kind::NetworkPolicy, child(Component::Database)),
        Slot::new(Kind::NetworkPolicy, child(Component::Api)),
        // The check of the database image (gone an hour after it finished).
        Slot::new(
            Kind::Job,
            names::database_check_job(&name, &stack.spec.database.image),
        ),
        Slot::new(Kind::StatefulSet, child(Component::Database)),
    ];
    // The migration Job of the API image the spec names, before the API it gates.
    if stack.spec.api.migrations.is_some() {
        let job = names::migration_job(&name, &stack.spec.api.image);
        slots.push(Slot::new(Kind::Job, job));
    }
    slots.push(Slot::new(Kind::Deployment, child(Component::Api)));
    slots.push(Slot::new(Kind::Deployment, child(Component::Frontend)));
    for component in Component::ALL {
        slots.push(Slot::new(Kind::Service, child(component)));
    }
    for kind in [Kind::Autoscaler, Kind::DisruptionBudget] {
        for component in [Component::Api, Component::Frontend] {
            slots.push(Slot::new(kind, child(component)));
        }
    }
    slots.push(Slot::new(Kind::Ingress, names::ingress(&name)));
    slots
}

/// Children every stack has: their absence is worth showing. Optional ones (policies switched
/// off, no autoscaler, one pod, no Ingress) are left out when absent.
fn always_there(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Secret | Kind::Claim | Kind::StatefulSet | Kind::Deployment | Kind::Service
    )
}

/// One line of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Nesting: 0 for the stack, 1 for its children, 2 for pods.
    pub depth: usize,
    pub object: String,
    /// `True`, `False`, or `-` where readiness does not apply.
    pub ready: &'static str,
    /// What the object says, or why it is not ready.
    pub detail: String,
}

fn row(depth: usize, object: String, ready: Option<bool>, detail: String) -> Row {
    let ready = match ready {
        Some(true) => "True",
        Some(false) => "False",
        None => "-",
    };
    Row {
        depth,
        object,
        ready,
        detail,
    }
}

/// The stack's header line and the rows of its tree.
pub fn report(snapshot: &Snapshot) -> (String, Vec<Row>) {
    let stack = &snapshot.stack;
    let status = stack.status.clone().unwrap_or_default();
    let condition = |type_: &str| status.conditions.iter().find(|c| c.type_ == type_);
    let phase = status
        .phase
        .map(|p| format!("{p:?}"))
        .unwrap_or_else(|| "no status yet".into());
    let mut header = format!(
        "AppStack {}/{}: {phase}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    );
    if let Some(url) = &status.url {
        header.push_str(&format!(", {url}"));
    }
    let generation = stack.metadata.generation;
    if status.observed_generation < generation {
        header.push_str(&format!(
            "\nThe operator has not reconciled generation {} yet (status describes {}).",
            generation.unwrap_or_default(),
            status
                .observed_generation
                .map_or("none".into(), |g| g.to_string())
        ));
    }

    let ready = condition(READY);
    let stalled = condition(STALLED).filter(|c| c.status == "True");
    let stack_detail = match (ready, stalled) {
        (Some(ready), _) if ready.status == "True" => ready.reason.clone(),
        (_, Some(stalled)) => format!("{}: {}", stalled.reason, stalled.message),
        (Some(ready), None) => format!("{}: {}", ready.reason, ready.message),
        (None, _) => "the operator has not reported yet".into(),
    };
    let mut rows = vec![row(
        0,
        stack.name_any(),
        ready.map(|c| c.status == "True"),
        stack_detail,
    )];
    for (slot, read) in &snapshot.children {
        let title = format!("{}/{}", slot.kind.name(), slot.name);
        match read {
            Read::Found(object) => {
                let (ready, detail) = describe(object, &snapshot.pods);
                rows.push(row(1, title, ready, detail));
                if let Some(component) = workload_component(slot) {
                    rows.extend(pods_of(&snapshot.pods, component));
                }
            }
            Read::Missing if always_there(slot.kind) => {
                rows.push(row(1, title, Some(false), "missing".into()));
            }
            Read::Missing => {}
            Read::Failed(error) => rows.push(row(1, title, None, format!("cannot read: {error}"))),
        }
    }
    (header, rows)
}

/// The `app.kubernetes.io/component` of the pods shown under a workload.
fn workload_component(slot: &Slot) -> Option<&'static str> {
    match slot.kind {
        Kind::StatefulSet => Some(Component::Database.label()),
        Kind::Job if slot.name.contains("-dbcheck-") => Some(DATABASE_CHECK_COMPONENT),
        Kind::Job => Some(MIGRATIONS_COMPONENT),
        Kind::Deployment if slot.name.ends_with("-api") => Some(Component::Api.label()),
        Kind::Deployment if slot.name.ends_with("-frontend") => Some(Component::Frontend.label()),
        _ => None,
    }
}

/// Readiness (`None` where it does not apply) and what to say about one child.
fn describe(object: &Object, pods: &[Pod]) -> (Option<bool>, String) {
    if object.meta().deletion_timestamp.is_some() {
        return (Some(false), "being deleted".into());
    }
    match object {
        Object::Secret(_) => (None, "exists".into()),
        Object::Claim(claim) => claim_state(claim),
        Object::StatefulSet(set) => rollout(&RolloutState::of_statefulset(set)),
        Object::Deployment(deployment) => rollout(&RolloutState::of(deployment)),
        Object::Service(service) => (None, service_summary(service)),
        Object::Autoscaler(hpa) => autoscaler_state(hpa),
        Object::DisruptionBudget(pdb) => budget_state(pdb),
        Object::Ingress(ingress) => (None, ingress_summary(ingress)),
        Object::NetworkPolicy(policy) => (None, policy_summary(policy)),
        Object::Job(job) => {
            let what = match job.labels().get(LABEL_COMPONENT).map(String::as_str) {
                Some(DATABASE_CHECK_COMPONENT) => "database image check",
                _ => "migration",
            };
            match job_state(job, pods) {
                JobState::Succeeded => (Some(true), format!("{what} succeeded")),
                JobState::Running => (Some(false), format!("{what} running")),
                JobState::Failed(why) => (Some(false), format!("{what} failed: {why}")),
            }
        }
    }
}

fn claim_state(claim: &PersistentVolumeClaim) -> (Option<bool>, String) {
    let status = claim.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or_else(|| "Pending".into());
    let size = status
        .capacity
        .as_ref()
        .and_then(|c| c.get("storage"))
        .map(|q| format!(", {}", q.0))
        .unwrap_or_default();
    if phase == "Bound" {
        return (Some(true), format!("Bound{size}"));
    }
    let class = claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .map(|c| format!(" (StorageClass {c})"))
        .unwrap_or_default();
    (Some(false), format!("{phase}: not bound yet{class}"))
}

fn rollout(state: &RolloutState) -> (Option<bool>, String) {
    let image = state
        .image
        .as_ref()
        .map(|i| format!(", {i}"))
        .unwrap_or_default();
    if let Some(message) = &state.deadline_exceeded {
        return (Some(false), format!("ProgressDeadlineExceeded: {message}"));
    }
    let counts = format!("{}/{} ready", state.ready, state.desired);
    if state.complete() {
        return (Some(true), format!("{counts}{image}"));
    }
    let why = if !state.current {
        "rollout not observed yet".to_owned()
    } else {
        format!("{} updated", state.updated)
    };
    (Some(false), format!("{counts}, {why}{image}"))
}

fn service_summary(service: &Service) -> String {
    let spec = service.spec.clone().unwrap_or_default();
    let ports: Vec<String> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| p.port.to_string())
        .collect();
    format!(
        "{} {}:{}",
        spec.type_.unwrap_or_else(|| "ClusterIP".into()),
        spec.cluster_ip.unwrap_or_else(|| "-".into()),
        ports.join(",")
    )
}

fn autoscaler_state(hpa: &HorizontalPodAutoscaler) -> (Option<bool>, String) {
    let spec = hpa.spec.clone().unwrap_or_default();
    let status = hpa.status.clone().unwrap_or_default();
    let summary = format!(
        "{} pods (min {}, max {})",
        status.current_replicas.unwrap_or(0),
        spec.min_replicas.unwrap_or(1),
        spec.max_replicas
    );
    let failing = status.conditions.iter().flatten().find(|c| {
        c.status == "False" && matches!(c.type_.as_str(), "AbleToScale" | "ScalingActive")
    });
    match failing {
        Some(c) => (
            Some(false),
            format!(
                "{summary}; {}: {}",
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            ),
        ),
        None => (Some(true), summary),
    }
}

fn budget_state(pdb: &PodDisruptionBudget) -> (Option<bool>, String) {
    let status = pdb.status.clone().unwrap_or_default();
    let summary = format!(
        "{} pods healthy ({} needed), {} disruptions allowed",
        status.current_healthy, status.desired_healthy, status.disruptions_allowed
    );
    (
        Some(status.current_healthy >= status.desired_healthy),
        summary,
    )
}

fn ingress_summary(ingress: &Ingress) -> String {
    let hosts: Vec<String> = ingress
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .filter_map(|r| r.host.clone())
        .collect();
    let addresses: Vec<String> = ingress
        .status
        .iter()
        .flat_map(|s| s.load_balancer.iter())
        .flat_map(|lb| lb.ingress.iter().flatten())
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect();
    let address = if addresses.is_empty() {
        "no address yet (is an Ingress controller running?)".to_owned()
    } else {
        addresses.join(",")
    };
    format!("{} -> {address}", hosts.join(","))
}

/// Who a policy admits, in words: components of this stack, other namespaces, or anyone.
fn policy_summary(policy: &NetworkPolicy) -> String {
    let rules = policy.spec.iter().flat_map(|s| s.ingress.iter().flatten());
    let mut parts = Vec::new();
    for rule in rules {
        let ports: Vec<String> = rule
            .ports
            .iter()
            .flatten()
            .filter_map(|p| match &p.port {
                Some(IntOrString::Int(port)) => Some(port.to_string()),
                Some(IntOrString::String(name)) => Some(name.clone()),
                None => None,
            })
            .collect();
        let sources: Vec<String> = match &rule.from {
            None => vec!["anyone".into()],
            Some(peers) => peers
                .iter()
                .map(|peer| {
                    let pods = peer.pod_selector.as_ref();
                    let components: Vec<String> = pods
                        .and_then(|s| s.match_labels.as_ref())
                        .and_then(|l| l.get(LABEL_COMPONENT).cloned())
                        .into_iter()
                        .chain(
                            pods.into_iter()
                                .flat_map(|s| s.match_expressions.iter().flatten())
                                .filter(|e| e.key == LABEL_COMPONENT)
                                .flat_map(|e| e.values.clone().unwrap_or_default()),
                        )
                        .collect();
                    let namespace = peer
                        .namespace_selector
                        .as_ref()
                        .and_then(|s| s.match_labels.as_ref())
                        .and_then(|l| l.get("kubernetes.io/metadata.name").cloned());
                    match (namespace, components.is_empty()) {
                        (Some(namespace), _) => format!("namespace {namespace}"),
                        (None, false) => components.join(", "),
                        (None, true) => "pods of this namespace".into(),
                    }
                })
                .collect(),
        };
        parts.push(format!(
            "admits {} on {}",
            sources.join(", "),
            ports.join(",")
        ));
    }
    parts.join("; ")
}

/// The pods of `component`, as rows under their workload.
fn pods_of(pods: &[Pod], component: &str) -> Vec<Row> {
    let mut mine: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.labels().get(LABEL_COMPONENT).map(String::as_str) == Some(component))
        .collect();
    mine.sort_by_key(|p| p.name_any());
    mine.into_iter()
        .map(|pod| {
            let title = format!("Pod/{}", pod.name_any());
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            // A migration's pod that finished: readiness no longer applies.
            if phase == Some("Succeeded") {
                return row(2, title, None, "Succeeded".into());
            }
            let (ready, detail) = pod_state(pod);
            row(2, title, Some(ready), detail)
        })
        .collect()
}

/// Whether a pod is ready, and its phase or why not.
pub fn pod_state(pod: &Pod) -> (bool, String) {
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    if pod.metadata.deletion_timestamp.is_some() {
        return (false, "Terminating".into());
    }
    let conditions: BTreeMap<String, _> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c))
        .collect();
    let ready = conditions.get("Ready").is_some_and(|c| c.status == "True");
    if ready {
        return (true, phase);
    }
    // The most telling reason first: a container's, then scheduling, then the Ready condition.
    let container = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find_map(|c| {
            let state = c.state.as_ref()?;
            if let Some(waiting) = &state.waiting {
                let reason = waiting.reason.clone().unwrap_or_default();
                let message = waiting.message.clone().unwrap_or_default();
                return Some(format!("{}: {reason} {message}", c.name));
            }
            if let Some(terminated) = &state.terminated {
                let reason = terminated.reason.clone().unwrap_or_default();
                return Some(format!(
                    "{}: {reason} (exit code {})",
                    c.name, terminated.exit_code
                ));
            }
            (!c.ready).then(|| format!("{}: running, not ready (readiness probe)", c.name))
        });
    let scheduling = conditions
        .get("PodScheduled")
        .filter(|c| c.status == "False")
        .map(|c| {
            format!(
                "{}: {}",
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            )
        });
    let detail = container
        .or(scheduling)
        .unwrap_or_else(|| format!("{phase}, not ready"));
    (false, detail.trim().to_owned())
}

/// The header and a table with the tree in its first column.
pub fn format(header: &str, rows: &[Row]) -> String {
    let titles: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| format!("{}{}", prefix(rows, index), row.object))
        .collect();
    let width = titles
        .iter()
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = format!("{header}\n\n{:<width$}  READY  STATUS\n", "NAME");
    for (title, row) in titles.iter().zip(rows) {
        let pad = width - title.chars().count();
        let line = format!(
            "{title}{}  {:<5}  {}",
            " ".repeat(pad),
            row.ready,
            row.detail
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Tree branches for the row at `index`: `├── ` or `└── ` by whether a sibling follows, with
/// `│   ` where an ancestor has one.
fn prefix(rows: &[Row], index: usize) -> String {
    let depth = rows[index].depth;
    let mut prefix = String::new();
    for level in 1..=depth {
        // Does a row at `level` follow before the tree climbs above it?
        let sibling_follows = rows[index + 1..]
            .iter()
            .take_while(|r| r.depth >= level)
            .any(|r| r.depth == level);
        let last = level == depth;
        prefix.push_str(match (last, sibling_follows) {
            (true, true) => "├── ",
            (true, false) => "└── ",
            (false, true) => "│   ",
            (false, false) => "    ",
        });
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stack() -> AppStack {
        serde_json::from_value(json!({
            "apiVersion": "appstack.dev/v1alpha1", "kind": "AppStack",
            "metadata": {"name": "books", "namespace": "shop", "generation": 3},
            "spec": {"api": {"image": "api:1"}, "frontend": {"image": "web:1"}},
            "status": {"observedGeneration": 3, "phase": "Progressing", "url": "http://books.example.com",
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "RolloutInProgress",
                     "message": "api: 0/1 pods ready, 1 updated", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                    {"type": "Stalled", "status": "False", "reason": "AsExpected", "message": "",
                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn found(kind: Kind, value: serde_json::Value) -> Read {
        Read::Found(Box::new(Object::from_value(kind, value).unwrap()))
    }

    fn snapshot() -> Snapshot {
        let api = json!({
            "metadata": {"name": "books-api", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "api", "image": "api:1"}]}}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1}
        });
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "books-api-7d9f", "labels": {"app.kubernetes.io/component": "api"}},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "api", "ready": false, "restartCount": 0,
                "image": "api:1", "imageID": "",
                "state": {"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}}]}
        }))
        .unwrap();
        let policy = json!({
            "metadata": {"name": "books-db"},
            "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchExpressions": [
                {"key": "app.kubernetes.io/component", "operator": "In", "values": ["api", "migrations"]}]}}],
                "ports": [{"port": 5432}]}]}
        });
        Snapshot {
            stack: stack(),
            children: vec![
                (
                    Slot::new(Kind::Secret, "books-db-credentials"),
                    found(
                        Kind::Secret,
                        json!({"metadata": {"name": "books-db-credentials"}}),
                    ),
                ),
                (
                    Slot::new(Kind::Claim, "books-db-data"),
                    found(
                        Kind::Claim,
                        json!({"metadata": {"name": "books-db-data"}, "status": {"phase": "Pending"}}),
                    ),
                ),
                (
                    Slot::new(Kind::NetworkPolicy, "books-db"),
                    found(Kind::NetworkPolicy, policy),
                ),
                (Slot::new(Kind::StatefulSet, "books-db"), Read::Missing),
                (
                    Slot::new(Kind::Deployment, "books-api"),
                    found(Kind::Deployment, api),
                ),
                (Slot::new(Kind::Ingress, "books"), Read::Missing),
                (
                    Slot::new(Kind::Service, "books-api"),
                    Read::Failed("forbidden".into()),
                ),
            ],
            pods: vec![pod],
        }
    }

    #[test]
    fn shows_every_child_and_why_it_is_not_ready() {
        let (header, rows) = report(&snapshot());
        assert_eq!(
            header,
            "AppStack shop/books: Progressing, http://books.example.com"
        );
        let lines: Vec<(usize, &str, &str, &str)> = rows
            .iter()
            .map(|r| (r.depth, r.object.as_str(), r.ready, r.detail.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    0,
                    "books",
                    "False",
                    "RolloutInProgress: api: 0/1 pods ready, 1 updated"
                ),
                (1, "Secret/books-db-credentials", "-", "exists"),
                (
                    1,
                    "PersistentVolumeClaim/books-db-data",
                    "False",
                    "Pending: not bound yet"
                ),
                (
                    1,
                    "NetworkPolicy/books-db",
                    "-",
                    "admits api, migrations on 5432"
                ),
                (1, "StatefulSet/books-db", "False", "missing"),
                (
                    1,
                    "Deployment/books-api",
                    "False",
                    "0/1 ready, 1 updated, api:1"
                ),
                (
                    2,
                    "Pod/books-api-7d9f",
                    "False",
                    "api: ErrImagePull pull access denied"
                ),
                (1, "Service/books-api", "-", "cannot read: forbidden"),
            ],
            "an absent Ingress is optional and left out"
        );
    }

    #[test]
    fn prints_a_tree() {
        let (header, rows) = report(&snapshot());
        let text = format(&header, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["NAME", "READY", "STATUS"]
        );
        assert!(lines[3].starts_with("books "), "{text}");
        assert!(
            lines[4].starts_with("├── Secret/books-db-credentials"),
            "{text}"
        );
        assert!(lines[8].starts_with("├── Deployment/books-api"), "{text}");
        assert!(
            lines[9].starts_with("│   └── Pod/books-api-7d9f "),
            "{text}"
        );
        assert!(lines[10].starts_with("└── Service/books-api"), "{text}");
        let column = lines[2].find("READY").unwrap();
        assert_eq!(
            lines[9].chars().skip(column).take(5).collect::<String>(),
            "False",
            "columns line up: {text}"
        );
    }

    #[test]
    fn a_status_behind_the_spec_says_so() {
        let mut snapshot = snapshot();
        snapshot.stack.metadata.generation = Some(4);
        let (header, _) = report(&snapshot);
        assert!(
            header.ends_with(
                "The operator has not reconciled generation 4 yet (status describes 3)."
            ),
            "{header}"
        );
    }

    #[test]
    fn a_stalled_stack_shows_the_stalled_reason() {
        let mut snapshot = snapshot();
        let status = snapshot.stack.status.as_mut().unwrap();
        status.conditions[1].status = "True".into();
        status.conditions[1].reason = "NameConflict".into();
        status.conditions[1].message = "Service books-api exists and is not this stack's".into();
        let (_, rows) = report(&snapshot);
        assert_eq!(
            rows[0].detail,
            "NameConflict: Service books-api exists and is not this stack's"
        );
    }

    #[test]
    fn a_migration_job_shows_with_its_pods() {
        let mut snapshot = snapshot();
        snapshot.children = vec![(
            Slot::new(Kind::Job, "books-migrate-0a1b2c3d4e"),
            found(
                Kind::Job,
                json!({"metadata": {"name": "books-migrate-0a1b2c3d4e"},
                       "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
            ),
        )];
        snapshot.pods = vec![
            serde_json::from_value(json!({
                "metadata": {"name": "books-migrate-0a1b2c3d4e-x", "labels": {"app.kubernetes.io/component": "migrations"}},
                "status": {"phase": "Succeeded"}
            }))
            .unwrap(),
        ];
        let (_, rows) = report(&snapshot);
        let lines: Vec<(usize, &str, &str)> = rows[1..]
            .iter()
            .map(|r| (r.depth, r.ready, r.detail.as_str()))
            .collect();
        assert_eq!(
            lines,
            [(1, "True", "migration succeeded"), (2, "-", "Succeeded")]
        );
    }

    #[test]
    fn unschedulable_pods_say_why() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient cpu."}]}
        }))
        .unwrap();
        assert_eq!(
            pod_state(&pod),
            (
                false,
                "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.".into()
            )
        );
    }
}
