//! Configuration of the engagement service.

use std::sync::Arc;

use pronet_common::auth::AuthConfig;
use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;
use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct EngagementConfig {
    /// Where the store lives: an SQLite file (embedded) or a PostgreSQL database, in which the
    /// store uses the schema [`crate::SCHEMA`].
    pub database: DatabaseUrl,
    /// The post service (`host:port` or a full `http://` URI), asked whether posts exist and
    /// whether a member may see them.
    pub post_addr: String,
    /// The profile service (`host:port` or a full `http://` URI), asked who a viewer is
    /// connected to and whom they blocked (comments and reactions lists).
    pub profile_addr: String,
    /// Deadlines for calls to the post and profile services.
    pub call_limits: CallLimits,
    /// The keys tokens are verified with, and the service token for the post and profile services signed
    /// with.
    pub auth: Arc<AuthConfig>,
    /// Where store operations are timed (`pronet_store_operation_duration_seconds`); `None`
    /// records nothing.
    pub metrics: Option<Arc<Metrics>>,
    /// Also publish the outbox to NATS JetStream (production); the gRPC event stream is
    /// served either way.
    pub nats: Option<pronet_common::nats::NatsConfig>,
    /// The server's stop signal: open event streams end when it fires.
    pub shutdown: pronet_common::shutdown::Shutdown,
}
