//! What both backends share of a state export: the queries (each streamed in its table's key
//! order, so nothing is sorted or held in memory) and turning their rows into events.
//!
//! Impressions are stored as one row per (post, member, UTC day) (`impressions`: what
//! `impression_count` counts) and one row per (member, post) first shown (`post_viewers`: what
//! `unique_viewer_count` counts). The export walks `post_viewers` in key order and counts each
//! pair's impression rows, so a member's posts come together: per member, `ImpressionsRecorded`
//! lists each post once per impression row (once per day it was shown) and, as first views, the
//! posts whose `post_viewers` row falls in the export. Summing a post's occurrences in
//! `post_ids` and in `first_view_post_ids` over all events gives its impression and unique viewer
//! counts (of the window, with `since`).

use pronet_common::events::{ExportError, ExportSink};

use super::reaction_type_from;
use crate::domain::{CommentRecord, Mute, MuteKind, ReactionRecord, ShareRecord};
use crate::events;

/// Every reaction created at or after `?`, by post then member.
pub(super) const REACTIONS_SQL: &str = "SELECT post_id, member_id, \
    CAST(reaction_type AS BIGINT), create_time, update_time FROM reactions \
    WHERE create_time >= ? ORDER BY post_id, member_id";

/// Every comment created at or after `?`, by id.
pub(super) const COMMENTS_SQL: &str = "SELECT id, post_id, member_id, parent_id, create_time \
    FROM comments WHERE create_time >= ? ORDER BY id";

/// Every share created at or after `?`, by post then member.
pub(super) const SHARES_SQL: &str = "SELECT id, post_id, member_id, create_time FROM shares \
    WHERE create_time >= ? ORDER BY post_id, member_id";

/// Per (member, post) shown at or after `?` (the first bind): its impression rows then, when
/// it was last shown, and when first shown ever; by member then post. Every impression has its
/// pair's `post_viewers` row (the first impression of a pair writes it), so none is missed.
pub(super) const IMPRESSIONS_SQL: &str = "SELECT v.member_id, v.post_id, v.first_time, \
    CAST(COUNT(*) AS BIGINT), MAX(i.create_time) \
    FROM post_viewers v JOIN impressions i ON i.post_id = v.post_id \
    AND i.member_id = v.member_id AND i.create_time >= ? \
    GROUP BY v.member_id, v.post_id, v.first_time ORDER BY v.member_id, v.post_id";

/// Every mute, by member, kind and target: hidden posts only when hidden at or after `?`.
pub(super) const MUTES_SQL: &str = "SELECT member_id, CAST(kind AS BIGINT), target, create_time \
    FROM feed_mutes WHERE kind <> 1 OR create_time >= ? ORDER BY member_id, kind, target";

/// Post ids per exported `ImpressionsRecorded`: a member shown many posts gets several events,
/// so no export message grows past what a reader accepts.
const MAX_IMPRESSION_POSTS: usize = 1000;

pub(super) type ReactionRow = (String, String, i64, i64, i64);
pub(super) type CommentRow = (String, String, String, Option<String>, i64);
pub(super) type ShareRow = (String, String, String, i64);
pub(super) type ImpressionRow = (String, String, i64, i64, i64);
pub(super) type MuteRow = (String, i64, String, i64);

/// The lower bound bound for `since`: everything when unset.
pub(super) fn lower_bound(since: Option<i64>) -> i64 {
    since.unwrap_or(i64::MIN)
}

fn corrupt(e: impl std::fmt::Display) -> ExportError {
    ExportError::Store(e.to_string())
}

pub(super) async fn push_reaction(
    sink: &mut ExportSink,
    row: ReactionRow,
) -> Result<(), ExportError> {
    let (post_id, member_id, reaction_type, create_time, update_time) = row;
    let reaction = ReactionRecord {
        post_id,
        member_id,
        reaction_type: reaction_type_from(reaction_type).map_err(corrupt)?,
        create_time,
    };
    sink.push(update_time, events::reaction_set(&reaction, None))
        .await?;
    Ok(())
}

pub(super) async fn push_mute(sink: &mut ExportSink, row: MuteRow) -> Result<(), ExportError> {
    let (member_id, kind, target, create_time) = row;
    let kind = MuteKind::from_number(kind).ok_or_else(|| corrupt(format!("mute kind {kind}")))?;
    let mute = Mute::new(kind, target);
    sink.push(create_time, events::muted(&member_id, &mute, create_time))
        .await?;
    Ok(())
}

pub(super) async fn push_comment(
    sink: &mut ExportSink,
    row: CommentRow,
) -> Result<(), ExportError> {
    let (id, post_id, member_id, parent_id, create_time) = row;
    let mut comment = CommentRecord::new(id, post_id, member_id, String::new(), create_time);
    comment.parent_id = parent_id;
    sink.push(create_time, events::comment_created(&comment))
        .await?;
    Ok(())
}

pub(super) async fn push_share(sink: &mut ExportSink, row: ShareRow) -> Result<(), ExportError> {
    let (id, post_id, member_id, create_time) = row;
    let share = ShareRecord {
        id,
        post_id,
        member_id,
        create_time,
    };
    sink.push(create_time, events::share_recorded(&share))
        .await?;
    Ok(())
}

/// Gathers a member's impression rows (which come member by member) into their events.
#[derive(Debug, Default)]
pub(super) struct ImpressionGroups {
    member_id: String,
    post_ids: Vec<String>,
    first_views: Vec<String>,
    /// When each of `post_ids` was last shown to the member.
    view_times: Vec<i64>,
    /// When the latest of the gathered impressions was recorded.
    last_time: Option<i64>,
}

impl ImpressionGroups {
    /// Adds one (member, post) row, sending the event gathered before when the member changes
    /// or it lists enough posts.
    pub async fn add(
        &mut self,
        sink: &mut ExportSink,
        since: i64,
        row: ImpressionRow,
    ) -> Result<(), ExportError> {
        let (member_id, post_id, first_time, shown, last_time) = row;
        if member_id != self.member_id {
            self.flush(sink).await?;
            self.member_id = member_id;
        }
        // The join makes `shown` at least 1; the first view goes with the first of them.
        let mut first_view = first_time >= since;
        for _ in 0..shown.max(1) {
            if self.post_ids.len() >= MAX_IMPRESSION_POSTS {
                self.flush(sink).await?;
            }
            if first_view {
                self.first_views.push(post_id.clone());
                first_view = false;
            }
            self.post_ids.push(post_id.clone());
            self.view_times.push(last_time);
            self.last_time = Some(self.last_time.map_or(last_time, |t| t.max(last_time)));
        }
        Ok(())
    }

    /// Sends the event gathered so far, if any.
    pub async fn flush(&mut self, sink: &mut ExportSink) -> Result<(), ExportError> {
        if self.post_ids.is_empty() {
            return Ok(());
        }
        let post_ids = std::mem::take(&mut self.post_ids);
        let first_views = std::mem::take(&mut self.first_views);
        let view_times = std::mem::take(&mut self.view_times);
        let time = self.last_time.take().unwrap_or_default();
        sink.push(
            time,
            events::impressions_recorded_at(&self.member_id, post_ids, first_views, view_times),
        )
        .await?;
        Ok(())
    }
}
