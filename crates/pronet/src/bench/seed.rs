//! `bench seed`: writes a [`Plan`] into a running suite through its public gRPC API,
//! concurrently, with a progress bar per phase and items/s at the end of each. Members act with
//! their own tokens; posts are backfilled over the time span with a service token. Failed calls
//! are counted by status code rather than stopping the run (a second run over the same suite
//! meets its own profiles and connections again).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::time::{now_micros, to_timestamp};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

use super::graph::{Engagement, Follow, Plan};
use crate::suite::SuiteAddrs;

const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
const REACTIONS: [epb::ReactionType; 6] = [
    epb::ReactionType::Like,
    epb::ReactionType::Celebrate,
    epb::ReactionType::Support,
    epb::ReactionType::Love,
    epb::ReactionType::Insightful,
    epb::ReactionType::Funny,
];

/// How one phase went.
#[derive(Debug, Clone)]
pub struct PhaseReport {
    pub name: &'static str,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl PhaseReport {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

fn bar(name: &str, len: usize) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(name.to_string());
    pb
}

/// Runs `calls` with `concurrency` in flight, keeping each call's result (in order).
async fn phase<T, Fut>(
    name: &'static str,
    concurrency: usize,
    calls: Vec<Fut>,
) -> (PhaseReport, Vec<Option<T>>)
where
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    let started = Instant::now();
    let pb = bar(name, calls.len());
    let results: Vec<Result<T, tonic::Status>> = stream::iter(calls)
        .buffered(concurrency)
        .inspect(|_| pb.inc(1))
        .collect()
        .await;
    pb.finish_and_clear();
    let mut report = PhaseReport {
        name,
        ok: 0,
        errors: BTreeMap::new(),
        elapsed: started.elapsed(),
    };
    let values = results
        .into_iter()
        .map(|r| match r {
            Ok(v) => {
                report.ok += 1;
                Some(v)
            }
            Err(s) => {
                *report.errors.entry(format!("{:?}", s.code())).or_default() += 1;
                None
            }
        })
        .collect();
    (report, values)
}

/// Writes `plan` for the members `ids` (one per plan member). `on_phase` sees each phase as it
/// ends.
pub async fn write(
    addrs: &SuiteAddrs,
    auth: &AuthConfig,
    plan: &Plan,
    ids: &[String],
    seed: u64,
    concurrency: usize,
    mut on_phase: impl FnMut(&PhaseReport),
) -> anyhow::Result<Vec<PhaseReport>> {
    anyhow::ensure!(ids.len() == plan.members, "one id per member");
    let tokens: Vec<String> = ids
        .iter()
        .map(|id| auth.member_token(id, TOKEN_TTL))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let importer = auth
        .service_token("bench", TOKEN_TTL)
        .map_err(anyhow::Error::msg)?;
    let profiles = ProfileServiceClient::new(connect(addrs.profile).await?);
    let posts = PostServiceClient::new(connect(addrs.post).await?);
    let engagement = EngagementServiceClient::new(connect(addrs.engagement).await?);
    let mut reports = Vec::new();
    let tag = seed & 0xffff;

    let calls: Vec<_> = (0..plan.members)
        .map(|i| {
            let mut c = profiles.clone();
            let req = prpb::CreateProfileRequest {
                profile: Some(prpb::Profile {
                    handle: format!("b{tag:x}_{i}"),
                    display_name: format!("Bench Member {i}"),
                    headline: "Engineer at Bench".into(),
                    ..Default::default()
                }),
                // Stable keys: a seeding run again does not create anything twice.
                request_id: format!("bench-{tag:x}-profile-{i}"),
            };
            let token = &tokens[i];
            async move { c.create_profile(with_token(req, token)).await.map(|_| ()) }
        })
        .collect();
    let (r, _) = phase("profiles", concurrency, calls).await;
    on_phase(&r);
    reports.push(r);

    // The lower index invites, the higher accepts.
    let calls: Vec<_> = plan
        .edges
        .iter()
        .map(|&(a, b)| {
            let mut c = profiles.clone();
            let (inviter, invitee) = (ids[a].clone(), ids[b].clone());
            let (ta, tb) = (&tokens[a], &tokens[b]);
            async move {
                let inv = c
                    .create_invitation(with_token(
                        prpb::CreateInvitationRequest {
                            inviter_id: inviter,
                            invitee_id: invitee.clone(),
                            ..Default::default()
                        },
                        ta,
                    ))
                    .await?
                    .into_inner()
                    .invitation
                    .unwrap_or_default();
                c.accept_invitation(with_token(
                    prpb::AcceptInvitationRequest {
                        invitation_id: inv.id,
                        member_id: invitee,
                    },
                    tb,
                ))
                .await
                .map(|_| ())
            }
        })
        .collect();
    let (r, _) = phase("connections", concurrency, calls).await;
    on_phase(&r);
    reports.push(r);

    let calls: Vec<_> = plan
        .follows
        .iter()
        .map(|(m, f)| {
            let mut c = profiles.clone();
            let target = match f {
                Follow::Member(x) => prpb::follow_request::Target::FolloweeId(ids[*x].clone()),
                Follow::Hashtag(t) => prpb::follow_request::Target::Hashtag(t.clone()),
            };
            let req = prpb::FollowRequest {
                member_id: ids[*m].clone(),
                target: Some(target),
            };
            let token = &tokens[*m];
            async move { c.follow(with_token(req, token)).await.map(|_| ()) }
        })
        .collect();
    let (r, _) = phase("follows", concurrency, calls).await;
    on_phase(&r);
    reports.push(r);

    let now = now_micros();
    let calls: Vec<_> = plan
        .posts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = posts.clone();
            let req = ppb::CreatePostRequest {
                author_id: ids[p.author].clone(),
                text: p.text.clone(),
                visibility: ppb::Visibility::Public as i32,
                create_time: Some(to_timestamp(now - p.age_us)),
                request_id: format!("bench-{tag:x}-post-{i}"),
                reshare_of: String::new(),
            };
            let importer = &importer;
            async move {
                let post = c
                    .create_post(with_token(req, importer))
                    .await?
                    .into_inner()
                    .post;
                Ok(post.map(|p| p.id).unwrap_or_default())
            }
        })
        .collect();
    let (r, post_ids) = phase("posts", concurrency, calls).await;
    on_phase(&r);
    reports.push(r);

    let post_ids: Vec<Option<String>> = post_ids;
    let calls: Vec<_> = plan
        .engagement
        .iter()
        .filter_map(|e| {
            let mut c = engagement.clone();
            let id = |p: &usize| post_ids[*p].clone();
            let call = match e {
                Engagement::React(m, p, t) => {
                    let req = epb::ReactRequest {
                        member_id: ids[*m].clone(),
                        post_id: id(p)?,
                        reaction_type: REACTIONS[*t] as i32,
                    };
                    let token = &tokens[*m];
                    EngagementCall::React(req, token)
                }
                Engagement::Comment(m, p) => EngagementCall::Comment(
                    epb::CreateCommentRequest {
                        member_id: ids[*m].clone(),
                        post_id: id(p)?,
                        text: "Thanks for sharing this.".into(),
                        ..Default::default()
                    },
                    &tokens[*m],
                ),
                Engagement::Share(m, p) => EngagementCall::Share(
                    epb::RecordShareRequest {
                        member_id: ids[*m].clone(),
                        post_id: id(p)?,
                    },
                    &tokens[*m],
                ),
                Engagement::Impressions(m, ps) => EngagementCall::Impressions(
                    epb::RecordImpressionsRequest {
                        member_id: ids[*m].clone(),
                        post_ids: ps.iter().filter_map(id).collect(),
                    },
                    &tokens[*m],
                ),
            };
            Some(async move {
                match call {
                    EngagementCall::React(r, t) => c.react(with_token(r, t)).await.map(|_| ()),
                    EngagementCall::Comment(r, t) => {
                        c.create_comment(with_token(r, t)).await.map(|_| ())
                    }
                    EngagementCall::Share(r, t) => {
                        c.record_share(with_token(r, t)).await.map(|_| ())
                    }
                    EngagementCall::Impressions(r, t) => {
                        c.record_impressions(with_token(r, t)).await.map(|_| ())
                    }
                }
            })
        })
        .collect();
    let (r, _) = phase("engagement", concurrency, calls).await;
    on_phase(&r);
    reports.push(r);
    Ok(reports)
}

enum EngagementCall<'a> {
    React(epb::ReactRequest, &'a str),
    Comment(epb::CreateCommentRequest, &'a str),
    Share(epb::RecordShareRequest, &'a str),
    Impressions(epb::RecordImpressionsRequest, &'a str),
}
