//! Configuration of the engagement service.

use std::path::PathBuf;

use pronet_common::upstream::CallLimits;

#[derive(Debug, Clone)]
pub struct EngagementConfig {
    /// The embedded store's SQLite file.
    pub database_path: PathBuf,
    /// The post service (`host:port` or a full `http://` URI), asked whether posts exist.
    pub post_addr: String,
    /// Deadlines for calls to the post service.
    pub call_limits: CallLimits,
}
