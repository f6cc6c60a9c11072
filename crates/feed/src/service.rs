//! The tonic adapter of the feed service: validate, rank from the index (or read the snapshot),
//! hydrate one page with post bodies (one call) and the index's counts and names, and explain
//! every item.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pronet_common::auth::Caller;
use pronet_common::ids::{new_id, parse_id};
use pronet_common::metrics::Metrics;
use pronet_common::time::now_micros;
use pronet_common::FieldViolations;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::feed::v1 as pb;
use pronet_proto::feed::v1::feed_service_server::FeedService;
use pronet_proto::post::v1 as ppb;
use tokio::sync::{watch, Semaphore};
use tonic::{Request, Response, Status};

use crate::domain::features::{Family, DENSE_NAMES};
use crate::domain::model::{Kind, TermFeature};
use crate::domain::profile::PickError;
use crate::domain::{
    explain, limits, rank_feed, EngagementKind, Ids, Learned, NotGathered, Ranked, RankingProfile,
    Reason, Scoring, Signal, Standing,
};
use crate::error::FeedError;
use crate::events::SharedIndex;
use crate::index::{FeedIndex, PostCounts};
use crate::posts::PostBodies;
use crate::profiles::RankingProfiles;
use crate::snapshot::{post_hash, PageToken, Snapshot, SnapshotCache, TokenKey};
use crate::training::saved::model_to_pb;
use crate::training::Trainer;

mod convert;
use convert::*;

/// The `pronet.feed.v1.FeedService` implementation.
pub struct FeedApi {
    index: SharedIndex,
    ready: watch::Receiver<bool>,
    bodies: PostBodies,
    profiles: Arc<RankingProfiles>,
    cache: SnapshotCache,
    token_key: TokenKey,
    /// Rankings computed at once: one per core, on the blocking pool, so ranking never holds
    /// the async workers that answer health checks and move I/O.
    rank_slots: Arc<Semaphore>,
    metrics: Option<Arc<Metrics>>,
    trainer: Arc<Trainer>,
}

/// What a feed needs besides its index.
pub struct FeedParts {
    pub bodies: PostBodies,
    pub profiles: Arc<RankingProfiles>,
    pub cache: SnapshotCache,
    pub token_key: TokenKey,
    pub metrics: Option<Arc<Metrics>>,
    /// Trains the ranking model and holds the one in use.
    pub trainer: Arc<Trainer>,
}

impl FeedApi {
    pub fn new(index: SharedIndex, ready: watch::Receiver<bool>, parts: FeedParts) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            index,
            ready,
            bodies: parts.bodies,
            profiles: parts.profiles,
            cache: parts.cache,
            token_key: parts.token_key,
            rank_slots: Arc::new(Semaphore::new(cores)),
            metrics: parts.metrics,
            trainer: parts.trainer,
        }
    }

    /// Runs `work` (gathering and ranking) on the blocking pool, at most one per core at once.
    async fn off_the_workers<T: Send + 'static>(
        &self,
        work: impl FnOnce(&FeedIndex) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        self.ensure_ready()?;
        let _slot = self
            .rank_slots
            .acquire()
            .await
            .map_err(|_| FeedError::ShuttingDown)?;
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || {
            let index = index.read().unwrap_or_else(|p| p.into_inner());
            work(&index)
        })
        .await
        .map_err(|e| FeedError::RankingFailed(e.to_string()))?
    }

    /// The profile a request names (`field` for the error), as its caller may pick it.
    fn profile(
        &self,
        caller: &Caller,
        field: &str,
        name: &str,
    ) -> Result<Arc<RankingProfile>, Status> {
        let member = matches!(caller, Caller::Member(_));
        self.profiles
            .current()
            .pick(name, member)
            .map_err(|e: PickError| pronet_common::error::invalid_field(field, e.to_string()))
    }

    fn ensure_ready(&self) -> Result<(), Status> {
        if *self.ready.borrow() {
            Ok(())
        } else {
            Err(FeedError::NotReady.into())
        }
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, FeedIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Ranks the member's candidates as of `as_of` with `profile`, all read from the index.
    async fn compute(
        &self,
        member_id: &str,
        as_of: i64,
        profile: Arc<RankingProfile>,
    ) -> Result<Arc<Snapshot>, Status> {
        let member_id = member_id.to_owned();
        let scoring = self.scoring(profile);
        self.off_the_workers(move |index| rank(index, &member_id, as_of, scoring))
            .await
    }

    /// The profile with the model in use now.
    fn scoring(&self, profile: Arc<RankingProfile>) -> Scoring {
        Scoring {
            profile,
            model: self.trainer.slot().current(),
        }
    }
}

/// The member's ranked feed as of `as_of`, all read from the index.
fn rank(
    index: &FeedIndex,
    member_id: &str,
    as_of: i64,
    scoring: Scoring,
) -> Result<Arc<Snapshot>, Status> {
    let started = std::time::Instant::now();
    let profile = scoring.profile.clone();
    let feed = rank_feed(index, member_id, as_of, scoring, limits::MAX_FEED_DEPTH)
        .ok_or(FeedError::MemberNotFound)?;
    tracing::debug!(
        member_id,
        considered = feed.considered,
        scored = feed.scored,
        history = feed.history,
        dropped_engaged = feed.ranking.dropped.engaged,
        dropped_capped = feed.ranking.dropped.capped,
        rank_us = started.elapsed().as_micros() as u64,
        profile = %profile.name,
        "feed ranked"
    );
    Ok(Arc::new(Snapshot {
        member_id: member_id.to_owned(),
        as_of,
        scored: feed.scored,
        items: feed.ranking.items,
        profile,
        learned: feed.learned,
    }))
}

/// An item of the page being built.
struct PageItem<'a> {
    ranked: &'a Ranked,
    post_id: Arc<str>,
    author_id: Arc<str>,
    reasons: Vec<Reason>,
    stats: epb::PostStats,
    predictions: Vec<pb::EngagementPrediction>,
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
        let GetFeed {
            member_id,
            size,
            token,
            ranking_profile,
        } = parse_get_feed(request.into_inner(), &self.token_key)?;
        // A member reads only their own feed; a service (a gateway) may read anyone's.
        caller.require_self_or_service("member_id", &member_id)?;
        let profile = self.profile(&caller, "ranking_profile", &ranking_profile)?;

        // The ranking to page through: a new one for a first page, else the cached one (or,
        // on a replica without it, one ranked again as of the token's time).
        let (snapshot_id, snapshot, served) = match token {
            None => {
                let id = snapshot_id_from(&new_id());
                let snap = self.compute(&member_id, now_micros(), profile).await?;
                self.cache.insert(id, snap.clone());
                (id, snap, Vec::new())
            }
            Some(t) => match self.cache.get(t.snapshot_id) {
                Some(snap) if snap.member_id != member_id => {
                    return Err(pronet_common::error::invalid_field(
                        "page_token",
                        "was issued for another member",
                    ))
                }
                Some(snap) if snap.profile.name != profile.name => {
                    return Err(pronet_common::error::invalid_field(
                        "page_token",
                        format!(
                            "was issued for ranking profile {:?}; name it in ranking_profile",
                            snap.profile.name
                        ),
                    ))
                }
                Some(snap) => (t.snapshot_id, snap, t.served),
                None => {
                    let snap = self.compute(&member_id, t.as_of, profile).await?;
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
                    predictions: predictions_to_pb(
                        r,
                        &snapshot.profile,
                        &snapshot.learned,
                        &index,
                        snapshot.as_of,
                    ),
                    hash,
                    post_id,
                });
            }
            let names = display_names(
                &index,
                page.iter().flat_map(|p| {
                    std::iter::once(&*p.author_id).chain(p.reasons.iter().filter_map(reason_member))
                }),
            );
            (page, more, names)
        };

        // Bodies are the one thing the index does not hold: one call for the page, or, when
        // the post service fails or is slow, the copies kept of earlier pages and the index.
        let ids: Vec<String> = page.iter().map(|p| p.post_id.to_string()).collect();
        let bodies = self.bodies.get(ids).await;
        let outlines: HashMap<&str, ppb::Post> = if bodies.degraded {
            if let Some(m) = &self.metrics {
                m.degraded("GetFeed", "post");
            }
            let index = self.read_index();
            page.iter()
                .filter(|p| !bodies.posts.contains_key(&*p.post_id))
                .filter_map(|p| {
                    let o = index.outline(&p.post_id)?;
                    Some((&*p.post_id, outline_to_pb(&p.post_id, o)))
                })
                .collect()
        } else {
            HashMap::new()
        };

        let mut items = Vec::with_capacity(page.len());
        for p in &page {
            // A post deleted since the ranking is left out of the page (a degraded page knows
            // that from the index alone).
            let (post, partial) = match bodies.posts.get(&*p.post_id) {
                Some(post) => (post, false),
                None => match outlines.get(&*p.post_id) {
                    Some(outline) => (outline, true),
                    None => continue,
                },
            };
            items.push(pb::FeedItem {
                partial,
                post: Some(post.clone()),
                predictions: p.predictions.clone(),
                ..item_to_pb(
                    p.ranked,
                    &snapshot.profile,
                    &p.author_id,
                    &p.reasons,
                    &names,
                    p.stats.clone(),
                )
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
            .encode(&self.token_key)
        } else {
            String::new()
        };
        Ok(Response::new(pb::GetFeedResponse {
            items,
            next_page_token,
            candidates_scored: snapshot.scored.min(i32::MAX as usize) as i32,
            ranking_profile: snapshot.profile.name.clone(),
            degraded: bodies.degraded,
        }))
    }

    async fn explain_feed_item(
        &self,
        request: Request<pb::ExplainFeedItemRequest>,
    ) -> Result<Response<pb::ExplainFeedItemResponse>, Status> {
        let caller = pronet_common::auth::caller(&request)?;
        let (member_id, post_id, ranking_profile) = parse_explain_feed_item(request.into_inner())?;
        caller.require_self_or_service("member_id", &member_id)?;
        let profile = self.profile(&caller, "ranking_profile", &ranking_profile)?;
        let scoring = self.scoring(profile);
        let explained = self
            .off_the_workers(move |index| {
                explain_to_pb(index, &member_id, &post_id, scoring, now_micros())
            })
            .await?;
        Ok(Response::new(explained))
    }

    async fn get_ranking_model(
        &self,
        request: Request<pb::GetRankingModelRequest>,
    ) -> Result<Response<pb::GetRankingModelResponse>, Status> {
        pronet_common::auth::caller(&request)?.require_service()?;
        let model = self.trainer.slot().current();
        Ok(Response::new(pb::GetRankingModelResponse {
            model: Some(model_to_pb(&model)),
        }))
    }

    async fn train_ranking_model(
        &self,
        request: Request<pb::TrainRankingModelRequest>,
    ) -> Result<Response<pb::TrainRankingModelResponse>, Status> {
        pronet_common::auth::caller(&request)?.require_service()?;
        self.ensure_ready()?;
        let model = self
            .trainer
            .train_now(true)
            .await
            .map_err(FeedError::RankingFailed)?;
        Ok(Response::new(pb::TrainRankingModelResponse {
            model: Some(model_to_pb(&model)),
        }))
    }
}
