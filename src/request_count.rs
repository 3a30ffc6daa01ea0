//! Counts the API requests of reconciles (`appstack_api_requests_total{verb}`): what a
//! reconcile costs the API server, which the benchmark reports per no-op reconcile.

use std::sync::Arc;

use kube::client::ClientBuilder;
use tower::util::MapRequestLayer;

use crate::metrics::Metrics;

/// A client that counts each request it sends in `metrics`.
pub async fn counted_client(metrics: Arc<Metrics>) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let count = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        let uri = request.uri();
        metrics.api_request(verb(request.method(), uri.path(), uri.query()));
        request
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&count).build())
}

/// The Kubernetes verb of a request.
fn verb(method: &http::Method, path: &str, query: Option<&str>) -> &'static str {
    let watching = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
    match *method {
        http::Method::GET if watching => "watch",
        http::Method::GET if names_a_collection(path) => "list",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

/// `/api/v1/namespaces/shop/pods` and `/apis/apps/v1/deployments`, not
/// `/apis/apps/v1/namespaces/shop/deployments/books-api` (one object) or its subresources.
fn names_a_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resource_path = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    };
    match resource_path {
        Some(["namespaces", _, rest @ ..]) if !rest.is_empty() => rest.len() == 1,
        Some(rest) => rest.len() == 1,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_the_method() {
        let one = "/apis/apps/v1/namespaces/shop/deployments/books-api";
        let all = "/api/v1/namespaces/shop/pods";
        assert_eq!(verb(&http::Method::GET, one, None), "get");
        assert_eq!(
            verb(&http::Method::GET, all, Some("labelSelector=a")),
            "list"
        );
        assert_eq!(
            verb(
                &http::Method::GET,
                all,
                Some("watch=true&timeoutSeconds=290")
            ),
            "watch"
        );
        assert_eq!(
            verb(&http::Method::PATCH, one, Some("fieldManager=x&force=true")),
            "patch"
        );
        assert_eq!(verb(&http::Method::POST, all, None), "create");
        assert_eq!(verb(&http::Method::DELETE, one, None), "delete");
    }

    #[test]
    fn collections_are_told_from_objects() {
        for (path, collection) in [
            ("/api/v1/namespaces/shop/pods", true),
            ("/api/v1/namespaces/shop/pods/books-db-0", false),
            ("/api/v1/namespaces/shop/pods/books-db-0/log", false),
            ("/apis/apps/v1/namespaces/shop/replicasets", true),
            (
                "/apis/appstack.dev/v1alpha1/namespaces/shop/appstacks/books/status",
                false,
            ),
            ("/apis/apps/v1/deployments", true),
            ("/api/v1/namespaces", true),
            ("/api/v1/namespaces/shop", false),
            ("/version", false),
        ] {
            assert_eq!(names_a_collection(path), collection, "{path}");
        }
    }
}
