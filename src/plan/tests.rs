use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::test_fixtures::valid_stack;

pub(super) fn now() -> Time {
    Time(jiff::Timestamp::from_second(1_000_000).unwrap())
}

/// What the cluster holds after every Apply of `plan` went through.
pub(super) fn applied(plan: &Plan, mut existing: Existing) -> Existing {
    for step in &plan.steps {
        match step {
            Step::Apply { object, .. } | Step::Create { object } => {
                existing.children.insert(object.slot(), object.clone());
            }
            Step::Delete { slot } => {
                existing.children.remove(slot);
            }
            _ => {}
        }
    }
    existing
}

/// A stack planned from nothing, and what the cluster then holds.
pub(super) fn converged(spec: &str) -> (ValidStack, Existing) {
    let stack = valid_stack(spec);
    let plan = plan(&stack, &Existing::default(), "fresh", &now());
    let existing = applied(&plan, Existing::default());
    (stack, existing)
}

/// Each step as "Action Kind/name".
pub(super) fn summary(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Apply { object, change } => format!("{change:?} {}", object.slot()),
            Step::Create { object } => format!("CreateOnly {}", object.slot()),
            Step::SetOwners { slot, reason, .. } => format!("{reason} {slot}"),
            Step::Delete { slot } => format!("Delete {slot}"),
            Step::HandOverReplicas { name, replicas } => format!("HandOver {name} {replicas}"),
            Step::StopDatabase { slot } => format!("Stop {slot}"),
        })
        .collect()
}

fn hold_reason(plan: &Plan) -> Option<(&'static str, &'static str)> {
    plan.hold.as_ref().map(|hold| match hold {
        Hold::Blocked(b) => ("blocked", b.reason),
        Hold::Waiting(b) => ("waiting", b.reason),
    })
}

pub(super) fn live_mut<'a>(existing: &'a mut Existing, kind: Kind, name: &str) -> &'a mut Object {
    existing
        .children
        .get_mut(&Slot::new(kind, name))
        .unwrap_or_else(|| panic!("{name} exists"))
}

#[test]
fn a_new_stack_creates_everything_data_first() {
    let stack = valid_stack(
        "api: {image: a, autoscaling: {minReplicas: 2, maxReplicas: 5}}\ningress: {host: books.example.com}",
    );
    let plan = plan(&stack, &Existing::default(), "fresh", &now());
    assert_eq!(plan.hold, None);
    assert_eq!(
        summary(&plan),
        [
            "CreateOnly Secret books-db-credentials",
            "CreateOnly PersistentVolumeClaim books-db-data",
            "Create NetworkPolicy books-db",
            "Create NetworkPolicy books-api",
            // Which Postgres writes the data, learned by a check of the database image.
            &format!(
                "Create Job {}",
                names::database_check_job("books", "postgres:17")
            ),
            "Create StatefulSet books-db",
            "Create Deployment books-api",
            "Create Deployment books-frontend",
            "Create Service books-db",
            "Create Service books-api",
            "Create Service books-frontend",
            "Create HorizontalPodAutoscaler books-api",
            "Create PodDisruptionBudget books-api",
            "Create Ingress books",
        ]
    );
    let Some(Step::Apply {
        object: Object::Deployment(api),
        ..
    }) = plan.steps.get(6)
    else {
        panic!("api Deployment seventh")
    };
    assert_eq!(
        api.spec.as_ref().unwrap().replicas,
        Some(2),
        "starts at the autoscaler's minimum"
    );
    let Some(Step::Create {
        object: Object::Secret(secret),
    }) = plan.steps.first()
    else {
        panic!("Secret first")
    };
    assert_eq!(secret.data.as_ref().unwrap()["password"].0, b"fresh");
    assert_eq!(
        secret.metadata.owner_references, None,
        "data is never owned"
    );
}

#[test]
fn an_unchanged_stack_plans_no_write() {
    for spec in [
        "",
        "api: {image: a, autoscaling: {minReplicas: 2, maxReplicas: 5}}\ningress: {host: h.example.com, tls: {secretName: t}}",
    ] {
        let (stack, existing) = converged(spec);
        let again = plan(&stack, &existing, "another", &now());
        assert_eq!(summary(&again), Vec::<String>::new(), "{spec}");
        assert_eq!(again.hold, None);
    }
}

#[test]
fn removals_from_the_spec_are_written() {
    let (_, existing) = converged(
        "api: {image: a, command: [gunicorn], env: [{name: EXTRA, value: '1'}]}\ningress: {host: h.example.com, className: nginx, tls: {secretName: t}}",
    );
    let trimmed = valid_stack("api: {image: a}\ningress: {host: h.example.com}");
    let plan = plan(&trimmed, &existing, "unused", &now());
    assert_eq!(
        summary(&plan),
        ["Update Deployment books-api", "Update Ingress books"]
    );
}

#[test]
fn optional_children_come_and_go() {
    let (_, existing) = converged(
        "api: {image: a, replicas: 3, autoscaling: {minReplicas: 2, maxReplicas: 5}}\ningress: {host: h.example.com}",
    );
    let plain = valid_stack("api: {image: a, replicas: 3}");
    assert_eq!(
        summary(&plan(&plain, &existing, "unused", &now())),
        [
            "Update NetworkPolicy books-api",
            "Update Deployment books-api",
            "Delete HorizontalPodAutoscaler books-api",
            "Delete Ingress books",
        ],
        "without an Ingress, the API no longer admits the Ingress controller"
    );
}

#[test]
fn network_policies_go_when_switched_off_and_come_back() {
    let (_, existing) = converged("");
    let open = valid_stack("networkPolicy: false");
    let plan_off = plan(&open, &existing, "unused", &now());
    assert_eq!(
        summary(&plan_off),
        [
            "Delete NetworkPolicy books-db",
            "Delete NetworkPolicy books-api"
        ]
    );
    let without = applied(&plan_off, existing);
    assert_eq!(
        summary(&plan(&valid_stack(""), &without, "unused", &now())),
        [
            "Create NetworkPolicy books-db",
            "Create NetworkPolicy books-api"
        ]
    );
}

#[test]
fn data_is_created_only_and_updated_only_over_what_was_read() {
    let (_, mut existing) = converged("api: {image: a}");
    for (index, object) in existing.children.values_mut().enumerate() {
        object.meta_mut().resource_version = Some(format!("{}", 100 + index));
        object.meta_mut().uid = Some(format!("uid-{index}"));
    }
    // The claim now exists: the Secret records its UID, and the claim grows.
    let grown = valid_stack("api: {image: b}\ndatabase: {storage: {size: 5Gi}}");
    let plan = plan(&grown, &existing, "unused", &now());
    assert_eq!(
        summary(&plan),
        [
            "Update Secret books-db-credentials",
            "Update PersistentVolumeClaim books-db-data",
            "Update Deployment books-api",
        ]
    );
    for step in &plan.steps {
        let Step::Apply { object, .. } = step else {
            panic!("{step:?}")
        };
        let read = existing
            .get(&object.slot())
            .unwrap()
            .meta()
            .resource_version
            .clone();
        let guarded = matches!(object.kind(), Kind::Secret | Kind::Claim);
        assert_eq!(
            object.meta().resource_version,
            if guarded { read } else { None },
            "{}",
            object.slot()
        );
    }
    let Step::Apply {
        object: Object::Secret(secret),
        ..
    } = &plan.steps[0]
    else {
        panic!("Secret first")
    };
    assert_eq!(
        secret.data.as_ref().unwrap()["password"].0,
        b"fresh",
        "the password read, never a new one"
    );
}

#[test]
fn switching_autoscaling_on_hands_replicas_over_first() {
    let (_, mut existing) = converged("api: {image: a, replicas: 3}");
    if let Object::Deployment(api) = live_mut(&mut existing, Kind::Deployment, "books-api") {
        api.metadata.managed_fields = Some(vec![
            serde_json::from_value(serde_json::json!({
            "manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}))
            .unwrap(),
        ]);
    }
    let scaled = valid_stack("api: {image: a, autoscaling: {minReplicas: 2, maxReplicas: 5}}");
    assert_eq!(
        summary(&plan(&scaled, &existing, "unused", &now()))[..2],
        ["HandOver books-api 3", "Update Deployment books-api"]
    );
}

#[test]
fn a_recreated_stack_adopts_orphans_and_reuses_the_password() {
    let (stack, mut existing) = converged("");
    for object in existing.children.values_mut() {
        object.meta_mut().owner_references = None; // orphaned by `--cascade=orphan`
    }
    let plan = plan(&stack, &existing, "fresh", &now());
    let steps = summary(&plan);
    assert_eq!(
        steps.iter().filter(|s| s.starts_with("Adopted")).count(),
        9,
        "StatefulSet, two Deployments, three Services, the database image check and two NetworkPolicies: {steps:?}"
    );
    assert!(
        steps.iter().all(|s| s.starts_with("Adopted")),
        "adopting changes no content: {steps:?}"
    );
    assert!(!steps.iter().any(|s| s.contains("Secret")), "same password");
}

#[test]
fn legacy_owner_references_on_data_are_released() {
    let (stack, mut existing) = converged("");
    for (kind, name) in [
        (Kind::Secret, "books-db-credentials"),
        (Kind::Claim, "books-db-data"),
    ] {
        let owner = stack.owner.clone().unwrap();
        live_mut(&mut existing, kind, name)
            .meta_mut()
            .owner_references = Some(vec![owner]);
    }
    let plan = plan(&stack, &existing, "unused", &now());
    assert_eq!(
        summary(&plan),
        [
            "Released Secret books-db-credentials",
            "Released PersistentVolumeClaim books-db-data",
        ]
    );
    let Step::SetOwners { owners, .. } = &plan.steps[0] else {
        unreachable!()
    };
    assert!(owners.is_empty());
}

#[test]
fn a_foreign_name_fails_the_stack_but_ownership_still_moves() {
    let (stack, mut existing) = converged("");
    live_mut(&mut existing, Kind::Service, "books-api")
        .meta_mut()
        .labels = None;
    live_mut(&mut existing, Kind::Service, "books-api")
        .meta_mut()
        .owner_references = None;
    live_mut(&mut existing, Kind::StatefulSet, "books-db")
        .meta_mut()
        .owner_references = None;
    let plan = plan(&stack, &existing, "unused", &now());
    assert_eq!(hold_reason(&plan), Some(("blocked", "NameConflict")));
    assert_eq!(summary(&plan), ["Adopted StatefulSet books-db"]);
}

#[test]
fn a_terminating_claim_is_waited_for_and_released_by_the_database() {
    let (stack, mut existing) = converged("");
    live_mut(&mut existing, Kind::Claim, "books-db-data")
        .meta_mut()
        .deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    existing
        .children
        .remove(&Slot::new(Kind::Secret, "books-db-credentials"));
    let plan = plan(&stack, &existing, "fresh", &now());
    assert_eq!(
        hold_reason(&plan),
        Some(("waiting", "WaitingForPreviousClaim"))
    );
    assert_eq!(summary(&plan), ["Stop StatefulSet books-db"]);
}

#[test]
fn a_live_claim_without_its_secret_blocks_before_any_password() {
    let (stack, mut existing) = converged("");
    existing
        .children
        .remove(&Slot::new(Kind::Secret, "books-db-credentials"));
    let plan = plan(&stack, &existing, "fresh", &now());
    assert_eq!(hold_reason(&plan), Some(("blocked", "CredentialsLost")));
    assert!(plan.steps.is_empty());
}

#[test]
fn drift_is_restored_and_edited_labels_too() {
    let (stack, mut existing) = converged("");
    if let Object::Deployment(api) = live_mut(&mut existing, Kind::Deployment, "books-api") {
        api.metadata.labels.as_mut().unwrap().clear();
    }
    if let Object::Service(web) = live_mut(&mut existing, Kind::Service, "books-frontend") {
        web.spec.as_mut().unwrap().selector = None;
    }
    assert_eq!(
        summary(&plan(&stack, &existing, "unused", &now())),
        [
            "Update Deployment books-api",
            "Update Service books-frontend"
        ]
    );
}

#[test]
fn every_slot_is_read() {
    let stack = valid_stack("");
    assert_eq!(
        slots(&stack).len(),
        16,
        "the database Deployment of earlier versions and the NetworkPolicies too"
    );
    let external = valid_stack("database: {existingSecret: vault}");
    assert!(!slots(&external).iter().any(|s| s.kind == Kind::Secret));
}

#[test]
fn a_database_deployment_of_an_earlier_version_is_replaced_without_two_postmasters() {
    let (stack, mut existing) = converged("");
    let set = existing
        .children
        .remove(&Slot::new(Kind::StatefulSet, "books-db"))
        .unwrap();
    let legacy: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(serde_json::json!({
            "metadata": set.meta(),
            "spec": {"replicas": 1, "selector": {}, "template": {}},
        }))
        .unwrap();
    let legacy = Object::Deployment(legacy);
    existing.children.insert(legacy.slot(), legacy);
    existing.database_pods = 1;

    let first = plan(&stack, &existing, "unused", &now());
    assert_eq!(summary(&first), ["Stop Deployment books-db"]);
    assert_eq!(
        hold_reason(&first),
        Some(("waiting", "ReplacingDatabaseDeployment"))
    );

    if let Object::Deployment(d) = live_mut(&mut existing, Kind::Deployment, "books-db") {
        d.spec.as_mut().unwrap().replicas = Some(0);
    }
    let stopping = plan(&stack, &existing, "unused", &now());
    assert_eq!(
        summary(&stopping),
        Vec::<String>::new(),
        "the old pod still exists"
    );
    assert_eq!(
        hold_reason(&stopping),
        Some(("waiting", "ReplacingDatabaseDeployment"))
    );

    existing.database_pods = 0;
    let replaced = plan(&stack, &existing, "unused", &now());
    assert_eq!(hold_reason(&replaced), None);
    assert_eq!(
        summary(&replaced),
        ["Delete Deployment books-db", "Create StatefulSet books-db"],
        "same Secret and claim: no new password, no new claim"
    );
}
