//! Configuration of the engagement service.

use std::path::PathBuf;
use std::sync::Arc;

use pronet_common::auth::AuthConfig;
use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct EngagementConfig {
    /// The embedded store's SQLite file.
    pub database_path: PathBuf,
    /// The post service (`host:port` or a full `http://` URI), asked whether posts exist and
    /// whether a member may see them.
    pub post_addr: String,
    /// Deadlines for calls to the post service.
    pub call_limits: CallLimits,
    /// The keys tokens are verified with, and the service token for the post service signed
    /// with.
    pub auth: Arc<AuthConfig>,
}
