//! The tonic adapter of the feed service: validate, rank (or read the snapshot), hydrate one
//! page with posts, fresh counts and names, and explain every item.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pronet_common::auth::{require_self, Caller};
use pronet_common::ids::{new_id, parse_id};
use pronet_common::pagination::page_size;
use pronet_common::time::{from_timestamp, now_micros};
use pronet_common::FieldViolations;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as pb;
use pronet_proto::feed::v1::feed_service_server::FeedService;
use pronet_proto::post::v1 as ppb;
use tonic::{Request, Response, Status};

use crate::domain::{
    limits, AuthorRelation, Candidate, Counts, EngagementKind, FeedRanker, Ranked, Reason,
};
use crate::snapshot::{post_hash, PageToken, Snapshot, SnapshotCache};
use crate::sources::CandidateSource;

/// The `pronet.feed.v1.FeedService` implementation.
pub struct FeedApi {
    source: CandidateSource,
    ranker: FeedRanker,
    window: Duration,
    cache: SnapshotCache,
}

/// A fresh ranking with the data fetched to make it, so the first page needs no more calls.
struct Computed {
    snapshot: Arc<Snapshot>,
    posts: HashMap<String, ppb::Post>,
    stats: HashMap<String, epb::PostStats>,
}

impl FeedApi {
    pub fn new(source: CandidateSource, window: Duration, cache: SnapshotCache) -> Self {
        Self {
            source,
            ranker: FeedRanker::default(),
            window,
            cache,
        }
    }

    /// Gathers the member's candidates as of `as_of` and ranks them.
    async fn compute(&self, member_id: &str, as_of: i64) -> Result<Computed, Status> {
        let started = std::time::Instant::now();
        let network = self.source.network(member_id).await?;
        let network_done = started.elapsed();
        let since = as_of - self.window.as_micros() as i64;

        let mut authors: Vec<String> = network
            .connections
            .iter()
            .chain(network.followed_members.iter())
            .filter(|a| *a != member_id)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        authors.truncate(limits::MAX_AUTHORS);
        let hashtags: Vec<String> = network.followed_hashtags.iter().cloned().collect();
        let connections: Vec<String> = network.connections.iter().cloned().collect();

        let (recent, activity) = tokio::try_join!(
            self.source.recent_posts(authors, hashtags, since),
            self.source.recent_activity(connections, since),
        )?;

        let gathered = started.elapsed();
        let (recent_posts, activities) = (recent.len(), activity.len());
        let mut posts: HashMap<String, ppb::Post> =
            recent.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut engaged: HashMap<String, HashMap<EngagementKind, BTreeSet<String>>> =
            HashMap::new();
        for a in activity {
            let kind = match epb::ActivityKind::try_from(a.kind) {
                Ok(epb::ActivityKind::Reaction) => EngagementKind::Reacted,
                Ok(epb::ActivityKind::Comment) => EngagementKind::Commented,
                Ok(epb::ActivityKind::Share) => EngagementKind::Shared,
                _ => continue,
            };
            engaged
                .entry(a.post_id)
                .or_default()
                .entry(kind)
                .or_default()
                .insert(a.member_id);
        }
        let missing: Vec<String> = engaged
            .keys()
            .filter(|id| !posts.contains_key(*id))
            .cloned()
            .collect();
        // Counts are needed for every candidate id, known already: fetch them while the posts
        // that only connections' engagement brought in are fetched.
        let candidate_ids: Vec<String> = posts.keys().chain(missing.iter()).cloned().collect();
        let fetch_missing = async {
            if missing.is_empty() {
                Ok(Vec::new())
            } else {
                self.source.posts(missing).await
            }
        };
        let (engaged_posts, stats) =
            tokio::try_join!(fetch_missing, self.source.stats(candidate_ids))?;
        for p in engaged_posts {
            posts.insert(p.id.clone(), p);
        }

        // Hashtags can bring posts from anyone: a block either way hides them.
        let outsiders: Vec<String> = posts
            .values()
            .map(|p| &p.author_id)
            .filter(|a| *a != member_id && !network.connections.contains(*a))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let blocked = if outsiders.is_empty() {
            HashSet::new()
        } else {
            self.source.blocked(member_id, outsiders).await?
        };
        // The member's own posts are not in their feed; connections-only posts reach only the
        // author's connections; a recomputed page ignores posts newer than its snapshot.
        posts.retain(|_, p| {
            if blocked.contains(&p.author_id) {
                return false;
            }
            let visible = match ppb::Visibility::try_from(p.visibility) {
                Ok(ppb::Visibility::Public) => true,
                Ok(ppb::Visibility::Connections) => network.connections.contains(&p.author_id),
                _ => false,
            };
            let created = p.create_time.as_ref().and_then(|t| from_timestamp(t).ok());
            visible && p.author_id != member_id && created.is_some_and(|t| t <= as_of)
        });

        let fetched = started.elapsed();
        let candidates: Vec<Candidate> = posts
            .values()
            .map(|p| {
                let relation = if network.connections.contains(&p.author_id) {
                    AuthorRelation::Connection
                } else if network.followed_members.contains(&p.author_id) {
                    AuthorRelation::Followed
                } else {
                    AuthorRelation::Other
                };
                let s = stats.get(&p.id);
                Candidate {
                    post_id: p.id.clone(),
                    author_id: p.author_id.clone(),
                    create_time: p
                        .create_time
                        .as_ref()
                        .and_then(|t| from_timestamp(t).ok())
                        .unwrap_or(as_of),
                    relation,
                    matched_hashtags: p
                        .hashtags
                        .iter()
                        .filter(|t| network.followed_hashtags.contains(*t))
                        .cloned()
                        .collect(),
                    engaged: engaged.remove(&p.id).unwrap_or_default(),
                    counts: Counts {
                        reactions: s.map_or(0, |s| s.total_reactions),
                        comments: s.map_or(0, |s| s.comments),
                        shares: s.map_or(0, |s| s.shares),
                    },
                }
            })
            .collect();
        let scored = candidates.len();
        let mut items = self.ranker.rank(candidates, as_of);
        items.truncate(limits::MAX_FEED_DEPTH);
        tracing::debug!(
            member_id,
            connections = network.connections.len(),
            recent_posts,
            activities,
            scored,
            network_ms = network_done.as_secs_f64() * 1e3,
            gather_ms = (gathered - network_done).as_secs_f64() * 1e3,
            posts_and_stats_ms = (fetched - gathered).as_secs_f64() * 1e3,
            rank_ms = (started.elapsed() - fetched).as_secs_f64() * 1e3,
            "feed ranked"
        );
        Ok(Computed {
            snapshot: Arc::new(Snapshot {
                member_id: member_id.to_owned(),
                as_of,
                scored,
                items,
            }),
            posts,
            stats,
        })
    }
}

fn reason_kind(r: &Reason) -> pb::ReasonKind {
    match r {
        Reason::ConnectionPosted(_) => pb::ReasonKind::ConnectionPosted,
        Reason::FollowedMemberPosted(_) => pb::ReasonKind::FollowedMemberPosted,
        Reason::FollowedHashtag(_) => pb::ReasonKind::FollowedHashtag,
        Reason::ConnectionEngaged(EngagementKind::Reacted, _) => pb::ReasonKind::ConnectionReacted,
        Reason::ConnectionEngaged(EngagementKind::Commented, _) => {
            pb::ReasonKind::ConnectionCommented
        }
        Reason::ConnectionEngaged(EngagementKind::Shared, _) => pb::ReasonKind::ConnectionShared,
    }
}

fn reason_to_pb(r: &Reason, names: &HashMap<String, String>) -> pb::FeedReason {
    let name_of = |id: &str| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| "A member".to_string())
    };
    let (member_id, hashtag, text) = match r {
        Reason::ConnectionPosted(m) => (
            m.clone(),
            "",
            format!("{}, a connection, posted this", name_of(m)),
        ),
        Reason::FollowedMemberPosted(m) => (
            m.clone(),
            "",
            format!("{}, whom you follow, posted this", name_of(m)),
        ),
        Reason::ConnectionEngaged(kind, m) => {
            let verb = match kind {
                EngagementKind::Reacted => "reacted to this",
                EngagementKind::Commented => "commented on this",
                EngagementKind::Shared => "shared this",
            };
            (m.clone(), "", format!("{} {verb}", name_of(m)))
        }
        Reason::FollowedHashtag(tag) => (String::new(), tag.as_str(), format!("You follow #{tag}")),
    };
    pb::FeedReason {
        kind: reason_kind(r) as i32,
        display_name: if member_id.is_empty() {
            String::new()
        } else {
            name_of(&member_id)
        },
        member_id,
        hashtag: hashtag.to_owned(),
        text,
    }
}

fn reason_member(r: &Reason) -> Option<&str> {
    match r {
        Reason::ConnectionPosted(m)
        | Reason::FollowedMemberPosted(m)
        | Reason::ConnectionEngaged(_, m) => Some(m),
        Reason::FollowedHashtag(_) => None,
    }
}

fn snapshot_id_from(id: &str) -> u128 {
    u128::from_str_radix(id, 16).unwrap_or_default()
}

#[tonic::async_trait]
impl FeedService for FeedApi {
    async fn get_feed(
        &self,
        request: Request<pb::GetFeedRequest>,
    ) -> Result<Response<pb::GetFeedResponse>, Status> {
        let caller = pronet_common::auth::caller(&request)?;
        let req = request.into_inner();
        let mut v = FieldViolations::new();
        let member_id = v.check("member_id", parse_id(&req.member_id));
        let size = v.check(
            "page_size",
            page_size(
                req.page_size,
                limits::DEFAULT_PAGE_SIZE,
                limits::MAX_PAGE_SIZE,
            ),
        );
        let token = if req.page_token.is_empty() {
            Some(None)
        } else {
            v.check("page_token", PageToken::decode(&req.page_token).map(Some))
        };
        v.into_result()?;
        let (Some(member_id), Some(size), Some(token)) = (member_id, size, token) else {
            return Err(Status::internal("internal error"));
        };
        // A member reads only their own feed; a service (a gateway) may read anyone's.
        if let Caller::Member(_) = caller {
            require_self(&caller, "member_id", &member_id)?;
        }

        // The ranking to page through, and the data fetched with it when it is new.
        let (snapshot_id, computed, snapshot, served) = match token {
            None => {
                let id = snapshot_id_from(&new_id());
                let c = self.compute(&member_id, now_micros()).await?;
                let snap = c.snapshot.clone();
                self.cache.insert(id, snap.clone());
                (id, Some(c), snap, Vec::new())
            }
            Some(t) => match self.cache.get(t.snapshot_id) {
                Some(snap) if snap.member_id == member_id => (t.snapshot_id, None, snap, t.served),
                Some(_) => {
                    return Err(pronet_common::error::invalid_field(
                        "page_token",
                        "was issued for another member",
                    ))
                }
                None => {
                    let c = self.compute(&member_id, t.as_of).await?;
                    let snap = c.snapshot.clone();
                    self.cache.insert(t.snapshot_id, snap.clone());
                    (t.snapshot_id, Some(c), snap, t.served)
                }
            },
        };

        let served_set: HashSet<u32> = served.iter().copied().collect();
        let mut remaining = snapshot
            .items
            .iter()
            .filter(|r| !served_set.contains(&post_hash(&r.post_id)));
        let room = limits::MAX_FEED_DEPTH.saturating_sub(served.len());
        let page: Vec<&Ranked> = remaining.by_ref().take(size.min(room)).collect();
        let more = remaining.next().is_some() && served.len() + page.len() < limits::MAX_FEED_DEPTH;

        let ids: Vec<String> = page.iter().map(|r| r.post_id.clone()).collect();
        let (posts, stats): (HashMap<String, ppb::Post>, HashMap<String, epb::PostStats>) =
            match &computed {
                // Only the page's posts and counts, not every candidate's.
                Some(c) => (
                    ids.iter()
                        .filter_map(|id| c.posts.get(id).map(|p| (id.clone(), p.clone())))
                        .collect(),
                    ids.iter()
                        .filter_map(|id| c.stats.get(id).map(|s| (id.clone(), s.clone())))
                        .collect(),
                ),
                None => {
                    let (posts, stats) = tokio::try_join!(
                        self.source.posts(ids.clone()),
                        self.source.stats(ids.clone())
                    )?;
                    (
                        posts.into_iter().map(|p| (p.id.clone(), p)).collect(),
                        stats,
                    )
                }
            };
        let named: Vec<String> = page
            .iter()
            .flat_map(|r| {
                std::iter::once(r.author_id.as_str())
                    .chain(r.reasons.iter().filter_map(reason_member))
            })
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let names = self.source.display_names(named).await?;

        let mut items = Vec::with_capacity(page.len());
        for r in &page {
            // A post deleted since the ranking is left out of the page.
            let Some(post) = posts.get(&r.post_id) else {
                continue;
            };
            items.push(pb::FeedItem {
                post: Some(post.clone()),
                stats: Some(
                    stats
                        .get(&r.post_id)
                        .cloned()
                        .unwrap_or_else(|| epb::PostStats {
                            post_id: r.post_id.clone(),
                            ..Default::default()
                        }),
                ),
                score: r.score,
                reasons: r.reasons.iter().map(|x| reason_to_pb(x, &names)).collect(),
                score_breakdown: Some(pb::ScoreBreakdown {
                    engagement: r.breakdown.engagement,
                    freshness: r.breakdown.freshness,
                    affinity: r.breakdown.affinity,
                    diversity: r.breakdown.diversity,
                }),
                author_display_name: names.get(&r.author_id).cloned().unwrap_or_default(),
            });
        }

        let next_page_token = if more {
            let mut served = served;
            served.extend(page.iter().map(|r| post_hash(&r.post_id)));
            PageToken {
                snapshot_id,
                as_of: snapshot.as_of,
                served,
            }
            .encode()
        } else {
            String::new()
        };
        Ok(Response::new(pb::GetFeedResponse {
            items,
            next_page_token,
            candidates_scored: snapshot.scored.min(i32::MAX as usize) as i32,
        }))
    }
}
