//! Configuration of the post service.

use std::sync::Arc;

use pronet_common::auth::AuthConfig;
use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;
use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct PostConfig {
    /// The store: an embedded SQLite file or a PostgreSQL database (schema [`crate::SCHEMA`]).
    pub database: DatabaseUrl,
    /// The profile service (`host:port` or a full `http://` URI), asked how viewers relate to
    /// authors.
    pub profile_addr: String,
    /// The engagement service (`host:port` or a full `http://` URI), told of reshares and asked
    /// for the engagement of posts when ranking trending hashtags.
    pub engagement_addr: String,
    /// Deadlines for calls to the profile and engagement services.
    pub call_limits: CallLimits,
    /// Keys for the service token this service presents to the profile and engagement services.
    pub auth: Arc<AuthConfig>,
    /// Where to record store operation latencies; `None` records nothing.
    pub metrics: Option<Arc<Metrics>>,
    /// Also publish the outbox to NATS JetStream (production); the gRPC event stream is
    /// served either way.
    pub nats: Option<pronet_common::nats::NatsConfig>,
    /// The server's stop signal: open event streams end when it fires.
    pub shutdown: pronet_common::shutdown::Shutdown,
}
