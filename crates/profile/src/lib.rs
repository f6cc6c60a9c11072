//! The profile service: member profiles, invitations, connections and follows.
//!
//! Where its behaviour lives: `service.rs` holds the handlers (authorize, call the store,
//! answer), `service/convert.rs` parses each request into a typed input (`parse_<rpc>`) and
//! converts records back, `service/tests.rs` tests them. `domain` holds the types and rules,
//! by area (`profiles`, `invitations`, `graph`, `search`, `suggestions`). `store` is the
//! storage trait and the dialect-neutral SQL both backends share; `store/sqlite` and
//! `store/postgres` are the backends, split by the same areas; `store/timed.rs` times them.
//! `events` are the domain events the store writes to its outbox; `error` its errors.

pub mod domain;
pub mod error;
pub mod events;
pub mod service;
pub mod store;

use pronet_common::auth::Access;
use pronet_common::server::MAX_DECODING_MESSAGE_BYTES;
use pronet_common::server::{StoreConfig, StoreService};
use pronet_proto::profile::v1::profile_service_server::ProfileServiceServer;
use tonic::service::Routes;

pub use service::ProfileApi;
use store::postgres::PgProfileStore;
use store::sqlite::SqliteProfileStore;
use store::ProfileStore;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "pronet.profile.v1.ProfileService";

/// The service's schema when its store is on PostgreSQL.
pub const SCHEMA: &str = "profile";

/// Who may call each method of the service (see `pronet_common::auth`); unknown paths are
/// for members, the narrowest rule a handler can still check.
pub fn access(path: &str) -> Access {
    let method = pronet_common::auth::method_of(path, SERVICE_NAME);
    match method {
        Some(
            "CreateProfile" | "UpdateProfile" | "CreateInvitation" | "AcceptInvitation" | "Follow"
            | "BlockMember" | "UnblockMember" | "DeclineInvitation" | "WithdrawInvitation"
            | "RemoveConnection" | "Unfollow" | "SuggestConnections" | "SearchProfiles",
        ) => Access::Member,
        // Reads services make on a member's behalf.
        Some(
            "GetProfile"
            | "BatchGetProfiles"
            | "ListInvitations"
            | "ListConnections"
            | "ListFollowing"
            | "ListFollowers"
            | "GetConnectionDegree",
        ) => Access::MemberOrService,
        // Internal: the post service asks how a viewer relates to authors, and whom
        // @mentions name.
        Some("BatchGetRelationships" | "LookupHandles") => Access::Service,
        // Bulk loads for benchmarks and migrations.
        Some("ImportConnections" | "ImportProfiles") => Access::Service,
        _ => Access::Member,
    }
}

pronet_common::open_store!(dyn ProfileStore: SqliteProfileStore | PgProfileStore, SCHEMA, store::timed::STORE_NAME);

/// Opens the store and returns the service's routes and its store's readiness. The profile
/// service needs nothing besides its store.
pub async fn build(config: &StoreConfig) -> Result<StoreService, sqlx::Error> {
    let store = open_store(&config.database, config.metrics.clone()).await?;
    let routes = Routes::new(
        ProfileServiceServer::new(ProfileApi::new(store.clone()))
            .max_decoding_message_size(MAX_DECODING_MESSAGE_BYTES),
    );
    Ok(StoreService::new(routes, events::SOURCE, store, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pronet_common::db::DatabaseUrl;

    #[test]
    fn every_method_has_its_access_rule() {
        let writes = [
            "CreateProfile",
            "UpdateProfile",
            "CreateInvitation",
            "AcceptInvitation",
            "DeclineInvitation",
            "WithdrawInvitation",
            "RemoveConnection",
            "Follow",
            "Unfollow",
            "BlockMember",
            "UnblockMember",
            "SuggestConnections",
            "SearchProfiles",
        ];
        let reads = [
            "GetProfile",
            "BatchGetProfiles",
            "ListInvitations",
            "ListConnections",
            "ListFollowing",
            "ListFollowers",
            "GetConnectionDegree",
        ];
        let internal = [
            "BatchGetRelationships",
            "LookupHandles",
            "ImportConnections",
            "ImportProfiles",
        ];
        pronet_common::testing::assert_access_rules(
            access,
            SERVICE_NAME,
            &[
                (Access::Member, &writes),
                (Access::MemberOrService, &reads),
                (Access::Service, &internal),
            ],
        );
    }

    #[tokio::test]
    async fn builds_on_an_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let database = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
        let config = StoreConfig::new(database);
        build(&config).await.unwrap();
        assert!(dir.path().join("profile.db").exists());
    }

    #[tokio::test]
    async fn open_store_opens_the_sqlite_file_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("profile.db");
        let store = open_store(&DatabaseUrl::Sqlite(path.clone()), None)
            .await
            .unwrap();
        assert_eq!(store.get_profile("nobody", None).await.unwrap(), None);
        assert!(path.exists());
    }

    #[test]
    fn service_name_matches_the_generated_server() {
        use tonic::server::NamedService;
        assert_eq!(SERVICE_NAME, ProfileServiceServer::<ProfileApi>::NAME);
    }

    #[test]
    fn unknown_paths_are_for_members() {
        for path in [
            "",
            "/",
            "/pronet.profile.v1.ProfileService/Nope",
            "/pronet.post.v1.PostService/GetPost",
            "/pronet.profile.v1.ProfileServiceX/BatchGetRelationships",
            "pronet.profile.v1.ProfileService/BatchGetRelationships",
        ] {
            assert_eq!(access(path), Access::Member, "{path:?}");
        }
    }
}
