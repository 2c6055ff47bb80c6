//! Writing and sweeping children of optional APIs (HTTPRoute, ServiceMonitor).
//!
//! These kinds are not watched: a watch on an API that may not exist (or may appear later)
//! would either fail in a loop or need restarting when the CRD arrives. Instead the live
//! object is read before each write (a GET, no write in steady state) and drift is
//! restored at the next resync rather than on the change event. Superseded ones are found
//! with a label-scoped LIST served from the API server's cache, only while the API is
//! served: a missing API never fails cleanup.

use std::fmt::Debug;

use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::apply::{apply, delete_if_present};
use super::context::Context;
use super::records::Records;
use super::slim::Slim;
use crate::build::ChildKind;
use crate::error::{Error, Result};
use crate::names;
use crate::optional_api::{Availability, OptionalApi};
use crate::resolve::ClusterRef;

/// True when the error says the resource type is not (or no longer) served.
fn api_gone(error: &Error) -> bool {
    matches!(error, Error::Kube(kube::Error::Api(e)) if e.code == 404)
}

/// Applies `desired` unless the live object already matches. An API that disappeared since
/// the last discovery check is not an error: the cached answer is dropped, so the next
/// round asks discovery again and the condition reports it.
pub async fn apply_optional<K>(ctx: &Context, namespace: &str, desired: K) -> Result<()>
where
    K: Slim<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = ctx.api(namespace);
    let store = match api.get_opt(&desired.name_any()).await {
        Ok(live) => Records::of(live),
        Err(e) => {
            let e = Error::from(e);
            return if api_gone(&e) {
                ctx.optional_apis.invalidate();
                Ok(())
            } else {
                Err(e)
            };
        }
    };
    match apply(&api, &store, &ctx.settled, desired, &ctx.metrics).await {
        Ok(_) => Ok(()),
        Err(e) if api_gone(&e) => {
            tracing::info!(kind = %K::kind(&()), "an optional API went away; asking discovery again");
            ctx.optional_apis.invalidate();
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The optional API a child kind belongs to, if it is one.
pub fn optional_api(kind: ChildKind) -> Option<OptionalApi> {
    match kind {
        ChildKind::HttpRoute => Some(OptionalApi::HttpRoute),
        ChildKind::ServiceMonitor => Some(OptionalApi::ServiceMonitor),
        _ => None,
    }
}

/// The names of the cluster's children of kind `K` that this round did not produce,
/// deleted; nothing when the API is not served.
pub async fn sweep_optional<K>(
    ctx: &Context,
    kind: ChildKind,
    cluster: &ClusterRef,
    produced: &std::collections::BTreeSet<(ChildKind, String)>,
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let Some(optional) = optional_api(kind) else {
        return Ok(());
    };
    if ctx.optional_apis.availability(optional).await != Availability::Served {
        return Ok(());
    }
    let api: Api<K> = ctx.api(&cluster.namespace);
    let selector = format!(
        "{},{}={}",
        names::managed_selector(),
        names::CLUSTER_LABEL,
        cluster.name
    );
    // resourceVersion=0: served from the API server's watch cache, not etcd.
    let params = ListParams::default().labels(&selector).match_any();
    let list = match api.list(&params).await {
        Ok(list) => list,
        Err(kube::Error::Api(e)) if e.code == 404 => {
            ctx.optional_apis.invalidate();
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for object in list.items {
        let name = object.name_any();
        if object.meta().deletion_timestamp.is_none() && !produced.contains(&(kind, name.clone())) {
            delete_if_present(&api, &name, &ctx.metrics).await?;
        }
    }
    Ok(())
}
