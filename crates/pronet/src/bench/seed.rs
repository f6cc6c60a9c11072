//! `bench seed`: writes a [`Plan`] into a running suite through its public gRPC API,
//! concurrently, with a progress bar per phase and items/s at the end of each. Members create
//! their profiles and follows with their own tokens; connections, posts and engagement go in
//! batches through the service-only import RPCs (ImportConnections, ImportPosts,
//! ImportEngagement), with the seed's service token, at their original times. Failed calls
//! are counted by status code rather than stopping the run (a second run over the same suite
//! meets its own profiles, connections and posts again and skips them).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_common::time::to_timestamp;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

use super::graph::{post_id, Engagement, EngagementPlan, Follow, Plan, PostSpec, SeedShape};
use crate::rng::SplitMix64;
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
#[allow(clippy::too_many_arguments)]
pub async fn write(
    addrs: &SuiteAddrs,
    auth: &AuthConfig,
    shape: &SeedShape,
    plan: &Plan,
    ids: &[String],
    seed: u64,
    anchor: i64,
    concurrency: usize,
    phases: &[Phase],
    mut on_phase: impl FnMut(&PhaseReport),
) -> anyhow::Result<Vec<PhaseReport>> {
    // Each import is one transaction on the service's single writer: a few in flight keep it
    // busy, more would only queue (and time out the calls they make on the way).
    let imports = concurrency.clamp(1, IMPORT_CONCURRENCY);
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

    if phases.contains(&Phase::Profiles) {
        // Profiles in bulk, with the fields recruiters search on.
        let numbered: Vec<usize> = (0..plan.members).collect();
        let calls = numbered.chunks(PROFILE_BATCH).map(|chunk| {
            let mut c = profiles.clone();
            let req = prpb::ImportProfilesRequest {
                profiles: chunk
                    .iter()
                    .map(|&i| bench_profile(seed, i, &ids[i]))
                    .collect(),
            };
            let importer = &importer;
            (chunk.len(), async move {
                c.import_profiles(with_token(req, importer))
                    .await
                    .map(|_| ())
            })
        });
        let r = batched_phase("profiles", plan.members, imports, calls).await;
        on_phase(&r);
        reports.push(r);
    }

    if phases.contains(&Phase::Connections) {
        // Connections in bulk: 10M invitation RPCs would take hours.
        let calls = plan.edges.chunks(CONNECTION_BATCH).map(|chunk| {
            let mut c = profiles.clone();
            let req = prpb::ImportConnectionsRequest {
                pairs: chunk
                    .iter()
                    .map(|&(a, b)| prpb::ConnectionPair {
                        member_id: ids[a].clone(),
                        other_id: ids[b].clone(),
                    })
                    .collect(),
            };
            let importer = &importer;
            (chunk.len(), async move {
                c.import_connections(with_token(req, importer))
                    .await
                    .map(|_| ())
            })
        });
        let r = batched_phase("connections", plan.edges.len(), imports, calls).await;
        on_phase(&r);
        reports.push(r);
    }

    if phases.contains(&Phase::Follows) {
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
    }

    // Post ids derive from their times: a seed finished in a later run must use the same now.
    let now = anchor;
    let post_ids: Vec<String> = plan
        .posts
        .iter()
        .enumerate()
        .map(|(i, p)| post_id(seed, i, now - p.age_us))
        .collect();
    if phases.contains(&Phase::Posts) {
        let mut numbered: Vec<(usize, &PostSpec)> = plan.posts.iter().enumerate().collect();
        // By author: a batch then names a few authors, not a thousand, for the service to check.
        numbered.sort_by_key(|&(i, p)| (p.author, i));
        let calls = numbered.chunks(POST_BATCH).map(|chunk| {
            let mut c = posts.clone();
            let req = ppb::ImportPostsRequest {
                posts: chunk
                    .iter()
                    .map(|&(i, p)| ppb::ImportedPost {
                        id: post_ids[i].clone(),
                        author_id: ids[p.author].clone(),
                        text: p.text.clone(),
                        visibility: ppb::Visibility::Public as i32,
                        create_time: Some(to_timestamp(now - p.age_us)),
                    })
                    .collect(),
            };
            let importer = &importer;
            (chunk.len(), async move {
                c.import_posts(with_token(req, importer)).await.map(|_| ())
            })
        });
        let r = batched_phase("posts", plan.posts.len(), imports, calls).await;
        on_phase(&r);
        reports.push(r);
    }

    if phases.contains(&Phase::Engagement) {
        // Engagement is streamed: 10M events never sit in memory at once.
        let mut events = EngagementPlan::new(shape, plan);
        let total = events.remaining();
        let at = |p: usize, after: i64| Some(to_timestamp(now - plan.posts[p].age_us + after));
        let mut n = 0u64;
        let batches = std::iter::from_fn(move || {
            let batch = events.next_batch(ENGAGEMENT_BATCH);
            (!batch.is_empty()).then_some(batch)
        });
        let calls = batches.map(|batch| {
            let mut req = epb::ImportEngagementRequest::default();
            for e in &batch {
                n += 1;
                match *e {
                    Engagement::React(m, p, t, after) => {
                        req.reactions.push(epb::ImportedReaction {
                            post_id: post_ids[p].clone(),
                            member_id: ids[m].clone(),
                            reaction_type: REACTIONS[t] as i32,
                            create_time: at(p, after),
                        })
                    }
                    Engagement::Comment(m, p, after) => req.comments.push(epb::ImportedComment {
                        id: event_id(seed, n),
                        post_id: post_ids[p].clone(),
                        member_id: ids[m].clone(),
                        text: "Thanks for sharing this.".into(),
                        create_time: at(p, after),
                    }),
                    Engagement::Share(m, p, after) => req.shares.push(epb::ImportedShare {
                        id: event_id(seed, n),
                        post_id: post_ids[p].clone(),
                        member_id: ids[m].clone(),
                        create_time: at(p, after),
                    }),
                    Engagement::Impression(m, p, after) => {
                        req.impressions.push(epb::ImportedImpression {
                            post_id: post_ids[p].clone(),
                            member_id: ids[m].clone(),
                            view_time: at(p, after),
                        })
                    }
                }
            }
            let mut c = engagement.clone();
            let importer = &importer;
            (batch.len(), async move {
                c.import_engagement(with_token(req, importer))
                    .await
                    .map(|_| ())
            })
        });
        let r = batched_phase("engagement", total, imports, calls).await;
        on_phase(&r);
        reports.push(r);
    }
    Ok(reports)
}

/// Import calls in flight at most.
const IMPORT_CONCURRENCY: usize = 4;

/// The phases of a seed, in the order they run. Each can be run again alone: every write is
/// keyed (ids, pairs), so a repeat skips what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Profiles,
    Connections,
    Follows,
    Posts,
    Engagement,
}

/// Profiles per ImportProfiles call.
const PROFILE_BATCH: usize = 1_000;
/// Pairs per ImportConnections call.
const CONNECTION_BATCH: usize = 10_000;
/// Posts per ImportPosts call.
const POST_BATCH: usize = 1_000;
/// Events per ImportEngagement call.
const ENGAGEMENT_BATCH: usize = 10_000;

/// A stable id for the `n`-th comment or share of a seed.
fn event_id(seed: u64, n: u64) -> String {
    format!("be{seed:014x}{n:016x}")
}

/// Runs batched `calls` (each with its item count), `concurrency` in flight, counting items:
/// a failed call counts all its items under its status code.
async fn batched_phase<I, Fut>(
    name: &'static str,
    items: usize,
    concurrency: usize,
    calls: I,
) -> PhaseReport
where
    I: Iterator<Item = (usize, Fut)>,
    Fut: Future<Output = Result<(), tonic::Status>>,
{
    let started = Instant::now();
    let pb = bar(name, items);
    let mut report = PhaseReport {
        name,
        ok: 0,
        errors: BTreeMap::new(),
        elapsed: Duration::ZERO,
    };
    let mut results = stream::iter(calls.map(|(n, call)| async move { (n, call.await) }))
        .buffer_unordered(concurrency.max(1));
    while let Some((n, result)) = results.next().await {
        pb.inc(n as u64);
        match result {
            Ok(()) => report.ok += n as u64,
            Err(s) => {
                if report.errors.is_empty() {
                    pb.println(format!("{name}: first failure: {s}"));
                }
                *report.errors.entry(format!("{:?}", s.code())).or_default() += n as u64;
            }
        }
    }
    pb.finish_and_clear();
    report.elapsed = started.elapsed();
    report
}

const TITLES: &[&str] = &[
    "Software Engineer",
    "Data Scientist",
    "Product Manager",
    "Designer",
    "Recruiter",
    "Sales Director",
    "Nurse",
    "Teacher",
    "Accountant",
    "Site Reliability Engineer",
    "Marketing Lead",
    "Research Scientist",
];
const COMPANIES: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Black Mesa",
    "Vandelay",
    "Pied Piper",
    "Wonka",
    "Monarch",
    "Oscorp",
    "Gringotts",
    "Dunder Mifflin",
    "Massive Dynamic",
];
const SKILLS: &[&str] = &[
    "Rust",
    "Go",
    "Python",
    "Kubernetes",
    "PostgreSQL",
    "Machine Learning",
    "Leadership",
    "Sales",
    "Negotiation",
    "Figma",
    "SQL",
    "Java",
    "TypeScript",
    "React",
    "gRPC",
    "Linux",
    "Statistics",
    "Recruiting",
    "Public Speaking",
    "Accounting",
    "Nursing",
    "Teaching",
    "Product Strategy",
    "AWS",
    "Security",
    "Distributed Systems",
    "Excel",
    "Marketing",
    "Copywriting",
    "Data Visualization",
];
const CITIES: &[&str] = &[
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
    "Tokyo",
    "Madrid",
    "Warsaw",
    "Dublin",
    "Amsterdam",
];
const INDUSTRIES: &[&str] = &[
    "Software",
    "Finance",
    "Healthcare",
    "Education",
    "Retail",
    "Manufacturing",
    "Media",
    "Energy",
    "Logistics",
    "Government",
];
const SCHOOLS: &[&str] = &[
    "MIT",
    "ETH Zurich",
    "Stanford",
    "Oxford",
    "TU Munich",
    "IIT Bombay",
    "University of Toronto",
    "Sorbonne",
    "KTH",
    "University of Lagos",
];

/// The profile of bench member `i`: the same seed always gives the same one. Skills,
/// companies and places are Zipf-skewed so that some searches match many members.
pub(crate) fn bench_profile(seed: u64, i: usize, id: &str) -> prpb::Profile {
    let mut rng =
        SplitMix64::new(seed ^ 0x9f0f_11e5 ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let pick = |rng: &mut SplitMix64, list: &[&str]| list[rng.skewed(list.len(), 0.8)].to_string();
    let title = pick(&mut rng, TITLES);
    let company = pick(&mut rng, COMPANIES);
    let skills = (0..3 + rng.below(4))
        .map(|_| pick(&mut rng, SKILLS))
        .collect();
    let start = 2010 + rng.below(14) as i32;
    let ym = |year: i32, month: usize| {
        Some(prpb::YearMonth {
            year,
            month: month as i32 + 1,
        })
    };
    let positions = vec![
        prpb::Position {
            title: title.clone(),
            company: company.clone(),
            start: ym(start, rng.below(12)),
            end: None,
            current: true,
        },
        prpb::Position {
            title: pick(&mut rng, TITLES),
            company: pick(&mut rng, COMPANIES),
            start: ym(start - 4, rng.below(12)),
            end: ym(start - 1, rng.below(12)),
            current: false,
        },
    ];
    let school_start = start - 8;
    prpb::Profile {
        id: id.to_owned(),
        handle: format!("b{:x}_{i}", seed & 0xffff),
        display_name: format!("Bench Member {i}"),
        headline: format!("{title} at {company}"),
        summary: format!("{title} with a decade in the field; I care about craft and mentoring."),
        location: pick(&mut rng, CITIES),
        industry: pick(&mut rng, INDUSTRIES),
        skills,
        positions,
        education: vec![prpb::Education {
            school: pick(&mut rng, SCHOOLS),
            degree: "BSc".into(),
            field_of_study: "Computer Science".into(),
            start_year: school_start,
            end_year: school_start + 4,
        }],
        open_to_work: rng.below(10) == 0,
        ..Default::default()
    }
}
