//! The post service: members' posts, with the hashtags and @handle mentions found in their text.
//!
//! Where its behaviour lives: `service.rs` holds the handlers (authorize, call the store, keep
//! what the viewer may see, answer), `service/convert.rs` parses each request into a typed
//! input (`parse_<rpc>`) and converts records back, `service/tests.rs` tests them. `domain`
//! holds the types and rules, `store` the storage trait with one module per backend
//! (`store/timed.rs` times them). The clients of other services are named by the service they
//! call: `profiles` (who may see whose posts, whom @handles name) and `engagement` (shares,
//! counts). `events` are the domain events its store writes to the outbox and the state it
//! exports; `error` its errors.

pub mod config;
pub mod domain;
pub mod engagement;
pub mod error;
pub mod events;
pub mod profiles;
pub mod service;
pub mod store;

use std::sync::Arc;

use pronet_common::auth::Access;
use pronet_common::server::StoreService;
use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_common::upstream::lazy_channel;
use pronet_proto::post::v1::post_service_server::PostServiceServer;
use tonic::service::Routes;

pub use config::PostConfig;
use engagement::GrpcEngagement;
pub use error::BuildError;
use profiles::GrpcRelationships;
pub use service::PostApi;
use store::postgres::PgPostStore;
use store::sqlite::SqlitePostStore;
use store::PostStore;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.post.v1.PostService";

/// The service's schema when its store is PostgreSQL.
pub const SCHEMA: &str = "post";

pronet_common::open_store!(dyn PostStore: SqlitePostStore | PgPostStore, SCHEMA, store::timed::STORE_NAME);

/// Opens the store, prepares lazy channels to the profile and engagement services and returns
/// the service's routes (the post service and its event stream) and its store's readiness.
/// Neither service need be up yet.
pub async fn build(config: &PostConfig) -> Result<StoreService, BuildError> {
    // The addresses first: a typo should not leave a freshly created database behind.
    let profile =
        lazy_channel(&config.profile_addr, config.call_limits).map_err(BuildError::ProfileAddr)?;
    let engagement = lazy_channel(&config.engagement_addr, config.call_limits)
        .map_err(BuildError::EngagementAddr)?;
    let store = open_store(&config.store.database, config.store.metrics.clone()).await?;
    let profiles = Arc::new(GrpcRelationships::new(profile, config.auth.clone()));
    let engagement = Arc::new(GrpcEngagement::new(engagement, config.auth.clone()));
    let api = PostApi::new(
        store.clone(),
        profiles.clone(),
        profiles.clone(),
        profiles,
        engagement,
    );
    let routes = Routes::new(
        PostServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    );
    Ok(StoreService::new(
        routes,
        events::SOURCE,
        store,
        &config.store,
    ))
}

/// Who may call each method of the post service. Reads and creates are open to members and to
/// services acting for them (the handlers check whose name they act in); edits and deletes are
/// the author's own; the feed's candidate query is internal. Unknown methods get the strictest
/// member rule.
pub fn access(path: &str) -> Access {
    let method = pronet_common::auth::method_of(path, SERVICE_NAME);
    match method {
        Some(
            "CreatePost"
            | "GetPost"
            | "BatchGetPosts"
            | "ListPostsByAuthor"
            | "ListPostsByHashtag"
            | "ListTrendingHashtags",
        ) => Access::MemberOrService,
        // The feed's candidates, unfiltered; imports write for anyone with any time.
        Some("ListRecentPostsByAuthors" | "ImportPosts") => Access::Service,
        Some("UpdatePost" | "DeletePost") => Access::Member,
        _ => Access::Member,
    }
}

#[cfg(test)]
mod tests {
    use pronet_common::db::DatabaseUrl;
    use pronet_common::server::StoreConfig;
    use pronet_common::upstream::CallLimits;
    use tonic::server::NamedService;

    use super::*;

    fn config(dir: &tempfile::TempDir, profile_addr: &str) -> PostConfig {
        PostConfig {
            store: StoreConfig::new(DatabaseUrl::Sqlite(dir.path().join("post.db"))),
            profile_addr: profile_addr.into(),
            engagement_addr: "127.0.0.1:1".into(),
            call_limits: CallLimits::default(),
            auth: pronet_common::testing::test_auth(),
        }
    }

    #[test]
    fn service_name_matches_the_generated_server() {
        assert_eq!(SERVICE_NAME, PostServiceServer::<PostApi>::NAME);
    }

    #[test]
    fn every_method_has_its_access_rule() {
        let open = [
            "CreatePost",
            "GetPost",
            "BatchGetPosts",
            "ListPostsByAuthor",
            "ListPostsByHashtag",
            "ListTrendingHashtags",
        ];
        pronet_common::testing::assert_access_rules(
            access,
            SERVICE_NAME,
            &[
                (Access::MemberOrService, &open),
                (
                    Access::Service,
                    &["ListRecentPostsByAuthors", "ImportPosts"],
                ),
                (Access::Member, &["DeletePost", "UpdatePost"]),
            ],
        );
    }

    #[tokio::test]
    async fn builds_before_the_profile_service_is_up() {
        let dir = tempfile::tempdir().unwrap();
        assert!(build(&config(&dir, "127.0.0.1:1")).await.is_ok());
        assert!(dir.path().join("post.db").exists());
    }

    #[tokio::test]
    async fn refuses_an_invalid_profile_address_without_creating_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&config(&dir, "not a host")).await.err();
        assert!(matches!(err, Some(BuildError::ProfileAddr(_))), "{err:?}");
        assert!(!dir.path().join("post.db").exists());
        let bad_engagement = PostConfig {
            engagement_addr: "not a host".into(),
            ..config(&dir, "127.0.0.1:1")
        };
        let err = build(&bad_engagement).await.err();
        assert!(
            matches!(err, Some(BuildError::EngagementAddr(_))),
            "{err:?}"
        );
        assert!(!dir.path().join("post.db").exists());
    }

    #[tokio::test]
    async fn a_postgres_url_opens_a_postgres_store() {
        let Some(t) = pronet_common::testing::postgres_schema("openstore").await else {
            return;
        };
        // A database that does not exist on the test server: only PostgreSQL says 3D000, and
        // nothing is created anywhere.
        let database = DatabaseUrl::parse(&format!("{}_missing_db", t.url)).unwrap();
        let err = open_store(&database, None).await.err();
        assert!(
            matches!(&err, Some(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000")),
            "{err:?}"
        );
    }
}
