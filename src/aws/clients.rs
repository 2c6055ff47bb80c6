//! The SDK clients, built on first use per (region, service) and kept for the process.
//!
//! A GrafanaCluster may name any region, and each service has its own client type, so the
//! clients are held by region and by client type rather than in a struct with one field per
//! service: a new service only implements [`ServiceClient`] for its client (one
//! [`service_client!`] line in its own module) and is built here when first asked for.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_config::{Region, SdkConfig};

/// An SDK client of one AWS service.
pub trait ServiceClient: Clone + Send + Sync + 'static {
    /// The service's name in metrics and errors (rds, efs, ...).
    const SERVICE: &'static str;

    /// A client for `region` from the shared config; `endpoint_url` overrides the endpoint.
    fn build(sdk: &SdkConfig, region: Region, endpoint_url: Option<&str>) -> Self;
}

/// Implements [`ServiceClient`] for the `Client` of an SDK crate.
macro_rules! service_client {
    ($krate:ident, $service:expr) => {
        impl crate::aws::clients::ServiceClient for $krate::Client {
            const SERVICE: &'static str = $service;

            fn build(
                sdk: &aws_config::SdkConfig,
                region: aws_config::Region,
                endpoint_url: Option<&str>,
            ) -> Self {
                let mut builder = $krate::config::Builder::from(sdk).region(region);
                // An explicit endpoint is set on each service too: a service-specific
                // AWS_ENDPOINT_URL_<SERVICE> would otherwise win over the shared config's.
                if let Some(url) = endpoint_url {
                    builder = builder.endpoint_url(url);
                }
                $krate::Client::from_conf(builder.build())
            }
        }
    };
}
pub(crate) use service_client;

/// Clients by region and service. Cloning an SDK client is cheap (it is an Arc), and every
/// client built from one [`SdkConfig`] shares its credentials cache.
pub(crate) struct Clients {
    sdk: SdkConfig,
    endpoint_url: Option<String>,
    built: Mutex<HashMap<(String, TypeId), Box<dyn Any + Send + Sync>>>,
}

impl Clients {
    pub fn new(sdk: SdkConfig, endpoint_url: Option<String>) -> Self {
        Clients {
            sdk,
            endpoint_url,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The region the SDK config names (AWS_REGION, the profile), if any.
    pub fn sdk_region(&self) -> Option<String> {
        self.sdk.region().map(|r| r.as_ref().to_string())
    }

    /// The client of service `C` for `region`, built on first use.
    pub fn get<C: ServiceClient>(&self, region: &str) -> C {
        // Building a client takes no I/O, and the map is never held across an await, so a
        // panic while it is held cannot leave it half-updated: a poisoned lock is safe.
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (region.to_string(), TypeId::of::<C>());
        if let Some(client) = built.get(&key).and_then(|c| c.downcast_ref::<C>()) {
            return client.clone();
        }
        let client = C::build(
            &self.sdk,
            Region::new(region.to_string()),
            self.endpoint_url.as_deref(),
        );
        built.insert(key, Box::new(client.clone()));
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A client that remembers how it was built.
    #[derive(Clone)]
    struct FakeClient {
        region: String,
        endpoint_url: Option<String>,
    }

    /// FakeClient builds, by every test of this module.
    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    impl ServiceClient for FakeClient {
        const SERVICE: &'static str = "fake";
        fn build(_: &SdkConfig, region: Region, endpoint_url: Option<&str>) -> Self {
            BUILDS.fetch_add(1, Ordering::SeqCst);
            FakeClient {
                region: region.as_ref().to_string(),
                endpoint_url: endpoint_url.map(str::to_string),
            }
        }
    }

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .build()
    }

    #[test]
    fn clients_are_built_once_per_region() {
        let clients = Clients::new(sdk(), Some("http://127.0.0.1:1".into()));
        let before = BUILDS.load(Ordering::SeqCst);
        let a = clients.get::<FakeClient>("us-east-1");
        let again = clients.get::<FakeClient>("us-east-1");
        let b = clients.get::<FakeClient>("eu-central-1");
        assert_eq!(BUILDS.load(Ordering::SeqCst) - before, 2);
        assert_eq!(again.region, "us-east-1");
        assert_eq!(b.region, "eu-central-1");
        assert_eq!(a.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(clients.sdk_region().as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn sdk_clients_are_kept_apart_by_service() {
        let clients = Clients::new(sdk(), None);
        let rds = clients.get::<aws_sdk_rds::Client>("us-east-1");
        let efs = clients.get::<aws_sdk_efs::Client>("us-east-1");
        assert_eq!(rds.config().region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(efs.config().region().map(|r| r.as_ref()), Some("us-east-1"));
        assert_eq!(clients.built.lock().map(|b| b.len()).unwrap_or(0), 2);
    }
}
