//! Configuration of the post service.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct PostConfig {
    /// The embedded store's SQLite file.
    pub database_path: PathBuf,
}
