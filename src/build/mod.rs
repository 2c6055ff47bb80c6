//! Pure builders: from the [`Wiring`] to the Kubernetes objects the operator applies. No
//! client, no I/O; one file per kind of child.

pub mod deployment;
pub mod pdb;
pub mod plugins;
pub mod secrets;
pub mod services;
pub mod storage;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::GrafanaClusterSpec;
use crate::facts::{ManagedCredentials, SecretValue};
use crate::names;
use crate::resolve::Wiring;

/// Secret material the builders need and only I/O can fetch.
#[derive(Clone, Debug, Default)]
pub struct SecretInputs {
    /// The RDS-managed master credentials, when spec.database.credentials.rdsManagedSecret.
    pub managed_credentials: Option<ManagedCredentials>,
    /// The Redis AUTH token read from spec.cache.authTokenSecretRef.
    pub cache_auth_token: Option<SecretValue>,
}

/// Every object the operator applies for one GrafanaCluster. The applier destructures it
/// without `..`, so adding a kind here and forgetting to apply it does not compile.
#[derive(Clone, Debug)]
pub struct Children {
    /// Copy of the RDS-managed credentials (absent when a user Secret is referenced, or when
    /// Secrets Manager could not be read this time: the existing copy is then kept).
    pub db_credentials: Option<Secret>,
    /// The Redis connection string, which embeds the AUTH token (absent without Redis, or
    /// when the token could not be read).
    pub cache_secret: Option<Secret>,
    /// Static EFS volume (absent with a StorageClass).
    pub volume: Option<PersistentVolume>,
    pub claim: PersistentVolumeClaim,
    /// Installs the plugin set once (absent without plugins).
    pub plugins_job: Option<Job>,
    pub deployment: Deployment,
    pub service: Service,
    /// Headless Service for alerting gossip (absent unless alerting HA is gossip).
    pub alerting_service: Option<Service>,
    pub pdb: Option<PodDisruptionBudget>,
}

/// Builds every child of the GrafanaCluster.
pub fn build_all(spec: &GrafanaClusterSpec, wiring: &Wiring, inputs: &SecretInputs) -> Children {
    let db_credentials = inputs
        .managed_credentials
        .as_ref()
        .filter(|_| wiring.database.status.managed_secret_arn.is_some())
        .map(|c| secrets::db_credentials(wiring, c));
    let cache_secret = secrets::cache_connection(wiring, inputs.cache_auth_token.as_ref());
    // Digests of Secrets built right now win over what was read from the cluster, so a
    // rotated password rolls the pods in the same reconcile that writes it.
    let mut digests = wiring.secret_digests.clone();
    for secret in db_credentials.iter().chain(cache_secret.iter()) {
        digests.extend(secrets::digests_of(secret));
    }
    Children {
        volume: storage::volume(wiring),
        claim: storage::claim(wiring),
        plugins_job: plugins::job(spec, wiring),
        deployment: deployment::deployment(spec, wiring, &digests),
        service: services::http(wiring),
        alerting_service: services::alerting(wiring),
        pdb: pdb::pdb(spec, wiring),
        db_credentials,
        cache_secret,
    }
}

/// The GrafanaCluster that owns the children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
    /// Absent when rendering without a cluster: the object has no uid yet.
    pub uid: Option<String>,
}

impl Owner {
    pub fn of(wiring: &Wiring) -> Owner {
        Owner {
            name: wiring.name.clone(),
            namespace: wiring.namespace.clone(),
            uid: wiring.uid.clone(),
        }
    }

    /// The controller owner reference to the GrafanaCluster.
    pub fn reference(&self) -> Option<OwnerReference> {
        self.uid.as_ref().map(|uid| OwnerReference {
            api_version: format!("{}/v1alpha1", crate::api::GROUP),
            kind: "GrafanaCluster".into(),
            name: self.name.clone(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
    }

    /// Metadata of a namespaced child: labels and owner reference.
    pub fn child_meta(&self, name: String, component: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(names::common_labels(&self.name, component)),
            owner_references: self.reference().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }
}

/// Metadata of a namespaced child of the wiring's cluster.
pub fn child_meta(wiring: &Wiring, name: String, component: &str) -> ObjectMeta {
    Owner::of(wiring).child_meta(name, component)
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A resolved article setup shared by the builder tests.
    use crate::api::GrafanaCluster;
    use crate::facts::{CacheFacts, CacheKind, DatabaseFacts, DatabaseKind, Lookup, StorageFacts};
    use crate::resolve::{Discovered, Observed, Wiring, resolve};

    pub fn cluster(spec: serde_json::Value) -> GrafanaCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "grafana", "namespace": "obs", "uid": "uid-1"},
            "spec": spec,
        }))
        .expect("fixture deserializes")
    }

    pub fn article() -> GrafanaCluster {
        cluster(serde_json::json!({
            "replicas": 3,
            "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            "plugins": {"install": ["grafana-clock-panel@2.1.8"]},
            "server": {"domain": "grafana.example.com", "rootUrl": "https://grafana.example.com/"},
        }))
    }

    pub fn observed() -> Observed {
        Observed {
            database: Some(Discovered::Lookup(Lookup::Found(DatabaseFacts {
                arn: "arn:aws:rds:us-east-1:1:db:grafana-db".into(),
                identifier: "grafana-db".into(),
                kind: DatabaseKind::Instance,
                rds_engine: "postgres".into(),
                engine: crate::api::DatabaseEngine::Postgres,
                host: "grafana-db.rds.local".into(),
                port: 5432,
                db_name: Some("grafana".into()),
                master_username: Some("grafana".into()),
                managed_secret_arn: Some("arn:aws:secretsmanager:us-east-1:1:secret:rds!db".into()),
            }))),
            cache: Some(Discovered::Lookup(Lookup::Found(CacheFacts {
                arn: "arn:aws:elasticache:us-east-1:1:replicationgroup:grafana-cache".into(),
                identifier: "grafana-cache".into(),
                kind: CacheKind::ReplicationGroup,
                engine: crate::api::CacheEngine::Redis,
                aws_engine: "redis".into(),
                host: "grafana-cache.cache.local".into(),
                port: 6379,
                transit_encryption: true,
                auth_token_enabled: true,
            }))),
            storage: Some(Discovered::Lookup(Lookup::Found(StorageFacts {
                file_system_id: "fs-0123456789abcdef0".into(),
                arn: "arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-0123456789abcdef0"
                    .into(),
                access_point_id: None,
                mount_target_zones: vec!["us-east-1a".into()],
            }))),
            ..Observed::default()
        }
    }

    pub fn wiring_of(gc: &GrafanaCluster) -> Wiring {
        resolve(gc, &observed()).wiring.expect("fixture resolves")
    }

    pub fn wiring() -> Wiring {
        wiring_of(&article())
    }
}
