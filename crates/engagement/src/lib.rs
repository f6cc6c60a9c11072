//! The engagement service: reactions, comments, shares, impressions and negative feedback.
//!
//! Where its behaviour lives: `service.rs` holds the handlers (authorize, check the post with
//! its service, call the store, answer), `service/convert.rs` parses each request into a typed
//! input (`parse_<rpc>`, one per request shape) and converts records back,
//! `service/tests.rs` tests them. `domain` holds the types and rules, `store` the storage trait
//! and the dialect-neutral SQL both backends share, with one module per backend split by area
//! (`store/timed.rs` times them). The clients of other services are named by the service they
//! call: `posts` and `profiles`; `visibility` is the cache of who may see which post, fed by
//! their events. `events` are the domain events its store writes; `error` its errors.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod posts;
pub mod profiles;
pub mod service;
pub mod store;
pub mod visibility;

use std::sync::Arc;

use pronet_common::auth::Access;
use pronet_common::server::StoreService;
use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_common::upstream::lazy_channel;
use pronet_proto::engagement::v1::engagement_service_server::EngagementServiceServer;
use tonic::service::Routes;

pub use config::EngagementConfig;
pub use error::BuildError;
use posts::GrpcPostDirectory;
use profiles::GrpcMemberGraph;
pub use service::EngagementApi;
use store::postgres::PgEngagementStore;
use store::sqlite::SqliteEngagementStore;
use store::EngagementStore;
use visibility::{CacheSources, CachedPostDirectory, VisibilityCache};

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.engagement.v1.EngagementService";

/// The PostgreSQL schema the store lives in, beside the other services' in a shared database.
pub const SCHEMA: &str = "engagement";

pronet_common::open_store!(dyn EngagementStore: SqliteEngagementStore | PgEngagementStore, SCHEMA, store::timed::STORE_NAME);

/// Who may call each method of the engagement service, by gRPC path
/// (`/pronet.engagement.v1.EngagementService/React`), for the auth layer. Unknown paths are for
/// members, the narrowest rule that still lets the server answer UNIMPLEMENTED.
pub fn access(path: &str) -> Access {
    pronet_common::auth::method_of(path, SERVICE_NAME)
        .and_then(method_access)
        .unwrap_or(Access::Member)
}

/// The rule of each method by name; `None` for a method this service does not have.
fn method_access(method: &str) -> Option<Access> {
    match method {
        // Writes in a member's name.
        "React" | "Unreact" | "CreateComment" | "UpdateComment" | "DeleteComment"
        | "ReactToComment" | "UnreactToComment" | "RecordImpressions" => Some(Access::Member),
        // A member's negative feedback on their own feed, and its list.
        "HidePost" | "UnhidePost" | "MuteHashtag" | "UnmuteHashtag" | "MuteAuthor"
        | "UnmuteAuthor" | "ListMutes" => Some(Access::Member),
        // Members read for themselves, the feed for the member it ranks for; the post service
        // records the share of a reshare for its author.
        "BatchGetPostStats" | "ListComments" | "ListReactions" | "RecordShare" => {
            Some(Access::MemberOrService)
        }
        // Reveal what many members did or saw: internal only.
        "ListRecentActivity" | "ListSeenPosts" => Some(Access::Service),
        // Writes in anyone's name, with any time: for importers (migrations, the bench seed).
        "ImportEngagement" => Some(Access::Service),
        _ => None,
    }
}

/// Opens the store, prepares lazy channels to the post and profile services and returns the
/// service's routes. Neither service need be up yet.
pub async fn build(config: &EngagementConfig) -> Result<StoreService, BuildError> {
    // The address and key first: a mistake should not leave a freshly created database behind.
    let channel =
        lazy_channel(&config.post_addr, config.call_limits).map_err(BuildError::PostAddr)?;
    let profile_channel =
        lazy_channel(&config.profile_addr, config.call_limits).map_err(BuildError::ProfileAddr)?;
    // Every write asks the post service with a service token; without a key to sign one, each
    // would fail, so refuse to start instead.
    if !config.auth.can_sign() {
        return Err(BuildError::CannotSign);
    }
    let store = open_store(&config.store.database, config.store.metrics.clone()).await?;
    let posts = GrpcPostDirectory::new(channel, config.auth.clone(), config.store.metrics.clone());
    // Who may see which post, from the post and profile services' events; the post service
    // still answers what the cache cannot (see `visibility`).
    let sources = CacheSources {
        profile_addr: config.profile_addr.clone(),
        post_addr: config.post_addr.clone(),
        auth: config.auth.clone(),
        limits: config.call_limits,
        nats: config.store.nats.clone(),
        shutdown: config.store.shutdown.clone(),
        metrics: config.store.metrics.clone(),
    };
    let cache = Arc::new(VisibilityCache::new());
    let consumer = format!("engagement/{}", pronet_common::ids::new_id());
    visibility::start_followers(&cache, &sources, &consumer).map_err(BuildError::ProfileAddr)?;
    let posts =
        CachedPostDirectory::new(cache, &sources, Arc::new(posts)).map_err(BuildError::PostAddr)?;
    let graph = GrpcMemberGraph::new(profile_channel, config.auth.clone());
    let api = EngagementApi::new(store.clone(), Arc::new(posts), Arc::new(graph));
    let routes = Routes::new(
        EngagementServiceServer::new(api).max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    );
    Ok(StoreService::new(
        routes,
        events::SOURCE,
        store,
        &config.store,
    ))
}

#[cfg(test)]
mod tests {
    use pronet_common::config::EnvMap;
    use pronet_common::db::DatabaseUrl;
    use pronet_common::server::StoreConfig;
    use pronet_common::upstream::CallLimits;
    use prost::Message;
    use tonic::server::NamedService;

    use super::*;

    fn config(dir: &tempfile::TempDir, post_addr: &str) -> EngagementConfig {
        EngagementConfig {
            store: StoreConfig::new(DatabaseUrl::Sqlite(dir.path().join("engagement.db"))),
            post_addr: post_addr.into(),
            profile_addr: "127.0.0.1:1".into(),
            call_limits: CallLimits::default(),
            auth: pronet_common::testing::test_auth(),
        }
    }

    #[test]
    fn service_name_matches_the_generated_server() {
        assert_eq!(SERVICE_NAME, EngagementServiceServer::<EngagementApi>::NAME);
    }

    #[test]
    fn each_method_has_its_access_rule_and_unknown_paths_are_for_members() {
        let writes = [
            "React",
            "Unreact",
            "CreateComment",
            "UpdateComment",
            "DeleteComment",
            "ReactToComment",
            "UnreactToComment",
            "RecordImpressions",
        ];
        let feedback = [
            "HidePost",
            "UnhidePost",
            "MuteHashtag",
            "UnmuteHashtag",
            "MuteAuthor",
            "UnmuteAuthor",
            "ListMutes",
        ];
        let reads = [
            "BatchGetPostStats",
            "ListComments",
            "ListReactions",
            "RecordShare",
        ];
        let internal = ["ListRecentActivity", "ListSeenPosts", "ImportEngagement"];
        pronet_common::testing::assert_access_rules(
            access,
            SERVICE_NAME,
            &[
                (Access::Member, &writes),
                (Access::Member, &feedback),
                (Access::MemberOrService, &reads),
                (Access::Service, &internal),
            ],
        );
    }

    #[test]
    fn every_method_in_the_proto_has_an_explicit_rule() {
        let set =
            prost_types::FileDescriptorSet::decode(pronet_proto::FILE_DESCRIPTOR_SET).unwrap();
        let methods: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "pronet.engagement.v1")
            .flat_map(|f| &f.service)
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        assert_eq!(methods.len(), 22, "{methods:?}");
        for method in methods {
            assert!(method_access(&method).is_some(), "{method} has no rule");
        }
    }

    #[tokio::test]
    async fn builds_before_the_post_service_is_up() {
        let dir = tempfile::tempdir().unwrap();
        assert!(build(&config(&dir, "127.0.0.1:1")).await.is_ok());
        assert!(dir.path().join("engagement.db").exists());
    }

    #[tokio::test]
    async fn refuses_an_invalid_post_address_without_creating_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = build(&config(&dir, "not a host")).await.err();
        assert!(matches!(err, Some(BuildError::PostAddr(_))), "{err:?}");
        assert!(!dir.path().join("engagement.db").exists());
    }

    #[tokio::test]
    async fn refuses_an_invalid_profile_address_without_creating_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&dir, "127.0.0.1:1");
        config.profile_addr = "not a host".into();
        let err = build(&config).await.err();
        assert!(matches!(err, Some(BuildError::ProfileAddr(_))), "{err:?}");
        assert!(!dir.path().join("engagement.db").exists());
    }

    #[tokio::test]
    async fn refuses_a_key_that_cannot_sign_service_tokens() {
        // The public half of a throwaway Ed25519 key pair: verifies, cannot sign.
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA6gb5SBx76a7N9sgVQNzO1GOsBmqqXy/hSKp9N4cU6TM=\n-----END PUBLIC KEY-----\n";
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("public.pem");
        std::fs::write(&key, public).unwrap();
        let env: EnvMap = [(
            "PRONET_JWT_PUBLIC_KEY_FILE".to_string(),
            key.display().to_string(),
        )]
        .into();
        let mut config = config(&dir, "127.0.0.1:1");
        let auth = pronet_common::auth::AuthConfig::from_env(&env, None, false).unwrap();
        config.auth = Arc::new(auth);
        let err = build(&config).await.err();
        assert!(matches!(err, Some(BuildError::CannotSign)), "{err:?}");
        assert!(!dir.path().join("engagement.db").exists());
    }
}
