//! `spawn_app()`: the whole suite on port 0 with a fresh data dir, and clients for it.

use std::sync::Arc;
use std::time::Duration;

use pronet::suite::Storage;
use pronet::{RunningSuite, SuiteAddrs, SuiteConfig};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::ids::new_id;
use pronet_common::testing::{postgres_database, TestDatabase};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::feed::v1::feed_service_client::FeedServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

/// A member as a client holds it: the profile and a token to act with.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub token: String,
    pub profile: prpb::Profile,
}

/// Which store backend the suite under test runs on (set by each test binary's main).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test app keeps its data: its own SQLite files or its own PostgreSQL database.
pub struct TestStorage {
    pub dir: TempDir,
    pub database: Option<TestDatabase>,
}

impl TestStorage {
    /// Fresh storage for the binary's backend; `None` (after a loud SKIPPED message) when the
    /// backend is PostgreSQL and it is not reachable outside CI.
    pub async fn new(label: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = match crate::BACKEND {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database(label).await?),
        };
        Some(Self { dir, database })
    }

    pub fn storage(&self) -> Storage {
        match &self.database {
            Some(db) => Storage::Postgres(db.url.clone()),
            None => Storage::Embedded(self.dir.path().to_path_buf()),
        }
    }
}

pub struct TestApp {
    pub suite: Option<RunningSuite>,
    pub storage: TestStorage,
    pub auth: Arc<AuthConfig>,
    /// The HS256 secret behind `auth`, to forge tokens the API cannot mint (expired ones).
    pub secret: String,
    pub profiles: ProfileServiceClient<Channel>,
    pub posts: PostServiceClient<Channel>,
    pub engagement: EngagementServiceClient<Channel>,
    pub feed: FeedServiceClient<Channel>,
}

/// The whole suite on port 0 with fresh storage; `None` when the binary's backend is PostgreSQL
/// and it is unreachable outside CI (the test then returns early, said loudly).
pub async fn spawn_app() -> Option<TestApp> {
    spawn_app_with(None).await
}

/// [`spawn_app`] with the domain events over NATS JetStream.
pub async fn spawn_app_with(nats: Option<pronet_common::nats::NatsConfig>) -> Option<TestApp> {
    let storage = TestStorage::new("e2e").await?;
    // A fresh random HS256 secret per test app.
    let secret = format!("{}{}", new_id(), new_id());
    let auth = Arc::new(AuthConfig::hs256(secret.as_bytes(), "pronet").expect("auth config"));
    let mut config = SuiteConfig::new(storage.storage(), SuiteAddrs::ephemeral(), auth.clone());
    config.nats = nats;
    let suite = RunningSuite::start(config).await.expect("suite starts");
    let addrs = suite.addrs;
    Some(TestApp {
        suite: Some(suite),
        storage,
        auth,
        secret,
        profiles: ProfileServiceClient::new(channel(addrs.profile).await),
        posts: PostServiceClient::new(channel(addrs.post).await),
        engagement: EngagementServiceClient::new(channel(addrs.engagement).await),
        feed: FeedServiceClient::new(channel(addrs.feed).await),
    })
}

pub async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

impl TestApp {
    /// Stops the suite and starts a new one on the same data dir (new ports, new clients).
    pub async fn restart(&mut self) {
        self.restart_counted(None).await;
    }

    /// [`Self::restart`], the new suite counting its calls and dependencies in `metrics`.
    pub async fn restart_counted(&mut self, metrics: Option<Arc<pronet_common::metrics::Metrics>>) {
        if let Some(suite) = self.suite.take() {
            suite.stop().await.expect("clean stop");
        }
        let mut config = SuiteConfig::new(
            self.storage.storage(),
            SuiteAddrs::ephemeral(),
            self.auth.clone(),
        );
        config.metrics = metrics;
        let suite = RunningSuite::start(config).await.expect("suite starts");
        let addrs = suite.addrs;
        self.profiles = ProfileServiceClient::new(channel(addrs.profile).await);
        self.posts = PostServiceClient::new(channel(addrs.post).await);
        self.engagement = EngagementServiceClient::new(channel(addrs.engagement).await);
        self.feed = FeedServiceClient::new(channel(addrs.feed).await);
        self.suite = Some(suite);
    }

    /// A request carrying `member`'s token.
    pub fn req<T>(&self, member: &Member, message: T) -> Request<T> {
        with_token(message, &member.token)
    }

    /// A request carrying a service token (as another pronet service would send).
    pub fn service_req<T>(&self, message: T) -> Request<T> {
        let token = self
            .auth
            .service_token("tests", Duration::from_secs(600))
            .expect("service token");
        with_token(message, &token)
    }

    pub fn addrs(&self) -> SuiteAddrs {
        self.suite.as_ref().expect("running").addrs
    }

    /// A member token that expired at `exp` (seconds since the epoch), signed with the right key.
    pub fn expired_member_token(&self, member_id: &str, exp: u64) -> String {
        let claims = serde_json::json!({
            "sub": member_id, "iss": "pronet", "aud": "pronet", "exp": exp, "iat": exp - 60,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .expect("expired token")
    }

    /// A member of the identity provider (an id and a token) without a profile yet.
    pub fn identity(&self) -> (String, String) {
        let id = new_id();
        let token = self
            .auth
            .member_token(&id, Duration::from_secs(600))
            .expect("member token");
        (id, token)
    }

    pub async fn member(&self, handle: &str) -> Member {
        let (id, token) = self.identity();
        let mut c = self.profiles.clone();
        let profile = c
            .create_profile(with_token(
                prpb::CreateProfileRequest {
                    profile: Some(prpb::Profile {
                        handle: handle.into(),
                        display_name: display_name(handle),
                        headline: format!("{handle} at Acme"),
                        skills: vec!["Rust".into()],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .expect("create profile")
            .into_inner()
            .profile
            .expect("profile");
        assert_eq!(profile.id, id, "the profile id is the token subject");
        Member { id, token, profile }
    }

    pub async fn connect(&self, a: &Member, b: &Member) {
        let mut c = self.profiles.clone();
        let inv = c
            .create_invitation(self.req(
                a,
                prpb::CreateInvitationRequest {
                    inviter_id: a.id.clone(),
                    invitee_id: b.id.clone(),
                    message: "let's connect".into(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("invite")
            .into_inner()
            .invitation
            .expect("invitation");
        c.accept_invitation(self.req(
            b,
            prpb::AcceptInvitationRequest {
                invitation_id: inv.id,
                member_id: b.id.clone(),
            },
        ))
        .await
        .expect("accept");
    }

    pub async fn follow_member(&self, who: &Member, whom: &Member) {
        let mut c = self.profiles.clone();
        c.follow(self.req(
            who,
            prpb::FollowRequest {
                member_id: who.id.clone(),
                target: Some(prpb::follow_request::Target::FolloweeId(whom.id.clone())),
            },
        ))
        .await
        .expect("follow");
    }

    pub async fn follow_hashtag(&self, who: &Member, tag: &str) {
        let mut c = self.profiles.clone();
        c.follow(self.req(
            who,
            prpb::FollowRequest {
                member_id: who.id.clone(),
                target: Some(prpb::follow_request::Target::Hashtag(tag.into())),
            },
        ))
        .await
        .expect("follow hashtag");
    }

    pub async fn post(&self, author: &Member, text: &str, vis: ppb::Visibility) -> ppb::Post {
        let mut c = self.posts.clone();
        c.create_post(self.req(
            author,
            ppb::CreatePostRequest {
                author_id: author.id.clone(),
                text: text.into(),
                visibility: vis as i32,
                create_time: None,
                request_id: String::new(),
                reshare_of: String::new(),
            },
        ))
        .await
        .expect("create post")
        .into_inner()
        .post
        .expect("post")
    }

    pub async fn react(&self, who: &Member, post: &ppb::Post, t: epb::ReactionType) {
        let mut c = self.engagement.clone();
        c.react(self.req(
            who,
            epb::ReactRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                reaction_type: t as i32,
            },
        ))
        .await
        .expect("react");
    }

    pub async fn comment(&self, who: &Member, post: &ppb::Post, text: &str) {
        let mut c = self.engagement.clone();
        c.create_comment(self.req(
            who,
            epb::CreateCommentRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                text: text.into(),
                request_id: String::new(),
                parent_comment_id: String::new(),
            },
        ))
        .await
        .expect("comment");
    }

    /// Comments and returns the new comment's id.
    pub async fn comment_id(&self, who: &Member, post: &ppb::Post, text: &str) -> String {
        let mut c = self.engagement.clone();
        c.create_comment(self.req(
            who,
            epb::CreateCommentRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                text: text.into(),
                request_id: String::new(),
                parent_comment_id: String::new(),
            },
        ))
        .await
        .expect("comment")
        .into_inner()
        .comment
        .expect("comment")
        .id
    }

    pub async fn share(&self, who: &Member, post: &ppb::Post) {
        let mut c = self.engagement.clone();
        c.record_share(self.req(
            who,
            epb::RecordShareRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
            },
        ))
        .await
        .expect("share");
    }

    /// The newest event sequence each of profile, post and engagement has committed.
    pub async fn event_heads(&self) -> [i64; 3] {
        pronet::suite::event_heads(&self.addrs(), &self.auth)
            .await
            .expect("event heads")
    }

    /// Waits until the feed's index has applied every event committed so far (the feed is
    /// eventually consistent: a write is in the index a few milliseconds after it is
    /// acknowledged).
    pub async fn settle(&self) {
        self.suite
            .as_ref()
            .expect("a running suite")
            .settle(Duration::from_secs(10))
            .await
            .expect("the feed index catches up");
    }

    pub async fn feed_page(
        &self,
        member: &Member,
        page_size: i32,
        page_token: &str,
    ) -> fpb::GetFeedResponse {
        self.settle().await;
        let mut c = self.feed.clone();
        c.get_feed(self.req(
            member,
            fpb::GetFeedRequest {
                member_id: member.id.clone(),
                page_size,
                page_token: page_token.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("get feed")
        .into_inner()
    }

    /// Every item of a member's feed, page after page.
    pub async fn whole_feed(&self, member: &Member, page_size: i32) -> Vec<fpb::FeedItem> {
        let mut items = Vec::new();
        let mut token = String::new();
        for _ in 0..1000 {
            let page = self.feed_page(member, page_size, &token).await;
            items.extend(page.items);
            if page.next_page_token.is_empty() {
                return items;
            }
            token = page.next_page_token;
        }
        panic!("feed never ended");
    }
}

pub fn display_name(handle: &str) -> String {
    let mut name = handle.replace('_', " ");
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    name
}

/// Asserts an INVALID_ARGUMENT whose BadRequest names exactly `fields` (in any order).
pub fn assert_bad_request(status: &Status, fields: &[&str]) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "expected INVALID_ARGUMENT, got {status:?}"
    );
    let bad = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest details in {status:?}"));
    let mut got: Vec<&str> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "violations of {status:?}");
    for v in &bad.field_violations {
        assert!(
            !v.description.is_empty(),
            "violation of {} says why",
            v.field
        );
    }
}
