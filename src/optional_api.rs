//! Children whose kind comes from a CRD the cluster may not have: the Gateway API's
//! HTTPRoute and the Prometheus Operator's ServiceMonitor.
//!
//! Whether such an API is served is asked once per API and refresh interval for every
//! cluster together (a thousand clusters must not ask discovery a thousand times per
//! resync): [`OptionalApis`] caches the answer, and concurrent reconciles that find it stale
//! wait for one refresh instead of each making their own. A missing API is a fact the
//! status reports (the OptionalAPIs condition), never an error: the rest of the cluster is
//! applied as usual.
//!
//! The kinds are typed here (serde structs with kube's derive, schema disabled) rather than
//! `DynamicObject`s: the builders then fill named fields the compiler checks, unit tests
//! read them back the same way, and the generic apply and delete paths take them like any
//! k8s-openapi type. Only the fields the operator sets are modelled; a live object's other
//! fields (status, defaults) are ignored when it is read back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// An API served only when its CRD is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionalApi {
    /// gateway.networking.k8s.io/v1 httproutes (spec.httpRoute).
    HttpRoute,
    /// monitoring.coreos.com/v1 servicemonitors (spec.monitoring.serviceMonitor).
    ServiceMonitor,
}

impl OptionalApi {
    pub const ALL: [OptionalApi; 2] = [OptionalApi::HttpRoute, OptionalApi::ServiceMonitor];

    pub fn group_version(self) -> &'static str {
        match self {
            OptionalApi::HttpRoute => "gateway.networking.k8s.io/v1",
            OptionalApi::ServiceMonitor => "monitoring.coreos.com/v1",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            OptionalApi::HttpRoute => "httproutes",
            OptionalApi::ServiceMonitor => "servicemonitors",
        }
    }

    /// The metric label and a short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionalApi::HttpRoute => "httproutes.gateway.networking.k8s.io",
            OptionalApi::ServiceMonitor => "servicemonitors.monitoring.coreos.com",
        }
    }

    /// What the user installs to get it.
    pub fn provider(self) -> &'static str {
        match self {
            OptionalApi::HttpRoute => "the Gateway API CRDs (standard channel)",
            OptionalApi::ServiceMonitor => "the Prometheus Operator CRDs",
        }
    }

    /// The spec field that asks for it.
    pub fn field(self) -> &'static str {
        match self {
            OptionalApi::HttpRoute => "spec.httpRoute",
            OptionalApi::ServiceMonitor => "spec.monitoring.serviceMonitor",
        }
    }
}

/// Whether an optional API can take a child now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// The spec does not ask for a child of this kind: not looked up.
    NotNeeded,
    Served,
    NotServed,
    /// Discovery could not be asked; why. Treated like NotServed this round (nothing is
    /// written, nothing fails) and asked again soon.
    CheckFailed(String),
    /// No cluster to ask (`render` without a kubeconfig): the child is shown as it would
    /// be written.
    Unchecked,
}

impl Availability {
    /// True when a child of the kind should be built.
    pub fn writable(&self) -> bool {
        matches!(self, Availability::Served | Availability::Unchecked)
    }
}

/// What was learned about every optional API one cluster asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAvailability {
    pub http_route: Availability,
    pub service_monitor: Availability,
}

impl Default for ApiAvailability {
    fn default() -> Self {
        ApiAvailability {
            http_route: Availability::NotNeeded,
            service_monitor: Availability::NotNeeded,
        }
    }
}

impl ApiAvailability {
    pub fn of(&self, api: OptionalApi) -> &Availability {
        match api {
            OptionalApi::HttpRoute => &self.http_route,
            OptionalApi::ServiceMonitor => &self.service_monitor,
        }
    }
}

/// How soon a failed check is repeated, at most.
const RETRY_FAILED_CHECK: Duration = Duration::from_secs(10);

struct Checked {
    at: Instant,
    availability: Availability,
}

struct Inner {
    client: Client,
    refresh: Duration,
    metrics: Metrics,
    answers: Mutex<BTreeMap<OptionalApi, Checked>>,
    /// One refresh at a time: reconciles that find an answer stale wait for it.
    refreshing: tokio::sync::Mutex<()>,
}

/// The shared, periodically refreshed answer to "is this optional API served?".
#[derive(Clone)]
pub struct OptionalApis {
    inner: Arc<Inner>,
}

impl OptionalApis {
    pub fn new(client: Client, refresh: Duration, metrics: Metrics) -> OptionalApis {
        OptionalApis {
            inner: Arc::new(Inner {
                client,
                refresh,
                metrics,
                answers: Mutex::new(BTreeMap::new()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn cached(&self, api: OptionalApi) -> Option<Availability> {
        let answers = self
            .inner
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let checked = answers.get(&api)?;
        let ttl = match checked.availability {
            Availability::CheckFailed(_) => self.inner.refresh.min(RETRY_FAILED_CHECK),
            _ => self.inner.refresh,
        };
        (checked.at.elapsed() < ttl).then(|| checked.availability.clone())
    }

    /// Whether `api` is served, from the cache while it is fresh.
    pub async fn availability(&self, api: OptionalApi) -> Availability {
        if let Some(known) = self.cached(api) {
            return known;
        }
        let _one_at_a_time = self.inner.refreshing.lock().await;
        // Another reconcile may have refreshed it while this one waited.
        if let Some(known) = self.cached(api) {
            return known;
        }
        let availability = check(&self.inner.client, api).await;
        let result = match &availability {
            Availability::Served => "served",
            Availability::CheckFailed(_) => "error",
            _ => "not_served",
        };
        self.inner.metrics.optional_api_check(api.as_str(), result);
        if let Availability::CheckFailed(why) = &availability {
            tracing::warn!(api = api.as_str(), error = %why, "cannot tell whether an optional API is served");
        }
        self.inner
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                api,
                Checked {
                    at: Instant::now(),
                    availability: availability.clone(),
                },
            );
        availability
    }

    /// Forgets every answer: the next lookup asks again (after a write found the API gone).
    pub fn invalidate(&self) {
        self.inner
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Asks the API server's discovery for the resources of the API's group version.
pub async fn check(client: &Client, api: OptionalApi) -> Availability {
    match client.list_api_group_resources(api.group_version()).await {
        Ok(list) if list.resources.iter().any(|r| r.name == api.plural()) => Availability::Served,
        Ok(_) => Availability::NotServed,
        Err(kube::Error::Api(e)) if e.code == 404 => Availability::NotServed,
        Err(e) => Availability::CheckFailed(e.to_string()),
    }
}

/// A Gateway API HTTPRoute, the fields the operator writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteBody {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// A Gateway the route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// One rule: requests it matches and where they go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HttpPathMatch {
    /// PathPrefix or Exact.
    #[serde(rename = "type")]
    pub type_: String,
    pub value: String,
}

/// A Service port the route sends to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub name: String,
    pub port: i32,
}

/// A Prometheus Operator ServiceMonitor, the fields the operator writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    plural = "servicemonitors",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorBody {
    pub selector: LabelSelector,
    #[serde(default)]
    pub endpoints: Vec<ScrapeEndpoint>,
}

/// One scraped port of the selected Services.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScrapeEndpoint {
    /// The Service port's name.
    pub port: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn kinds_have_the_upstream_coordinates() {
        assert_eq!(HTTPRoute::api_version(&()), "gateway.networking.k8s.io/v1");
        assert_eq!(HTTPRoute::plural(&()), "httproutes");
        assert_eq!(ServiceMonitor::api_version(&()), "monitoring.coreos.com/v1");
        assert_eq!(ServiceMonitor::plural(&()), "servicemonitors");
        for api in OptionalApi::ALL {
            let (gv, plural) = match api {
                OptionalApi::HttpRoute => (HTTPRoute::api_version(&()), HTTPRoute::plural(&())),
                OptionalApi::ServiceMonitor => (
                    ServiceMonitor::api_version(&()),
                    ServiceMonitor::plural(&()),
                ),
            };
            assert_eq!(api.group_version(), gv);
            assert_eq!(api.plural(), plural);
        }
    }

    type Handle = tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >;

    /// Answers discovery for the Gateway API with httproutes (or 404 for every group when
    /// `served` is false); returns how many requests came.
    async fn discovery(mut handle: Handle, served: bool) -> usize {
        let mut requests = 0;
        while let Some((request, send)) = handle.next_request().await {
            requests += 1;
            let path = request.uri().path().to_string();
            let (code, body) = if served && path == "/apis/gateway.networking.k8s.io/v1" {
                (
                    200,
                    serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": "gateway.networking.k8s.io/v1",
                        "resources": [{"name": "httproutes", "singularName": "httproute",
                            "namespaced": true, "kind": "HTTPRoute",
                            "verbs": ["get", "list", "create", "patch", "delete"]}]}),
                )
            } else {
                (
                    404,
                    serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"}),
                )
            };
            send.send_response(
                http::Response::builder()
                    .status(code)
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&body).expect("json"),
                    ))
                    .expect("response"),
            );
        }
        requests
    }

    #[tokio::test]
    async fn concurrent_reconciles_share_one_discovery_call_per_api_and_interval() {
        let (service, handle) = tower_test::mock::pair();
        let server = tokio::spawn(discovery(handle, true));
        let metrics = Metrics::new();
        let apis = OptionalApis::new(
            Client::new(service, "default"),
            Duration::from_secs(60),
            metrics.clone(),
        );
        let lookups = (0..50).map(|i| {
            let apis = apis.clone();
            let api = if i % 2 == 0 {
                OptionalApi::HttpRoute
            } else {
                OptionalApi::ServiceMonitor
            };
            async move { (api, apis.availability(api).await) }
        });
        for (api, availability) in futures::future::join_all(lookups).await {
            let want = match api {
                OptionalApi::HttpRoute => Availability::Served,
                OptionalApi::ServiceMonitor => Availability::NotServed,
            };
            assert_eq!(availability, want, "{api:?}");
        }
        assert_eq!(
            metrics.optional_api_check_count(OptionalApi::HttpRoute.as_str(), "served"),
            1
        );
        // Forgetting the answers (an API vanished under a write) asks again, once.
        apis.invalidate();
        assert_eq!(
            apis.availability(OptionalApi::HttpRoute).await,
            Availability::Served
        );
        drop(apis);
        assert_eq!(
            server.await.expect("server"),
            3,
            "one call per API, then one after invalidate"
        );
    }

    #[tokio::test]
    async fn a_missing_group_is_not_served() {
        let (service, handle) = tower_test::mock::pair();
        let server = tokio::spawn(discovery(handle, false));
        let client = Client::new(service, "default");
        assert_eq!(
            check(&client, OptionalApi::HttpRoute).await,
            Availability::NotServed
        );
        drop(client);
        assert_eq!(server.await.expect("server"), 1);
    }

    #[test]
    fn only_served_or_unchecked_apis_take_children() {
        assert!(Availability::Served.writable());
        assert!(Availability::Unchecked.writable());
        assert!(!Availability::NotServed.writable());
        assert!(!Availability::CheckFailed("x".into()).writable());
        assert!(!Availability::NotNeeded.writable());
    }
}
