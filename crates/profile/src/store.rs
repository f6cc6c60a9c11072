//! The profile store: what the service needs from its storage, whatever the backend.
//!
//! Every multi-row invariant (an accepted invitation connects both ways exactly once, a block
//! removes what it forbids, an idempotency key names one created resource) holds on each
//! backend under concurrent writers; `tests` runs one suite against both.

pub mod postgres;
mod rows;
pub mod sqlite;
pub mod timed;

use async_trait::async_trait;
use pronet_common::events::EventSource;

use crate::domain::{
    ConnectionRecord, Cursor, DegreeRecord, FollowCursor, FollowTarget, FollowerRecord,
    FollowingRecord, IdempotencyKey, InvitationDirection, InvitationRecord, ProfileChanges,
    ProfileFields, ProfileRecord, RelationshipRecord, SearchDocument, SearchHit, SearchQuery,
    SuggestionInputs,
};
use crate::error::ProfileError;
use std::collections::HashMap;

pub type StoreResult<T> = Result<T, ProfileError>;

/// Rows an export reads per query: few queries for a big graph, little held at once.
const EXPORT_PAGE: i64 = 5000;

/// Its events ([`EventSource`]): the outbox its writes append to, and `export_state`:
/// The whole graph as events, read in one snapshot whose outbox position goes to `sink`
/// first: `ProfileCreated` for every profile, `ConnectionMade` once per connected pair,
/// `MemberFollowed` / `HashtagFollowed` for every follow and `MemberBlocked` for every
/// block, each at its record's creation time. `since` is ignored: a feed needs the whole
/// graph whatever its window.
#[async_trait]
pub trait ProfileStore: EventSource {
    /// Creates a profile; `ProfileExists` when `id` has one, else `HandleTaken` when the
    /// handle's key exists.
    ///
    /// With an idempotency key the key is recorded in the same transaction; when the key was
    /// already recorded (an earlier or a racing request with it succeeded), nothing is created
    /// and the profile it names is returned as it is now.
    async fn create_profile(
        &self,
        id: &str,
        fields: ProfileFields,
        now: i64,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<ProfileRecord>;

    /// A profile by member id. With a `viewer` (a member looking), a profile blocked either way
    /// with the viewer is `None`, exactly like a missing one; without, every profile is seen.
    async fn get_profile(
        &self,
        id: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>>;

    /// Looks a profile up by the lowercase handle key; `viewer` as in `get_profile`.
    async fn get_profile_by_handle(
        &self,
        handle_key: &str,
        viewer: Option<&str>,
    ) -> StoreResult<Option<ProfileRecord>>;

    /// The profiles among `ids` that exist and `viewer` may see (as in `get_profile`), in no
    /// particular order.
    async fn batch_get_profiles(
        &self,
        ids: &[String],
        viewer: Option<&str>,
    ) -> StoreResult<Vec<ProfileRecord>>;

    /// Applies `changes`; `NotFound` or `HandleTaken`.
    async fn update_profile(
        &self,
        id: &str,
        changes: ProfileChanges,
        now: i64,
    ) -> StoreResult<ProfileRecord>;

    /// Records a pending invitation. Both members must exist, not be connected, and have no
    /// pending invitation between them either way. A block either way answers
    /// `NotFound("invitee")`, exactly like a missing invitee.
    ///
    /// When the invitee already invited the inviter (still pending), that invitation is
    /// accepted instead, connecting the two in the same transaction, and returned ACCEPTED; an
    /// idempotency key then names it.
    ///
    /// An idempotency key works as in `create_profile`: a retry returns the invitation first
    /// created (in its current state, even accepted) and creates nothing. If a block has since
    /// removed it, the retry answers `NotFound("invitee")`, as a new invitation would.
    async fn create_invitation(
        &self,
        invitation: InvitationRecord,
        idempotency: Option<&IdempotencyKey>,
    ) -> StoreResult<InvitationRecord>;

    /// Accepts a pending invitation as `member_id` and connects the two members both ways, in
    /// one transaction. Returns the accepted invitation.
    async fn accept_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord>;

    /// Declines a pending invitation as `member_id`, who must be its invitee (`NotInvitee`);
    /// `InvitationNotPending` once it was accepted, declined or withdrawn.
    async fn decline_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord>;

    /// Withdraws a pending invitation as `member_id`, who must be its inviter (`NotInviter`);
    /// `InvitationNotPending` once it was accepted, declined or withdrawn.
    async fn withdraw_invitation(
        &self,
        invitation_id: &str,
        member_id: &str,
        now: i64,
    ) -> StoreResult<InvitationRecord>;

    /// Removes the connection between two members, both ways in one transaction;
    /// `NotFound("connection")` when they are not connected.
    async fn remove_connection(&self, member_id: &str, other_id: &str) -> StoreResult<()>;

    /// Pending invitations of a member, newest first, after `after`.
    async fn list_invitations(
        &self,
        member_id: &str,
        direction: InvitationDirection,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<InvitationRecord>>;

    /// Connections of a member, newest first, after `after`.
    async fn list_connections(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionRecord>>;

    /// Follows a member (who must exist) or a hashtag; following again keeps the first record.
    /// A member blocked either way answers `NotFound("followee")`, exactly like a missing one.
    async fn follow(
        &self,
        member_id: &str,
        target: FollowTarget,
        now: i64,
    ) -> StoreResult<FollowingRecord>;

    /// Stops following; nothing to do when the target was not followed.
    async fn unfollow(&self, member_id: &str, target: &FollowTarget) -> StoreResult<()>;

    /// The members following `member_id`, newest first, after `after` (keyed by follower id).
    async fn list_followers(
        &self,
        member_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowerRecord>>;

    /// How far `member_id` is from `viewer_id`, with their mutual connections (first and
    /// second degree). `NotFound("viewer")` for a missing viewer; a missing member or one
    /// blocked either way is `NotFound("member")`. The third-degree search expands at most
    /// `limits::DEGREE_EXPANSION_CAP` neighbours of the smaller side, so it is bounded for hubs;
    /// only when both members have more connections than that can a third degree be missed.
    async fn connection_degree(
        &self,
        viewer_id: &str,
        member_id: &str,
    ) -> StoreResult<DegreeRecord>;

    /// What a member follows, newest first, after `after`.
    async fn list_following(
        &self,
        member_id: &str,
        after: Option<FollowCursor>,
        limit: usize,
    ) -> StoreResult<Vec<FollowingRecord>>;

    /// Records that `member_id` blocks `blocked_id` (both must exist and differ) and, in the
    /// same transaction, removes their connection, their follows of each other and their pending
    /// invitations, each both ways. Blocking again keeps the first record and changes nothing.
    async fn block_member(&self, member_id: &str, blocked_id: &str, now: i64) -> StoreResult<()>;

    /// Removes the block of `blocked_id` by `member_id`, if there is one.
    async fn unblock_member(&self, member_id: &str, blocked_id: &str) -> StoreResult<()>;

    /// How `viewer_id` relates to each of `ids`, one record per id in the order given (repeats
    /// included); unknown members are neither connected nor blocked.
    async fn relationships(
        &self,
        viewer_id: &str,
        ids: &[String],
    ) -> StoreResult<Vec<RelationshipRecord>>;

    /// The members behind handle keys (lowercase handles): `(handle as spelled, member id)`
    /// for each key that exists, in the order of `keys` (repeats included).
    async fn lookup_handles(&self, keys: &[String]) -> StoreResult<Vec<(String, String)>>;

    /// Who `member_id` may know (`NotFound("member")` when missing): the second-degree members
    /// reached through the member's `limits::SUGGESTION_EXPANSION_CAP` most recent connections,
    /// each contributing at most its `limits::SUGGESTION_FANOUT_CAP` most recent connections;
    /// never the member, their connections, members with a pending invitation either way or
    /// blocked either way. The `limits::SUGGESTION_CANDIDATE_CAP` with the most mutual
    /// connections come back (then by member id), with their affinities, up to
    /// `limits::MAX_MUTUAL_IDS` of the mutual connections counted (smallest ids first), and the
    /// member's affinity.
    async fn suggestion_candidates(&self, member_id: &str) -> StoreResult<SuggestionInputs>;

    /// Profiles matching `query` as `searcher` sees them (`NotFound("searcher")` when missing):
    /// never the searcher, nor members blocked either way. With words, the
    /// `limits::SEARCH_CANDIDATE_CAP` best text matches that pass the filters among the
    /// `limits::SEARCH_MATCH_CAP` most recently created matching profiles (so a common word
    /// costs what a rare one does); without, the most recently updated
    /// matches of the filters. In text order (relevance descending, or most recently updated,
    /// then member id); `domain::rank_search` orders them. Each hit at an index where
    /// `domain::search_degree_needed(index, &window)` has its degree from the searcher (First,
    /// Second or OutOfNetwork); the others None.
    async fn search_profiles(
        &self,
        searcher: &str,
        query: &SearchQuery,
        window: std::ops::Range<usize>,
    ) -> StoreResult<Vec<SearchHit>>;

    /// Highlighted fragments of the profiles `ids` where `terms` match, matched words between
    /// '[' and ']'.
    async fn search_highlights(
        &self,
        terms: &SearchQuery,
        ids: &[String],
    ) -> StoreResult<HashMap<String, Vec<String>>>;

    /// Connects each pair both ways, all in one transaction. `pairs` are distinct unordered
    /// pairs of distinct members (see `domain::distinct_pairs`); pairs already connected, with
    /// an unknown member or blocked either way are skipped. Returns (created, skipped).
    async fn import_connections(
        &self,
        pairs: &[(String, String)],
        now: i64,
    ) -> StoreResult<(u64, u64)>;

    /// Creates profiles with the ids given, in one transaction; an id that has a profile or a
    /// handle taken skips that profile. Returns (created, skipped).
    async fn import_profiles(
        &self,
        profiles: Vec<(String, ProfileFields)>,
        now: i64,
    ) -> StoreResult<(u64, u64)>;
}

// The statements both backends run, `?` placeholders as SQLite takes them; PostgreSQL numbers
// them (`pronet_common::db::numbered`). A statement that uses a value in several places binds
// it once as `?NNN`, which `numbered` makes PostgreSQL's `$NNN`.

// Profiles.
pub(crate) const PROFILE_EXISTS: &str = "SELECT 1 FROM profiles WHERE id = ?";

// Invitations.
/// The columns of an invitation (what `rows::invitation_record!` reads): a macro so the
/// statements below can `concat!` them.
macro_rules! invitation_columns {
    () => {
        "id, inviter_id, invitee_id, message, state, create_time"
    };
}
pub(crate) const INVITATION_COLUMNS: &str = invitation_columns!();
/// The invitation (`?`: id).
pub(crate) const INVITATION_BY_ID: &str = concat!(
    "SELECT ",
    invitation_columns!(),
    " FROM invitations WHERE id = ?"
);
/// A page of a member's pending invitations received, newest first (`?`: member, the pending
/// state, cursor time, cursor id, limit); [`SENT_INVITATIONS_PAGE`] the same of those sent.
const RECEIVED_INVITATIONS_PAGE: &str = concat!(
    "SELECT ",
    invitation_columns!(),
    " FROM invitations \
    WHERE invitee_id = ? AND state = ? AND (create_time, id) < (?, ?) \
    ORDER BY create_time DESC, id DESC LIMIT ?"
);
const SENT_INVITATIONS_PAGE: &str = concat!(
    "SELECT ",
    invitation_columns!(),
    " FROM invitations \
    WHERE inviter_id = ? AND state = ? AND (create_time, id) < (?, ?) \
    ORDER BY create_time DESC, id DESC LIMIT ?"
);
pub(crate) const SET_INVITATION_STATE: &str =
    "UPDATE invitations SET state = ?, update_time = ? WHERE id = ?";
/// Pending invitations between `?1` and `?2` either way (`?3`: the pending state); each OR
/// branch is one lookup in the sent-invitations index.
pub(crate) const DELETE_PENDING_INVITATIONS_EITHER_WAY: &str = "DELETE FROM invitations \
    WHERE (inviter_id = ?1 AND state = ?3 AND invitee_id = ?2) \
    OR (inviter_id = ?2 AND state = ?3 AND invitee_id = ?1)";

/// [`RECEIVED_INVITATIONS_PAGE`] or [`SENT_INVITATIONS_PAGE`].
pub(crate) fn invitations_page(direction: InvitationDirection) -> &'static str {
    match direction {
        InvitationDirection::Received => RECEIVED_INVITATIONS_PAGE,
        InvitationDirection::Sent => SENT_INVITATIONS_PAGE,
    }
}

// Connections (stored both ways: a row per member).
pub(crate) const CONNECTED: &str = "SELECT 1 FROM connections WHERE member_id = ? AND other_id = ?";
pub(crate) const CONNECTIONS_PAGE: &str = "SELECT other_id, create_time FROM connections \
    WHERE member_id = ? AND (create_time, other_id) < (?, ?) \
    ORDER BY create_time DESC, other_id DESC LIMIT ?";
/// The connection of `?1` and `?2`, both of its rows; each OR branch is a primary-key lookup.
pub(crate) const DELETE_CONNECTION: &str = "DELETE FROM connections \
    WHERE (member_id = ?1 AND other_id = ?2) OR (member_id = ?2 AND other_id = ?1)";
/// The member's most recent connections a suggestion search expands (`?1` the member, `?2`
/// the cap), as `id`: a subquery of the backend's suggestion statement.
pub(crate) const EXPANDED: &str = "SELECT other_id AS id FROM connections WHERE member_id = ?1 \
    ORDER BY create_time DESC, other_id DESC LIMIT ?2";

// Follows.
pub(crate) const FOLLOW_TIME: &str = "SELECT create_time FROM follows \
    WHERE member_id = ? AND target_kind = ? AND target = ?";
pub(crate) const FOLLOWERS_PAGE: &str = "SELECT member_id, create_time FROM follows \
    WHERE target_kind = ? AND target = ? AND (create_time, member_id) < (?, ?) \
    ORDER BY create_time DESC, member_id DESC LIMIT ?";
pub(crate) const FOLLOWING_PAGE: &str = "SELECT target_kind, target, create_time FROM follows \
    WHERE member_id = ? AND (create_time, target_kind, target) < (?, ?, ?) \
    ORDER BY create_time DESC, target_kind DESC, target DESC LIMIT ?";
pub(crate) const DELETE_FOLLOW: &str =
    "DELETE FROM follows WHERE member_id = ? AND target_kind = ? AND target = ?";
/// The follows of `?1` by `?2` and of `?2` by `?1` (`?3`: the member target kind).
pub(crate) const DELETE_MEMBER_FOLLOWS_EITHER_WAY: &str = "DELETE FROM follows \
    WHERE (member_id = ?1 AND target_kind = ?3 AND target = ?2) \
    OR (member_id = ?2 AND target_kind = ?3 AND target = ?1)";

// Blocks.
/// Blocking again keeps the first record. `ON CONFLICT`, not SQLite's `OR IGNORE`: that would
/// also swallow the CHECK against blocking oneself.
pub(crate) const INSERT_BLOCK: &str = "INSERT INTO blocks (blocker_id, blocked_id, create_time) \
    VALUES (?, ?, ?) \
    ON CONFLICT (blocker_id, blocked_id) DO NOTHING";
pub(crate) const DELETE_BLOCK: &str = "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?";
/// Whether `?1` blocked `?2` or `?2` blocked `?1`.
pub(crate) const BLOCKED_EITHER_WAY: &str = "SELECT 1 FROM blocks \
    WHERE (blocker_id = ?1 AND blocked_id = ?2) OR (blocker_id = ?2 AND blocked_id = ?1)";

// Idempotency keys.
pub(crate) const INSERT_IDEMPOTENCY_KEY: &str =
    "INSERT INTO idempotency_keys (caller, request_id, resource_id, create_time) \
    VALUES (?, ?, ?, ?)";
pub(crate) const RECORDED_KEY: &str =
    "SELECT resource_id FROM idempotency_keys WHERE caller = ? AND request_id = ?";

// Search filter tables: one row per key of a profile's search document.
/// A filter table of the search index and the keys of a [`SearchDocument`] it holds.
pub(crate) struct IndexTable {
    pub name: &'static str,
    /// The key column, beside `member_id`.
    pub column: &'static str,
    /// Clears a member's rows before they are written again (`?`: the member).
    pub clear: &'static str,
    pub keys: fn(&SearchDocument) -> &[String],
}

pub(crate) const INDEX_TABLES: [IndexTable; 3] = [
    IndexTable {
        name: "profile_skills",
        column: "skill_key",
        clear: "DELETE FROM profile_skills WHERE member_id = ?",
        keys: |doc| &doc.skill_keys,
    },
    IndexTable {
        name: "profile_companies",
        column: "company_key",
        clear: "DELETE FROM profile_companies WHERE member_id = ?",
        keys: |doc| &doc.current_company_keys,
    },
    IndexTable {
        name: "profile_schools",
        column: "school_key",
        clear: "DELETE FROM profile_schools WHERE member_id = ?",
        keys: |doc| &doc.school_keys,
    },
];

#[cfg(test)]
mod tests;
