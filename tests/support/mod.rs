pub mod aws;
pub mod kube;
pub mod probe;
pub mod specgen;
pub mod world;
