//! What every pronet server does the same way: bootstrap (health, reflection, graceful
//! shutdown), telemetry, error mapping, pagination, time and id helpers, input rules shared by
//! every service, and the embedded SQLite store's connection setup.

pub mod admission;
pub mod auth;
pub mod config;
pub mod db;
pub mod deadline;
pub mod error;
pub mod event_follower;
pub mod event_head;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod input;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod pagination;
pub mod rng;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod timed;
pub mod upstream;
pub mod visibility;

pub use error::FieldViolations;
