//! The same end-to-end tests as `main.rs`, with every service on PostgreSQL (a database of its
//! own per test app). An unreachable PostgreSQL makes each test say SKIPPED (on the terminal,
//! even when it passes) and return, unless the services are required
//! (`PRONET_TEST_REQUIRE_SERVICES=1`, set by `.ci/run`, or `CI=true`): then it fails them.

#[path = "helpers.rs"]
mod helpers;

#[path = "authz.rs"]
mod authz;
#[path = "block_race.rs"]
mod block_race;
#[path = "depth.rs"]
mod depth;
#[path = "errors.rs"]
mod errors;
#[path = "event_faults.rs"]
mod event_faults;
#[path = "events.rs"]
mod events;
#[path = "faults.rs"]
mod faults;
#[path = "feed.rs"]
mod feed;
#[path = "import.rs"]
mod import;
#[path = "lifecycle.rs"]
mod lifecycle;
#[path = "profile.rs"]
mod profile;
#[path = "visibility.rs"]
mod visibility;

/// The store backend of this test binary.
pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;
