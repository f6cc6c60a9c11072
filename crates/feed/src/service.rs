//! The tonic adapter of the feed service: validate, rank from the index (or read the snapshot),
//! hydrate one page with post bodies (one call) and the index's counts and names, and explain
//! every item.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pronet_common::auth::{require_self, Caller};
use pronet_common::ids::{new_id, parse_id};
use pronet_common::pagination::page_size;
use pronet_common::time::now_micros;
use pronet_common::FieldViolations;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as pb;
use pronet_proto::feed::v1::feed_service_server::FeedService;
use pronet_proto::post::v1 as ppb;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::domain::{limits, EngagementKind, FeedRanker, Ids, Ranked, Reason};
use crate::events::SharedIndex;
use crate::index::{FeedIndex, PostCounts};
use crate::snapshot::{post_hash, PageToken, Snapshot, SnapshotCache};
use crate::sources::PostBodies;

/// The `pronet.feed.v1.FeedService` implementation.
pub struct FeedApi {
    index: SharedIndex,
    ready: watch::Receiver<bool>,
    bodies: PostBodies,
    ranker: FeedRanker,
    cache: SnapshotCache,
}

impl FeedApi {
    pub fn new(
        index: SharedIndex,
        ready: watch::Receiver<bool>,
        bodies: PostBodies,
        cache: SnapshotCache,
    ) -> Self {
        Self {
            index,
            ready,
            bodies,
            ranker: FeedRanker::default(),
            cache,
        }
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, FeedIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Ranks the member's candidates as of `as_of`, all read from the index.
    fn compute(&self, member_id: &str, as_of: i64) -> Result<Arc<Snapshot>, Status> {
        if !*self.ready.borrow() {
            return Err(Status::unavailable("the feed index is still loading"));
        }
        let started = std::time::Instant::now();
        let index = self.read_index();
        let gathered = index
            .gather(member_id, as_of)
            .ok_or_else(|| Status::not_found("member not found"))?;
        let gathered_in = started.elapsed();
        let scored = gathered.candidates.len();
        let items =
            self.ranker
                .rank_top(gathered.candidates, &*index, as_of, limits::MAX_FEED_DEPTH);
        drop(index);
        tracing::debug!(
            member_id,
            considered = gathered.considered,
            scored,
            gather_us = gathered_in.as_micros() as u64,
            rank_us = (started.elapsed() - gathered_in).as_micros() as u64,
            "feed ranked"
        );
        Ok(Arc::new(Snapshot {
            member_id: member_id.to_owned(),
            as_of,
            scored,
            items,
        }))
    }
}

/// A post's counts as the engagement service's `PostStats` reports them.
fn stats_to_pb(post_id: &str, c: &PostCounts) -> epb::PostStats {
    epb::PostStats {
        post_id: post_id.to_owned(),
        reactions: c
            .reactions
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| epb::ReactionCount {
                reaction_type: i as i32 + 1,
                count: *n,
            })
            .collect(),
        total_reactions: c.total_reactions(),
        comments: c.comments,
        shares: c.shares,
        impressions: c.impressions,
        unique_viewers: c.unique_viewers,
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
            m.to_string(),
            "",
            format!("{}, a connection, posted this", name_of(m)),
        ),
        Reason::FollowedMemberPosted(m) => (
            m.to_string(),
            "",
            format!("{}, whom you follow, posted this", name_of(m)),
        ),
        Reason::ConnectionEngaged(kind, m) => {
            let verb = match kind {
                EngagementKind::Reacted => "reacted to this",
                EngagementKind::Commented => "commented on this",
                EngagementKind::Shared => "shared this",
            };
            (m.to_string(), "", format!("{} {verb}", name_of(m)))
        }
        Reason::FollowedHashtag(tag) => (String::new(), &**tag, format!("You follow #{tag}")),
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

/// An item of the page being built.
struct PageItem<'a> {
    ranked: &'a Ranked,
    post_id: Arc<str>,
    author_id: Arc<str>,
    reasons: Vec<Reason>,
    stats: epb::PostStats,
    hash: u32,
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

        // The ranking to page through: a new one for a first page, else the cached one (or,
        // on a replica without it, one ranked again as of the token's time).
        let (snapshot_id, snapshot, served) = match token {
            None => {
                let id = snapshot_id_from(&new_id());
                let snap = self.compute(&member_id, now_micros())?;
                self.cache.insert(id, snap.clone());
                (id, snap, Vec::new())
            }
            Some(t) => match self.cache.get(t.snapshot_id) {
                Some(snap) if snap.member_id == member_id => (t.snapshot_id, snap, t.served),
                Some(_) => {
                    return Err(pronet_common::error::invalid_field(
                        "page_token",
                        "was issued for another member",
                    ))
                }
                None => {
                    let snap = self.compute(&member_id, t.as_of)?;
                    self.cache.insert(t.snapshot_id, snap.clone());
                    (t.snapshot_id, snap, t.served)
                }
            },
        };

        let served_set: HashSet<u32> = served.iter().copied().collect();
        let room = limits::MAX_FEED_DEPTH.saturating_sub(served.len());
        let want = size.min(room);
        // The page: the next items not served yet whose post is still in the index (one
        // deleted or gone from the window since the ranking is left out), named, with their
        // counts and reasons, all read under one lock.
        let (page, more, names) = {
            let index = self.read_index();
            let mut page: Vec<PageItem<'_>> = Vec::with_capacity(want);
            let mut more = false;
            for r in &snapshot.items {
                let Some(post_id) = index.post_id(r.candidate.post) else {
                    continue;
                };
                let hash = post_hash(&post_id);
                if served_set.contains(&hash) {
                    continue;
                }
                if page.len() == want {
                    more = served.len() + page.len() < limits::MAX_FEED_DEPTH;
                    break;
                }
                page.push(PageItem {
                    ranked: r,
                    author_id: index.member_id(r.candidate.author),
                    reasons: r.reasons(&*index),
                    stats: stats_to_pb(&post_id, &index.counts(&post_id)),
                    hash,
                    post_id,
                });
            }
            let names: HashMap<String, String> = page
                .iter()
                .flat_map(|p| {
                    std::iter::once(&*p.author_id).chain(p.reasons.iter().filter_map(reason_member))
                })
                .filter_map(|id| {
                    index
                        .display_name(id)
                        .map(|n| (id.to_owned(), n.to_owned()))
                })
                .collect();
            (page, more, names)
        };

        // Bodies are the one thing the index does not hold: one call for the page.
        let ids: Vec<String> = page.iter().map(|p| p.post_id.to_string()).collect();
        let posts: HashMap<String, ppb::Post> = self
            .bodies
            .posts(ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();

        let mut items = Vec::with_capacity(page.len());
        for p in &page {
            // A post deleted since the ranking is left out of the page.
            let Some(post) = posts.get(&*p.post_id) else {
                continue;
            };
            let b = &p.ranked.breakdown;
            items.push(pb::FeedItem {
                post: Some(post.clone()),
                stats: Some(p.stats.clone()),
                score: p.ranked.score,
                reasons: p.reasons.iter().map(|x| reason_to_pb(x, &names)).collect(),
                score_breakdown: Some(pb::ScoreBreakdown {
                    engagement: b.engagement,
                    freshness: b.freshness,
                    affinity: b.affinity,
                    diversity: b.diversity,
                }),
                author_display_name: names.get(&*p.author_id).cloned().unwrap_or_default(),
            });
        }

        let next_page_token = if more {
            let mut served = served;
            served.extend(page.iter().map(|p| p.hash));
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
