//! The feed index: the state the feed ranks from, in memory, kept current by the domain events
//! of the profile, post and engagement services. No I/O here: [`crate::events`] feeds it and
//! [`FeedIndex::gather`] answers a member's candidates from it.
//!
//! - members (ids interned as `u32`, so ~10M graph edges stay small): display name,
//!   connections, followed members and hashtags, blocks both ways, their posts of the window,
//!   their recent engagement (social proof) and recent impressions;
//! - posts of the window: author, time, visibility, hashtags, counts per reaction type,
//!   comments, shares, impressions and unique viewers;
//! - per hashtag its posts of the window.
//!
//! Posts live in a slab and are referred to by a `u32` [`PostKey`] from their author's and
//! hashtags' lists, so gathering a feed follows keys instead of hashing post ids; the maps that
//! remain use foldhash (seeded per process) rather than SipHash.
//!
//! Events are applied idempotently: each carries its source's sequence, and one at or below the
//! source's applied position is skipped (delivery is at least once). Counts arriving before
//! their post (streams of different services interleave) wait on a stub that the post's
//! creation fills in.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use foldhash::{HashMap, HashSet};

use pronet_common::time::from_timestamp;
use pronet_proto::engagement::v1::ReactionType;
use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event::Payload;
use pronet_proto::post::v1::Visibility as PbVisibility;

use crate::domain::features::stable_hash;
use crate::domain::model::Kind;
use crate::domain::{EngagementKind, TagSet, Visibility};

/// A member's key in the index.
pub type MemberKey = u32;

/// A post's slot in the index (reused once the post leaves).
type PostKey = u32;

/// A hashtag's key in the index: hashtags are interned once (the vocabulary is small next to
/// the posts that carry them), so matching a post's hashtags compares integers.
type TagKey = u32;

/// The services whose events feed the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Profile,
    Post,
    Engagement,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Profile, Source::Post, Source::Engagement];

    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Post => "post",
            Self::Engagement => "engagement",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Engagement counts of one post.
pub use crate::domain::Counts as PostCounts;

#[derive(Debug, Clone)]
struct PostMeta {
    author: MemberKey,
    create_time: i64,
    visibility: Visibility,
    hashtags: Vec<TagKey>,
    /// The first of `hashtags`, inline: what ranking reads, without a pointer to follow.
    ranked_tags: TagSet,
}

impl PostMeta {
    fn new(
        author: MemberKey,
        create_time: i64,
        visibility: Visibility,
        hashtags: Vec<TagKey>,
    ) -> Self {
        Self {
            author,
            create_time,
            visibility,
            ranked_tags: TagSet::from_keys(hashtags.iter().copied()),
            hashtags,
        }
    }

    fn set_hashtags(&mut self, hashtags: Vec<TagKey>) {
        self.ranked_tags = TagSet::from_keys(hashtags.iter().copied());
        self.hashtags = hashtags;
    }
}

#[derive(Debug, Clone)]
struct Post {
    id: Arc<str>,
    /// Which post this is among those that held its slot (see [`FeedIndex::candidate_key`]).
    generation: u32,
    /// `None` for a stub: counts that arrived before the post did.
    meta: Option<PostMeta>,
    counts: PostCounts,
    /// When the stub was made (for dropping stubs whose post never comes).
    stub_time: i64,
}

/// One engagement of a member, for their connections' feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Activity {
    post: Arc<str>,
    /// The post's slot when the engagement was heard; valid while that slot still holds this
    /// very id (`Arc::ptr_eq`), which saves a hash lookup per engagement when gathering.
    slot: Option<PostKey>,
    kind: EngagementKind,
    time: i64,
}

#[derive(Debug, Default)]
struct Member {
    id: Arc<str>,
    /// `Some` once the member has a profile.
    display_name: Option<String>,
    connections: HashSet<MemberKey>,
    following: HashSet<MemberKey>,
    hashtags: BTreeSet<TagKey>,
    blocking: HashSet<MemberKey>,
    blocked_by: HashSet<MemberKey>,
    /// Their posts of the window, `(create_time, post)`.
    posts: TimeList,
    /// Their recent engagement, oldest first.
    activity: VecDeque<Activity>,
    /// Posts recently shown to them, oldest first.
    seen: VecDeque<Arc<str>>,
    /// Posts they hid (HidePost), with when: out of their feed for good. Kept for a window
    /// after the hide (a post hidden earlier is older than the window).
    hidden: HashMap<Arc<str>, i64>,
    /// Hashtags they muted: no post carrying one reaches their feed.
    muted_tags: HashSet<TagKey>,
    /// Authors they muted: neither their posts nor their engagement reaches their feed.
    muted_authors: HashSet<MemberKey>,
}

impl Member {
    /// Whether the member muted the author or one of the hashtags.
    fn mutes(&self, author: MemberKey, hashtags: &[TagKey]) -> bool {
        self.muted_authors.contains(&author)
            || (!self.muted_tags.is_empty() && hashtags.iter().any(|t| self.muted_tags.contains(t)))
    }
}

/// Estimated bytes of one post in the index (its entry, author and hashtag set entries).
const POST_BYTES: usize = 250;

/// Most engagements remembered per member (their connections' feeds read the newest).
const MAX_ACTIVITY_PER_MEMBER: usize = 200;
/// Most recent impressions remembered per member.
const MAX_SEEN_PER_MEMBER: usize = 500;

/// Sizes of the index, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub members: usize,
    pub posts: usize,
    pub stubs: usize,
    pub connection_edges: usize,
    pub follow_edges: usize,
    pub activities: usize,
    /// Hidden posts, muted hashtags and muted authors, over all members.
    pub mutes: usize,
    /// Rough bytes held (the structures' payloads, not allocator overhead).
    pub approx_bytes: usize,
}

/// A post as the index knows it, without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostOutline {
    pub author: Arc<str>,
    pub create_time: i64,
    pub visibility: Visibility,
    pub hashtags: Vec<String>,
}

/// The in-memory state of the feed.
#[derive(Debug)]
pub struct FeedIndex {
    window: i64,
    keys: HashMap<Arc<str>, MemberKey>,
    members: Vec<Member>,
    /// The posts of the window and the stubs, by key; `None` for a free slot.
    posts: Vec<Option<Post>>,
    post_keys: HashMap<Arc<str>, PostKey>,
    free_posts: Vec<PostKey>,
    /// The next post's generation.
    generations: u32,
    by_hashtag: HashMap<TagKey, TimeList>,
    tags: HashMap<Arc<str>, TagKey>,
    tag_names: Vec<Arc<str>>,
    /// Stable hashes of the ids (`features::stable_hash`), by tag, member and post key: what the
    /// learned model reads per candidate, kept so ranking hashes no string.
    tag_hashes: Vec<u64>,
    member_hashes: Vec<u64>,
    post_hashes: Vec<u64>,
    /// Posts deleted within the window, with when: engagement that arrives for them later
    /// (another service's stream, or an export) is dropped, not kept on a stub.
    deleted: HashMap<Arc<str>, i64>,
    /// Most bytes the index may hold (by [`FeedIndex::stats`]' estimate); past it the oldest
    /// posts leave before the window says so.
    budget: Option<usize>,
    /// Posts dropped for the budget so far.
    over_budget_evictions: u64,
    /// Applied sequence per source.
    positions: [i64; 3],
    /// Per source: whether its state is whole (an export finished, or loaded from a saved
    /// file), so the positions describe the content and the index may be saved.
    whole: [bool; 3],
    /// Exports applied so far (each source's first load, and each rebuild).
    exports: u64,
    /// Views and engagement, for the ranking model to learn from.
    log: log::TrainingLog,
}

impl FeedIndex {
    /// An empty index keeping posts of the last `window_micros`.
    pub fn new(window_micros: i64) -> Self {
        Self {
            window: window_micros,
            keys: HashMap::default(),
            members: Vec::new(),
            posts: Vec::new(),
            post_keys: HashMap::default(),
            free_posts: Vec::new(),
            generations: 0,
            by_hashtag: HashMap::default(),
            tags: HashMap::default(),
            tag_names: Vec::new(),
            tag_hashes: Vec::new(),
            member_hashes: Vec::new(),
            post_hashes: Vec::new(),
            deleted: HashMap::default(),
            budget: None,
            over_budget_evictions: 0,
            positions: [0; 3],
            whole: [false; 3],
            exports: 0,
            log: log::TrainingLog::default(),
        }
    }

    /// Caps the index's estimated size (`None`: the window alone bounds it).
    pub fn set_memory_budget(&mut self, bytes: Option<usize>) {
        self.budget = bytes;
    }

    /// The memory budget, if any.
    pub fn memory_budget(&self) -> Option<usize> {
        self.budget
    }

    /// Posts dropped to stay within the memory budget so far.
    pub fn over_budget_evictions(&self) -> u64 {
        self.over_budget_evictions
    }

    /// The sequence of `source` applied so far.
    pub fn position(&self, source: Source) -> i64 {
        self.positions[source.slot()]
    }

    /// Sets where `source` stands after applying an export taken at `position`.
    pub fn set_position(&mut self, source: Source, position: i64) {
        self.positions[source.slot()] = position;
        self.whole[source.slot()] = true;
        self.exports += 1;
    }

    /// Exports applied so far: zero for an index loaded from a saved copy and kept current by
    /// replaying events alone.
    pub fn exports(&self) -> u64 {
        self.exports
    }

    /// Whether every source's state is whole (no export half applied): only then is a saved
    /// copy worth restoring.
    pub fn is_whole(&self) -> bool {
        self.whole.iter().all(|w| *w)
    }

    fn key(&mut self, id: &str) -> MemberKey {
        if let Some(k) = self.keys.get(id) {
            return *k;
        }
        let k = self.members.len() as MemberKey;
        let id: Arc<str> = Arc::from(id);
        self.keys.insert(id.clone(), k);
        self.member_hashes.push(stable_hash(&id));
        self.members.push(Member {
            id,
            ..Default::default()
        });
        k
    }

    fn lookup(&self, id: &str) -> Option<MemberKey> {
        self.keys.get(id).copied()
    }

    fn post_key(&self, id: &str) -> Option<PostKey> {
        self.post_keys.get(id).copied()
    }

    fn post(&self, key: PostKey) -> Option<&Post> {
        self.posts.get(key as usize).and_then(Option::as_ref)
    }

    fn post_mut(&mut self, key: PostKey) -> Option<&mut Post> {
        self.posts.get_mut(key as usize).and_then(Option::as_mut)
    }

    /// The live posts and stubs with their keys.
    fn posts(&self) -> impl Iterator<Item = (PostKey, &Post)> {
        self.posts
            .iter()
            .enumerate()
            .filter_map(|(k, p)| p.as_ref().map(|p| (k as PostKey, p)))
    }

    fn insert_post(&mut self, mut post: Post) -> PostKey {
        let id = post.id.clone();
        post.generation = self.generations;
        self.generations = self.generations.wrapping_add(1);
        let key = match self.free_posts.pop() {
            Some(k) => {
                self.posts[k as usize] = Some(post);
                k
            }
            None => {
                self.posts.push(Some(post));
                (self.posts.len() - 1) as PostKey
            }
        };
        let slot = key as usize;
        if self.post_hashes.len() <= slot {
            self.post_hashes.resize(slot + 1, 0);
        }
        self.post_hashes[slot] = stable_hash(&id);
        self.post_keys.insert(id, key);
        key
    }

    /// Frees the post's slot (after [`FeedIndex::unindex_post`]).
    fn remove_post(&mut self, key: PostKey) {
        if let Some(post) = self.posts.get_mut(key as usize).and_then(Option::take) {
            self.post_keys.remove(&post.id);
            self.free_posts.push(key);
        }
    }

    /// The post's id as the index shares it (a new one when the post is not known).
    fn shared_post_id(&self, id: &str) -> Arc<str> {
        match self.post_keys.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => Arc::from(id),
        }
    }

    /// Forgets what `source` contributed, before it is rebuilt from an export.
    pub fn reset(&mut self, source: Source) {
        match source {
            Source::Profile => {
                for m in &mut self.members {
                    m.display_name = None;
                    m.connections.clear();
                    m.following.clear();
                    m.hashtags.clear();
                    m.blocking.clear();
                    m.blocked_by.clear();
                }
            }
            Source::Post => {
                for m in &mut self.members {
                    m.posts.clear();
                }
                self.by_hashtag.clear();
                self.deleted.clear();
                let keys: Vec<PostKey> = self.posts().map(|(k, _)| k).collect();
                for k in keys {
                    let post = self.post_mut(k).expect("listed above");
                    post.meta = None;
                    if post.counts == PostCounts::default() {
                        self.remove_post(k);
                    }
                }
            }
            Source::Engagement => {
                self.log.clear();
                for m in &mut self.members {
                    m.activity.clear();
                    m.seen.clear();
                    m.hidden.clear();
                    m.muted_tags.clear();
                    m.muted_authors.clear();
                }
                let keys: Vec<PostKey> = self.posts().map(|(k, _)| k).collect();
                for k in keys {
                    let post = self.post_mut(k).expect("listed above");
                    post.counts = PostCounts::default();
                    if post.meta.is_none() {
                        self.remove_post(k);
                    }
                }
            }
        }
        self.positions[source.slot()] = 0;
        self.whole[source.slot()] = false;
    }

    /// Applies one event of `source`. Streamed events (sequence > 0) at or below the source's
    /// position are skipped; exported ones (sequence 0) always apply. Returns whether it
    /// applied.
    pub fn apply(&mut self, source: Source, event: &pb::Event) -> bool {
        if event.sequence > 0 {
            if event.sequence <= self.positions[source.slot()] {
                return false;
            }
            self.positions[source.slot()] = event.sequence;
        }
        let time = event
            .occur_time
            .as_ref()
            .and_then(|t| from_timestamp(t).ok())
            .unwrap_or_default();
        let Some(payload) = &event.payload else {
            return true;
        };
        self.apply_payload(payload, time);
        true
    }

    fn apply_payload(&mut self, payload: &Payload, time: i64) {
        match payload {
            Payload::ProfileCreated(e) => {
                let k = self.key(&e.member_id);
                self.members[k as usize].display_name = Some(e.display_name.clone());
            }
            Payload::ProfileRenamed(e) => {
                let k = self.key(&e.member_id);
                self.members[k as usize].display_name = Some(e.display_name.clone());
            }
            Payload::ConnectionMade(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.other_id));
                if a != b {
                    self.members[a as usize].connections.insert(b);
                    self.members[b as usize].connections.insert(a);
                }
            }
            Payload::ConnectionRemoved(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.other_id));
                self.members[a as usize].connections.remove(&b);
                self.members[b as usize].connections.remove(&a);
            }
            Payload::MemberFollowed(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.followee_id));
                if a != b {
                    self.members[a as usize].following.insert(b);
                }
            }
            Payload::MemberUnfollowed(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.followee_id));
                self.members[a as usize].following.remove(&b);
            }
            Payload::HashtagFollowed(e) => {
                let a = self.key(&e.member_id);
                let tag = self.tag(&e.hashtag);
                self.members[a as usize].hashtags.insert(tag);
            }
            Payload::HashtagUnfollowed(e) => {
                let a = self.key(&e.member_id);
                if let Some(tag) = self.tags.get(e.hashtag.as_str()).copied() {
                    self.members[a as usize].hashtags.remove(&tag);
                }
            }
            Payload::MemberBlocked(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.blocked_id));
                if a == b {
                    return;
                }
                // A block ends the connection and the follows both ways (see the event's doc).
                for (x, y) in [(a, b), (b, a)] {
                    let m = &mut self.members[x as usize];
                    m.connections.remove(&y);
                    m.following.remove(&y);
                }
                self.members[a as usize].blocking.insert(b);
                self.members[b as usize].blocked_by.insert(a);
            }
            Payload::MemberUnblocked(e) => {
                let (a, b) = (self.key(&e.member_id), self.key(&e.blocked_id));
                self.members[a as usize].blocking.remove(&b);
                self.members[b as usize].blocked_by.remove(&a);
            }
            Payload::PostCreated(e) => self.post_created(e, time),
            Payload::PostEdited(e) => self.post_edited(e),
            Payload::PostDeleted(e) => self.post_deleted(&e.post_id, time),
            Payload::ReactionSet(e) => {
                if let Some(counts) = self.counts_mut(&e.post_id, time) {
                    if let Some(i) = reaction_slot(e.previous_type) {
                        counts.reactions[i] = (counts.reactions[i] - 1).max(0);
                    }
                    if let Some(i) = reaction_slot(e.reaction_type) {
                        counts.reactions[i] += 1;
                    }
                }
                if reaction_slot(e.previous_type).is_none() {
                    let at = e
                        .create_time
                        .as_ref()
                        .and_then(|t| from_timestamp(t).ok())
                        .unwrap_or(time);
                    self.add_activity(&e.member_id, &e.post_id, EngagementKind::Reacted, at);
                    let m = self.key(&e.member_id);
                    self.log_engagement(m, &e.post_id, Kind::React, at);
                }
            }
            Payload::ReactionRemoved(e) => {
                if let Some(counts) = self.counts_mut(&e.post_id, time) {
                    if let Some(i) = reaction_slot(e.reaction_type) {
                        counts.reactions[i] = (counts.reactions[i] - 1).max(0);
                    }
                }
                self.remove_activity(&e.member_id, &e.post_id, EngagementKind::Reacted);
            }
            Payload::CommentCreated(e) => {
                if let Some(counts) = self.counts_mut(&e.post_id, time) {
                    counts.comments += 1;
                }
                let at = e
                    .create_time
                    .as_ref()
                    .and_then(|t| from_timestamp(t).ok())
                    .unwrap_or(time);
                self.add_activity(&e.member_id, &e.post_id, EngagementKind::Commented, at);
                let m = self.key(&e.member_id);
                self.log_engagement(m, &e.post_id, Kind::Comment, at);
            }
            Payload::CommentDeleted(e) => {
                if let Some(counts) = self.counts_mut(&e.post_id, time) {
                    counts.comments = (counts.comments - 1).max(0);
                }
                self.remove_activity(&e.member_id, &e.post_id, EngagementKind::Commented);
            }
            Payload::ShareRecorded(e) => {
                if let Some(counts) = self.counts_mut(&e.post_id, time) {
                    counts.shares += 1;
                }
                let at = e
                    .create_time
                    .as_ref()
                    .and_then(|t| from_timestamp(t).ok())
                    .unwrap_or(time);
                self.add_activity(&e.member_id, &e.post_id, EngagementKind::Shared, at);
                let m = self.key(&e.member_id);
                self.log_engagement(m, &e.post_id, Kind::Share, at);
            }
            Payload::ImpressionsRecorded(e) => {
                for post in &e.post_ids {
                    if let Some(counts) = self.counts_mut(post, time) {
                        counts.impressions += 1;
                    }
                }
                for post in &e.first_view_post_ids {
                    if let Some(counts) = self.counts_mut(post, time) {
                        counts.unique_viewers += 1;
                    }
                }
                let m = self.key(&e.member_id);
                // An export lists a post once per day it was shown, all with its last view
                // time: one view at that time is what is known, so it is logged once.
                let mut logged: Option<(&str, i64)> = None;
                for (i, post) in e.post_ids.iter().enumerate() {
                    let at = e
                        .view_times
                        .get(i)
                        .and_then(|t| from_timestamp(t).ok())
                        .unwrap_or(time);
                    if logged == Some((post.as_str(), at)) {
                        continue;
                    }
                    logged = Some((post.as_str(), at));
                    self.log_view(m, post, at);
                }
                let seen = &mut self.members[m as usize].seen;
                for post in &e.post_ids {
                    seen.push_back(Arc::from(post.as_str()));
                }
                while seen.len() > MAX_SEEN_PER_MEMBER {
                    seen.pop_front();
                }
            }
            Payload::PostHidden(e) => {
                let m = self.key(&e.member_id);
                let at = e
                    .hide_time
                    .as_ref()
                    .and_then(|t| from_timestamp(t).ok())
                    .unwrap_or(time);
                let post = self.shared_post_id(&e.post_id);
                self.members[m as usize].hidden.insert(post, at);
            }
            Payload::PostUnhidden(e) => {
                let m = self.key(&e.member_id);
                self.members[m as usize].hidden.remove(e.post_id.as_str());
            }
            Payload::HashtagMuted(e) => {
                let m = self.key(&e.member_id);
                let tag = self.tag(&e.hashtag);
                self.members[m as usize].muted_tags.insert(tag);
            }
            Payload::HashtagUnmuted(e) => {
                let m = self.key(&e.member_id);
                if let Some(tag) = self.tags.get(e.hashtag.as_str()).copied() {
                    self.members[m as usize].muted_tags.remove(&tag);
                }
            }
            Payload::AuthorMuted(e) => {
                let (m, a) = (self.key(&e.member_id), self.key(&e.author_id));
                if m != a {
                    self.members[m as usize].muted_authors.insert(a);
                }
            }
            Payload::AuthorUnmuted(e) => {
                let (m, a) = (self.key(&e.member_id), self.key(&e.author_id));
                self.members[m as usize].muted_authors.remove(&a);
            }
        }
    }

    /// The post's counts (on a stub if the post is not known yet); `None` for a deleted post.
    fn counts_mut(&mut self, post_id: &str, now: i64) -> Option<&mut PostCounts> {
        if self.deleted.contains_key(post_id) {
            return None;
        }
        let key = self.post_entry(post_id, now);
        self.post_mut(key).map(|p| &mut p.counts)
    }

    /// The post's key, a new stub's if it is not known yet.
    fn post_entry(&mut self, post_id: &str, now: i64) -> PostKey {
        match self.post_key(post_id) {
            Some(k) => k,
            None => self.insert_post(Post {
                id: Arc::from(post_id),
                generation: 0,
                meta: None,
                counts: PostCounts::default(),
                stub_time: now,
            }),
        }
    }

    fn post_created(&mut self, e: &pb::PostCreated, now: i64) {
        // A deleted post never comes back (a creation delivered again after its deletion).
        if self.deleted.contains_key(e.post_id.as_str()) {
            return;
        }
        let create_time = e
            .create_time
            .as_ref()
            .and_then(|t| from_timestamp(t).ok())
            .unwrap_or(now);
        let visibility = match PbVisibility::try_from(e.visibility) {
            Ok(PbVisibility::Public) => Visibility::Public,
            // Anything else is the narrower audience.
            _ => Visibility::Connections,
        };
        let author = self.key(&e.author_id);
        let key = self.post_entry(&e.post_id, now);
        // A re-delivered creation replaces the first: drop its index entries.
        self.unindex_post(key);
        let hashtags: Vec<TagKey> = e.hashtags.iter().map(|t| self.tag(t)).collect();
        if let Some(post) = self.post_mut(key) {
            post.meta = Some(PostMeta::new(
                author,
                create_time,
                visibility,
                hashtags.clone(),
            ));
        }
        self.members[author as usize]
            .posts
            .insert((create_time, key));
        for tag in hashtags {
            self.by_hashtag
                .entry(tag)
                .or_default()
                .insert((create_time, key));
        }
        self.log_post_known(&e.post_id);
    }

    /// The hashtag's key, interning it.
    fn tag(&mut self, name: &str) -> TagKey {
        if let Some(k) = self.tags.get(name) {
            return *k;
        }
        let k = self.tag_names.len() as TagKey;
        let name: Arc<str> = Arc::from(name);
        self.tags.insert(name.clone(), k);
        self.tag_hashes.push(stable_hash(&name));
        self.tag_names.push(name);
        k
    }

    /// The hashtag's name.
    fn tag_name(&self, tag: TagKey) -> &str {
        self.tag_names.get(tag as usize).map_or("", |t| t)
    }

    /// The names of `tags`, in their order.
    fn tag_names_of<'a, C: FromIterator<String>>(
        &self,
        tags: impl IntoIterator<Item = &'a TagKey>,
    ) -> C {
        tags.into_iter()
            .map(|t| self.tag_name(*t).to_owned())
            .collect()
    }

    fn post_edited(&mut self, e: &pb::PostEdited) {
        let Some(key) = self.post_key(&e.post_id) else {
            return;
        };
        let Some(meta) = self.post(key).and_then(|p| p.meta.clone()) else {
            return;
        };
        for tag in &meta.hashtags {
            if let Some(set) = self.by_hashtag.get_mut(tag) {
                set.remove(&(meta.create_time, key));
                if set.is_empty() {
                    self.by_hashtag.remove(tag);
                }
            }
        }
        let hashtags: Vec<TagKey> = e.hashtags.iter().map(|t| self.tag(t)).collect();
        for tag in &hashtags {
            self.by_hashtag
                .entry(*tag)
                .or_default()
                .insert((meta.create_time, key));
        }
        if let Some(Post {
            meta: Some(meta), ..
        }) = self.post_mut(key)
        {
            meta.set_hashtags(hashtags);
        }
    }

    /// Removes a post from the author's and hashtags' lists (not from `posts`).
    fn unindex_post(&mut self, key: PostKey) {
        let Some(meta) = self.post(key).and_then(|p| p.meta.clone()) else {
            return;
        };
        self.members[meta.author as usize]
            .posts
            .remove(&(meta.create_time, key));
        for tag in &meta.hashtags {
            if let Some(set) = self.by_hashtag.get_mut(tag) {
                set.remove(&(meta.create_time, key));
                if set.is_empty() {
                    self.by_hashtag.remove(tag);
                }
            }
        }
    }

    fn post_deleted(&mut self, post_id: &str, now: i64) {
        let id = self.shared_post_id(post_id);
        if let Some(key) = self.post_key(post_id) {
            self.unindex_post(key);
            self.remove_post(key);
        }
        self.deleted.insert(id, now);
    }

    fn add_activity(&mut self, member: &str, post: &str, kind: EngagementKind, time: i64) {
        let slot = self.post_key(post);
        let post = self.shared_post_id(post);
        let m = self.key(member);
        let activity = &mut self.members[m as usize].activity;
        activity.push_back(Activity {
            post,
            slot,
            kind,
            time,
        });
        while activity.len() > MAX_ACTIVITY_PER_MEMBER {
            activity.pop_front();
        }
    }

    fn remove_activity(&mut self, member: &str, post: &str, kind: EngagementKind) {
        let Some(m) = self.lookup(member) else {
            return;
        };
        let activity = &mut self.members[m as usize].activity;
        if let Some(i) = activity
            .iter()
            .rposition(|a| a.kind == kind && &*a.post == post)
        {
            activity.remove(i);
        }
    }

    /// Drops what left the window as of `now`: posts older than it (and stubs that waited that
    /// long for their post), and engagement older than it.
    pub fn evict(&mut self, now: i64) -> usize {
        let since = now - self.window;
        let old: Vec<PostKey> = self
            .posts()
            .filter(|(_, p)| match &p.meta {
                Some(meta) => meta.create_time < since,
                None => p.stub_time < since,
            })
            .map(|(k, _)| k)
            .collect();
        for &key in &old {
            self.unindex_post(key);
            self.remove_post(key);
        }
        for m in &mut self.members {
            while m.activity.front().is_some_and(|a| a.time < since) {
                m.activity.pop_front();
            }
            // A post hidden before the window began was created before it too.
            m.hidden.retain(|_, at| *at >= since);
        }
        self.deleted.retain(|_, at| *at >= since);
        self.log.evict(since);
        old.len() + self.enforce_budget()
    }

    /// Drops stubs, then the oldest posts, until the estimate is within the budget. The graph
    /// is never dropped (a feed without it is wrong, not just shorter); if it alone is over the
    /// budget, every post goes and the estimate stays over (the metrics show it).
    fn enforce_budget(&mut self) -> usize {
        let Some(budget) = self.budget else {
            return 0;
        };
        let over = self.stats().approx_bytes.saturating_sub(budget);
        if over == 0 {
            return 0;
        }
        let n = over.div_ceil(POST_BYTES);
        let mut victims: Vec<(i64, PostKey)> = self
            .posts()
            .map(|(k, p)| {
                // Stubs first (they rank nothing), then by age.
                let t = p.meta.as_ref().map_or(i64::MIN, |m| m.create_time);
                (t, k)
            })
            .collect();
        let n = n.min(victims.len());
        if n == 0 {
            return 0;
        }
        victims.select_nth_unstable(n - 1);
        for (_, key) in victims.into_iter().take(n) {
            self.unindex_post(key);
            self.remove_post(key);
        }
        self.over_budget_evictions += n as u64;
        n
    }

    /// The index's sizes.
    pub fn stats(&self) -> IndexStats {
        let mut s = IndexStats {
            members: self.members.len(),
            ..Default::default()
        };
        for m in &self.members {
            s.connection_edges += m.connections.len();
            s.follow_edges += m.following.len();
            s.activities += m.activity.len();
            s.mutes += m.hidden.len() + m.muted_tags.len() + m.muted_authors.len();
        }
        for (_, p) in self.posts() {
            if p.meta.is_some() {
                s.posts += 1;
            } else {
                s.stubs += 1;
            }
        }
        // Ids are 32 hex characters; a hash set entry of a u32 costs ~8 bytes with its control
        // byte and load factor; a post with its keys, hashtag entries and counts ~250.
        s.approx_bytes = s.members * 200
            + (s.connection_edges + s.follow_edges) * 8
            + s.activities * 40
            + s.mutes * 48
            + (s.posts + s.stubs) * POST_BYTES;
        s
    }

    /// The member's display name, when they have a profile.
    pub fn display_name(&self, member_id: &str) -> Option<&str> {
        self.lookup(member_id)
            .and_then(|k| self.members[k as usize].display_name.as_deref())
    }

    /// Whether the member has a profile.
    pub fn has_profile(&self, member_id: &str) -> bool {
        self.display_name(member_id).is_some()
    }

    /// What the index knows of a post (not its text): enough to show it on a degraded page.
    pub fn outline(&self, post_id: &str) -> Option<PostOutline> {
        let post = self.post(self.post_key(post_id)?)?;
        let meta = post.meta.as_ref()?;
        Some(PostOutline {
            author: self.members[meta.author as usize].id.clone(),
            create_time: meta.create_time,
            visibility: meta.visibility,
            hashtags: self.tag_names_of(&meta.hashtags),
        })
    }

    /// The counts of a post (zeros for one unknown).
    pub fn counts(&self, post_id: &str) -> PostCounts {
        self.post_key(post_id)
            .and_then(|k| self.post(k))
            .map(|p| p.counts)
            .unwrap_or_default()
    }
}

/// The counts slot of a reaction type; `None` for UNSPECIFIED or unknown values.
fn reaction_slot(raw: i32) -> Option<usize> {
    match ReactionType::try_from(raw) {
        Ok(ReactionType::Unspecified) | Err(_) => None,
        Ok(t) => Some(t as usize - 1),
    }
}

mod gather;
mod log;
mod saved;
mod timeline;
mod view;
pub use crate::domain::{Gathered, NotGathered};
pub use log::{TrainingData, TrainingPost, TrainingRecord, TrainingView, DEFAULT_LOG_CAPACITY};
pub use saved::SavedInfo;
use timeline::TimeList;
pub use view::{IndexView, MemberView, PostView};
#[cfg(test)]
mod tests;
