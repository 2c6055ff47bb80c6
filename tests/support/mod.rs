pub mod aws;
pub mod kube;
pub mod probe;
pub mod rbac;
pub mod specgen;
pub mod world;
