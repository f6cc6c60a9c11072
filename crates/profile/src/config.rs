//! Configuration of the profile service.

use pronet_common::db::DatabaseUrl;

#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// Where the store lives: an SQLite file or a PostgreSQL database (schema [`crate::SCHEMA`]).
    pub database: DatabaseUrl,
}
