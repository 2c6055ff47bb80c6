//! grafana-ha-operator: runs Grafana highly available on AWS.
//!
//! The reconcile pipeline: discover ([`aws`], I/O) -> validate ([`api::validation`]) ->
//! resolve ([`resolve`], pure) -> build ([`build`], pure) -> apply and report status
//! ([`reconcile`], I/O).

pub mod api;
pub mod aws;
pub mod build;
pub mod error;
pub mod facts;
pub mod hash;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod observe;
pub mod reconcile;
pub mod render;
pub mod resolve;
pub mod server;
pub mod status;
pub mod telemetry;
