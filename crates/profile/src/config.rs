//! Configuration of the profile service.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// The embedded store's SQLite file.
    pub database_path: PathBuf,
}
