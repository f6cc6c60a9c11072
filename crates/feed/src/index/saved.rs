//! The index as a file (`pronet.feed.v1.IndexSnapshotHeader` then chunks, length-delimited):
//! a replica that finds one in its data dir loads it and replays each source's events after
//! the saved positions, instead of exporting every source again.

use std::collections::BTreeSet;
use std::sync::Arc;

use pronet_common::time::{from_timestamp, to_timestamp};
use pronet_proto::feed::v1 as pb;
use prost::Message;

use super::{
    Activity, FeedIndex, MemberKey, Post, PostCounts, PostMeta, Source, MAX_ACTIVITY_PER_MEMBER,
};
use crate::domain::{EngagementKind, Visibility};

/// The file format's version.
pub const VERSION: u32 = 1;
const MEMBERS_PER_CHUNK: usize = 5_000;
const POSTS_PER_CHUNK: usize = 20_000;

/// What a saved index says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedInfo {
    /// When it was saved (microseconds since the epoch).
    pub saved_at: i64,
    pub members: usize,
    pub posts: usize,
}

fn kind_code(kind: EngagementKind) -> i32 {
    match kind {
        EngagementKind::Commented => 1,
        EngagementKind::Shared => 2,
        EngagementKind::Reacted => 3,
    }
}

fn kind_of(code: i32) -> Option<EngagementKind> {
    match code {
        1 => Some(EngagementKind::Commented),
        2 => Some(EngagementKind::Shared),
        3 => Some(EngagementKind::Reacted),
        _ => None,
    }
}

impl FeedIndex {
    /// The index as the bytes of a file, as of `now`; `None` while a source is half loaded
    /// (see [`FeedIndex::is_whole`]). Runs under the caller's read lock: about a second for a
    /// million posts, during which events wait.
    pub fn save(&self, now: i64) -> Option<Vec<u8>> {
        if !self.is_whole() {
            return None;
        }
        let mut out = Vec::with_capacity(self.stats().approx_bytes / 2);
        let header = pb::IndexSnapshotHeader {
            version: VERSION,
            create_time: Some(to_timestamp(now)),
            profile_position: self.position(Source::Profile),
            post_position: self.position(Source::Post),
            engagement_position: self.position(Source::Engagement),
            window_seconds: self.window / 1_000_000,
            member_count: self.members.len() as u64,
            post_count: self.posts().count() as u64,
        };
        header
            .encode_length_delimited(&mut out)
            .expect("a Vec grows");
        let mut chunk = pb::IndexSnapshotChunk::default();
        for (key, m) in self.members.iter().enumerate() {
            let key = key as MemberKey;
            let sorted = |set: &foldhash::HashSet<MemberKey>, above: bool| {
                let mut keys: Vec<u32> =
                    set.iter().copied().filter(|k| !above || *k > key).collect();
                keys.sort_unstable();
                keys
            };
            chunk.members.push(pb::SnapshotMember {
                member_id: m.id.to_string(),
                display_name: m.display_name.clone(),
                connections: sorted(&m.connections, true),
                following: sorted(&m.following, false),
                hashtags: self.tag_names_of(&m.hashtags),
                blocking: sorted(&m.blocking, false),
                activity: m
                    .activity
                    .iter()
                    .map(|a| pb::SnapshotActivity {
                        post_id: a.post.to_string(),
                        kind: kind_code(a.kind),
                        time: a.time,
                    })
                    .collect(),
                seen_post_ids: m.seen.iter().map(|p| p.to_string()).collect(),
                hidden: m
                    .hidden
                    .iter()
                    .map(|(p, at)| pb::SnapshotHidden {
                        post_id: p.to_string(),
                        hide_time: *at,
                    })
                    .collect(),
                muted_hashtags: m
                    .muted_tags
                    .iter()
                    .map(|t| self.tag_name(*t).to_owned())
                    .collect(),
                muted_authors: sorted(&m.muted_authors, false),
            });
            if chunk.members.len() >= MEMBERS_PER_CHUNK {
                flush(&mut chunk, &mut out);
            }
        }
        flush(&mut chunk, &mut out);
        for (_, p) in self.posts() {
            let meta = p.meta.as_ref();
            chunk.posts.push(pb::SnapshotPost {
                post_id: p.id.to_string(),
                known: meta.is_some(),
                author: meta.map_or(0, |m| m.author),
                create_time: meta.map_or(0, |m| m.create_time),
                visibility: meta.map_or(0, |m| m.visibility as i32),
                hashtags: meta
                    .map(|m| self.tag_names_of(&m.hashtags))
                    .unwrap_or_default(),
                reactions: p.counts.reactions.to_vec(),
                comments: p.counts.comments,
                shares: p.counts.shares,
                impressions: p.counts.impressions,
                unique_viewers: p.counts.unique_viewers,
                stub_time: p.stub_time,
            });
            if chunk.posts.len() >= POSTS_PER_CHUNK {
                flush(&mut chunk, &mut out);
            }
        }
        chunk.deleted_posts = self
            .deleted
            .iter()
            .map(|(id, at)| pb::SnapshotDeletedPost {
                post_id: id.to_string(),
                delete_time: *at,
            })
            .collect();
        chunk.end = true;
        flush(&mut chunk, &mut out);
        Some(out)
    }

    /// An index keeping `window_micros` loaded from a saved file, with its positions. Refuses
    /// (with why) a file of another version, cut short, or inconsistent.
    pub fn load(mut bytes: &[u8], window_micros: i64) -> Result<(Self, SavedInfo), String> {
        let header = pb::IndexSnapshotHeader::decode_length_delimited(&mut bytes)
            .map_err(|e| format!("unreadable header: {e}"))?;
        if header.version != VERSION {
            return Err(format!(
                "version {} (this build reads {VERSION})",
                header.version
            ));
        }
        let saved_at = header
            .create_time
            .as_ref()
            .and_then(|t| from_timestamp(t).ok())
            .ok_or("the header has no time")?;
        let mut index = FeedIndex::new(window_micros);
        let members = usize::try_from(header.member_count).map_err(|e| e.to_string())?;
        index.members.reserve(members.min(100_000_000));
        let mut ended = false;
        let mut loaded = 0usize;
        while !bytes.is_empty() && !ended {
            let chunk = pb::IndexSnapshotChunk::decode_length_delimited(&mut bytes)
                .map_err(|e| format!("unreadable chunk: {e}"))?;
            for m in chunk.members {
                if loaded >= members {
                    return Err(format!("more members than the header's {members}"));
                }
                index.load_member(loaded as MemberKey, members, m)?;
                loaded += 1;
            }
            for p in chunk.posts {
                index.load_post(p)?;
            }
            for d in chunk.deleted_posts {
                let id = index.shared_post_id(&d.post_id);
                index.deleted.insert(id, d.delete_time);
            }
            ended = chunk.end;
        }
        if !ended {
            return Err("the file was cut short".into());
        }
        if loaded != members || index.members.len() != members {
            return Err(format!("{loaded} members where the header says {members}"));
        }
        // Engagement was loaded before the posts: point it at their slots, sharing their ids
        // (the slot hint holds while the slot holds that very id).
        for m in 0..index.members.len() {
            let found: Vec<Option<(u32, Arc<str>)>> = index.members[m]
                .activity
                .iter()
                .map(|a| {
                    let k = index.post_key(&a.post)?;
                    Some((k, index.post(k)?.id.clone()))
                })
                .collect();
            for (a, found) in index.members[m].activity.iter_mut().zip(found) {
                if let Some((slot, id)) = found {
                    a.slot = Some(slot);
                    a.post = id;
                }
            }
        }
        index.positions = [
            header.profile_position,
            header.post_position,
            header.engagement_position,
        ];
        index.whole = [true; 3];
        let info = SavedInfo {
            saved_at,
            members,
            posts: index.posts().count(),
        };
        Ok((index, info))
    }

    /// Loads the member of key `key` (their position in the file) of `total`.
    fn load_member(
        &mut self,
        key: MemberKey,
        total: usize,
        m: pb::SnapshotMember,
    ) -> Result<(), String> {
        let id: Arc<str> = Arc::from(m.member_id);
        if self.keys.insert(id.clone(), key).is_some() {
            return Err(format!("member {id} appears twice"));
        }
        self.grow_to(key);
        self.members[key as usize].id = id;
        let known = |k: u32| {
            if (k as usize) < total {
                Ok(k)
            } else {
                Err(format!("an edge names member key {k} of {total}"))
            }
        };
        for other in m.connections {
            let other = known(other)?;
            self.grow_to(other);
            self.members[key as usize].connections.insert(other);
            self.members[other as usize].connections.insert(key);
        }
        for other in m.blocking {
            let other = known(other)?;
            self.grow_to(other);
            self.members[key as usize].blocking.insert(other);
            self.members[other as usize].blocked_by.insert(key);
        }
        let tags: BTreeSet<u32> = m.hashtags.iter().map(|t| self.tag(t)).collect();
        let muted_tags = m.muted_hashtags.iter().map(|t| self.tag(t)).collect();
        let member = &mut self.members[key as usize];
        member.muted_tags = muted_tags;
        member.muted_authors = m
            .muted_authors
            .into_iter()
            .map(known)
            .collect::<Result<_, _>>()?;
        member.hidden = m
            .hidden
            .into_iter()
            .map(|h| (Arc::from(h.post_id), h.hide_time))
            .collect();
        member.display_name = m.display_name;
        member.following = m
            .following
            .into_iter()
            .map(known)
            .collect::<Result<_, _>>()?;
        member.hashtags = tags;
        for a in m
            .activity
            .into_iter()
            .rev()
            .take(MAX_ACTIVITY_PER_MEMBER)
            .rev()
        {
            let Some(kind) = kind_of(a.kind) else {
                return Err(format!("engagement kind {} unknown", a.kind));
            };
            member.activity.push_back(Activity {
                post: Arc::from(a.post_id),
                slot: None,
                kind,
                time: a.time,
            });
        }
        member.seen = m.seen_post_ids.into_iter().map(Arc::from).collect();
        Ok(())
    }

    /// Members later in the file that an edge names already: placeholders their own entry
    /// fills (the key order is the file's).
    fn grow_to(&mut self, key: MemberKey) {
        // Placeholders are never looked up by id until their entry arrives and names them.
        while self.members.len() <= key as usize {
            self.members.push(Default::default());
        }
    }

    fn load_post(&mut self, p: pb::SnapshotPost) -> Result<(), String> {
        if self.post_key(&p.post_id).is_some() {
            return Err(format!("post {} appears twice", p.post_id));
        }
        let mut counts = PostCounts::default();
        for (slot, n) in counts.reactions.iter_mut().zip(&p.reactions) {
            *slot = *n;
        }
        counts.comments = p.comments;
        counts.shares = p.shares;
        counts.impressions = p.impressions;
        counts.unique_viewers = p.unique_viewers;
        let meta = if p.known {
            if p.author as usize >= self.members.len() {
                return Err(format!("post {} names author key {}", p.post_id, p.author));
            }
            let visibility = if p.visibility == Visibility::Public as i32 {
                Visibility::Public
            } else {
                Visibility::Connections
            };
            Some(PostMeta::new(
                p.author,
                p.create_time,
                visibility,
                p.hashtags.iter().map(|t| self.tag(t)).collect(),
            ))
        } else {
            None
        };
        let id: Arc<str> = Arc::from(p.post_id);
        let key = self.insert_post(Post {
            id,
            generation: 0,
            meta: meta.clone(),
            counts,
            stub_time: p.stub_time,
        });
        if let Some(meta) = meta {
            self.members[meta.author as usize]
                .posts
                .insert((meta.create_time, key));
            for tag in meta.hashtags {
                self.by_hashtag
                    .entry(tag)
                    .or_default()
                    .insert((meta.create_time, key));
            }
        }
        Ok(())
    }
}

fn flush(chunk: &mut pb::IndexSnapshotChunk, out: &mut Vec<u8>) {
    if chunk.members.is_empty() && chunk.posts.is_empty() && !chunk.end {
        return;
    }
    chunk.encode_length_delimited(out).expect("a Vec grows");
    *chunk = pb::IndexSnapshotChunk::default();
}
