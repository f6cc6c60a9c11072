//! End-to-end tests: the four services on ephemeral loopback ports, spoken to over real gRPC,
//! each test with its own data, on the embedded store. `postgres.rs` runs the same tests with
//! every service on PostgreSQL.

mod helpers;

mod authz;
mod block_race;
mod depth;
mod errors;
mod eval;
mod event_faults;
mod events;
mod faults;
mod feed;
mod fuzz;
mod import;
mod lifecycle;
mod profile;
mod ranking_model;
mod visibility;

/// The store backend of this test binary.
pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;
