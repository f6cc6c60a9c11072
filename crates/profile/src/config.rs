//! Configuration of the profile service.

use std::sync::Arc;

use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// Where the store lives: an SQLite file or a PostgreSQL database (schema [`crate::SCHEMA`]).
    pub database: DatabaseUrl,
    /// When set, every store operation is timed into these metrics.
    pub metrics: Option<Arc<Metrics>>,
    /// Also publish the outbox to NATS JetStream (production); the gRPC event stream is
    /// served either way.
    pub nats: Option<pronet_common::nats::NatsConfig>,
    /// The server's stop signal: open event streams end when it fires.
    pub shutdown: pronet_common::shutdown::Shutdown,
}
