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
        metrics.api_request(verb(request.method(), request.uri().query()));
        request
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&count).build())
}

/// The Kubernetes verb of a request (a GET on a collection, a list, counts as `get`).
fn verb(method: &http::Method, query: Option<&str>) -> &'static str {
    let watching = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
    match *method {
        http::Method::GET if watching => "watch",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_the_method() {
        assert_eq!(verb(&http::Method::GET, Some("labelSelector=a")), "get");
        assert_eq!(
            verb(&http::Method::GET, Some("watch=true&timeoutSeconds=290")),
            "watch"
        );
        assert_eq!(
            verb(&http::Method::PATCH, Some("fieldManager=x&force=true")),
            "patch"
        );
        assert_eq!(verb(&http::Method::POST, None), "create");
        assert_eq!(verb(&http::Method::DELETE, None), "delete");
    }
}
