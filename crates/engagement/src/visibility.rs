//! Whether a member may see a post, answered from a cache fed by the post and profile services'
//! events instead of asking the post service (which asks the profile service: two hops per
//! React, comment or share).
//!
//! [`VisibilityCache`] keeps, for every post, its author and visibility (or that it was
//! deleted), and the members' connections and blocks; the rule is
//! [`pronet_common::visibility::is_visible`], the post service's own. Two
//! [`EventFollower`]s keep it current ([`start_followers`]); [`CachedPostDirectory`] answers
//! from it, and falls back to the post service whenever the cache cannot answer.
//!
//! # Never less strict than what was committed
//!
//! The cache lags the services by milliseconds, and a block acknowledged to one member just
//! before the other reacts must still hide the post. So the cache answers only once it has
//! applied both sources up to their committed heads *as read after the request arrived*
//! ([`HeadProbe`]): every change acknowledged before the request (a block, a removed
//! connection, a deletion) has a sequence at or below that head, so the answer is the one the
//! post service would have given at the request's arrival — the same answer, not a stricter or
//! looser one, whichever way the change went (blocks and unblocks alike).
//!
//! The head the follower last saw on its stream would not do: a commit is announced to the
//! stream only after it is acknowledged to its writer, so a React can overtake it. Asking for
//! the head costs one small call (one read of the outbox's head row, no profile or post lookup),
//! probes of both sources go out together, and concurrent requests share them: one hop instead of
//! two for a lone request, and one probe per round trip instead of two calls per request under
//! load.
//!
//! A source found down on evidence ([`pronet_common::event_head`]: a failed connection, or
//! several consecutive failed probes) fails the request at once with UNAVAILABLE (retryable):
//! the post service could not answer either (it is the one, or it asks the other). A probe that
//! is merely slow is no such evidence: the post service answers instead, within the caller's
//! deadline.
//!
//! The post service answers instead when the cache has not loaded a source yet, when a head is
//! not known within [`pronet_common::event_head::PROBE_WAIT`], when the cache does not reach the
//! heads within [`CATCH_UP_WAIT`] (then the cache is skipped for [`BEHIND_BACKOFF`]), and for
//! any post the cache does not know (an id that names nothing, say): the cache never says "not
//! found" about a post it has not heard of.
//!
//! The post export is taken whole (ExportState without `since`): a member may react to a post of
//! any age, and a cache of the last weeks would send every older post to the slow path. The cost
//! is a map entry per post (its id, a member key and a flag: about 80 bytes), and a connection or
//! block is a pair of member keys.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use pronet_common::auth::{AuthConfig, ServiceAuth};
use pronet_common::event_follower::{EventApplier, EventFollower, FollowerConfig};
use pronet_common::event_head::{HeadError, HeadProbe};
use pronet_common::metrics::Metrics;
use pronet_common::nats::NatsConfig;
use pronet_common::shutdown::Shutdown;
use pronet_common::time::now_micros;
use pronet_common::upstream::CallLimits;
use pronet_common::visibility::{is_visible, Relation, Visibility};
use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event::Payload;
use tokio::sync::watch;

use crate::error::EngagementError;
use crate::posts::{PostDirectory, SERVICE_TOKEN_NAME};

/// How long a request waits for the cache to apply the heads its probes read before the post
/// service answers instead.
pub const CATCH_UP_WAIT: Duration = Duration::from_millis(100);
/// After the cache missed [`CATCH_UP_WAIT`], the post service answers for this long (the cache
/// is far behind: its stream or NATS is down), so requests do not each wait in vain.
pub const BEHIND_BACKOFF: Duration = Duration::from_secs(1);

/// The services the cache follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    Profile,
    Post,
}

impl CacheSource {
    pub const ALL: [Self; 2] = [Self::Profile, Self::Post];

    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Post => "post",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// What the cache says about one member seeing one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Visible,
    /// Deleted, or hidden from the viewer: answered as "not found".
    Hidden,
    /// The cache cannot tell (not loaded, behind the heads, or the post is unknown to it).
    Unknown,
}

type MemberKey = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostFact {
    Live {
        author: MemberKey,
        visibility: Visibility,
    },
    /// Deleted posts stay deleted: the answer is final.
    Deleted,
}

#[derive(Debug, Default, Clone, Copy)]
struct SourceState {
    /// The sequence applied so far.
    position: i64,
    /// An export was applied: the state is the source's as of `position`.
    loaded: bool,
}

/// The cached state; no I/O.
#[derive(Debug, Default)]
pub struct CacheState {
    keys: HashMap<Arc<str>, MemberKey>,
    /// Member ids by key.
    ids: Vec<Arc<str>>,
    posts: HashMap<Box<str>, PostFact>,
    /// Connected pairs, the smaller key first.
    connections: HashSet<(MemberKey, MemberKey)>,
    /// (who blocked, whom).
    blocks: HashSet<(MemberKey, MemberKey)>,
    sources: [SourceState; 2],
}

fn pair(a: MemberKey, b: MemberKey) -> (MemberKey, MemberKey) {
    (a.min(b), a.max(b))
}

impl CacheState {
    fn key(&mut self, id: &str) -> MemberKey {
        if let Some(k) = self.keys.get(id) {
            return *k;
        }
        // Four billion members fit: u32 keys halve the graph's memory against usize.
        let k = self.ids.len() as MemberKey;
        let id: Arc<str> = id.into();
        self.keys.insert(id.clone(), k);
        self.ids.push(id);
        k
    }

    /// The sequence of `source` applied so far.
    pub fn position(&self, source: CacheSource) -> i64 {
        self.sources[source.slot()].position
    }

    /// Sets where `source` stands after applying an export taken at `position`; from now on
    /// the cache may answer from it.
    pub fn set_position(&mut self, source: CacheSource, position: i64) {
        self.sources[source.slot()] = SourceState {
            position,
            loaded: true,
        };
    }

    /// Forgets what `source` contributed, before it is rebuilt from an export.
    pub fn reset(&mut self, source: CacheSource) {
        match source {
            CacheSource::Profile => {
                self.connections.clear();
                self.blocks.clear();
            }
            CacheSource::Post => self.posts.clear(),
        }
        self.sources[source.slot()] = SourceState::default();
    }

    /// Applies one event of `source`. Streamed events (sequence > 0) at or below the source's
    /// position are repeats and skipped; exported ones (sequence 0) always apply.
    pub fn apply(&mut self, source: CacheSource, event: &pb::Event) {
        if event.sequence > 0 {
            let position = &mut self.sources[source.slot()].position;
            if event.sequence <= *position {
                return;
            }
            *position = event.sequence;
        }
        let Some(payload) = &event.payload else {
            return;
        };
        match payload {
            Payload::ConnectionMade(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.other_id));
                self.connections.insert(pair(a, b));
            }
            Payload::ConnectionRemoved(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.other_id));
                self.connections.remove(&pair(a, b));
            }
            // A block ends the connection between the two, either way, without an event of its
            // own (see `MemberBlocked`).
            Payload::MemberBlocked(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.blocked_id));
                self.blocks.insert((a, b));
                self.connections.remove(&pair(a, b));
            }
            Payload::MemberUnblocked(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.blocked_id));
                self.blocks.remove(&(a, b));
            }
            Payload::PostCreated(e) => {
                // A visibility this build does not know stays unknown: the post service answers.
                let Some(visibility) = Visibility::from_i64(i64::from(e.visibility)) else {
                    return;
                };
                let author = self.key(&e.author_id);
                let fact = PostFact::Live { author, visibility };
                // A deletion heard first (an export lists deletions after creations) wins.
                self.posts.entry(e.post_id.as_str().into()).or_insert(fact);
            }
            Payload::PostDeleted(e) => {
                self.posts
                    .insert(e.post_id.as_str().into(), PostFact::Deleted);
            }
            // Profiles, follows, edits and engagement do not change who may see a post.
            _ => {}
        }
    }

    /// Whether `viewer_id` may see `post_id` (an empty viewer: whether the post exists), given
    /// that the request needs the cache at or past `heads` (profile, post).
    pub fn answer(&self, post_id: &str, viewer_id: &str, heads: [i64; 2]) -> Answer {
        let current = CacheSource::ALL
            .iter()
            .all(|s| self.sources[s.slot()].loaded && self.position(*s) >= heads[s.slot()]);
        if !current {
            return Answer::Unknown;
        }
        let (author, visibility) = match self.posts.get(post_id) {
            None => return Answer::Unknown,
            Some(PostFact::Deleted) => return Answer::Hidden,
            Some(PostFact::Live { author, visibility }) => (*author, *visibility),
        };
        if viewer_id.is_empty() {
            return Answer::Visible;
        }
        let Some(author_id) = self.ids.get(author as usize) else {
            return Answer::Unknown;
        };
        // A viewer the cache never heard of has no connections and no blocks.
        let relation = match self.keys.get(viewer_id) {
            None => Relation::default(),
            Some(&viewer) => Relation {
                connected: self.connections.contains(&pair(viewer, author)),
                blocked: self.blocks.contains(&(viewer, author))
                    || self.blocks.contains(&(author, viewer)),
            },
        };
        if is_visible(author_id, viewer_id, visibility, relation) {
            Answer::Visible
        } else {
            Answer::Hidden
        }
    }
}

/// The cache, shared by its followers (writers) and the service (readers).
#[derive(Debug)]
pub struct VisibilityCache {
    state: RwLock<CacheState>,
    /// Each source's position after every change, to wait on.
    positions: [watch::Sender<i64>; 2],
}

impl Default for VisibilityCache {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            positions: [watch::channel(0).0, watch::channel(0).0],
        }
    }
}

impl VisibilityCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state and publishes `source`'s position afterwards.
    fn change(&self, source: CacheSource, f: impl FnOnce(&mut CacheState)) {
        let position = {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            f(&mut state);
            state.position(source)
        };
        self.positions[source.slot()].send_replace(position);
    }

    /// Whether both sources have been loaded (the cache may answer once current).
    pub fn loaded(&self) -> bool {
        let state = self.read();
        CacheSource::ALL
            .iter()
            .all(|s| state.sources[s.slot()].loaded)
    }

    /// See [`CacheState::answer`].
    pub fn answer(&self, post_id: &str, viewer_id: &str, heads: [i64; 2]) -> Answer {
        self.read().answer(post_id, viewer_id, heads)
    }

    /// Waits until both sources are at or past `heads`, at most `wait`; whether they are.
    pub async fn reach(&self, heads: [i64; 2], wait: Duration) -> bool {
        let mut profile = self.positions[CacheSource::Profile.slot()].subscribe();
        let mut post = self.positions[CacheSource::Post.slot()].subscribe();
        let both = async {
            profile.wait_for(|p| *p >= heads[0]).await.is_ok()
                && post.wait_for(|p| *p >= heads[1]).await.is_ok()
        };
        tokio::time::timeout(wait, both).await.unwrap_or(false)
    }

    /// The follower's view of one source of the cache.
    pub fn feed(self: &Arc<Self>, source: CacheSource) -> Arc<dyn EventApplier> {
        Arc::new(CacheFeed {
            cache: self.clone(),
            source,
        })
    }
}

/// One source's share of the cache, as its follower feeds it.
struct CacheFeed {
    cache: Arc<VisibilityCache>,
    source: CacheSource,
}

impl EventApplier for CacheFeed {
    fn apply(&self, events: &[pb::Event]) {
        self.cache.change(self.source, |state| {
            for e in events {
                state.apply(self.source, e);
            }
        });
    }

    fn reset(&self) {
        self.cache
            .change(self.source, |state| state.reset(self.source));
    }

    fn position(&self) -> i64 {
        self.cache.read().position(self.source)
    }

    fn set_position(&self, position: i64) {
        self.cache.change(self.source, |state| {
            state.set_position(self.source, position)
        });
    }
}

/// Where the cache's sources are and how to reach them.
#[derive(Clone)]
pub struct CacheSources {
    pub profile_addr: String,
    pub post_addr: String,
    pub auth: Arc<AuthConfig>,
    pub limits: CallLimits,
    pub nats: Option<NatsConfig>,
    pub shutdown: Shutdown,
    /// Where probe failures and refusals are counted.
    pub metrics: Option<Arc<Metrics>>,
}

/// Starts following the profile and post services into `cache` (under the reader name
/// `consumer`); the receivers turn true as each source catches up.
pub fn start_followers(
    cache: &Arc<VisibilityCache>,
    sources: &CacheSources,
    consumer: &str,
) -> Result<Vec<watch::Receiver<bool>>, String> {
    let auth = ServiceAuth::new(sources.auth.clone(), SERVICE_TOKEN_NAME);
    let mut caught_up = Vec::with_capacity(2);
    for (source, addr) in [
        (CacheSource::Profile, &sources.profile_addr),
        (CacheSource::Post, &sources.post_addr),
    ] {
        let follower = EventFollower::start(
            FollowerConfig {
                source: source.name(),
                addr: addr.clone(),
                auth: auth.clone(),
                connect_timeout: sources.limits.connect_timeout,
                consumer: consumer.to_owned(),
                // Every post, of any age (see the module docs); the graph has no window.
                export_window: None,
                nats: sources.nats.clone(),
                shutdown: sources.shutdown.clone(),
                restored_at: None,
            },
            cache.feed(source),
        )?;
        caught_up.push(follower.caught_up());
    }
    Ok(caught_up)
}

/// A [`PostDirectory`] answering from the cache when it is current, and from `fallback` (the
/// post service) otherwise; see the module docs.
pub struct CachedPostDirectory {
    cache: Arc<VisibilityCache>,
    profile_head: HeadProbe,
    post_head: HeadProbe,
    fallback: Arc<dyn PostDirectory>,
    /// Until when (microseconds) the cache is skipped after it fell behind.
    skip_until: AtomicI64,
    /// Where checks are counted by who answered them.
    metrics: Option<Arc<Metrics>>,
}

impl CachedPostDirectory {
    pub fn new(
        cache: Arc<VisibilityCache>,
        sources: &CacheSources,
        fallback: Arc<dyn PostDirectory>,
    ) -> Result<Self, String> {
        let auth = ServiceAuth::new(sources.auth.clone(), SERVICE_TOKEN_NAME);
        Ok(Self {
            cache,
            profile_head: HeadProbe::new(
                CacheSource::Profile.name(),
                &sources.profile_addr,
                auth.clone(),
                sources.limits,
                sources.metrics.clone(),
            )?,
            post_head: HeadProbe::new(
                CacheSource::Post.name(),
                &sources.post_addr,
                auth,
                sources.limits,
                sources.metrics.clone(),
            )?,
            fallback,
            skip_until: AtomicI64::new(0),
            metrics: sources.metrics.clone(),
        })
    }

    /// The heads (profile, post) the cache has reached since the request arrived; `None` when
    /// the cache cannot answer for now; an error when a source was found down.
    async fn current_heads(&self) -> Result<Option<[i64; 2]>, EngagementError> {
        if !self.cache.loaded() || now_micros() < self.skip_until.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (profile, post) = tokio::join!(self.profile_head.head(), self.post_head.head());
        let heads = match (profile, post) {
            (Ok(profile), Ok(post)) => [profile, post],
            (Err(HeadError::Down(status)), _) => {
                return Err(EngagementError::dependency("profile")(status))
            }
            (_, Err(HeadError::Down(status))) => {
                return Err(EngagementError::dependency("post")(status))
            }
            // Slow, or failed without evidence of an outage: the post service answers.
            _ => return Ok(None),
        };
        if self.cache.reach(heads, CATCH_UP_WAIT).await {
            return Ok(Some(heads));
        }
        tracing::warn!("visibility cache behind its sources; asking the post service");
        self.skip_until.store(
            now_micros() + BEHIND_BACKOFF.as_micros() as i64,
            Ordering::Relaxed,
        );
        Ok(None)
    }

    fn answered_by(&self, who: &str) {
        if let Some(m) = &self.metrics {
            m.visibility_checked(who);
        }
    }

    /// Asks the post service (what the cache cannot answer), until a source is found down
    /// meanwhile: then the post service could not answer either, and the caller hears so at
    /// once instead of at its deadline.
    async fn ask_post_service<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, EngagementError>>,
    ) -> Result<T, EngagementError> {
        self.answered_by("post_service");
        tokio::select! {
            answered = call => {
                // Any answer (not a failure to get one) shows both sources are up: the post
                // service answered, asking the profile service where it had to.
                if !matches!(answered, Err(EngagementError::Dependency { .. })) {
                    self.post_head.answered();
                    self.profile_head.answered();
                }
                answered
            }
            status = self.profile_head.found_down() => {
                Err(EngagementError::dependency("profile")(status))
            }
            status = self.post_head.found_down() => Err(EngagementError::dependency("post")(status)),
        }
    }
}

#[async_trait]
impl PostDirectory for CachedPostDirectory {
    async fn require_visible_post(
        &self,
        post_id: &str,
        viewer_id: &str,
    ) -> Result<(), EngagementError> {
        if let Some(heads) = self.current_heads().await? {
            match self.cache.answer(post_id, viewer_id, heads) {
                Answer::Visible => {
                    self.answered_by("cache");
                    return Ok(());
                }
                Answer::Hidden => {
                    self.answered_by("cache");
                    return Err(EngagementError::NotFound("post"));
                }
                Answer::Unknown => {}
            }
        }
        self.ask_post_service(self.fallback.require_visible_post(post_id, viewer_id))
            .await
    }

    async fn visible_posts(
        &self,
        post_ids: &[String],
        viewer_id: &str,
    ) -> Result<HashSet<String>, EngagementError> {
        let Some(heads) = self.current_heads().await? else {
            return self
                .ask_post_service(self.fallback.visible_posts(post_ids, viewer_id))
                .await;
        };
        let mut visible = HashSet::new();
        let mut unknown = Vec::new();
        for id in post_ids {
            match self.cache.answer(id, viewer_id, heads) {
                Answer::Visible => {
                    visible.insert(id.clone());
                }
                Answer::Hidden => {}
                Answer::Unknown => unknown.push(id.clone()),
            }
        }
        if unknown.len() < post_ids.len() {
            self.answered_by("cache");
        }
        if !unknown.is_empty() {
            visible.extend(
                self.ask_post_service(self.fallback.visible_posts(&unknown, viewer_id))
                    .await?,
            );
        }
        Ok(visible)
    }
}

#[cfg(test)]
mod tests;
