//! The index in a canonical form, to compare indexes built different ways (tests, tools): all
//! the state that gathering, ranking and explanations read, with interned keys replaced by ids
//! and names and every collection sorted.
//!
//! [`FeedIndex::view`] destructures each record field by field, so a field added to the index
//! does not compile until the view either shows it or says why it leaves it out.

use std::collections::{BTreeMap, BTreeSet};

use super::timeline::TimeList;
use super::{
    Activity, EngagementKind, FeedIndex, HashSet, Member, MemberKey, Post, PostCounts, PostKey,
    PostMeta, Visibility,
};

/// The index in a canonical form (ids instead of keys, everything sorted), to compare two
/// indexes built different ways (streamed from the start, exported midway, loaded from a file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexView {
    /// Per member with any state.
    pub members: BTreeMap<String, MemberView>,
    /// Per post of the window, and per stub (counts waiting for their post).
    pub posts: BTreeMap<String, PostView>,
    /// Per hashtag, its posts of the window `(create_time, post)`, oldest first.
    pub hashtag_timelines: BTreeMap<String, Vec<(i64, String)>>,
    /// Posts deleted within the window (their late engagement is dropped). Without when: the
    /// stream stamps a deletion with its event's time, an export with the post's delete time,
    /// taken a moment before the event's, and only eviction reads it (a window later).
    pub deleted: BTreeSet<String>,
    /// The applied sequence of profile, post and engagement. Two indexes agree on it only once
    /// both have applied every event committed (a replica that joined midway starts from an
    /// export's position, then streams to the same heads).
    pub positions: [i64; 3],
    /// Ids whose lookup does not lead to their own entry (a member or post key map out of step
    /// with the entries): always empty in a sound index.
    pub broken_lookups: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    pub display_name: Option<String>,
    pub connections: BTreeSet<String>,
    pub following: BTreeSet<String>,
    pub hashtags: BTreeSet<String>,
    pub blocking: BTreeSet<String>,
    pub blocked_by: BTreeSet<String>,
    /// Their posts of the window `(create_time, post)`, oldest first (ties by id).
    pub posts: Vec<(i64, String)>,
    /// Their engagement `(post, kind, time)`, sorted.
    pub activity: Vec<(String, EngagementKind, i64)>,
    /// Posts shown to them, one entry per impression counted, sorted: an export lists them by
    /// post, the stream by time, and gathering reads them as a set (seen or not; the history
    /// entry it makes is timed by the post, not by the impression).
    pub seen: Vec<String>,
    /// Hidden posts with when.
    pub hidden: BTreeMap<String, i64>,
    pub muted_hashtags: BTreeSet<String>,
    pub muted_authors: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostView {
    /// `None` (like the time and visibility) for a stub.
    pub author: Option<String>,
    pub create_time: Option<i64>,
    pub visibility: Option<Visibility>,
    pub hashtags: Vec<String>,
    /// The hashtags ranking reads (the first few, kept inline).
    pub ranked_hashtags: Vec<String>,
    pub counts: PostCounts,
}

impl FeedIndex {
    /// The canonical form of the index.
    pub fn view(&self) -> IndexView {
        let FeedIndex {
            members,
            posts: _, // read through `self.posts()`, below
            post_keys,
            by_hashtag,
            tag_names: _, // names replace tag keys throughout
            // Hashes of the ids, derived from them.
            tag_hashes: _,
            member_hashes: _,
            post_hashes: _,
            deleted,
            positions,
            // Lookups: checked entry by entry below.
            keys,
            // Bookkeeping of slots, not state: which slot and generation a post got depends on
            // the order it arrived in.
            free_posts: _,
            generations: _,
            tags: _,
            // Settings and counters of this replica, not of the sources' state.
            window: _,
            budget: _,
            over_budget_evictions: _,
            whole: _,
            exports: _,
            // What the ranking model learns from, in arrival order (an export's views carry
            // the last time of each, a stream's every one): not what ranks.
            log: _,
        } = self;
        let id = |k: &MemberKey| match members.get(*k as usize) {
            Some(m) => m.id.to_string(),
            None => format!("<member key {k}>"),
        };
        let ids = |set: &HashSet<MemberKey>| set.iter().map(id).collect::<BTreeSet<_>>();
        let post_name = |k: PostKey| match self.post(k) {
            Some(p) => p.id.to_string(),
            None => format!("<free post slot {k}>"),
        };
        // In time order; posts of the same microsecond in id order (the index keeps them in
        // the order they arrived, which differs between a stream and an export). A list out of
        // time order shows as such, so sorting here cannot hide it.
        let timeline = |list: &TimeList| {
            let mut entries = list
                .iter()
                .map(|(t, k)| (*t, post_name(*k)))
                .collect::<Vec<_>>();
            let in_order = entries.windows(2).all(|w| w[0].0 <= w[1].0);
            entries.sort();
            if !in_order {
                entries.insert(0, (i64::MIN, "<out of time order>".to_owned()));
            }
            entries
        };
        let mut view = IndexView {
            positions: *positions,
            ..IndexView::default()
        };
        for (key, m) in members.iter().enumerate() {
            let Member {
                id: member_id,
                display_name,
                connections,
                following,
                hashtags,
                blocking,
                blocked_by,
                posts,
                activity,
                seen,
                hidden,
                muted_tags,
                muted_authors,
            } = m;
            if keys.get(member_id) != Some(&(key as MemberKey)) {
                view.broken_lookups.insert(member_id.to_string());
            }
            let mut activity: Vec<(String, EngagementKind, i64)> = activity
                .iter()
                .map(|a| {
                    // The slot is a hint that gathering checks against the id before use.
                    let Activity {
                        post,
                        slot: _,
                        kind,
                        time,
                    } = a;
                    (post.to_string(), *kind, *time)
                })
                .collect();
            activity.sort();
            let mut seen: Vec<String> = seen.iter().map(|p| p.to_string()).collect();
            seen.sort();
            let member = MemberView {
                display_name: display_name.clone(),
                connections: ids(connections),
                following: ids(following),
                hashtags: self.tag_names_of(hashtags),
                blocking: ids(blocking),
                blocked_by: ids(blocked_by),
                posts: timeline(posts),
                activity,
                seen,
                hidden: hidden.iter().map(|(p, at)| (p.to_string(), *at)).collect(),
                muted_hashtags: self.tag_names_of(muted_tags),
                muted_authors: ids(muted_authors),
            };
            if member != MemberView::default() {
                view.members.insert(member_id.to_string(), member);
            }
        }
        for (key, p) in self.posts() {
            let Post {
                id: post_id,
                counts,
                meta,
                // Which post this is among those that held the slot: bookkeeping of the slot.
                generation: _,
                // When a stub was made, for dropping it if its post never comes: a stub is
                // made when its first count is heard, which differs by stream interleaving.
                stub_time: _,
            } = p;
            if post_keys.get(post_id) != Some(&key) {
                view.broken_lookups.insert(post_id.to_string());
            }
            let post = match meta {
                Some(meta) => {
                    let PostMeta {
                        author,
                        create_time,
                        visibility,
                        hashtags,
                        ranked_tags,
                    } = meta;
                    PostView {
                        author: Some(id(author)),
                        create_time: Some(*create_time),
                        visibility: Some(*visibility),
                        hashtags: self.tag_names_of(hashtags),
                        ranked_hashtags: self.tag_names_of(ranked_tags.as_slice()),
                        counts: *counts,
                    }
                }
                None => PostView {
                    author: None,
                    create_time: None,
                    visibility: None,
                    hashtags: Vec::new(),
                    ranked_hashtags: Vec::new(),
                    counts: *counts,
                },
            };
            view.posts.insert(post_id.to_string(), post);
        }
        for (id, key) in post_keys {
            if self.post(*key).is_none_or(|p| p.id != *id) {
                view.broken_lookups.insert(id.to_string());
            }
        }
        for (tag, list) in by_hashtag {
            view.hashtag_timelines
                .insert(self.tag_name(*tag).to_owned(), timeline(list));
        }
        view.deleted = deleted.keys().map(|p| p.to_string()).collect();
        view
    }
}
