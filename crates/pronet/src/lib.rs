//! The pronet suite as a library: start the four services (all in one process, or one of
//! them), and fill a store with the demo network through the public gRPC API.

pub mod bench;
pub mod demo;
pub use pronet_common::rng;
pub mod suite;

pub use suite::{RunningSuite, ServiceKind, SuiteAddrs, SuiteConfig};
