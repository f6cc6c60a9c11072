//! End-to-end tests: the four services on ephemeral loopback ports, spoken to over real gRPC,
//! each test with its own data directory.

mod helpers;

mod authz;
mod errors;
mod feed;
mod fuzz;
mod lifecycle;
mod profile;
mod visibility;
