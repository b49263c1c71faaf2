//! Current CPU and memory usage of a scope, in percent of what its containers request: the
//! input of the predictive-analytics model (`ml::predict`). Values reach PromQL escaped.

use super::prometheus::Prometheus;
use super::{AnalyticsError, matcher};

/// What the usage is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Pod,
    Deployment,
    Namespace,
    Cluster,
}

impl Scope {
    /// `pod`, `deployment`, `namespace` or `cluster`.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "pod" => Some(Scope::Pod),
            "deployment" => Some(Scope::Deployment),
            "namespace" => Some(Scope::Namespace),
            "cluster" => Some(Scope::Cluster),
            _ => None,
        }
    }
}

/// The scope's objects: a namespace, and a pod or a deployment (object names, already
/// checked to be DNS names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Objects {
    pub namespace: Option<String>,
    pub deployment: Option<String>,
    pub pod: Option<String>,
}

/// The label matchers that select the scope's containers (`a="x",pod=~"y-.*"`). A pod or a
/// deployment only narrows its own scope.
pub fn selector(scope: Scope, objects: &Objects) -> String {
    let mut matchers = Vec::new();
    if let Some(ns) = &objects.namespace {
        matchers.push(matcher("namespace", ns));
    }
    match (scope, &objects.pod, &objects.deployment) {
        (Scope::Pod, Some(p), _) => matchers.push(matcher("pod", p)),
        // Object names have no regex metacharacters but `.`.
        (Scope::Deployment, _, Some(d)) => {
            matchers.push(format!("pod=~\"{}-.*\"", d.replace('.', "\\\\.")))
        }
        _ => {}
    }
    matchers.join(",")
}

/// How the scope is named in answers: `ns/pod`, `ns/deployment`, `cluster`, the namespace,
/// or `all namespaces`.
pub fn target_name(scope: Scope, objects: &Objects) -> String {
    let namespace = objects.namespace.as_deref();
    match (scope, &objects.pod, &objects.deployment) {
        (Scope::Pod, Some(p), _) => format!("{}/{p}", namespace.unwrap_or("")),
        (Scope::Deployment, _, Some(d)) => format!("{}/{d}", namespace.unwrap_or("")),
        (Scope::Cluster, _, _) => "cluster".into(),
        _ => namespace.unwrap_or("all namespaces").to_string(),
    }
}

/// The two PromQL queries: CPU, then memory, each `100 * usage / requests` over `selector`.
pub fn queries(selector: &str) -> (String, String) {
    // `{a,b}` from the non-empty parts.
    let braces = |parts: &[&str]| {
        let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        format!("{{{}}}", parts.join(","))
    };
    let percent = |usage: String, resource: &str| {
        let requested = braces(&[selector, &format!("resource=\"{resource}\"")]);
        format!("100 * sum({usage}) / sum(kube_pod_container_resource_requests{requested})")
    };
    let containers = braces(&["container!=\"\"", selector]);
    (
        percent(
            format!("rate(container_cpu_usage_seconds_total{containers}[5m])"),
            "cpu",
        ),
        percent(
            format!("container_memory_working_set_bytes{containers}"),
            "memory",
        ),
    )
}

/// CPU and memory usage in percent of the requests of the scope, from Prometheus (`None` when
/// it has no finite answer for either).
pub async fn measured(
    prometheus: &Prometheus,
    selector: &str,
) -> Result<Option<(f64, f64)>, AnalyticsError> {
    let (cpu_query, memory_query) = queries(selector);
    let cpu = prometheus.instant(&cpu_query).await?;
    let memory = prometheus.instant(&memory_query).await?;
    Ok(match (cpu.first(), memory.first()) {
        (Some(c), Some(m)) if c.value.is_finite() && m.value.is_finite() => {
            Some((c.value, m.value))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(namespace: Option<&str>, deployment: Option<&str>, pod: Option<&str>) -> Objects {
        Objects {
            namespace: namespace.map(Into::into),
            deployment: deployment.map(Into::into),
            pod: pod.map(Into::into),
        }
    }

    #[test]
    fn a_pod_or_a_deployment_narrows_only_its_own_scope() {
        let all = objects(Some("shop"), Some("cart.v2"), Some("cart-1"));
        assert_eq!(
            selector(Scope::Pod, &all),
            r#"namespace="shop",pod="cart-1""#
        );
        assert_eq!(
            selector(Scope::Deployment, &all),
            r#"namespace="shop",pod=~"cart\\.v2-.*""#
        );
        assert_eq!(selector(Scope::Namespace, &all), r#"namespace="shop""#);
        assert_eq!(selector(Scope::Cluster, &objects(None, None, None)), "");
        assert_eq!(target_name(Scope::Pod, &all), "shop/cart-1");
        assert_eq!(target_name(Scope::Deployment, &all), "shop/cart.v2");
        assert_eq!(target_name(Scope::Cluster, &all), "cluster");
        assert_eq!(target_name(Scope::Namespace, &all), "shop");
        assert_eq!(
            target_name(Scope::Pod, &objects(None, None, None)),
            "all namespaces"
        );
    }

    #[test]
    fn usage_is_a_percentage_of_the_requests_of_the_same_containers() {
        let (cpu, memory) = queries(r#"namespace="shop""#);
        assert_eq!(
            cpu,
            r#"100 * sum(rate(container_cpu_usage_seconds_total{container!="",namespace="shop"}[5m])) / sum(kube_pod_container_resource_requests{namespace="shop",resource="cpu"})"#
        );
        assert_eq!(
            memory,
            r#"100 * sum(container_memory_working_set_bytes{container!="",namespace="shop"}) / sum(kube_pod_container_resource_requests{namespace="shop",resource="memory"})"#
        );
        let (cpu, _) = queries("");
        assert!(cpu.contains(r#"{container!=""}"#), "{cpu}");
        assert!(cpu.ends_with(r#"{resource="cpu"})"#), "{cpu}");
    }

    #[test]
    fn scopes_are_the_four_words_and_nothing_else() {
        assert_eq!(Scope::parse("pod"), Some(Scope::Pod));
        assert_eq!(Scope::parse("cluster"), Some(Scope::Cluster));
        assert_eq!(Scope::parse("Pod"), None);
        assert_eq!(Scope::parse(""), None);
    }
}
