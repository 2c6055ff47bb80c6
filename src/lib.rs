//! grafana-ha-operator: runs Grafana highly available on AWS.
//!
//! One pipeline, shared by the controller and `render`:
//! validate ([`pipeline::validate`]) -> gather ([`gather`]: AWS through [`aws`], referenced
//! Secrets) -> resolve ([`resolve`], pure: one [`resolve::Plan`] with every default
//! applied) -> build ([`build`], pure: the children from the plan only) -> apply and report
//! ([`reconcile`], the controller) or print ([`render`]).

pub mod api;
pub mod aws;
pub mod build;
pub mod error;
pub mod facts;
pub mod gather;
pub mod hash;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod optional_api;
pub mod pipeline;
pub mod reconcile;
pub mod render;
pub mod resolve;
pub mod server;
pub mod settings;
pub mod status;
pub mod telemetry;

#[cfg(test)]
pub(crate) mod fixtures;
