//! The log the ranking model learns from, kept by the index as events apply: every view (a
//! member shown a post, when, and how they stood to its author then) and every reaction,
//! comment and share, with its time. Bounded by the window and a capacity, oldest out first.
//! [`FeedIndex::training_data`] copies it out (with the stable hashes of the ids it names) for
//! the trainer, which replays it in time order off the request path.

use std::collections::VecDeque;
use std::sync::Arc;

use foldhash::HashMap;

use super::{FeedIndex, MemberKey, TagKey};
use crate::domain::features::stable_hash;
use crate::domain::model::Kind;
use crate::domain::{AuthorRelation, TagSet, RANKED_TAGS};

/// Most records kept by default (~32 bytes each).
pub const DEFAULT_LOG_CAPACITY: usize = 2_000_000;

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// The member was shown the post; how they stood to its author and how many of its
    /// hashtags they followed then (`None` when the post was not known yet: read at training).
    View(Option<(AuthorRelation, u8)>),
    Engaged(Kind),
}

/// One record of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord {
    pub time: i64,
    pub member: MemberKey,
    /// Index into the log's posts.
    pub post: u32,
    pub what: Logged,
}

/// A post the log names: its id, and what the index knew of it.
#[derive(Debug, Clone)]
struct LoggedPost {
    id: Arc<str>,
    meta: Option<(MemberKey, TagSet, i64)>,
}

/// The records, oldest first, and the posts they name.
#[derive(Debug)]
pub struct TrainingLog {
    records: VecDeque<LogRecord>,
    posts: Vec<LoggedPost>,
    post_index: HashMap<Arc<str>, u32>,
    /// Records ever appended (the trainer compares it to decide whether to train again).
    appended: u64,
    capacity: usize,
}

impl Default for TrainingLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_LOG_CAPACITY)
    }
}

impl TrainingLog {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            posts: Vec::new(),
            post_index: HashMap::default(),
            appended: 0,
            capacity: capacity.max(1),
        }
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    /// Records ever appended.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    fn post(&mut self, id: Arc<str>) -> u32 {
        if let Some(i) = self.post_index.get(&id) {
            return *i;
        }
        let i = self.posts.len() as u32;
        self.post_index.insert(id.clone(), i);
        self.posts.push(LoggedPost { id, meta: None });
        i
    }

    fn push(&mut self, record: LogRecord) {
        self.records.push_back(record);
        self.appended += 1;
        while self.records.len() > self.capacity {
            self.records.pop_front();
        }
    }

    /// Drops records older than `since`, and the posts no record names any more.
    pub fn evict(&mut self, since: i64) {
        while self.records.front().is_some_and(|r| r.time < since) {
            self.records.pop_front();
        }
        // Compact the posts once most of them are no longer named.
        if self.posts.len() > 1024 && self.posts.len() > 2 * self.records.len() {
            let mut remap: Vec<u32> = vec![u32::MAX; self.posts.len()];
            let mut posts = Vec::new();
            for r in &mut self.records {
                let old = r.post as usize;
                if remap[old] == u32::MAX {
                    remap[old] = posts.len() as u32;
                    posts.push(self.posts[old].clone());
                }
                r.post = remap[old];
            }
            self.post_index = posts
                .iter()
                .enumerate()
                .map(|(i, p): (usize, &LoggedPost)| (p.id.clone(), i as u32))
                .collect();
            self.posts = posts;
        }
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.posts.clear();
        self.post_index.clear();
    }
}

/// A post of the training data: stable hashes and its creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingPost {
    pub post: u64,
    pub author: u64,
    pub tags: [u64; RANKED_TAGS],
    pub tags_len: u8,
    pub create_time: i64,
}

impl TrainingPost {
    pub fn tags(&self) -> &[u64] {
        &self.tags[..self.tags_len as usize]
    }
}

/// A view of the training data, its post known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingView {
    pub relation: AuthorRelation,
    pub followed_hashtags: u8,
}

/// A copy of the log for the trainer: records with the hashes of what they name.
#[derive(Debug, Clone, Default)]
pub struct TrainingData {
    /// Oldest first as kept (not necessarily in time order: imports arrive in any order).
    pub records: Vec<TrainingRecord>,
    /// Per log post: `None` when the index never learned the post (its views are not examples).
    pub posts: Vec<Option<TrainingPost>>,
    /// Records ever appended when the copy was taken.
    pub appended: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainingRecord {
    pub time: i64,
    /// Stable hash of the member's id.
    pub member: u64,
    pub post: u32,
    /// `Some` for a view, `None` for an engagement.
    pub view: Option<TrainingView>,
    pub kind: Option<Kind>,
}

impl FeedIndex {
    /// How `member` stands to a post by `author` with `hashtags`: relation, and followed
    /// hashtags it carries.
    fn standing_to(
        &self,
        member: MemberKey,
        author: MemberKey,
        hashtags: &[TagKey],
    ) -> (AuthorRelation, u8) {
        let m = &self.members[member as usize];
        let relation = if m.connections.contains(&author) {
            AuthorRelation::Connection
        } else if m.following.contains(&author) {
            AuthorRelation::Followed
        } else {
            AuthorRelation::Other
        };
        let followed = hashtags.iter().filter(|t| m.hashtags.contains(t)).count();
        (relation, followed.min(u8::MAX as usize) as u8)
    }

    /// Logs that `member` was shown `post_id` at `time`.
    pub(super) fn log_view(&mut self, member: MemberKey, post_id: &str, time: i64) {
        let meta = self
            .post_key(post_id)
            .and_then(|k| self.post(k))
            .and_then(|p| p.meta.as_ref())
            .map(|m| (m.author, m.ranked_tags, m.create_time, m.hashtags.clone()));
        let id = self.shared_post_id(post_id);
        let standing = meta
            .as_ref()
            .map(|(author, _, _, tags)| self.standing_to(member, *author, tags));
        let post = self.log.post(id);
        if let Some((author, tags, create_time, _)) = meta {
            self.log.posts[post as usize].meta = Some((author, tags, create_time));
        }
        self.log.push(LogRecord {
            time,
            member,
            post,
            what: Logged::View(standing),
        });
    }

    /// Logs that `member` engaged with `post_id` at `time`.
    pub(super) fn log_engagement(
        &mut self,
        member: MemberKey,
        post_id: &str,
        kind: Kind,
        time: i64,
    ) {
        let id = self.shared_post_id(post_id);
        let post = self.log.post(id);
        self.log.push(LogRecord {
            time,
            member,
            post,
            what: Logged::Engaged(kind),
        });
    }

    /// Tells the log what a post is, once it is known (its views may have come first).
    pub(super) fn log_post_known(&mut self, post_id: &str) {
        let Some(&i) = self.log.post_index.get(post_id) else {
            return;
        };
        if let Some(meta) = self
            .post_key(post_id)
            .and_then(|k| self.post(k))
            .and_then(|p| p.meta.as_ref())
        {
            self.log.posts[i as usize].meta =
                Some((meta.author, meta.ranked_tags, meta.create_time));
        }
    }

    /// The training log: its size and records ever appended.
    pub fn log_stats(&self) -> (usize, u64) {
        (self.log.len(), self.log.appended())
    }

    /// Sets how many records the training log keeps.
    pub fn set_log_capacity(&mut self, capacity: usize) {
        self.log.capacity = capacity.max(1);
    }

    /// A copy of the training log with the stable hashes of the ids it names; views logged
    /// before their post was known get the member's standing to the author as it is now.
    pub fn training_data(&self) -> TrainingData {
        let tag_hashes = &self.tag_hashes;
        let member_hash =
            |k: MemberKey| -> u64 { self.member_hashes.get(k as usize).copied().unwrap_or(0) };
        let posts: Vec<Option<TrainingPost>> = self
            .log
            .posts
            .iter()
            .map(|p| {
                let (author, tags, create_time) = p.meta?;
                let mut hashes = [0u64; RANKED_TAGS];
                for (h, t) in hashes.iter_mut().zip(tags.as_slice()) {
                    *h = tag_hashes.get(*t as usize).copied().unwrap_or_default();
                }
                Some(TrainingPost {
                    post: stable_hash(&p.id),
                    author: member_hash(author),
                    tags: hashes,
                    tags_len: tags.as_slice().len() as u8,
                    create_time,
                })
            })
            .collect();
        let records = self
            .log
            .records
            .iter()
            .map(|r| {
                let (view, kind) = match r.what {
                    Logged::View(standing) => {
                        let standing = standing.or_else(|| {
                            let (author, tags, _) = self.log.posts[r.post as usize].meta?;
                            Some(self.standing_to(r.member, author, tags.as_slice()))
                        });
                        (
                            standing.map(|(relation, followed_hashtags)| TrainingView {
                                relation,
                                followed_hashtags,
                            }),
                            None,
                        )
                    }
                    Logged::Engaged(k) => (None, Some(k)),
                };
                TrainingRecord {
                    time: r.time,
                    member: member_hash(r.member),
                    post: r.post,
                    view,
                    kind,
                }
            })
            // A view whose post never became known teaches nothing.
            .filter(|r| r.view.is_some() || r.kind.is_some())
            .collect();
        TrainingData {
            records,
            posts,
            appended: self.log.appended(),
        }
    }
}
