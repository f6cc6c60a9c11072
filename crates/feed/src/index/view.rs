//! The index in a canonical form, to compare indexes built different ways (tests, tools).

use std::collections::{BTreeMap, BTreeSet};

use super::{EngagementKind, FeedIndex, HashSet, MemberKey, PostCounts, Visibility};

/// The index in a canonical form (ids instead of keys, everything sorted), to compare two
/// indexes built different ways (streamed from the start, or exported midway).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexView {
    /// Per member with any state: display name, connections, follows, hashtags, blocks,
    /// engagement `(post, kind, time)` sorted.
    pub members: std::collections::BTreeMap<String, MemberView>,
    /// Per post of the window: author, time, visibility, hashtags, counts.
    pub posts: std::collections::BTreeMap<String, PostView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberView {
    pub display_name: Option<String>,
    pub connections: BTreeSet<String>,
    pub following: BTreeSet<String>,
    pub hashtags: BTreeSet<String>,
    pub blocking: BTreeSet<String>,
    pub activity: Vec<(String, EngagementKind, i64)>,
    /// Hidden posts with when.
    pub hidden: BTreeMap<String, i64>,
    pub muted_hashtags: BTreeSet<String>,
    pub muted_authors: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostView {
    pub author: Option<String>,
    pub create_time: Option<i64>,
    pub visibility: Option<Visibility>,
    pub hashtags: Vec<String>,
    pub counts: PostCounts,
}

impl FeedIndex {
    /// The canonical form of the index.
    pub fn view(&self) -> IndexView {
        let id = |k: &MemberKey| self.members[*k as usize].id.to_string();
        let ids = |set: &HashSet<MemberKey>| set.iter().map(id).collect::<BTreeSet<_>>();
        let mut view = IndexView::default();
        for m in &self.members {
            let mut activity: Vec<(String, EngagementKind, i64)> = m
                .activity
                .iter()
                .map(|a| (a.post.to_string(), a.kind, a.time))
                .collect();
            activity.sort();
            let member = MemberView {
                display_name: m.display_name.clone(),
                connections: ids(&m.connections),
                following: ids(&m.following),
                hashtags: self.tag_names_of(&m.hashtags),
                blocking: ids(&m.blocking),
                activity,
                hidden: m
                    .hidden
                    .iter()
                    .map(|(p, at)| (p.to_string(), *at))
                    .collect(),
                muted_hashtags: m
                    .muted_tags
                    .iter()
                    .map(|t| self.tag_name(*t).to_owned())
                    .collect(),
                muted_authors: ids(&m.muted_authors),
            };
            if member != MemberView::default() {
                view.members.insert(m.id.to_string(), member);
            }
        }
        for (_, p) in self.posts() {
            let meta = p.meta.as_ref();
            let post = PostView {
                author: meta.map(|m| id(&m.author)),
                create_time: meta.map(|m| m.create_time),
                visibility: meta.map(|m| m.visibility),
                hashtags: meta
                    .map(|m| self.tag_names_of(&m.hashtags))
                    .unwrap_or_default(),
                counts: p.counts,
            };
            view.posts.insert(p.id.to_string(), post);
        }
        view
    }
}
