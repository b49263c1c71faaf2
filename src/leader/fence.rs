//! Fencing the Kubernetes client: a replica that is not (or no longer) the leader cannot send
//! a write, whatever code path tries. Reads (the guard's watches, detection) always pass.
//! Every request also names the replica in its User-Agent, so the API server's audit log (and
//! the tests' mock) can tell which replica wrote.

use super::Leadership;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("not the leader: {0} does not execute (another replica holds the Lease)")]
pub struct NotLeader(String);

/// `client`, with every request naming this replica and, when `fenced`, writes refused
/// unless this replica leads.
pub fn replica_client(client: &kube::Client, leadership: Leadership, fenced: bool) -> kube::Client {
    let agent = format!(
        "coordination-engine/{} ({})",
        env!("CARGO_PKG_VERSION"),
        leadership.identity()
    );
    let agent = http::HeaderValue::from_str(&agent)
        .unwrap_or_else(|_| http::HeaderValue::from_static("coordination-engine"));
    let inner = client.clone();
    let send = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let client = inner.clone();
        async move { client.send(request).await }
    });
    let layer = FenceLayer {
        leadership,
        agent,
        fenced,
    };
    kube::client::ClientBuilder::new(layer.layer(send), client.default_namespace()).build()
}

#[derive(Clone)]
struct FenceLayer {
    leadership: Leadership,
    agent: http::HeaderValue,
    fenced: bool,
}

impl<S> Layer<S> for FenceLayer {
    type Service = Fence<S>;

    fn layer(&self, inner: S) -> Fence<S> {
        Fence {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Fence<S> {
    inner: S,
    layer: FenceLayer,
}

/// GET, HEAD and OPTIONS only read; every other verb changes the cluster, except the
/// creation of an access review (`authorization.k8s.io`), which only asks a question (the RBAC
/// self-check runs on followers too).
pub fn is_write(method: &http::Method, path: &str) -> bool {
    let reads = matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    let asks = *method == http::Method::POST && path.starts_with("/apis/authorization.k8s.io/");
    !(reads || asks)
}

impl<S, B> Service<http::Request<B>> for Fence<S>
where
    S: Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let leadership = &self.layer.leadership;
        if self.layer.fenced
            && is_write(request.method(), request.uri().path())
            && !leadership.is_leader()
        {
            let refused = NotLeader(leadership.identity().to_string());
            tracing::warn!(method = %request.method(), uri = %request.uri(), "{refused}");
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        request
            .headers_mut()
            .insert(http::header::USER_AGENT, self.layer.agent.clone());
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::is_write;
    use http::Method;

    #[test]
    fn reads_and_access_reviews_pass_the_fence_writes_do_not() {
        assert!(!is_write(&Method::GET, "/api/v1/pods"));
        assert!(!is_write(
            &Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        ));
        assert!(is_write(&Method::POST, "/api/v1/namespaces/a/events"));
        assert!(is_write(&Method::DELETE, "/api/v1/namespaces/a/pods/p"));
        assert!(is_write(
            &Method::PATCH,
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        ));
    }
}
