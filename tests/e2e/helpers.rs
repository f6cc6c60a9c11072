//! `spawn_app()`: the whole suite on port 0 with a fresh data dir, and clients for it.

use std::path::Path;

use pronet::{RunningSuite, SuiteAddrs, SuiteConfig};
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
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub struct TestApp {
    pub suite: Option<RunningSuite>,
    pub dir: TempDir,
    pub profiles: ProfileServiceClient<Channel>,
    pub posts: PostServiceClient<Channel>,
    pub engagement: EngagementServiceClient<Channel>,
    pub feed: FeedServiceClient<Channel>,
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = start_suite(dir.path()).await;
    let addrs = suite.addrs;
    TestApp {
        suite: Some(suite),
        dir,
        profiles: ProfileServiceClient::new(channel(addrs.profile).await),
        posts: PostServiceClient::new(channel(addrs.post).await),
        engagement: EngagementServiceClient::new(channel(addrs.engagement).await),
        feed: FeedServiceClient::new(channel(addrs.feed).await),
    }
}

pub async fn start_suite(dir: &Path) -> RunningSuite {
    RunningSuite::start(SuiteConfig::new(dir, SuiteAddrs::ephemeral()))
        .await
        .expect("suite starts")
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
        if let Some(suite) = self.suite.take() {
            suite.stop().await.expect("clean stop");
        }
        let suite = start_suite(self.dir.path()).await;
        let addrs = suite.addrs;
        self.profiles = ProfileServiceClient::new(channel(addrs.profile).await);
        self.posts = PostServiceClient::new(channel(addrs.post).await);
        self.engagement = EngagementServiceClient::new(channel(addrs.engagement).await);
        self.feed = FeedServiceClient::new(channel(addrs.feed).await);
        self.suite = Some(suite);
    }

    pub async fn member(&self, handle: &str) -> prpb::Profile {
        let mut c = self.profiles.clone();
        c.create_profile(prpb::CreateProfileRequest {
            profile: Some(prpb::Profile {
                handle: handle.into(),
                display_name: display_name(handle),
                headline: format!("{handle} at Acme"),
                skills: vec!["Rust".into()],
                ..Default::default()
            }),
        })
        .await
        .expect("create profile")
        .into_inner()
        .profile
        .expect("profile")
    }

    pub async fn connect(&self, a: &prpb::Profile, b: &prpb::Profile) {
        let mut c = self.profiles.clone();
        let inv = c
            .create_invitation(prpb::CreateInvitationRequest {
                inviter_id: a.id.clone(),
                invitee_id: b.id.clone(),
                message: "let's connect".into(),
            })
            .await
            .expect("invite")
            .into_inner()
            .invitation
            .expect("invitation");
        c.accept_invitation(prpb::AcceptInvitationRequest {
            invitation_id: inv.id,
            member_id: b.id.clone(),
        })
        .await
        .expect("accept");
    }

    pub async fn follow_member(&self, who: &prpb::Profile, whom: &prpb::Profile) {
        let mut c = self.profiles.clone();
        c.follow(prpb::FollowRequest {
            member_id: who.id.clone(),
            target: Some(prpb::follow_request::Target::FolloweeId(whom.id.clone())),
        })
        .await
        .expect("follow");
    }

    pub async fn follow_hashtag(&self, who: &prpb::Profile, tag: &str) {
        let mut c = self.profiles.clone();
        c.follow(prpb::FollowRequest {
            member_id: who.id.clone(),
            target: Some(prpb::follow_request::Target::Hashtag(tag.into())),
        })
        .await
        .expect("follow hashtag");
    }

    pub async fn post(
        &self,
        author: &prpb::Profile,
        text: &str,
        vis: ppb::Visibility,
    ) -> ppb::Post {
        let mut c = self.posts.clone();
        c.create_post(ppb::CreatePostRequest {
            author_id: author.id.clone(),
            text: text.into(),
            visibility: vis as i32,
            create_time: None,
        })
        .await
        .expect("create post")
        .into_inner()
        .post
        .expect("post")
    }

    pub async fn react(&self, who: &prpb::Profile, post: &ppb::Post, t: epb::ReactionType) {
        let mut c = self.engagement.clone();
        c.react(epb::ReactRequest {
            member_id: who.id.clone(),
            post_id: post.id.clone(),
            reaction_type: t as i32,
        })
        .await
        .expect("react");
    }

    pub async fn comment(&self, who: &prpb::Profile, post: &ppb::Post, text: &str) {
        let mut c = self.engagement.clone();
        c.create_comment(epb::CreateCommentRequest {
            member_id: who.id.clone(),
            post_id: post.id.clone(),
            text: text.into(),
        })
        .await
        .expect("comment");
    }

    pub async fn share(&self, who: &prpb::Profile, post: &ppb::Post) {
        let mut c = self.engagement.clone();
        c.record_share(epb::RecordShareRequest {
            member_id: who.id.clone(),
            post_id: post.id.clone(),
        })
        .await
        .expect("share");
    }

    pub async fn feed_page(
        &self,
        member: &prpb::Profile,
        page_size: i32,
        page_token: &str,
    ) -> fpb::GetFeedResponse {
        let mut c = self.feed.clone();
        c.get_feed(fpb::GetFeedRequest {
            member_id: member.id.clone(),
            page_size,
            page_token: page_token.into(),
        })
        .await
        .expect("get feed")
        .into_inner()
    }

    /// Every item of a member's feed, page after page.
    pub async fn whole_feed(&self, member: &prpb::Profile, page_size: i32) -> Vec<fpb::FeedItem> {
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
