//! Configuration of the post service.

use std::sync::Arc;

use pronet_common::auth::AuthConfig;
use pronet_common::server::StoreConfig;
use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct PostConfig {
    /// The store, its metrics, NATS relay and stop signal.
    pub store: StoreConfig,
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
}
