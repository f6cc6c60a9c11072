//! The request mixes of `bench run` and the clients they use: one HTTP/2 connection per
//! service per `--connections`, member tokens signed up front, and a pool of public posts to
//! react to, comment on and count impressions of.

use std::time::Duration;

use anyhow::Context;
use clap::ValueEnum;
use pronet_common::auth::{with_token, AuthConfig};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::feed::v1::feed_service_client::FeedServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::rng::SplitMix64;
use crate::suite::SuiteAddrs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mix {
    /// grpc.health.v1.Health/Check on the four servers: the floor of the stack.
    Health,
    /// GetFeed only.
    Feed,
    /// DeathStarBench social network: 60% GetFeed, 30% ListPostsByAuthor, 10% CreatePost.
    Dsb,
    /// 50% GetFeed, 20% RecordImpressions of 10 posts, 20% React, 5% CreateComment, 5% CreatePost.
    Linkedin,
    /// React only (a random type on a popular public post): the write path of engagement.
    React,
    /// CreateComment only.
    Comment,
    /// RecordImpressions of 10 posts only.
    Impressions,
    /// CreatePost only.
    Post,
    /// Half React, half CreatePost: the writes whose arrival in the feed index
    /// `--feed-metrics` measures (freshness).
    Fresh,
    /// BatchGetPostStats of 1,000 posts, as the feed asks (service token, no viewer).
    Stats,
    /// GetConnectionDegree between two drawn members.
    Degree,
    /// SuggestConnections, first page of 20.
    Suggest,
    /// SearchProfiles, first page of 20: one to three words, a filter one time in three.
    Search,
}

/// One request of a mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Health(usize),
    GetFeed,
    ListPostsByAuthor,
    CreatePost,
    RecordImpressions,
    React,
    CreateComment,
    BatchGetPostStats,
    GetConnectionDegree,
    SuggestConnections,
    SearchProfiles,
}

/// Words recruiters type: titles, skills and companies of the bench profiles.
const SEARCH_WORDS: [&str; 16] = [
    "engineer",
    "rust",
    "data",
    "scientist",
    "acme",
    "kubernetes",
    "product",
    "manager",
    "sales",
    "python",
    "globex",
    "designer",
    "security",
    "leadership",
    "nurse",
    "recruiter",
];
const SEARCH_CITIES: [&str; 4] = ["Berlin", "London", "Paris", "Tokyo"];

/// Posts per BatchGetPostStats in the `stats` mix.
const STATS_BATCH: usize = 1000;

impl Mix {
    /// The op for a roll in `0..100`.
    fn op(self, roll: usize, seq: u64) -> Op {
        match self {
            Mix::Health => Op::Health((seq % 4) as usize),
            Mix::Feed => Op::GetFeed,
            Mix::Dsb => match roll {
                0..60 => Op::GetFeed,
                60..90 => Op::ListPostsByAuthor,
                _ => Op::CreatePost,
            },
            Mix::Linkedin => match roll {
                0..50 => Op::GetFeed,
                50..70 => Op::RecordImpressions,
                70..90 => Op::React,
                90..95 => Op::CreateComment,
                _ => Op::CreatePost,
            },
            Mix::React => Op::React,
            Mix::Comment => Op::CreateComment,
            Mix::Impressions => Op::RecordImpressions,
            Mix::Post => Op::CreatePost,
            Mix::Fresh => {
                if roll < 50 {
                    Op::React
                } else {
                    Op::CreatePost
                }
            }
            Mix::Stats => Op::BatchGetPostStats,
            Mix::Degree => Op::GetConnectionDegree,
            Mix::Suggest => Op::SuggestConnections,
            Mix::Search => Op::SearchProfiles,
        }
    }

    /// How many distinct public posts the mix needs to pick from.
    fn posts_needed(self) -> usize {
        match self {
            Mix::Linkedin | Mix::React | Mix::Comment | Mix::Impressions | Mix::Fresh => 1,
            Mix::Stats => STATS_BATCH,
            Mix::Health
            | Mix::Feed
            | Mix::Dsb
            | Mix::Post
            | Mix::Degree
            | Mix::Suggest
            | Mix::Search => 0,
        }
    }
}

const PAGE_SIZE: i32 = 10;
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
const REACTIONS: [epb::ReactionType; 6] = [
    epb::ReactionType::Like,
    epb::ReactionType::Celebrate,
    epb::ReactionType::Support,
    epb::ReactionType::Love,
    epb::ReactionType::Insightful,
    epb::ReactionType::Funny,
];
const HEALTH_SERVICES: [&str; 4] = [
    "pronet.profile.v1.ProfileService",
    "pronet.post.v1.PostService",
    "pronet.engagement.v1.EngagementService",
    "pronet.feed.v1.FeedService",
];

/// How a run draws its members: the Zipf exponent (0 draws uniformly) and the seed.
#[derive(Debug, Clone, Copy)]
pub struct Draws {
    pub skew: f64,
    pub seed: u64,
}

/// The channels of one connection slot.
struct Conn {
    profiles: ProfileServiceClient<Channel>,
    feed: FeedServiceClient<Channel>,
    posts: PostServiceClient<Channel>,
    engagement: EngagementServiceClient<Channel>,
    health: [HealthClient<Channel>; 4],
}

/// Everything a mix needs to issue requests.
pub struct Workload {
    mix: Mix,
    conns: Vec<Conn>,
    members: Vec<String>,
    /// Indices into `members` of those who make the requests (all, or a degree band).
    acting: Vec<usize>,
    tokens: Vec<String>,
    posts: Vec<String>,
    /// For service-only calls (the stats mix).
    service_token: String,
    /// Zipf exponent of member draws; 0 draws uniformly.
    skew: f64,
    seed: u64,
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Channel> {
    // `connect` (not lazy) so every slot is its own HTTP/2 connection, opened before the clock
    // starts, and a suite that is not running fails here rather than as errors in the report.
    Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

impl Workload {
    pub async fn connect(
        mix: Mix,
        addrs: &SuiteAddrs,
        connections: usize,
        auth: &AuthConfig,
        members: Vec<String>,
        acting: Option<Vec<usize>>,
        draws: Draws,
    ) -> anyhow::Result<Self> {
        let Draws { skew, seed } = draws;
        let acting = acting.unwrap_or_else(|| (0..members.len()).collect());
        anyhow::ensure!(
            mix == Mix::Health || !acting.is_empty(),
            "no members to act as"
        );
        anyhow::ensure!(
            acting.iter().all(|&i| i < members.len()),
            "acting member out of range"
        );
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            let profile = connect(addrs.profile).await?;
            let post = connect(addrs.post).await?;
            let engagement = connect(addrs.engagement).await?;
            let feed = connect(addrs.feed).await?;
            conns.push(Conn {
                profiles: ProfileServiceClient::new(profile.clone()),
                feed: FeedServiceClient::new(feed.clone()),
                posts: PostServiceClient::new(post.clone()),
                engagement: EngagementServiceClient::new(engagement.clone()),
                health: [
                    HealthClient::new(profile),
                    HealthClient::new(post),
                    HealthClient::new(engagement),
                    HealthClient::new(feed),
                ],
            });
        }
        let tokens = members
            .iter()
            .map(|m| auth.member_token(m, TOKEN_TTL))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        let service_token = auth
            .service_token("feed", TOKEN_TTL)
            .map_err(anyhow::Error::msg)?;
        let mut w = Self {
            mix,
            conns,
            members,
            acting,
            tokens,
            posts: Vec::new(),
            service_token,
            skew,
            seed,
        };
        let needed = mix.posts_needed();
        if needed > 0 {
            w.posts = w.public_posts(64, needed).await?;
            anyhow::ensure!(
                w.posts.len() >= needed,
                "found {} public posts to engage with, the mix needs {needed}",
                w.posts.len()
            );
        }
        Ok(w)
    }

    /// Public posts of the first members (the popular ones, in seeded and demo networks): of
    /// at least `authors` members, more until `at_least` posts are found.
    async fn public_posts(&self, authors: usize, at_least: usize) -> anyhow::Result<Vec<String>> {
        let mut client = self.conns[0].posts.clone();
        let mut found = Vec::new();
        for (i, (member, token)) in self.members.iter().zip(&self.tokens).enumerate() {
            if i >= authors && found.len() >= at_least {
                break;
            }
            let page = client
                .list_posts_by_author(with_token(
                    ppb::ListPostsByAuthorRequest {
                        author_id: member.clone(),
                        viewer_id: member.clone(),
                        page_size: 50,
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .context("listing posts to engage with")?
                .into_inner();
            found.extend(
                page.posts
                    .into_iter()
                    .filter(|p| p.visibility == ppb::Visibility::Public as i32)
                    .map(|p| p.id),
            );
        }
        Ok(found)
    }

    /// The member making a request (an index into `members`), drawn from the acting ones.
    fn member(&self, rng: &mut SplitMix64) -> usize {
        self.acting[self.draw(rng, self.acting.len())]
    }

    /// Any member (an author to read, a member to ask the degree of), whatever band acts.
    fn anyone(&self, rng: &mut SplitMix64) -> usize {
        self.draw(rng, self.members.len())
    }

    fn draw(&self, rng: &mut SplitMix64, n: usize) -> usize {
        if self.skew > 0.0 {
            rng.skewed(n, self.skew)
        } else {
            rng.below(n)
        }
    }

    /// Issues request `seq` on connection slot `conn`; `Err` carries the status code's name.
    pub async fn call(&self, seq: u64, conn: usize) -> Result<(), String> {
        // Each request draws from its own stream: the same seed gives the same requests
        // whatever order they finish in.
        let mut rng = SplitMix64::new(self.seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let op = self.mix.op(rng.below(100), seq);
        let c = &self.conns[conn];
        let result = if let Op::Health(i) = op {
            c.health[i]
                .clone()
                .check(HealthCheckRequest {
                    service: HEALTH_SERVICES[i].into(),
                })
                .await
                .map(|_| ())
        } else {
            let m = self.member(&mut rng);
            let (member, token) = (self.members[m].clone(), &self.tokens[m]);
            let post =
                |rng: &mut SplitMix64| self.posts[rng.skewed(self.posts.len().max(1), 0.9)].clone();
            match op {
                Op::Health(_) => unreachable!("handled above"),
                Op::GetFeed => c
                    .feed
                    .clone()
                    .get_feed(with_token(
                        fpb::GetFeedRequest {
                            member_id: member,
                            page_size: PAGE_SIZE,
                            page_token: String::new(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
                Op::ListPostsByAuthor => {
                    let author = self.members[self.anyone(&mut rng)].clone();
                    c.posts
                        .clone()
                        .list_posts_by_author(with_token(
                            ppb::ListPostsByAuthorRequest {
                                author_id: author,
                                viewer_id: member,
                                page_size: PAGE_SIZE,
                                ..Default::default()
                            },
                            token,
                        ))
                        .await
                        .map(|_| ())
                }
                Op::CreatePost => c
                    .posts
                    .clone()
                    .create_post(with_token(
                        ppb::CreatePostRequest {
                            author_id: member,
                            text: format!("Benchmark post {seq} #bench"),
                            visibility: ppb::Visibility::Public as i32,
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
                Op::RecordImpressions => {
                    let post_ids = (0..10).map(|_| post(&mut rng)).collect();
                    c.engagement
                        .clone()
                        .record_impressions(with_token(
                            epb::RecordImpressionsRequest {
                                member_id: member,
                                post_ids,
                            },
                            token,
                        ))
                        .await
                        .map(|_| ())
                }
                Op::React => c
                    .engagement
                    .clone()
                    .react(with_token(
                        epb::ReactRequest {
                            member_id: member,
                            post_id: post(&mut rng),
                            reaction_type: *rng.pick(&REACTIONS) as i32,
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
                Op::GetConnectionDegree => {
                    let other = self.members[self.anyone(&mut rng)].clone();
                    c.profiles
                        .clone()
                        .get_connection_degree(with_token(
                            prpb::GetConnectionDegreeRequest {
                                viewer_id: member,
                                member_id: other,
                            },
                            token,
                        ))
                        .await
                        .map(|_| ())
                }
                Op::SuggestConnections => c
                    .profiles
                    .clone()
                    .suggest_connections(with_token(
                        prpb::SuggestConnectionsRequest {
                            member_id: member,
                            page_size: 20,
                            page_token: String::new(),
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
                Op::SearchProfiles => {
                    let words: Vec<&str> = (0..1 + rng.below(3))
                        .map(|_| *rng.pick(&SEARCH_WORDS))
                        .collect();
                    let filters = (rng.below(3) == 0).then(|| prpb::SearchFilters {
                        location: rng.pick(&SEARCH_CITIES).to_string(),
                        ..Default::default()
                    });
                    c.profiles
                        .clone()
                        .search_profiles(with_token(
                            prpb::SearchProfilesRequest {
                                query: words.join(" "),
                                filters,
                                page_size: 20,
                                page_token: String::new(),
                            },
                            token,
                        ))
                        .await
                        .map(|_| ())
                }
                Op::BatchGetPostStats => {
                    let start = rng.below(self.posts.len());
                    let post_ids = (0..STATS_BATCH)
                        .map(|i| self.posts[(start + i) % self.posts.len()].clone())
                        .collect();
                    c.engagement
                        .clone()
                        .batch_get_post_stats(with_token(
                            epb::BatchGetPostStatsRequest {
                                post_ids,
                                viewer_id: String::new(),
                            },
                            &self.service_token,
                        ))
                        .await
                        .map(|_| ())
                }
                Op::CreateComment => c
                    .engagement
                    .clone()
                    .create_comment(with_token(
                        epb::CreateCommentRequest {
                            member_id: member,
                            post_id: post(&mut rng),
                            text: "Great point, thanks for sharing.".into(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                    .map(|_| ()),
            }
        };
        result.map_err(|s| format!("{:?}", s.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_follow_their_proportions() {
        let count = |mix: Mix, op: Op| (0..100).filter(|&r| mix.op(r, 0) == op).count();
        assert_eq!(count(Mix::Feed, Op::GetFeed), 100);
        assert_eq!(count(Mix::Dsb, Op::GetFeed), 60);
        assert_eq!(count(Mix::Dsb, Op::ListPostsByAuthor), 30);
        assert_eq!(count(Mix::Dsb, Op::CreatePost), 10);
        assert_eq!(count(Mix::Linkedin, Op::GetFeed), 50);
        assert_eq!(count(Mix::Linkedin, Op::RecordImpressions), 20);
        assert_eq!(count(Mix::Linkedin, Op::React), 20);
        assert_eq!(count(Mix::Linkedin, Op::CreateComment), 5);
        assert_eq!(count(Mix::Linkedin, Op::CreatePost), 5);
        assert_eq!(count(Mix::Fresh, Op::React), 50);
        assert_eq!(count(Mix::Fresh, Op::CreatePost), 50);
        assert_eq!(count(Mix::React, Op::React), 100);
        assert_eq!(count(Mix::Comment, Op::CreateComment), 100);
        assert_eq!(count(Mix::Impressions, Op::RecordImpressions), 100);
        assert_eq!(count(Mix::Post, Op::CreatePost), 100);
        assert_eq!(count(Mix::Stats, Op::BatchGetPostStats), 100);
        assert_eq!(count(Mix::Degree, Op::GetConnectionDegree), 100);
        assert_eq!(count(Mix::Suggest, Op::SuggestConnections), 100);
        assert_eq!(count(Mix::Search, Op::SearchProfiles), 100);
    }
}
