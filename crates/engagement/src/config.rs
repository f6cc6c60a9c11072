//! Configuration of the engagement service.

use std::sync::Arc;

use pronet_common::auth::AuthConfig;
use pronet_common::server::StoreConfig;
use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct EngagementConfig {
    /// The store, its metrics, NATS relay and stop signal.
    pub store: StoreConfig,
    /// The post service (`host:port` or a full `http://` URI), asked whether posts exist and
    /// whether a member may see them.
    pub post_addr: String,
    /// The profile service (`host:port` or a full `http://` URI), asked who a viewer is
    /// connected to and whom they blocked (comments and reactions lists).
    pub profile_addr: String,
    /// Deadlines for calls to the post and profile services.
    pub call_limits: CallLimits,
    /// The keys tokens are verified with, and the service token for the post and profile
    /// services signed with.
    pub auth: Arc<AuthConfig>,
}
