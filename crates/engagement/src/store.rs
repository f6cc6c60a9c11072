//! The engagement store: what the service needs from its storage, whatever the backend.
//!
//! Both backends keep the same invariants: a post's counts change in the same transaction as
//! the rows they count, so they never drift from them, also under concurrent writers; a member
//! has at most one reaction and one share per post; a create request retried with the same
//! idempotency key creates nothing more.
//!
//! Every write that changes engagement appends its domain events ([`crate::events`]) to the
//! outbox as the last statement of its transaction, only for what actually changed.

mod export;
mod import;
pub mod postgres;
pub mod sqlite;
pub mod timed;

use async_trait::async_trait;
use pronet_common::events::EventSource;

use crate::domain::{
    ActivityRecord, CommentCursor, CommentListing, CommentOrder, CommentRecord, EngagementImport,
    IdempotencyKey, ImportCounts, Mute, MuteKind, PostStatsRecord, ReactionQuery, ReactionRecord,
    ReactionType, ShareRecord,
};
use crate::error::EngagementError;

pub type StoreResult<T> = Result<T, EngagementError>;

/// Its events ([`EventSource`]): the outbox its writes append to, and `export_state`:
/// Pushes the current engagement to `sink` as events, read in one consistent snapshot whose
/// outbox position is set first: a `ReactionSet` (no previous type) per reaction, a
/// `CommentCreated` per comment, a `ShareRecorded` per share, and per member
/// `ImpressionsRecorded` events listing each post once per day it was shown (an impression
/// row) and, as first views, the posts the member is a unique viewer of, then a
/// `PostHidden`, `HashtagMuted` or `AuthorMuted` per mute. With `since` (microseconds), only
/// what was created (impressions: shown, viewers: first shown, posts: hidden) at or after
/// it; muted hashtags and authors always.
#[async_trait]
pub trait EngagementStore: EventSource {
    /// Sets a member's reaction to a post and its counts, in one transaction. Reacting again
    /// with another type changes the type (and moves the count); with the same type it changes
    /// nothing. Returns the reaction, created when the member first reacted.
    async fn react(
        &self,
        post_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<ReactionRecord>;

    /// Removes a member's reaction to a post and its count, in one transaction. Whether there
    /// was one.
    async fn unreact(&self, post_id: &str, member_id: &str) -> StoreResult<bool>;

    /// Stores a comment and counts it (on the post, and on its parent for a reply), in one
    /// transaction. A reply's `parent_id` must name a comment of the same post, else
    /// `NotFound("comment")`; a reply to a reply answers that reply's top-level comment. With a
    /// `key` already used, returns the comment its first request created and stores nothing,
    /// also when the two race.
    async fn create_comment(
        &self,
        comment: CommentRecord,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<CommentRecord>;

    /// A comment with its counts.
    async fn get_comment(&self, comment_id: &str) -> StoreResult<Option<CommentRecord>>;

    /// Sets a comment's text and its update time; `NotFound("comment")` if it is gone.
    async fn update_comment_text(
        &self,
        comment_id: &str,
        text: &str,
        now: i64,
    ) -> StoreResult<CommentRecord>;

    /// Deletes a comment, with its replies (for a top-level comment) and the reactions to all of
    /// them, and takes them off every count, in one transaction; `NotFound("comment")` if it is
    /// gone. Returns how many comments were deleted.
    async fn delete_comment(&self, comment_id: &str) -> StoreResult<u64>;

    /// Sets a member's reaction to a comment and the comment's counts, in one transaction (a
    /// type change moves the count); `NotFound("comment")` if it is gone.
    async fn react_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
        reaction_type: ReactionType,
        now: i64,
    ) -> StoreResult<CommentRecord>;

    /// Removes a member's reaction to a comment and its count (no-op if none);
    /// `NotFound("comment")` if the comment is gone.
    async fn unreact_to_comment(
        &self,
        comment_id: &str,
        member_id: &str,
    ) -> StoreResult<CommentRecord>;

    /// At most `limit` comments of a post after `after`: top-level ones in the given order, or
    /// the replies to one comment oldest first (ties by id).
    async fn list_comments(
        &self,
        post_id: &str,
        listing: &CommentListing,
        after: Option<&CommentCursor>,
        limit: usize,
    ) -> StoreResult<Vec<CommentRecord>>;

    /// Reactions to a post as `query` says, newest first, ties by member id descending.
    async fn list_reactions(&self, query: &ReactionQuery) -> StoreResult<Vec<ReactionRecord>>;

    /// Records that `member_id` was shown `post_ids` (distinct) on UTC `day`: each new
    /// (post, member, day) adds an impression, each first ever (post, member) a unique viewer,
    /// in the same transaction. Returns how many impressions were new.
    async fn record_impressions(
        &self,
        member_id: &str,
        post_ids: &[String],
        day: i64,
        now: i64,
    ) -> StoreResult<usize>;

    /// The posts among `post_ids` that `member_id` was ever shown, in request order.
    async fn list_seen_posts(
        &self,
        member_id: &str,
        post_ids: &[String],
    ) -> StoreResult<Vec<String>>;

    /// Records a share and counts it, in one transaction; a repeat by the same member returns
    /// the first share unchanged and is not counted again.
    async fn record_share(&self, share: ShareRecord) -> StoreResult<ShareRecord>;

    /// Stats of every post in `post_ids`, in the same order; posts without engagement (or
    /// unknown ones) get zeros.
    async fn batch_get_post_stats(&self, post_ids: &[String]) -> StoreResult<Vec<PostStatsRecord>>;

    /// Imports a batch in one transaction (PostgreSQL: multi-row statements; SQLite: cached
    /// single-row statements on the writer thread) and one counts upsert per post, leaving every count exactly as the one-by-one writes would: reactions are applied
    /// in order as `react` applies them (a new one or a changed type is written, the same type
    /// again skipped); a comment whose id exists is skipped; a share whose (post, member) or id
    /// exists is skipped; an impression counts once per (post, member, UTC day of its time),
    /// the first ever of a (post, member) also as a unique viewer. Repeats within the batch are
    /// skipped likewise.
    async fn import_engagement(&self, batch: EngagementImport) -> StoreResult<ImportCounts>;

    /// Reactions, comments and shares by `member_ids` created at or after `since`, newest
    /// first, at most `limit`.
    async fn list_recent_activity(
        &self,
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<Vec<ActivityRecord>>;

    /// Records a member's mute (a hidden post, a muted hashtag or author) with its event, in
    /// one transaction. A repeat changes nothing and returns when the mute was first made; a
    /// new hashtag or author mute past its kind's cap is `LimitReached`, also under racing
    /// requests of the member.
    async fn mute(&self, member_id: &str, mute: &Mute, now: i64) -> StoreResult<i64>;

    /// Takes back a mute with its event, in one transaction; whether there was one.
    async fn unmute(&self, member_id: &str, mute: &Mute) -> StoreResult<bool>;

    /// The member's mutes of `kind` (their targets), newest first, at most `limit`.
    async fn list_mutes(
        &self,
        member_id: &str,
        kind: MuteKind,
        limit: usize,
    ) -> StoreResult<Vec<String>>;

    // Test support: what the store suite needs to look behind the API, on either backend.

    /// Every stored `post_stats` row.
    #[cfg(test)]
    async fn stored_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;

    /// The counts of every post with rows, counted from the rows.
    #[cfg(test)]
    async fn counted_stats(&self) -> StoreResult<Vec<PostStatsRecord>>;

    /// Inserts many rows in large transactions, bypassing the per-write path, then sets the
    /// counts of the posts they touch from their rows. For the bench's seed.
    #[cfg(test)]
    async fn bulk_load(
        &self,
        reactions: &[ReactionRecord],
        comments: &[CommentRecord],
        shares: &[ShareRecord],
    ) -> StoreResult<()>;

    /// Ids of comments whose stored reply or reaction counts differ from their rows, and of
    /// rows left behind by a deleted comment (replies, reactions).
    #[cfg(test)]
    async fn comment_count_drift(&self) -> StoreResult<Vec<String>>;

    /// Refreshes the planner's statistics.
    #[cfg(test)]
    async fn analyze(&self) -> StoreResult<()>;

    /// The plans of the statements `batch_get_post_stats` and `list_recent_activity` run for
    /// these arguments, as the backend explains them (executing them where it can).
    #[cfg(test)]
    async fn explain_hot_queries(
        &self,
        post_ids: &[String],
        member_ids: &[String],
        since: i64,
        limit: usize,
    ) -> StoreResult<HotQueryPlans>;
}

/// How the backend runs the hot read queries.
#[cfg(test)]
#[derive(Debug, Clone)]
pub struct HotQueryPlans {
    pub backend: &'static str,
    pub post_stats: String,
    pub recent_activity: String,
}

/// The events of deleting `comment` with its `replies` (id, author, create time; empty for a
/// reply): the comment first, then each reply.
fn deleted_comment_events(
    comment: &CommentRecord,
    replies: &[(String, String, i64)],
) -> Vec<pronet_common::outbox::NewEvent> {
    let now = pronet_common::time::now_micros();
    std::iter::once((&comment.id, &comment.member_id))
        .chain(replies.iter().map(|(id, member_id, _)| (id, member_id)))
        .map(|(id, member_id)| {
            crate::events::at(
                now,
                crate::events::comment_deleted(id, &comment.post_id, member_id),
            )
        })
        .collect()
}

/// The `post_stats` column counting a reaction type.
fn count_column(reaction_type: ReactionType) -> &'static str {
    match reaction_type {
        ReactionType::Like => "like_count",
        ReactionType::Celebrate => "celebrate_count",
        ReactionType::Support => "support_count",
        ReactionType::Love => "love_count",
        ReactionType::Insightful => "insightful_count",
        ReactionType::Funny => "funny_count",
    }
}

const COMMENT_COUNT: &str = "comment_count";
const SHARE_COUNT: &str = "share_count";
const IMPRESSION_COUNT: &str = "impression_count";
const UNIQUE_VIEWER_COUNT: &str = "unique_viewer_count";

/// The columns of a comment, in the order both backends select them.
const COMMENT_COLUMNS: &str = "id, post_id, member_id, text, create_time, parent_id, \
    update_time, reply_count, like_count, celebrate_count, support_count, love_count, \
    insightful_count, funny_count";

/// Comments whose counts drifted from their rows, and orphans; the same SQL on both backends.
#[cfg(test)]
const COMMENT_DRIFT: &str = "SELECT c.id FROM comments c WHERE \
    c.reply_count <> (SELECT COUNT(*) FROM comments r WHERE r.parent_id = c.id) \
    OR c.total_reactions <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id) \
    OR c.like_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 1) \
    OR c.celebrate_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 2) \
    OR c.support_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 3) \
    OR c.love_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 4) \
    OR c.insightful_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 5) \
    OR c.funny_count <> (SELECT COUNT(*) FROM comment_reactions x WHERE x.comment_id = c.id AND x.reaction_type = 6) \
    UNION ALL SELECT r.id FROM comments r WHERE r.parent_id IS NOT NULL \
        AND NOT EXISTS (SELECT 1 FROM comments p WHERE p.id = r.parent_id) \
    UNION ALL SELECT x.comment_id FROM comment_reactions x \
        WHERE NOT EXISTS (SELECT 1 FROM comments c WHERE c.id = x.comment_id)";

/// When a member made a mute (`?`: member, kind, target); the same SQL on both backends.
const MUTE_TIME_SQL: &str =
    "SELECT create_time FROM feed_mutes WHERE member_id = ? AND kind = ? AND target = ?";
/// How many mutes of a kind a member holds (`?`: member, kind).
const MUTE_COUNT_SQL: &str = "SELECT COUNT(*) FROM feed_mutes WHERE member_id = ? AND kind = ?";
const MUTE_INSERT_SQL: &str =
    "INSERT INTO feed_mutes (member_id, kind, target, create_time) VALUES (?, ?, ?, ?)";
const MUTE_DELETE_SQL: &str =
    "DELETE FROM feed_mutes WHERE member_id = ? AND kind = ? AND target = ?";
/// A member's mutes of a kind, newest first (`?`: member, kind, limit).
const MUTE_LIST_SQL: &str = "SELECT target FROM feed_mutes WHERE member_id = ? AND kind = ? \
    ORDER BY create_time DESC, target LIMIT ?";

/// The error of a mute past its kind's cap.
fn mute_limit_reached(kind: MuteKind, cap: usize) -> EngagementError {
    EngagementError::LimitReached(format!(
        "the member already has {cap} {}; take one back first",
        kind.noun()
    ))
}

/// Activity kinds as numbered in the recent-activity query.
const KIND_REACTION: i64 = 1;
const KIND_COMMENT: i64 = 2;
const KIND_SHARE: i64 = 3;

/// The SQL listing comments, with `?` placeholders bound in this order: the post id, the parent
/// id (replies only), the cursor (most relevant: score, score, time, time, id; otherwise time,
/// time, id), the limit.
fn list_comments_sql(listing: &CommentListing, after: bool) -> String {
    const SCORE: &str = "(reply_count + total_reactions)";
    let (filter, cursor, order) = match listing {
        CommentListing::TopLevel(CommentOrder::MostRelevant) => (
            "parent_id IS NULL",
            format!(
                "({SCORE} < ? OR ({SCORE} = ? AND (create_time < ? OR (create_time = ? AND id < ?))))"
            ),
            format!("{SCORE} DESC, create_time DESC, id DESC"),
        ),
        CommentListing::TopLevel(CommentOrder::Newest) => (
            "parent_id IS NULL",
            "(create_time < ? OR (create_time = ? AND id < ?))".to_owned(),
            "create_time DESC, id DESC".to_owned(),
        ),
        CommentListing::Replies(_) => (
            "parent_id = ?",
            "(create_time > ? OR (create_time = ? AND id > ?))".to_owned(),
            "create_time, id".to_owned(),
        ),
    };
    let cursor = if after {
        format!(" AND {cursor}")
    } else {
        String::new()
    };
    format!(
        "SELECT {COMMENT_COLUMNS} FROM comments WHERE post_id = ? AND {filter}{cursor} \
         ORDER BY {order} LIMIT ?"
    )
}

/// The cursor values of [`list_comments_sql`], in binding order.
fn comment_cursor_binds(listing: &CommentListing, after: &CommentCursor) -> Vec<CursorValue> {
    let time = [
        CursorValue::Int(after.create_time),
        CursorValue::Int(after.create_time),
        CursorValue::Text(after.id.clone()),
    ];
    match listing {
        CommentListing::TopLevel(CommentOrder::MostRelevant) => {
            let mut binds = vec![CursorValue::Int(after.score), CursorValue::Int(after.score)];
            binds.extend(time);
            binds
        }
        _ => time.into(),
    }
}

enum CursorValue {
    Int(i64),
    Text(String),
}

use pronet_common::db::numbered;

fn reaction_type_from(n: i64) -> StoreResult<ReactionType> {
    ReactionType::from_number(n)
        .ok_or_else(|| EngagementError::Corrupt(format!("reaction type {n}")))
}

/// Every post's counts straight from its rows, in the columns of `post_stats`; the same SQL on
/// both backends.
#[cfg(test)]
const COUNTED_FROM_ROWS: &str = "SELECT post_id, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 1 THEN 1 ELSE 0 END) AS BIGINT) AS like_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 2 THEN 1 ELSE 0 END) AS BIGINT) AS celebrate_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 3 THEN 1 ELSE 0 END) AS BIGINT) AS support_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 4 THEN 1 ELSE 0 END) AS BIGINT) AS love_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 5 THEN 1 ELSE 0 END) AS BIGINT) AS insightful_count, \
    CAST(SUM(CASE WHEN kind = 1 AND reaction_type = 6 THEN 1 ELSE 0 END) AS BIGINT) AS funny_count, \
    CAST(SUM(CASE WHEN kind = 2 THEN 1 ELSE 0 END) AS BIGINT) AS comment_count, \
    CAST(SUM(CASE WHEN kind = 3 THEN 1 ELSE 0 END) AS BIGINT) AS share_count, \
    CAST(SUM(CASE WHEN kind = 4 THEN 1 ELSE 0 END) AS BIGINT) AS impression_count, \
    CAST(SUM(CASE WHEN kind = 5 THEN 1 ELSE 0 END) AS BIGINT) AS unique_viewer_count \
    FROM (SELECT post_id, 1 AS kind, reaction_type FROM reactions \
          UNION ALL SELECT post_id, 2, 0 FROM comments \
          UNION ALL SELECT post_id, 3, 0 FROM shares \
          UNION ALL SELECT post_id, 4, 0 FROM impressions \
          UNION ALL SELECT post_id, 5, 0 FROM post_viewers) AS engaged \
    GROUP BY post_id";

#[cfg(test)]
mod tests;
