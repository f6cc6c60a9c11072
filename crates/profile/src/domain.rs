//! Profile-service types and rules: parsed values that cannot be invalid, and every limit in
//! one place.

use pronet_common::auth::Caller;
use pronet_common::input::check_count;

/// Every limit of the profile service.
pub mod limits {
    use pronet_common::input::TextRule;

    pub const HANDLE_MIN: usize = 3;
    pub const HANDLE_MAX: usize = 30;
    pub const DISPLAY_NAME: TextRule = TextRule::single_line(1, 100);
    pub const HEADLINE: TextRule = TextRule::single_line(0, 220);
    pub const SUMMARY: TextRule = TextRule::multi_line(0, 2600);
    pub const LOCATION: TextRule = TextRule::single_line(0, 100);
    pub const INDUSTRY: TextRule = TextRule::single_line(0, 100);
    pub const SKILL: TextRule = TextRule::single_line(1, 80);
    pub const MAX_SKILLS: usize = 50;
    pub const INVITATION_MESSAGE: TextRule = TextRule::multi_line(0, 300);
    pub const MAX_BATCH_GET: usize = 1000;
    /// Members one `BatchGetRelationships` asks about.
    pub const MAX_RELATIONSHIP_IDS: usize = 5000;
    /// Handles one `LookupHandles` call may name.
    pub const MAX_LOOKUP_HANDLES: usize = 100;
    pub const DEFAULT_PAGE_SIZE: usize = 50;
    pub const MAX_PAGE_SIZE: usize = 1000;
    /// How many neighbours the degree search expands on one side: a hub with tens of
    /// thousands of connections costs at most this many adjacency lists.
    pub const DEGREE_EXPANSION_CAP: usize = 5000;
    /// How many mutual connections a degree answer names.
    pub const MAX_MUTUAL_IDS: usize = 5;
}

/// A member handle: 3..30 characters of `a-z`, `0-9`, `_`, `-`; compared ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle(String);

impl Handle {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim().trim_start_matches('@');
        let len = raw.chars().count();
        if !(limits::HANDLE_MIN..=limits::HANDLE_MAX).contains(&len) {
            return Err(format!(
                "must be {}..{} characters, got {len}",
                limits::HANDLE_MIN,
                limits::HANDLE_MAX
            ));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("must contain only letters a-z, digits, '_' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key handles are unique by.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Skills with case-insensitive duplicates merged, first spelling kept.
pub fn parse_skills(raw: &[String]) -> Result<Vec<String>, String> {
    check_count(raw.len(), limits::MAX_SKILLS)?;
    let mut skills: Vec<String> = Vec::with_capacity(raw.len());
    for (i, skill) in raw.iter().enumerate() {
        let skill = limits::SKILL
            .parse(skill)
            .map_err(|e| format!("[{i}] {e}"))?;
        if !skills.iter().any(|s| s.eq_ignore_ascii_case(&skill)) {
            skills.push(skill);
        }
    }
    Ok(skills)
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRecord {
    pub id: String,
    pub handle: String,
    pub display_name: String,
    pub headline: String,
    pub summary: String,
    pub location: String,
    pub industry: String,
    pub skills: Vec<String>,
    pub create_time: i64,
    pub update_time: i64,
    /// Derived: the rows in `connections` (read in the same statement as the profile).
    pub connection_count: i64,
    /// Derived: the members following this one.
    pub follower_count: i64,
}

/// The editable fields of a profile, all valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFields {
    pub handle: Handle,
    pub display_name: String,
    pub headline: String,
    pub summary: String,
    pub location: String,
    pub industry: String,
    pub skills: Vec<String>,
}

/// The changes of an update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub handle: Option<Handle>,
    pub display_name: Option<String>,
    pub headline: Option<String>,
    pub summary: Option<String>,
    pub location: Option<String>,
    pub industry: Option<String>,
    pub skills: Option<Vec<String>>,
}

impl ProfileChanges {
    pub fn apply(self, p: &mut ProfileRecord) {
        if let Some(h) = self.handle {
            p.handle = h.0;
        }
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut p.display_name, self.display_name);
        set(&mut p.headline, self.headline);
        set(&mut p.summary, self.summary);
        set(&mut p.location, self.location);
        set(&mut p.industry, self.industry);
        if let Some(s) = self.skills {
            p.skills = s;
        }
    }
}

/// The field-mask paths `UpdateProfile` accepts.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "handle",
    "display_name",
    "headline",
    "summary",
    "location",
    "industry",
    "skills",
];

/// Invitation states, numbered as in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending = 1,
    Accepted = 2,
    Declined = 3,
    Withdrawn = 4,
}

impl InvitationState {
    pub fn from_i64(n: i64) -> Option<Self> {
        match n {
            1 => Some(Self::Pending),
            2 => Some(Self::Accepted),
            3 => Some(Self::Declined),
            4 => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: String,
    pub inviter_id: String,
    pub invitee_id: String,
    pub message: String,
    pub state: InvitationState,
    pub create_time: i64,
}

/// Whether `member_id` may move `inv` to `to`: only its invitee declines, only its inviter
/// withdraws, and only while it is pending (who may act is checked first, as for accepting).
pub fn check_closer(
    inv: &InvitationRecord,
    member_id: &str,
    to: InvitationState,
) -> Result<(), crate::error::ProfileError> {
    use crate::error::ProfileError;
    match to {
        InvitationState::Declined if inv.invitee_id != member_id => {
            return Err(ProfileError::NotInvitee("decline"))
        }
        InvitationState::Withdrawn if inv.inviter_id != member_id => {
            return Err(ProfileError::NotInviter)
        }
        InvitationState::Declined | InvitationState::Withdrawn => {}
        InvitationState::Pending | InvitationState::Accepted => {
            return Err(ProfileError::Corrupt(format!("cannot close into {to:?}")))
        }
    }
    if inv.state != InvitationState::Pending {
        return Err(ProfileError::InvitationNotPending);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationDirection {
    Received,
    Sent,
}

/// A connection seen from one member: the other member and when they connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub member_id: String,
    pub create_time: i64,
}

/// What a member follows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FollowTarget {
    Member(String),
    Hashtag(String),
}

impl FollowTarget {
    /// Stored kind number of a member.
    pub const MEMBER_KIND: i64 = 1;
    /// Stored kind number of a hashtag.
    pub const HASHTAG_KIND: i64 = 2;

    /// Stored kind number: 1 member, 2 hashtag.
    pub fn kind(&self) -> i64 {
        match self {
            Self::Member(_) => Self::MEMBER_KIND,
            Self::Hashtag(_) => Self::HASHTAG_KIND,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Member(v) | Self::Hashtag(v) => v,
        }
    }

    pub fn from_parts(kind: i64, value: String) -> Option<Self> {
        match kind {
            Self::MEMBER_KIND => Some(Self::Member(value)),
            Self::HASHTAG_KIND => Some(Self::Hashtag(value)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowingRecord {
    pub target: FollowTarget,
    pub create_time: i64,
}

/// How a viewer relates to one member.
/// A member who follows another, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerRecord {
    pub member_id: String,
    pub create_time: i64,
}

/// How far a member is from a viewer in the connection graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degree {
    Myself,
    First,
    Second,
    Third,
    OutOfNetwork,
}

/// A degree with the mutual connections behind it (counted for first and second degree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegreeRecord {
    pub degree: Degree,
    pub mutual_count: i64,
    /// At most `limits::MAX_MUTUAL_IDS`, smallest ids first.
    pub mutual_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipRecord {
    pub member_id: String,
    /// The two are connected.
    pub connected: bool,
    /// One of the two blocked the other.
    pub blocked: bool,
}

/// An idempotency key (AIP-155): a client's `request_id` scoped by who sent it, so two callers
/// choosing the same `request_id` never see each other's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// `member:<id>` or `service:<name>`.
    pub caller: String,
    pub request_id: String,
}

impl IdempotencyKey {
    /// The key of `request_id` (already checked like an id) sent by `caller`.
    pub fn new(caller: &Caller, request_id: String) -> Self {
        let caller = match caller {
            Caller::Member(id) => format!("member:{id}"),
            Caller::Service(name) => format!("service:{name}"),
        };
        Self { caller, request_id }
    }
}

/// Position after the last item of a newest-first page: its time and a tie-breaking key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time: i64,
    pub key: String,
}

/// Position in a following list: time, then kind, then target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowCursor {
    pub time: i64,
    pub kind: i64,
    pub target: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked_and_keyed_ignoring_case() {
        let h = Handle::parse("Ada_Lovelace").unwrap();
        assert_eq!(h.as_str(), "Ada_Lovelace");
        assert_eq!(h.key(), "ada_lovelace");
        assert_eq!(Handle::parse("@ada").unwrap().as_str(), "ada");
        assert!(Handle::parse("ab").is_err());
        assert!(Handle::parse(&"a".repeat(31)).is_err());
        assert!(Handle::parse("ada lovelace").is_err());
        assert!(Handle::parse("adä").is_err());
    }

    #[test]
    fn idempotency_keys_are_scoped_by_caller() {
        let member = IdempotencyKey::new(&Caller::Member("ada".into()), "r1".into());
        let service = IdempotencyKey::new(&Caller::Service("ada".into()), "r1".into());
        assert_eq!(member.caller, "member:ada");
        assert_eq!(service.caller, "service:ada");
        assert_ne!(member, service);
    }

    #[test]
    fn skills_merge_case_duplicates() {
        let raw = vec!["Rust".to_string(), "rust ".to_string(), "Go".to_string()];
        assert_eq!(parse_skills(&raw).unwrap(), ["Rust", "Go"]);
        assert!(parse_skills(&[String::new()]).is_err());
        assert!(parse_skills(&vec!["x".to_string(); 51]).is_err());
    }
}
