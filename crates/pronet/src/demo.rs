//! The demo network: a deterministic professional network written through the public gRPC
//! API, like any client would. At least 200 members with profiles, a connection graph with a
//! few hubs and many small networks, 2,000+ posts with hashtags over the last 14 days, and
//! 20,000+ reactions, comments and shares concentrated on popular authors and recent posts.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::time::{now_micros, to_timestamp};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;
use tonic::Code;

use crate::rng::SplitMix64;
use crate::suite::SuiteAddrs;

/// Sizes of the demo network.
#[derive(Debug, Clone, Copy)]
pub struct DemoShape {
    pub members: usize,
    pub hubs: usize,
    pub cluster_size: usize,
    pub cross_edges: usize,
    pub posts: usize,
    pub reactions: usize,
    pub comments: usize,
    pub shares: usize,
    pub seed: u64,
}

impl Default for DemoShape {
    fn default() -> Self {
        Self {
            members: 240,
            hubs: 6,
            cluster_size: 8,
            cross_edges: 160,
            posts: 2_400,
            reactions: 16_000,
            comments: 3_000,
            shares: 1_500,
            seed: 2026,
        }
    }
}

/// What the demo wrote (or found).
#[derive(Debug, Clone, Default)]
pub struct DemoSummary {
    pub already_seeded: bool,
    pub members: usize,
    pub connections: usize,
    pub follows: usize,
    pub posts: usize,
    pub reactions: usize,
    pub comments: usize,
    pub shares: usize,
    pub elapsed: Duration,
    /// A member whose feed is worth a look.
    pub try_handle: String,
    pub try_member_id: String,
}

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Ken",
    "Radia",
    "Dennis",
    "Hedy",
    "Linus",
    "Katherine",
    "Tim",
    "Sophie",
    "Guido",
    "Annie",
    "Bjarne",
    "Shafi",
    "Leslie",
    "Joan",
    "Niklaus",
    "Mary",
    "Tony",
    "Sister",
    "Vint",
    "Karen",
    "Robert",
    "Lynn",
    "Yukihiro",
    "Anita",
    "James",
    "Jean",
    "Brian",
    "Evelyn",
    "Larry",
    "Carol",
    "Whitfield",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Ritchie",
    "Lamarr",
    "Torvalds",
    "Johnson",
    "Berners",
    "Wilson",
    "Rossum",
    "Easley",
    "Stroustrup",
    "Goldwasser",
    "Lamport",
    "Clarke",
    "Wirth",
    "Keller",
    "Hoare",
    "Cerf",
    "Sparck",
    "Metcalfe",
    "Conway",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Finance",
    "Healthcare",
    "Education",
    "Manufacturing",
    "Retail",
    "Energy",
    "Media",
];
const TITLES: &[&str] = &[
    "Software Engineer",
    "Data Scientist",
    "Product Manager",
    "Designer",
    "Recruiter",
    "Engineering Manager",
    "Nurse",
    "Teacher",
    "Analyst",
    "Founder",
    "SRE",
    "Researcher",
];
const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
];
const LOCATIONS: &[&str] = &[
    "Berlin",
    "London",
    "Paris",
    "New York",
    "San Francisco",
    "Toronto",
    "Bangalore",
    "Sydney",
    "Lagos",
    "Sao Paulo",
];
const SKILLS: &[&str] = &[
    "Rust",
    "Go",
    "Python",
    "SQL",
    "Kubernetes",
    "Leadership",
    "Machine Learning",
    "Design",
    "Negotiation",
    "Public Speaking",
    "Distributed Systems",
    "Recruiting",
    "Accounting",
    "Teaching",
    "Nursing",
    "Marketing",
];
/// Ordered by popularity: the first ones are drawn most.
const HASHTAGS: &[&str] = &[
    "hiring",
    "career",
    "leadership",
    "rust",
    "ai",
    "mentalhealth",
    "remotework",
    "opentowork",
    "startups",
    "productivity",
    "datascience",
    "kubernetes",
    "diversity",
    "learning",
    "personalstory",
    "engineering",
    "design",
    "sustainability",
    "wellbeing",
    "futureofwork",
];
const OPENINGS: &[&str] = &[
    "Excited to share that our team just shipped",
    "A personal story: three years ago I almost quit, and then",
    "What I learned from interviewing 50 candidates this quarter:",
    "Unpopular opinion:",
    "Grateful for the mentors who helped me with",
    "We are hiring! Looking for people who love",
    "Five lessons from a failed launch about",
    "Reflecting on a year of",
    "How we cut our cloud bill in half with",
    "Burnout is real. Here is how I manage",
];
const TOPICS: &[&str] = &[
    "distributed systems",
    "hiring fairly",
    "remote teams",
    "career changes",
    "mentoring juniors",
    "data pipelines",
    "mental health at work",
    "public speaking",
    "open source",
    "product discovery",
];
const COMMENTS: &[&str] = &[
    "Congratulations, well deserved!",
    "Thanks for sharing this, it resonates.",
    "Great insight. How did the team react?",
    "Couldn't agree more.",
    "This is so important, thank you for being open about it.",
    "Saving this for later.",
];
const REACTIONS: &[epb::ReactionType] = &[
    epb::ReactionType::Like,
    epb::ReactionType::Like,
    epb::ReactionType::Like,
    epb::ReactionType::Celebrate,
    epb::ReactionType::Support,
    epb::ReactionType::Love,
    epb::ReactionType::Insightful,
    epb::ReactionType::Funny,
];

/// How many requests are in flight at once while seeding.
const CONCURRENCY: usize = 32;

fn handle_of(i: usize) -> String {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len() * 5 + i % 5) % LAST.len()];
    format!("{}_{}", first.to_lowercase(), last.to_lowercase())
}

fn display_name_of(i: usize) -> String {
    let first = FIRST[i % FIRST.len()];
    let last = LAST[(i / FIRST.len() * 5 + i % 5) % LAST.len()];
    format!("{first} {last}")
}

/// The connection graph: hubs linked to about a third of everyone, small clusters linked
/// densely inside, and a few random bridges. Pairs are `(lower, higher)` member indexes.
pub fn demo_edges(shape: &DemoShape, rng: &mut SplitMix64) -> BTreeSet<(usize, usize)> {
    let n = shape.members;
    let mut edges = BTreeSet::new();
    let add = |a: usize, b: usize, edges: &mut BTreeSet<(usize, usize)>| {
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    };
    for hub in 0..shape.hubs.min(n) {
        for m in 0..n {
            if rng.unit() < 0.35 {
                add(hub, m, &mut edges);
            }
        }
    }
    let size = shape.cluster_size.max(2);
    for start in (shape.hubs..n).step_by(size) {
        let members: Vec<usize> = (start..(start + size).min(n)).collect();
        for (k, &m) in members.iter().enumerate() {
            // A ring plus a chord: everyone knows three to four people in their circle.
            add(m, members[(k + 1) % members.len()], &mut edges);
            add(m, members[(k + 3) % members.len()], &mut edges);
        }
    }
    for _ in 0..shape.cross_edges {
        let a = rng.below(n);
        let b = rng.below(n);
        add(a, b, &mut edges);
    }
    edges
}

struct Clients {
    profiles: ProfileServiceClient<Channel>,
    posts: PostServiceClient<Channel>,
    engagement: EngagementServiceClient<Channel>,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {addr}"))
}

/// Member ids come from the identity provider; the demo makes up stable ones.
pub fn member_ids(shape: &DemoShape) -> Vec<String> {
    let mut rng = SplitMix64::new(shape.seed ^ 0x05ee_d1d5);
    (0..shape.members)
        .map(|_| format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()))
        .collect()
}

/// How long the demo's own tokens live: long enough for the slowest seeding.
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Fills an empty suite with the demo network; a suite that already has it is left as is.
/// Members act with their own tokens; posts are imported with a service token, because the
/// demo backdates them over two weeks.
pub async fn seed(
    addrs: &SuiteAddrs,
    auth: &AuthConfig,
    shape: DemoShape,
) -> anyhow::Result<DemoSummary> {
    let started = Instant::now();
    let ids = member_ids(&shape);
    let tokens: Vec<String> = ids
        .iter()
        .map(|id| auth.member_token(id, DEMO_TOKEN_TTL))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let importer = auth
        .service_token("demo", DEMO_TOKEN_TTL)
        .map_err(anyhow::Error::msg)?;
    let c = Clients {
        profiles: ProfileServiceClient::new(connect(addrs.profile).await?),
        posts: PostServiceClient::new(connect(addrs.post).await?),
        engagement: EngagementServiceClient::new(connect(addrs.engagement).await?),
    };
    let try_index = shape.hubs + 1;
    let mut probe = c.profiles.clone();
    match probe
        .get_profile(with_token(
            prpb::GetProfileRequest {
                lookup: Some(prpb::get_profile_request::Lookup::Handle(handle_of(
                    try_index,
                ))),
            },
            &tokens[try_index],
        ))
        .await
    {
        Ok(found) => {
            let p = found.into_inner().profile.unwrap_or_default();
            return Ok(DemoSummary {
                already_seeded: true,
                try_handle: p.handle,
                try_member_id: p.id,
                elapsed: started.elapsed(),
                ..Default::default()
            });
        }
        Err(s) if s.code() == Code::NotFound => {}
        Err(s) => return Err(anyhow::anyhow!("profile service: {s}")),
    }

    let mut rng = SplitMix64::new(shape.seed);
    let mut summary = DemoSummary::default();

    // 1. Profiles.
    let profile_reqs: Vec<prpb::CreateProfileRequest> = (0..shape.members)
        .map(|i| {
            let industry = INDUSTRIES[rng.below(INDUSTRIES.len())];
            let title = if i < shape.hubs {
                "Recruiter"
            } else {
                TITLES[rng.below(TITLES.len())]
            };
            let company = COMPANIES[rng.below(COMPANIES.len())];
            let skills: BTreeSet<String> = (0..3 + rng.below(3))
                .map(|_| SKILLS[rng.below(SKILLS.len())].to_string())
                .collect();
            prpb::CreateProfileRequest {
                profile: Some(prpb::Profile {
                    handle: handle_of(i),
                    display_name: display_name_of(i),
                    headline: format!("{title} at {company}"),
                    summary: format!(
                        "{title} in {industry}. I care about {} and {}.",
                        TOPICS[rng.below(TOPICS.len())],
                        TOPICS[rng.below(TOPICS.len())]
                    ),
                    location: LOCATIONS[rng.below(LOCATIONS.len())].into(),
                    industry: industry.into(),
                    skills: skills.into_iter().collect(),
                    ..Default::default()
                }),
                // Stable keys: a demo interrupted and run again does not trip over itself.
                request_id: format!("demo-profile-{i}"),
            }
        })
        .collect();
    let created: Vec<String> =
        stream::iter(profile_reqs.into_iter().zip(&tokens).map(|(req, token)| {
            let mut client = c.profiles.clone();
            async move {
                let p = client
                    .create_profile(with_token(req, token))
                    .await?
                    .into_inner()
                    .profile;
                Ok::<_, tonic::Status>(p.map(|p| p.id).unwrap_or_default())
            }
        }))
        .buffered(CONCURRENCY)
        .try_collect()
        .await
        .context("creating profiles")?;
    anyhow::ensure!(
        created == ids,
        "profiles were not created under the token subjects"
    );
    summary.members = ids.len();

    // 2. Connections: the lower index invites, the higher accepts.
    let edges = demo_edges(&shape, &mut rng);
    let mut connected: Vec<HashSet<usize>> = vec![HashSet::new(); shape.members];
    for &(a, b) in &edges {
        connected[a].insert(b);
        connected[b].insert(a);
    }
    stream::iter(edges.iter().map(|&(a, b)| {
        let mut client = c.profiles.clone();
        let (inviter, invitee) = (ids[a].clone(), ids[b].clone());
        let (inviter_token, invitee_token) = (&tokens[a], &tokens[b]);
        async move {
            let inv = client
                .create_invitation(with_token(
                    prpb::CreateInvitationRequest {
                        inviter_id: inviter,
                        invitee_id: invitee.clone(),
                        message: String::new(),
                        request_id: String::new(),
                    },
                    inviter_token,
                ))
                .await?
                .into_inner()
                .invitation
                .unwrap_or_default();
            client
                .accept_invitation(with_token(
                    prpb::AcceptInvitationRequest {
                        invitation_id: inv.id,
                        member_id: invitee,
                    },
                    invitee_token,
                ))
                .await?;
            Ok::<_, tonic::Status>(())
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await
    .context("connecting members")?;
    summary.connections = edges.len();

    // 3. Follows: two or three hashtags (popular ones more often) and one or two hubs.
    let mut follows = Vec::new();
    for (i, member) in ids.iter().enumerate() {
        let tags: BTreeSet<usize> = (0..2 + rng.below(2))
            .map(|_| rng.skewed(HASHTAGS.len(), 1.0))
            .collect();
        for t in tags {
            follows.push((
                i,
                prpb::FollowRequest {
                    member_id: member.clone(),
                    target: Some(prpb::follow_request::Target::Hashtag(HASHTAGS[t].into())),
                },
            ));
        }
        let hubs: BTreeSet<usize> = (0..1 + rng.below(2))
            .map(|_| rng.below(shape.hubs))
            .collect();
        for h in hubs.into_iter().filter(|h| *h != i) {
            follows.push((
                i,
                prpb::FollowRequest {
                    member_id: member.clone(),
                    target: Some(prpb::follow_request::Target::FolloweeId(ids[h].clone())),
                },
            ));
        }
    }
    summary.follows = follows.len();
    stream::iter(follows.into_iter().map(|(i, req)| {
        let mut client = c.profiles.clone();
        let token = &tokens[i];
        async move { client.follow(with_token(req, token)).await.map(|_| ()) }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await
    .context("following")?;

    // 4. Posts over the last 14 days; hubs and a few active members post the most.
    let now = now_micros();
    let span = 14 * 86_400 * 1_000_000i64;
    let mut post_specs = Vec::with_capacity(shape.posts);
    for _ in 0..shape.posts {
        let author = rng.skewed(shape.members, 0.8);
        let age = (rng.unit().powf(1.5) * span as f64) as i64 + 60_000_000;
        let tag1 = HASHTAGS[rng.skewed(HASHTAGS.len(), 1.0)];
        let tag2 = HASHTAGS[rng.below(HASHTAGS.len())];
        let mut text = format!(
            "{} {}. #{tag1} #{tag2}",
            OPENINGS[rng.below(OPENINGS.len())],
            TOPICS[rng.below(TOPICS.len())]
        );
        if rng.unit() < 0.15 {
            text.push_str(&format!(
                " Thanks @{}!",
                handle_of(rng.below(shape.members))
            ));
        }
        let visibility = if rng.unit() < 0.2 {
            ppb::Visibility::Connections
        } else {
            ppb::Visibility::Public
        };
        post_specs.push((author, now - age.min(span - 60_000_000), text, visibility));
    }
    let post_ids: Vec<String> = stream::iter(post_specs.iter().map(|(author, time, text, vis)| {
        let mut client = c.posts.clone();
        let req = ppb::CreatePostRequest {
            author_id: ids[*author].clone(),
            text: text.clone(),
            visibility: *vis as i32,
            create_time: Some(to_timestamp(*time)),
            request_id: String::new(),
            reshare_of: String::new(),
        };
        let importer = &importer;
        async move {
            let p = client
                .create_post(with_token(req, importer))
                .await?
                .into_inner()
                .post;
            Ok::<_, tonic::Status>(p.map(|p| p.id).unwrap_or_default())
        }
    }))
    .buffered(CONCURRENCY)
    .try_collect()
    .await
    .context("creating posts")?;
    summary.posts = post_ids.len();

    // 5. Engagement, concentrated on popular authors and recent posts: posts are ranked by
    // author popularity and age, then drawn with a Zipf-like skew.
    let mut by_popularity: Vec<usize> = (0..post_specs.len()).collect();
    by_popularity.sort_by(|&x, &y| {
        let key = |p: usize| {
            let (author, time, _, _) = &post_specs[p];
            let age_days = (now - time) as f64 / 86_400e6;
            (*author as f64 + 1.0).ln() + age_days / 3.0
        };
        key(x).total_cmp(&key(y))
    });
    let mut reacted: HashSet<(usize, usize)> = HashSet::new();
    let mut shared: HashSet<(usize, usize)> = HashSet::new();
    let mut ops: Vec<EngagementOp> = Vec::new();
    let pick_engager = |rng: &mut SplitMix64, post: usize| -> Option<usize> {
        let (author, _, _, vis) = &post_specs[post];
        let member = if *vis == ppb::Visibility::Connections {
            // Only the author's connections can see a connections-only post.
            let friends: Vec<usize> = connected[*author].iter().copied().collect();
            if friends.is_empty() {
                return None;
            }
            let mut sorted = friends;
            sorted.sort_unstable();
            sorted[rng.below(sorted.len())]
        } else {
            rng.below(shape.members)
        };
        (member != *author).then_some(member)
    };
    let mut attempts = 0;
    while ops.len() < shape.reactions + shape.comments + shape.shares && attempts < 10_000_000 {
        attempts += 1;
        let post = by_popularity[rng.skewed(by_popularity.len(), 0.9)];
        let Some(member) = pick_engager(&mut rng, post) else {
            continue;
        };
        let want_reactions = ops
            .iter()
            .filter(|o| matches!(o, EngagementOp::React(..)))
            .count()
            < shape.reactions;
        let roll = rng.below(shape.reactions + shape.comments + shape.shares);
        if roll < shape.reactions && want_reactions {
            if reacted.insert((member, post)) {
                ops.push(EngagementOp::React(member, post, *rng.pick(REACTIONS)));
                summary.reactions += 1;
            }
        } else if roll < shape.reactions + shape.comments && summary.comments < shape.comments {
            ops.push(EngagementOp::Comment(
                member,
                post,
                rng.below(COMMENTS.len()),
            ));
            summary.comments += 1;
        } else if summary.shares < shape.shares && shared.insert((member, post)) {
            ops.push(EngagementOp::Share(member, post));
            summary.shares += 1;
        }
    }
    stream::iter(ops.into_iter().map(|op| {
        let mut client = c.engagement.clone();
        let (ids, post_ids, tokens) = (&ids, &post_ids, &tokens);
        async move {
            match op {
                EngagementOp::React(m, p, t) => client
                    .react(with_token(
                        epb::ReactRequest {
                            member_id: ids[m].clone(),
                            post_id: post_ids[p].clone(),
                            reaction_type: t as i32,
                        },
                        &tokens[m],
                    ))
                    .await
                    .map(|_| ()),
                EngagementOp::Comment(m, p, text) => client
                    .create_comment(with_token(
                        epb::CreateCommentRequest {
                            member_id: ids[m].clone(),
                            post_id: post_ids[p].clone(),
                            text: COMMENTS[text].into(),
                            request_id: String::new(),
                            parent_comment_id: String::new(),
                        },
                        &tokens[m],
                    ))
                    .await
                    .map(|_| ()),
                EngagementOp::Share(m, p) => client
                    .record_share(with_token(
                        epb::RecordShareRequest {
                            member_id: ids[m].clone(),
                            post_id: post_ids[p].clone(),
                        },
                        &tokens[m],
                    ))
                    .await
                    .map(|_| ()),
            }
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await
    .context("engaging")?;

    summary.try_handle = handle_of(try_index);
    summary.try_member_id = ids[try_index].clone();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

enum EngagementOp {
    React(usize, usize, epb::ReactionType),
    Comment(usize, usize, usize),
    Share(usize, usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_unique_and_valid() {
        let handles: HashSet<String> = (0..240).map(handle_of).collect();
        assert_eq!(handles.len(), 240);
        assert!(handles.iter().all(|h| (3..=30).contains(&h.len())));
    }

    #[test]
    fn graph_is_deterministic_with_hubs_and_small_networks() {
        let shape = DemoShape::default();
        let a = demo_edges(&shape, &mut SplitMix64::new(shape.seed));
        let b = demo_edges(&shape, &mut SplitMix64::new(shape.seed));
        assert_eq!(a, b);
        let degree = |m: usize| a.iter().filter(|(x, y)| *x == m || *y == m).count();
        assert!(degree(0) > 50, "hub degree {}", degree(0));
        let small = (shape.hubs..shape.members)
            .filter(|&m| degree(m) < 10)
            .count();
        assert!(
            small > shape.members / 2,
            "{small} members with small networks"
        );
    }
}
