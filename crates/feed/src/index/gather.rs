//! A member's candidates, read from the index: the part of a GetFeed that runs per request, so
//! it follows keys (members and posts are `u32`s) and shares ids (`Arc<str>`) instead of
//! hashing or copying strings.

use std::sync::Arc;

use foldhash::HashMap;

use super::{Activity, FeedIndex, MemberKey, PostKey};
use crate::domain::{
    self, is_visible_to_another, limits, AuthorRelation, Candidate, CandidateSource, Gathered,
    HistoryEvent, Ids, Key, NotGathered, Relation,
};

impl Ids for FeedIndex {
    fn post_id(&self, post: domain::PostKey) -> Option<Arc<str>> {
        let (slot, generation) = (post as u32, (post >> 32) as u32);
        self.post(slot)
            .filter(|p| p.generation == generation)
            .map(|p| p.id.clone())
    }

    fn member_id(&self, member: Key) -> Arc<str> {
        match self.members.get(member as usize) {
            Some(m) => m.id.clone(),
            None => Arc::from(""),
        }
    }

    fn hashtag(&self, tag: Key) -> Arc<str> {
        match self.tag_names.get(tag as usize) {
            Some(t) => t.clone(),
            None => Arc::from(""),
        }
    }

    fn post_hash(&self, post: domain::PostKey) -> u64 {
        let (slot, generation) = (post as u32, (post >> 32) as u32);
        self.post(slot)
            .filter(|p| p.generation == generation)
            .and_then(|_| self.post_hashes.get(slot as usize).copied())
            .unwrap_or(0)
    }

    fn member_hash(&self, member: Key) -> u64 {
        self.member_hashes
            .get(member as usize)
            .copied()
            .unwrap_or(0)
    }

    fn hashtag_hash(&self, tag: Key) -> u64 {
        self.tag_hashes.get(tag as usize).copied().unwrap_or(0)
    }
}

impl CandidateSource for FeedIndex {
    fn gather(&self, member_id: &str, as_of: i64) -> Option<Gathered> {
        FeedIndex::gather(self, member_id, as_of)
    }

    fn why_not_gathered(&self, member_id: &str, post_id: &str, as_of: i64) -> Option<NotGathered> {
        FeedIndex::why_not_gathered(self, member_id, post_id, as_of)
    }
}

impl FeedIndex {
    /// The key a candidate carries for the post in `slot`: the slot and the post's generation.
    fn candidate_key(slot: PostKey, post: &super::Post) -> domain::PostKey {
        (u64::from(post.generation) << 32) | u64::from(slot)
    }
}

impl FeedIndex {
    /// Whether `a` blocked `b` or `b` blocked `a`.
    fn blocked_either_way(&self, a: MemberKey, b: MemberKey) -> bool {
        let m = &self.members[a as usize];
        m.blocking.contains(&b) || m.blocked_by.contains(&b)
    }

    /// The member's candidates as of `as_of`: recent posts of their connections and followed
    /// members (at most [`limits::MAX_POSTS_PER_AUTHOR`] each), of their followed hashtags, and
    /// the posts their connections engaged with, each once, visible to them and not their own.
    /// `None` when the member has no profile.
    pub fn gather(&self, member_id: &str, as_of: i64) -> Option<Gathered> {
        let me = self.lookup(member_id)?;
        let member = &self.members[me as usize];
        member.display_name.as_ref()?;
        let since = as_of - self.window;
        let mut out = Gathered::default();

        // Authors: connections and followed members, newest posts first.
        let mut authors: Vec<MemberKey> = member
            .connections
            .iter()
            .chain(member.following.iter())
            .copied()
            .filter(|a| *a != me)
            .collect();
        authors.sort_unstable();
        authors.dedup();
        authors.truncate(limits::MAX_AUTHORS);
        let mut recent: Vec<(i64, PostKey)> = Vec::new();
        for a in &authors {
            recent.extend(self.members[*a as usize].posts.newest(
                since,
                as_of,
                limits::MAX_POSTS_PER_AUTHOR as usize,
            ));
        }
        for tag in member.hashtags.iter().take(limits::MAX_HASHTAGS) {
            if let Some(posts) = self.by_hashtag.get(tag) {
                recent.extend(posts.newest(since, as_of, limits::MAX_RECENT_POSTS as usize));
            }
        }
        // The newest first, each once, cut to the cap.
        recent.sort_unstable_by(|a, b| b.cmp(a));
        recent.dedup();
        out.considered = recent.len();
        recent.truncate(limits::MAX_RECENT_POSTS as usize);
        let mut candidates: Vec<Candidate> = Vec::with_capacity(recent.len() + 64);
        let mut chosen: HashMap<PostKey, usize> = HashMap::default();
        chosen.reserve(recent.len() + 64);
        // A first, tight pass over the posts' slots lets the processor fetch them in parallel
        // (each is a cache miss at scale); the pass below then finds them in cache.
        let touched = recent.iter().fold(0i64, |acc, (_, key)| {
            acc.wrapping_add(self.post(*key).map_or(0, |p| {
                p.counts.reactions[0]
                    ^ p.counts.shares
                    ^ p.meta.as_ref().map_or(0, |m| m.create_time)
            }))
        });
        std::hint::black_box(touched);
        for (_, key) in recent {
            if let Some(c) = self.candidate(me, key, since, as_of) {
                chosen.insert(key, candidates.len());
                candidates.push(c);
            }
        }

        // Social proof: what connections did within the window, newest first overall.
        let mut activity: Vec<(i64, &Activity, MemberKey)> = Vec::new();
        for c in &member.connections {
            // A muted member's engagement brings nothing either.
            if member.muted_authors.contains(c) {
                continue;
            }
            for a in self.members[*c as usize].activity.iter().rev() {
                if a.time < since {
                    break;
                }
                if a.time <= as_of {
                    activity.push((a.time, a, *c));
                }
            }
        }
        let cap = limits::MAX_ACTIVITIES as usize;
        if activity.len() > cap {
            activity.select_nth_unstable_by_key(cap - 1, |a| std::cmp::Reverse(a.0));
            activity.truncate(cap);
        }
        for (_, a, by) in activity {
            let hinted = a
                .slot
                .filter(|k| self.post(*k).is_some_and(|p| Arc::ptr_eq(&p.id, &a.post)));
            let Some(key) = hinted.or_else(|| self.post_key(&a.post)) else {
                continue;
            };
            let at = match chosen.get(&key) {
                Some(at) => *at,
                None => match self.candidate(me, key, since, as_of) {
                    Some(c) => {
                        chosen.insert(key, candidates.len());
                        candidates.push(c);
                        candidates.len() - 1
                    }
                    None => continue,
                },
            };
            candidates[at].engaged.push((a.kind, by));
        }
        // The member's own past: what they engaged with and were shown, to learn from and to
        // mark the candidates (seen, engaged).
        let mut mine: HashMap<PostKey, usize> = HashMap::default();
        let mut history: Vec<HistoryEvent> = Vec::new();
        for a in &member.activity {
            let hinted = a
                .slot
                .filter(|k| self.post(*k).is_some_and(|p| Arc::ptr_eq(&p.id, &a.post)));
            let Some(key) = hinted.or_else(|| self.post_key(&a.post)) else {
                continue;
            };
            if let Some(at) = self.remember(&mut mine, &mut history, key, Some(a.time)) {
                history[at].mark(a.kind);
            }
        }
        for id in &member.seen {
            if let Some(key) = self.post_key(id) {
                self.remember(&mut mine, &mut history, key, None);
            }
        }
        for (id, at) in &member.hidden {
            if let Some(key) = self.post_key(id) {
                if let Some(h) = self.remember(&mut mine, &mut history, key, Some(*at)) {
                    history[h].hidden = true;
                }
            }
        }
        for c in &mut candidates {
            c.normalize_engaged();
            let key = c.post as PostKey;
            if let Some(at) = mine.get(&key) {
                let h = &history[*at];
                c.seen = true;
                c.engaged_by_viewer = h.reacted || h.commented || h.shared;
            }
        }
        out.history = history;
        out.candidates = candidates;
        Some(out)
    }

    /// The entry of `key` in the member's history (added when new, at `time` or the post's
    /// creation); `None` for a post that is gone.
    fn remember(
        &self,
        mine: &mut HashMap<PostKey, usize>,
        history: &mut Vec<HistoryEvent>,
        key: PostKey,
        time: Option<i64>,
    ) -> Option<usize> {
        if let Some(at) = mine.get(&key) {
            return Some(*at);
        }
        let meta = self.post(key)?.meta.as_ref()?;
        history.push(HistoryEvent {
            author: meta.author,
            tags: meta.ranked_tags,
            time: time.unwrap_or(meta.create_time),
            reacted: false,
            commented: false,
            shared: false,
            hidden: false,
        });
        mine.insert(key, history.len() - 1);
        Some(history.len() - 1)
    }

    /// The post as a candidate for `me`, unless `me` may not see it, wrote it, hid it, muted
    /// its author or a hashtag of it, or it is outside `[since, as_of]`.
    fn candidate(&self, me: MemberKey, key: PostKey, since: i64, as_of: i64) -> Option<Candidate> {
        let post = self.post(key)?;
        let meta = post.meta.as_ref()?;
        if meta.author == me || meta.create_time < since || meta.create_time > as_of {
            return None;
        }
        let member = &self.members[me as usize];
        if member.mutes(meta.author, &meta.hashtags)
            || (!member.hidden.is_empty() && member.hidden.contains_key(&post.id))
        {
            return None;
        }
        let connected = member.connections.contains(&meta.author);
        let relation = Relation {
            connected,
            blocked: self.blocked_either_way(me, meta.author),
        };
        // `me` is not the author (checked above by key).
        if !is_visible_to_another(meta.visibility, relation) {
            return None;
        }
        let author_relation = if connected {
            AuthorRelation::Connection
        } else if member.following.contains(&meta.author) {
            AuthorRelation::Followed
        } else {
            AuthorRelation::Other
        };
        let matched_hashtags = if member.hashtags.is_empty() {
            Vec::new()
        } else {
            meta.hashtags
                .iter()
                .filter(|t| member.hashtags.contains(*t))
                .copied()
                .collect()
        };
        Some(Candidate {
            post: Self::candidate_key(key, post),
            author: meta.author,
            create_time: meta.create_time,
            relation: author_relation,
            tags: meta.ranked_tags,
            matched_hashtags,
            engaged: Vec::new(),
            counts: post.counts,
            seen: false,
            engaged_by_viewer: false,
        })
    }
}

impl FeedIndex {
    /// Why `post_id` is not among the member's candidates as of `as_of` (call it for a post
    /// [`FeedIndex::gather`] left out); `None` when the member has no profile.
    pub fn why_not_gathered(
        &self,
        member_id: &str,
        post_id: &str,
        as_of: i64,
    ) -> Option<NotGathered> {
        let me = self.lookup(member_id)?;
        let member = &self.members[me as usize];
        member.display_name.as_ref()?;
        let since = as_of - self.window;
        let Some((_key, meta)) = self
            .post_key(post_id)
            .and_then(|k| Some((k, self.post(k)?.meta.as_ref()?)))
        else {
            return Some(NotGathered::UnknownPost);
        };
        if meta.create_time < since || meta.create_time > as_of {
            return Some(NotGathered::UnknownPost);
        }
        if meta.author == me {
            return Some(NotGathered::OwnPost);
        }
        if self.blocked_either_way(me, meta.author) {
            return Some(NotGathered::Blocked);
        }
        if member.hidden.contains_key(post_id) {
            return Some(NotGathered::Hidden);
        }
        if member.muted_authors.contains(&meta.author) {
            return Some(NotGathered::MutedAuthor);
        }
        if member.mutes(meta.author, &meta.hashtags) {
            return Some(NotGathered::MutedHashtag);
        }
        let connected = member.connections.contains(&meta.author);
        let relation = Relation {
            connected,
            blocked: false,
        };
        if !is_visible_to_another(meta.visibility, relation) {
            return Some(NotGathered::NotVisible);
        }
        let by_author = connected || member.following.contains(&meta.author);
        let by_tag = meta.hashtags.iter().any(|t| member.hashtags.contains(t));
        let by_engagement = member.connections.iter().any(|c| {
            !member.muted_authors.contains(c)
                && self.members[*c as usize]
                    .activity
                    .iter()
                    .any(|a| a.time >= since && &*a.post == post_id)
        });
        Some(if by_author || by_tag || by_engagement {
            NotGathered::SourceCap
        } else {
            NotGathered::NotInNetwork
        })
    }
}
