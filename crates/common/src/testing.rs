//! Test support: a PostgreSQL schema of its own for each test, removed afterwards, and the
//! checks every service's tests share (its access rules, its timed store, a signing key).
//!
//! The server is `PRONET_TEST_DATABASE_URL`, or the machine's `postgres://postgres@127.0.0.1:5432/test`.
//! When it cannot be reached, tests that need it say so loudly and skip, unless the services
//! are required ([`services_required`]: `PRONET_TEST_REQUIRE_SERVICES=1`, which `.ci/run` sets
//! whoever runs it, or `CI=true`), where an unreachable PostgreSQL or NATS fails the run.

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

/// Whether the tests' external services (PostgreSQL, NATS, the machine's `nats-server`) must
/// be there: set `PRONET_TEST_REQUIRE_SERVICES=1` (`.ci/run` does) or `CI=true`; a test that
/// finds one missing then fails instead of skipping.
pub fn services_required() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| v == "true" || v == "1");
    set("PRONET_TEST_REQUIRE_SERVICES") || set("CI")
}

/// Says that a test skips itself, and why, where a person sees it even when the test passes:
/// straight to the process's standard error, past the test harness's capture (which hides
/// what passing tests print with `eprintln!`).
pub fn skipped(label: &str, why: &str) {
    use std::io::Write as _;
    let line = format!("SKIPPED {label}: {why} (PRONET_TEST_REQUIRE_SERVICES=1 makes this fail)\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A unique schema on the test PostgreSQL, or `None` (with a loud message) when it is not
/// reachable and not required ([`services_required`]); panics when required.
pub async fn postgres_schema(label: &str) -> Option<TestSchema> {
    let url = test_url();
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        PgPoolOptions::new().max_connections(1).connect(&url),
    )
    .await;
    match reachable {
        Ok(Ok(pool)) => pool.close().await,
        Ok(Err(e)) if !services_required() => {
            skipped(label, &format!("PostgreSQL at {url} is not reachable ({e}); set PRONET_TEST_DATABASE_URL or start it"));
            return None;
        }
        Err(_) if !services_required() => {
            skipped(label, &format!("PostgreSQL at {url} did not answer in 5 s"));
            return None;
        }
        other => panic!(
            "PostgreSQL at {url} is required (PRONET_TEST_REQUIRE_SERVICES or CI): {other:?}"
        ),
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

/// A database of its own on the test server (for whole suites, whose services use fixed
/// schema names); dropped, with its connections, when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database.
    pub url: String,
    pub name: String,
    admin_url: String,
}

/// A fresh database on the test PostgreSQL, or `None` (loudly) when it is unreachable and not
/// required ([`services_required`]); panics when required and unreachable.
pub async fn postgres_database(label: &str) -> Option<TestDatabase> {
    let t = postgres_schema(label).await?;
    let name = t.schema.clone();
    let admin_url = t.url.clone();
    let url = match admin_url.rfind('/') {
        Some(i) if !admin_url[..i].ends_with('/') => format!("{}/{name}", &admin_url[..i]),
        _ => panic!("test database URL {admin_url} must name a database"),
    };
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {admin_url}: {e}"));
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    // The schema guard has nothing to drop: the database takes its place.
    std::mem::forget(t);
    Some(TestDatabase {
        url,
        name,
        admin_url,
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// NATS with JetStream for a test: the server's URL and a stream prefix of the test's own
/// (streams persist on the server, so each test names its own and deletes them after).
#[derive(Debug, Clone)]
pub struct TestNats {
    pub config: crate::nats::NatsConfig,
}

pub const DEFAULT_TEST_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The test NATS (`PRONET_TEST_NATS_URL`, or the machine's), or `None` (with a loud message)
/// when it is not reachable and not required ([`services_required`]); panics when required.
pub async fn nats(label: &str) -> Option<TestNats> {
    let url =
        std::env::var("PRONET_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_TEST_NATS_URL.into());
    let reachable = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await;
    match reachable {
        Ok(Ok(client)) => drop(client),
        Ok(Err(e)) if !services_required() => {
            skipped(
                label,
                &format!(
                    "NATS at {url} is not reachable ({e}); set PRONET_TEST_NATS_URL or start it"
                ),
            );
            return None;
        }
        Err(_) if !services_required() => {
            skipped(label, &format!("NATS at {url} did not answer in 5 s"));
            return None;
        }
        other => {
            panic!("NATS at {url} is required (PRONET_TEST_REQUIRE_SERVICES or CI): {other:?}")
        }
    }
    let prefix = format!(
        "t{}{}",
        label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect::<String>()
            .to_ascii_lowercase(),
        &crate::ids::new_id()[..16]
    );
    Some(TestNats {
        config: crate::nats::NatsConfig { url, prefix },
    })
}

impl TestNats {
    /// Deletes the streams the test's suite made.
    pub async fn cleanup(&self) {
        let Ok(js) = crate::nats::connect(&self.config.url).await else {
            return;
        };
        for source in ["profile", "post", "engagement"] {
            let _ = js.delete_stream(self.config.stream_name(source)).await;
        }
    }

    /// How many messages `source`'s stream holds.
    pub async fn stream_messages(&self, source: &str) -> u64 {
        let js = crate::nats::connect(&self.config.url).await.expect("nats");
        let mut stream = js
            .get_stream(self.config.stream_name(source))
            .await
            .expect("stream exists");
        stream.info().await.expect("stream info").state.messages
    }
}

/// ExportState as a reader calls it, on an [`crate::events::EventServer`] over `store` (no
/// network): every message's position, and the events in order.
pub async fn export_through_service(
    source: &'static str,
    store: std::sync::Arc<dyn crate::events::EventSource>,
    since: Option<i64>,
) -> (Vec<i64>, Vec<pronet_proto::events::v1::Event>) {
    use futures_util::StreamExt;
    use pronet_proto::events::v1::event_service_server::EventService;

    let server = crate::events::EventServer::new(source, store, Default::default());
    let request = pronet_proto::events::v1::ExportStateRequest {
        since: since.map(crate::time::to_timestamp),
    };
    let mut stream = server
        .export_state(tonic::Request::new(request))
        .await
        .expect("export starts")
        .into_inner();
    let (mut positions, mut events) = (Vec::new(), Vec::new());
    while let Some(message) = stream.next().await {
        let message = message.expect("export message");
        positions.push(message.position);
        events.extend(message.events);
    }
    (positions, events)
}

/// Asserts that `metrics` timed exactly one successful call of each of `operations` of the
/// store labelled `store`.
pub fn assert_timed_once(metrics: &crate::metrics::Metrics, store: &str, operations: &[&str]) {
    let text = metrics.render();
    for operation in operations {
        let line = format!(
            "pronet_store_operation_duration_seconds_count{{store=\"{store}\",operation=\"{operation}\",outcome=\"ok\"}} 1"
        );
        assert!(text.contains(&line), "{line} missing from\n{text}");
    }
}

/// The auth configuration services' unit tests sign and verify with (HS256, a fixed key).
pub fn test_auth() -> std::sync::Arc<crate::auth::AuthConfig> {
    let auth = crate::auth::AuthConfig::hs256(&[7u8; 32], crate::auth::DEFAULT_ISSUER);
    std::sync::Arc::new(auth.expect("a 32-byte key is valid"))
}

/// Asserts a service's access rules: `access` gives each method listed in `rules` its rule,
/// every method the proto declares for `service` (`pronet.post.v1.PostService`) is listed, and
/// unknown methods, other services' paths and malformed paths get the member rule.
pub fn assert_access_rules(
    access: impl Fn(&str) -> crate::auth::Access,
    service: &str,
    rules: &[(crate::auth::Access, &[&str])],
) {
    use prost::Message;
    let mut listed: Vec<&str> = Vec::new();
    for (rule, methods) in rules {
        for method in *methods {
            assert_eq!(access(&format!("/{service}/{method}")), *rule, "{method}");
            listed.push(method);
        }
    }
    let (package, name) = service
        .rsplit_once('.')
        .expect("a fully-qualified service name");
    let set = prost_types::FileDescriptorSet::decode(pronet_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut declared: Vec<&str> = set
        .file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| &f.service)
        .filter(|s| s.name() == name)
        .flat_map(|s| &s.method)
        .map(|m| m.name())
        .collect();
    assert!(!declared.is_empty(), "{service} declares no methods");
    declared.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        listed, declared,
        "the rules list every method of {service}, once"
    );
    // Malformed paths name a method whose rule is not the member default, when there is one,
    // so that answering them by the method's rule would show.
    let probe = rules
        .iter()
        .find(|(rule, methods)| *rule != crate::auth::Access::Member && !methods.is_empty())
        .map_or(declared[0], |(_, methods)| methods[0]);
    for unknown in [
        format!("/{service}/DeleteEverything"),
        format!("/{service}/{probe}/x"),
        format!("{service}/{probe}"),
        format!("/{service}X/{probe}"),
        "/pronet.other.v1.OtherService/Get".to_owned(),
        String::new(),
    ] {
        assert_eq!(access(&unknown), crate::auth::Access::Member, "{unknown}");
    }
}

/// A fresh embedded store in a temporary directory, opened by a service's `open_store` with
/// metrics of its own: `(directory, store, metrics)`, the directory to keep while the store is
/// used (bound first, it is dropped last). A macro so that the temporary directory comes from
/// the test's own `tempfile`.
#[macro_export]
macro_rules! timed_sqlite_store {
    ($open:path) => {{
        let dir = tempfile::tempdir().expect("a temporary directory");
        let metrics = $crate::metrics::Metrics::new();
        let database = $crate::db::DatabaseUrl::Sqlite(dir.path().join("store.db"));
        let store = $open(&database, Some(metrics.clone()))
            .await
            .expect("the store opens");
        (dir, store, metrics)
    }};
}

/// A request as the auth layer hands it to a handler after verifying `caller`'s token.
pub fn with_caller<T>(caller: crate::auth::Caller, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(caller);
    request
}

/// A request from member `id`, as the auth layer hands it on.
pub fn as_member<T>(id: &str, message: T) -> tonic::Request<T> {
    with_caller(crate::auth::Caller::Member(id.into()), message)
}

/// A request from the service `name`, as the auth layer hands it on.
pub fn as_service<T>(name: &str, message: T) -> tonic::Request<T> {
    with_caller(crate::auth::Caller::Service(name.into()), message)
}

/// The idempotency key of `request_id` from the caller scoped `caller` (`member:<id>` or
/// `service:<name>`), as stores keep it.
pub fn key(caller: &str, request_id: &str) -> crate::idempotency::IdempotencyKey {
    crate::idempotency::IdempotencyKey {
        caller: caller.into(),
        request_id: request_id.into(),
    }
}

/// A loopback port for a server a test starts (and may restart) itself: free now, never
/// handed out twice in this process, and below the kernel's ephemeral range (32768 and up on
/// Linux), so no outgoing connection takes it between now and the server's bind. A port the
/// kernel picks for `bind(0)` has neither guarantee.
pub fn unused_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let random = getrandom::u32().unwrap_or_else(|_| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(0, |d| d.subsec_nanos())
        });
        let port = 12_000 + (random % 18_000) as u16;
        if handed_out.contains(&port) || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        handed_out.push(port);
        return port;
    }
}

/// The ids of `items`, sorted: what a batch read found, whatever order it answered in.
pub fn sorted_ids<T>(items: Vec<T>, id: impl Fn(T) -> String) -> Vec<String> {
    let mut ids: Vec<String> = items.into_iter().map(id).collect();
    ids.sort();
    ids
}
