//! Test support: a PostgreSQL schema of its own for each test, removed afterwards.
//!
//! The server is `PRONET_TEST_DATABASE_URL`, or the machine's `postgres://postgres@127.0.0.1:5432/test`.
//! When it cannot be reached, tests that need it say so loudly and skip, except in CI
//! (`CI=true`), where an unreachable PostgreSQL fails the run.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema name on the test server; the schema is dropped when this is dropped.
#[derive(Debug)]
pub struct TestSchema {
    pub url: String,
    pub schema: String,
}

fn test_url() -> String {
    std::env::var("PRONET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A unique schema on the test PostgreSQL, or `None` (with a loud message) when it is not
/// reachable outside CI. Panics in CI when it is not reachable.
pub async fn postgres_schema(label: &str) -> Option<TestSchema> {
    let url = test_url();
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        PgPoolOptions::new().max_connections(1).connect(&url),
    )
    .await;
    match reachable {
        Ok(Ok(pool)) => pool.close().await,
        Ok(Err(e)) if !in_ci() => {
            eprintln!("SKIPPED {label}: PostgreSQL at {url} is not reachable ({e}); set PRONET_TEST_DATABASE_URL or start it");
            return None;
        }
        Err(_) if !in_ci() => {
            eprintln!("SKIPPED {label}: PostgreSQL at {url} did not answer in 5 s");
            return None;
        }
        other => panic!("PostgreSQL at {url} is required in CI: {other:?}"),
    }
    let schema = format!(
        "t_{}_{}",
        label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect::<String>()
            .to_ascii_lowercase(),
        crate::ids::new_id()
    );
    Some(TestSchema { url, schema })
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs outside any runtime guarantee: use a small one on its own thread.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: test schema {} was not dropped", self.schema);
        }
    }
}
