//! Profile-service types and rules: parsed values that cannot be invalid, and every limit in
//! one place.

use std::collections::HashMap;

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
    pub const POSITION_TITLE: TextRule = TextRule::single_line(1, 100);
    pub const COMPANY: TextRule = TextRule::single_line(1, 100);
    pub const MAX_POSITIONS: usize = 30;
    pub const SCHOOL: TextRule = TextRule::single_line(1, 100);
    pub const DEGREE: TextRule = TextRule::single_line(0, 100);
    pub const FIELD_OF_STUDY: TextRule = TextRule::single_line(0, 100);
    pub const MAX_EDUCATION: usize = 20;
    pub const MIN_YEAR: i32 = 1900;
    pub const MAX_YEAR: i32 = 2100;
    /// SuggestConnections expands at most this many of the member's connections (the most
    /// recent), so a hub costs what an ordinary member does.
    pub const SUGGESTION_EXPANSION_CAP: usize = 100;
    /// ... and at most this many connections of each (the most recent).
    pub const SUGGESTION_FANOUT_CAP: usize = 50;
    /// Members with the most mutual connections that are scored; paging ends there.
    pub const SUGGESTION_CANDIDATE_CAP: usize = 100;
    pub const SUGGESTION_DEFAULT_PAGE_SIZE: usize = 20;
    pub const SUGGESTION_MAX_PAGE_SIZE: usize = 100;
    /// Score weights of a suggestion.
    pub const SCORE_PER_MUTUAL: i64 = 10;
    pub const SCORE_SHARED_COMPANY: i64 = 30;
    pub const SCORE_SHARED_SCHOOL: i64 = 20;
    pub const SCORE_SHARED_INDUSTRY: i64 = 10;
    pub const SEARCH_QUERY_MAX_CHARS: usize = 200;
    /// Words of a query that count; more are refused.
    pub const SEARCH_MAX_TERMS: usize = 16;
    pub const SEARCH_MAX_SKILLS: usize = 10;
    pub const SEARCH_FILTER_TEXT: TextRule = TextRule::single_line(0, 100);
    /// Matches ranked per search (best text matches, or most recent without a query).
    pub const SEARCH_CANDIDATE_CAP: usize = 200;
    /// Text matches scored per search: the most recently created matching profiles. A common
    /// word matches tens of thousands; scoring all of them costs hundreds of milliseconds.
    /// Measured on 100k benchmark profiles (SQLite, BM25 at about 8 µs a match): 500 cost
    /// 8-10 ms a query, 200 cost 5 ms, most of the rest being the term lists themselves.
    pub const SEARCH_MATCH_CAP: usize = 200;
    /// Of the ranked matches (in text order), the first this many are ordered by degree too;
    /// the rest keep text order, so a page past them needs the degree of its own results only.
    /// A second degree costs a walk of the shorter of the searcher's and the result's lists,
    /// so this bounds a search's cost.
    pub const SEARCH_DEGREE_RANKED: usize = 50;
    /// Relevance bands of the search ranking.
    pub const SEARCH_RELEVANCE_BANDS: f64 = 4.0;
    pub const SEARCH_DEFAULT_PAGE_SIZE: usize = 20;
    pub const SEARCH_MAX_PAGE_SIZE: usize = 100;
    pub const MAX_IMPORT_CONNECTIONS: usize = 10_000;
    pub const MAX_IMPORT_PROFILES: usize = 1000;
}

/// The key texts are compared by: Unicode NFC, trimmed, inner whitespace collapsed to one
/// space, lowercased (Unicode lowercase, which folds case for every script we expect).
pub fn canonical_key(raw: &str) -> String {
    display_spelling(raw).to_lowercase()
}

/// How a text is shown once canonicalized: NFC, trimmed, inner whitespace collapsed.
pub fn display_spelling(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let nfc: String = raw.nfc().collect();
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
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

/// Skills with duplicates (same [`canonical_key`]) merged, the first spelling kept (trimmed,
/// inner whitespace collapsed).
pub fn parse_skills(raw: &[String]) -> Result<Vec<String>, String> {
    check_count(raw.len(), limits::MAX_SKILLS)?;
    let mut skills: Vec<String> = Vec::with_capacity(raw.len());
    let mut keys: Vec<String> = Vec::with_capacity(raw.len());
    for (i, skill) in raw.iter().enumerate() {
        let skill = limits::SKILL
            .parse(skill)
            .map_err(|e| format!("[{i}] {e}"))?;
        let key = canonical_key(&skill);
        if !keys.contains(&key) {
            keys.push(key);
            skills.push(display_spelling(&skill));
        }
    }
    Ok(skills)
}

/// A month of a year.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct YearMonth {
    pub year: i32,
    pub month: i32,
}

impl YearMonth {
    pub fn parse(year: i32, month: i32) -> Result<Self, String> {
        check_year(year)?;
        if !(1..=12).contains(&month) {
            return Err(format!("month must be 1..12, got {month}"));
        }
        Ok(Self { year, month })
    }
}

fn check_year(year: i32) -> Result<(), String> {
    if !(limits::MIN_YEAR..=limits::MAX_YEAR).contains(&year) {
        return Err(format!(
            "year must be {}..{}, got {year}",
            limits::MIN_YEAR,
            limits::MAX_YEAR
        ));
    }
    Ok(())
}

/// A position, valid: start set, end (if any) not before start, no end when current.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub title: String,
    pub company: String,
    pub start: YearMonth,
    pub end: Option<YearMonth>,
    pub current: bool,
}

/// The raw parts of a position as a client sends them.
pub struct RawPosition<'a> {
    pub title: &'a str,
    pub company: &'a str,
    pub start: Option<(i32, i32)>,
    pub end: Option<(i32, i32)>,
    pub current: bool,
}

impl Position {
    /// Checks one position; violations as `(field under the position, description)`.
    pub fn parse(raw: RawPosition<'_>) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: Result<String, String>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push((field, e));
                None
            }
        };
        let title = check("title", limits::POSITION_TITLE.parse(raw.title));
        let company = check("company", limits::COMPANY.parse(raw.company));
        let start = match raw.start {
            None => {
                errors.push(("start", "is required".into()));
                None
            }
            Some((y, m)) => match YearMonth::parse(y, m) {
                Ok(ym) => Some(ym),
                Err(e) => {
                    errors.push(("start", e));
                    None
                }
            },
        };
        let end = match raw.end {
            None => None,
            Some((y, m)) => match YearMonth::parse(y, m) {
                Ok(ym) => Some(ym),
                Err(e) => {
                    errors.push(("end", e));
                    None
                }
            },
        };
        if raw.current && raw.end.is_some() {
            errors.push(("end", "must be unset for a current position".into()));
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                errors.push(("end", "must not be before start".into()));
            }
        }
        match (title, company, start) {
            (Some(title), Some(company), Some(start)) if errors.is_empty() => Ok(Self {
                title: display_spelling(&title),
                company: display_spelling(&company),
                start,
                end,
                current: raw.current,
            }),
            _ => Err(errors),
        }
    }
}

/// A school attended, valid. Years are 0 when unknown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Education {
    pub school: String,
    pub degree: String,
    pub field_of_study: String,
    pub start_year: i32,
    pub end_year: i32,
}

impl Education {
    /// Checks one entry; violations as `(field under the entry, description)`.
    pub fn parse(
        school: &str,
        degree: &str,
        field_of_study: &str,
        start_year: i32,
        end_year: i32,
    ) -> Result<Self, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: Result<String, String>| match r {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push((field, e));
                None
            }
        };
        let school = check("school", limits::SCHOOL.parse(school));
        let degree = check("degree", limits::DEGREE.parse(degree));
        let field_of_study = check(
            "field_of_study",
            limits::FIELD_OF_STUDY.parse(field_of_study),
        );
        for (field, year) in [("start_year", start_year), ("end_year", end_year)] {
            if year != 0 {
                if let Err(e) = check_year(year) {
                    errors.push((field, e));
                }
            }
        }
        if start_year != 0 && end_year != 0 && end_year < start_year {
            errors.push(("end_year", "must not be before start_year".into()));
        }
        match (school, degree, field_of_study) {
            (Some(school), Some(degree), Some(field_of_study)) if errors.is_empty() => Ok(Self {
                school: display_spelling(&school),
                degree,
                field_of_study,
                start_year,
                end_year,
            }),
            _ => Err(errors),
        }
    }
}

/// What the stores derive from a profile's fields to index it: skill and current-company keys
/// (filters, suggestions), location and industry keys (filters) and flat texts (full-text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDocument {
    pub skill_keys: Vec<String>,
    pub current_company_keys: Vec<String>,
    /// Every school of the education.
    pub school_keys: Vec<String>,
    pub location_key: String,
    pub industry_key: String,
    /// Skills joined by " · ".
    pub skills_text: String,
    /// "title · company" of every position, joined by " · ".
    pub positions_text: String,
}

impl SearchDocument {
    pub fn of(
        skills: &[String],
        positions: &[Position],
        education: &[Education],
        location: &str,
        industry: &str,
    ) -> Self {
        let mut skill_keys: Vec<String> = skills.iter().map(|s| canonical_key(s)).collect();
        skill_keys.sort();
        skill_keys.dedup();
        let mut current_company_keys: Vec<String> = positions
            .iter()
            .filter(|p| p.current)
            .map(|p| canonical_key(&p.company))
            .collect();
        current_company_keys.sort();
        current_company_keys.dedup();
        let mut school_keys: Vec<String> =
            education.iter().map(|e| canonical_key(&e.school)).collect();
        school_keys.sort();
        school_keys.dedup();
        Self {
            skill_keys,
            current_company_keys,
            school_keys,
            location_key: canonical_key(location),
            industry_key: canonical_key(industry),
            skills_text: skills.join(" · "),
            positions_text: positions
                .iter()
                .map(|p| format!("{} · {}", p.title, p.company))
                .collect::<Vec<_>>()
                .join(" · "),
        }
    }
}

/// Positions or education as stored (JSON text).
pub fn to_json<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Reads stored JSON back; `what` names the column in the error.
pub fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<Vec<T>, crate::error::ProfileError> {
    serde_json::from_str(text)
        .map_err(|e| crate::error::ProfileError::Corrupt(format!("{what}: {e}")))
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
    pub positions: Vec<Position>,
    pub education: Vec<Education>,
    pub open_to_work: bool,
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
    pub positions: Vec<Position>,
    pub education: Vec<Education>,
    pub open_to_work: bool,
}

impl ProfileFields {
    pub fn search_document(&self) -> SearchDocument {
        SearchDocument::of(
            &self.skills,
            &self.positions,
            &self.education,
            &self.location,
            &self.industry,
        )
    }
}

impl ProfileRecord {
    pub fn search_document(&self) -> SearchDocument {
        SearchDocument::of(
            &self.skills,
            &self.positions,
            &self.education,
            &self.location,
            &self.industry,
        )
    }
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
    pub positions: Option<Vec<Position>>,
    pub education: Option<Vec<Education>>,
    pub open_to_work: Option<bool>,
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
        if let Some(v) = self.positions {
            p.positions = v;
        }
        if let Some(v) = self.education {
            p.education = v;
        }
        if let Some(v) = self.open_to_work {
            p.open_to_work = v;
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
    "positions",
    "education",
    "open_to_work",
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

pub use pronet_common::idempotency::IdempotencyKey;

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

/// What two members may share beyond the graph: current companies, schools, an industry.
/// Each entry is `(key, spelling)`; keys as in [`canonical_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Affinity {
    pub companies: Vec<(String, String)>,
    pub schools: Vec<(String, String)>,
    pub industry: Option<(String, String)>,
}

impl Affinity {
    pub fn of(positions: &[Position], education: &[Education], industry: &str) -> Self {
        let keyed = |texts: Vec<&String>| {
            let mut out: Vec<(String, String)> = Vec::new();
            for t in texts {
                let key = canonical_key(t);
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, t.clone()));
                }
            }
            out
        };
        let industry_key = canonical_key(industry);
        Self {
            companies: keyed(
                positions
                    .iter()
                    .filter(|p| p.current)
                    .map(|p| &p.company)
                    .collect(),
            ),
            schools: keyed(education.iter().map(|e| &e.school).collect()),
            industry: (!industry_key.is_empty()).then(|| (industry_key, industry.to_owned())),
        }
    }
}

impl Affinity {
    /// The keys a candidate shares with the member (spellings left empty: a reason shows the
    /// member's spelling), as the store finds them in the key tables.
    pub fn of_shared_keys(
        companies: Vec<String>,
        schools: Vec<String>,
        industry: Option<String>,
    ) -> Self {
        let keyed = |keys: Vec<String>| keys.into_iter().map(|k| (k, String::new())).collect();
        Self {
            companies: keyed(companies),
            schools: keyed(schools),
            industry: industry.map(|k| (k, String::new())),
        }
    }

    fn keys(list: &[(String, String)]) -> Vec<&str> {
        list.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn company_keys(&self) -> Vec<&str> {
        Self::keys(&self.companies)
    }

    pub fn school_keys(&self) -> Vec<&str> {
        Self::keys(&self.schools)
    }
}

/// Whether to count the mutual connections of two members with `small` and `large`
/// connections (`small <= large`) by merging their lists (reads `small + large` entries)
/// rather than by probing the larger list once per entry of the smaller (a probe is a B-tree
/// descent, several entries' worth of work).
pub fn mutual_by_merge(small: i64, large: i64) -> bool {
    large <= small.saturating_mul(4)
}

/// A member reached from `member` through some of their connections (those are the mutual
/// connections the walk saw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached<'a> {
    pub member_id: &'a str,
    pub mutual_ids: Vec<&'a str>,
}

/// Counts the members reached through each expanded connection's list (`(connection, its
/// connections)`), leaving out `member` themself, ranked by how many lists reached them (then
/// by id). Exclusions (connections, invitations, blocks) are the store's to apply.
pub fn count_reached<'a>(member: &str, lists: &'a [(String, Vec<String>)]) -> Vec<Reached<'a>> {
    let mut by_id: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
    for (via, list) in lists {
        for cand in list {
            if cand != member {
                by_id.entry(cand.as_str()).or_default().push(via.as_str());
            }
        }
    }
    let mut reached: Vec<Reached<'a>> = by_id
        .into_iter()
        .map(|(member_id, mut mutual_ids)| {
            mutual_ids.sort_unstable();
            mutual_ids.dedup();
            Reached {
                member_id,
                mutual_ids,
            }
        })
        .collect();
    reached.sort_unstable_by(|a, b| {
        b.mutual_ids
            .len()
            .cmp(&a.mutual_ids.len())
            .then_with(|| a.member_id.cmp(b.member_id))
    });
    reached
}

/// A second-degree member found for suggestions, before scoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionCandidate {
    pub member_id: String,
    /// Mutual connections among the expanded ones.
    pub mutual_count: i64,
    /// Up to `limits::MAX_MUTUAL_IDS` of those mutual connections, smallest ids first.
    pub mutual_ids: Vec<String>,
    pub affinity: Affinity,
}

/// What the store finds for suggestions: the asking member's affinity and the candidates
/// (at most `limits::SUGGESTION_CANDIDATE_CAP`, the most mutual connections first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuggestionInputs {
    pub member: Affinity,
    pub candidates: Vec<SuggestionCandidate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    MutualConnections,
    SharedCompany,
    SharedSchool,
    SharedIndustry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    pub value: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub member_id: String,
    pub mutual_count: i64,
    pub mutual_ids: Vec<String>,
    pub score: i64,
    pub reasons: Vec<Reason>,
}

fn shared<'a>(mine: &'a [(String, String)], theirs: &[(String, String)]) -> Option<&'a str> {
    mine.iter()
        .find(|(k, _)| theirs.iter().any(|(t, _)| t == k))
        .map(|(_, spelling)| spelling.as_str())
}

/// Scores every candidate (see the weights in `limits`) and orders them: score descending,
/// then member id.
pub fn rank_suggestions(inputs: SuggestionInputs) -> Vec<Suggestion> {
    let me = &inputs.member;
    let mut out: Vec<Suggestion> = inputs
        .candidates
        .into_iter()
        .map(|c| {
            let mut score = c.mutual_count * limits::SCORE_PER_MUTUAL;
            let mut reasons = vec![Reason {
                kind: ReasonKind::MutualConnections,
                value: c.mutual_count.to_string(),
                text: match c.mutual_count {
                    1 => "1 mutual connection".to_string(),
                    n => format!("{n} mutual connections"),
                },
            }];
            if let Some(company) = shared(&me.companies, &c.affinity.companies) {
                score += limits::SCORE_SHARED_COMPANY;
                reasons.push(Reason {
                    kind: ReasonKind::SharedCompany,
                    value: company.to_owned(),
                    text: format!("also at {company}"),
                });
            }
            if let Some(school) = shared(&me.schools, &c.affinity.schools) {
                score += limits::SCORE_SHARED_SCHOOL;
                reasons.push(Reason {
                    kind: ReasonKind::SharedSchool,
                    value: school.to_owned(),
                    text: format!("also studied at {school}"),
                });
            }
            if let (Some((mine, spelling)), Some((theirs, _))) =
                (&me.industry, &c.affinity.industry)
            {
                if mine == theirs {
                    score += limits::SCORE_SHARED_INDUSTRY;
                    reasons.push(Reason {
                        kind: ReasonKind::SharedIndustry,
                        value: spelling.clone(),
                        text: format!("also in {spelling}"),
                    });
                }
            }
            Suggestion {
                member_id: c.member_id,
                mutual_count: c.mutual_count,
                mutual_ids: c.mutual_ids,
                score,
                reasons,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.member_id.cmp(&b.member_id))
    });
    out
}

/// Position after the last suggestion of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionCursor {
    pub score: i64,
    pub member_id: String,
}

impl SuggestionCursor {
    /// Whether `s` comes after the cursor in suggestion order.
    pub fn precedes(&self, s: &Suggestion) -> bool {
        s.score < self.score || (s.score == self.score && s.member_id > self.member_id)
    }
}

/// The words of a search query: split at anything not a letter or digit, lowercased (NFC);
/// the same words both backends' tokenizers make of plain words.
pub fn parse_search_terms(raw: &str) -> Result<Vec<String>, String> {
    let chars = raw.chars().count();
    if chars > limits::SEARCH_QUERY_MAX_CHARS {
        return Err(format!(
            "must be at most {} characters, got {chars}",
            limits::SEARCH_QUERY_MAX_CHARS
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let key = canonical_key(raw);
    let mut terms: Vec<String> = Vec::new();
    for t in key.split(|c: char| !c.is_alphanumeric()) {
        if !t.is_empty() && !terms.iter().any(|x| x == t) {
            terms.push(t.to_owned());
        }
    }
    if terms.len() > limits::SEARCH_MAX_TERMS {
        return Err(format!(
            "must have at most {} distinct words, got {}",
            limits::SEARCH_MAX_TERMS,
            terms.len()
        ));
    }
    Ok(terms)
}

/// A parsed profile search: words that must all match and filters that must all hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub terms: Vec<String>,
    pub skill_keys: Vec<String>,
    pub location_key: Option<String>,
    pub industry_key: Option<String>,
    pub open_to_work: bool,
    pub company_key: Option<String>,
}

impl SearchQuery {
    pub fn has_filter(&self) -> bool {
        !self.skill_keys.is_empty()
            || self.location_key.is_some()
            || self.industry_key.is_some()
            || self.open_to_work
            || self.company_key.is_some()
    }

    /// The FTS5 MATCH expression: every word as a quoted string, all required.
    pub fn fts5_match(&self) -> String {
        self.terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A profile a search found, with what ranks it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub member_id: String,
    /// Higher is better; 0 without a query.
    pub relevance: f64,
    pub update_time: i64,
    /// First, Second or OutOfNetwork; None where not computed (see `search_degree_needed`).
    pub degree: Option<Degree>,
}

fn degree_rank(d: Degree) -> u8 {
    match d {
        Degree::Myself => 0,
        Degree::First => 1,
        Degree::Second => 2,
        Degree::Third => 3,
        Degree::OutOfNetwork => 4,
    }
}

/// Orders hits as SearchProfilesResponse documents. `hits` come in text order (with a query:
/// relevance descending, then member id; without: most recently updated, then member id), as
/// `ProfileStore::search_profiles` returns them. The first `limits::SEARCH_DEGREE_RANKED` of
/// them come first, with a query by relevance band (a quarter of their best relevance wide),
/// degree, relevance, member id; without, by degree, most recently updated, member id. The rest
/// follow in text order (their degree plays no part, and may be unknown).
pub fn rank_search(mut hits: Vec<SearchHit>, has_query: bool) -> Vec<SearchHit> {
    let text_order = |a: &SearchHit, b: &SearchHit| {
        if has_query {
            b.relevance.total_cmp(&a.relevance)
        } else {
            b.update_time.cmp(&a.update_time)
        }
        .then_with(|| a.member_id.cmp(&b.member_id))
    };
    hits.sort_by(text_order);
    let ranked = hits.len().min(limits::SEARCH_DEGREE_RANKED);
    let head = &mut hits[..ranked];
    let best = head.iter().map(|h| h.relevance).fold(0.0_f64, f64::max);
    let band = |r: f64| -> i64 {
        if !has_query || best <= 0.0 {
            0
        } else {
            // Band 0 is the best; the best match itself is in it.
            ((1.0 - r / best) * limits::SEARCH_RELEVANCE_BANDS)
                .floor()
                .clamp(0.0, limits::SEARCH_RELEVANCE_BANDS - 1.0) as i64
        }
    };
    let rank = |d: Option<Degree>| d.map_or(u8::MAX, degree_rank);
    head.sort_by(|a, b| {
        band(a.relevance)
            .cmp(&band(b.relevance))
            .then_with(|| rank(a.degree).cmp(&rank(b.degree)))
            .then_with(|| text_order(a, b))
    });
    hits
}

/// A search's matches (`(member, update time, relevance)` in text order) as hits, each with its
/// degree from `degree_of` where `search_degree_needed` says the ranking or the page needs it.
pub fn search_hits(
    rows: Vec<(String, i64, f64)>,
    window: &std::ops::Range<usize>,
    degree_of: impl Fn(&str) -> Degree,
) -> Vec<SearchHit> {
    rows.into_iter()
        .enumerate()
        .map(|(i, (member_id, update_time, relevance))| SearchHit {
            degree: search_degree_needed(i, window).then(|| degree_of(&member_id)),
            member_id,
            relevance,
            update_time,
        })
        .collect()
}

/// Whether the hit at `index` (in text order) needs its degree to rank and show a page of
/// `window` (positions in the ranking).
pub fn search_degree_needed(index: usize, window: &std::ops::Range<usize>) -> bool {
    index < limits::SEARCH_DEGREE_RANKED || window.contains(&index)
}

/// Member pairs to connect, each unordered pair once, none with itself; and how many of the
/// pairs given were dropped for that.
pub fn distinct_pairs(pairs: &[(String, String)]) -> (Vec<(String, String)>, u64) {
    let mut seen = std::collections::BTreeSet::new();
    let mut dropped = 0;
    for (a, b) in pairs {
        if a == b {
            dropped += 1;
            continue;
        }
        let key = if a < b {
            (a.clone(), b.clone())
        } else {
            (b.clone(), a.clone())
        };
        if !seen.insert(key) {
            dropped += 1;
        }
    }
    (seen.into_iter().collect(), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pronet_common::auth::Caller;

    #[test]
    fn reached_members_are_counted_once_per_list_ranked_and_never_the_member() {
        let list = |via: &str, ids: &[&str]| {
            (
                via.to_string(),
                ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        let lists = vec![
            list("b", &["me", "x", "y"]),
            list("a", &["y", "x", "z"]),
            list("c", &["y"]),
            // A repeated id in one list still counts that list once.
            list("d", &["z", "z"]),
        ];
        let reached = count_reached("me", &lists);
        let got: Vec<(&str, Vec<&str>)> = reached
            .iter()
            .map(|r| (r.member_id, r.mutual_ids.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("y", vec!["a", "b", "c"]),
                ("x", vec!["a", "b"]),
                ("z", vec!["a", "d"]),
            ]
        );
        assert!(count_reached("me", &[]).is_empty());
    }

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

    fn hit(id: &str, relevance: f64, update_time: i64, degree: Option<Degree>) -> SearchHit {
        SearchHit {
            member_id: id.into(),
            relevance,
            update_time,
            degree,
        }
    }

    fn ids(hits: &[SearchHit]) -> Vec<&str> {
        hits.iter().map(|h| h.member_id.as_str()).collect()
    }

    #[test]
    fn search_ranks_by_relevance_band_then_degree_then_relevance() {
        use Degree::*;
        // Best relevance 8.0; bands are 2.0 wide: (6, 8], (4, 6], (2, 4], [0, 2].
        let hits = vec![
            hit("a", 8.0, 0, Some(OutOfNetwork)), // band 0
            hit("b", 6.5, 0, Some(First)),        // band 0
            hit("c", 6.0, 0, Some(First)),        // exactly 3/4: band 1
            hit("d", 6.1, 0, Some(OutOfNetwork)), // band 0
            hit("e", 5.0, 0, Some(Second)),       // band 1
            hit("f", 3.0, 0, Some(First)),        // band 2
            hit("g", 1.0, 0, Some(OutOfNetwork)), // band 3
            hit("h", 0.5, 0, Some(First)),        // band 3
            hit("i", 6.5, 0, Some(First)),        // ties b: member id
            hit("j", 0.0, 0, Some(First)),        // band 3 (clamped)
        ];
        let ranked = rank_search(hits, true);
        assert_eq!(
            ids(&ranked),
            ["b", "i", "a", "d", "c", "e", "f", "h", "j", "g"]
        );
    }

    #[test]
    fn search_degree_never_lifts_a_hit_out_of_its_band() {
        use Degree::*;
        // A first-degree summary match (a fifth of the best) stays below an out-of-network
        // headline match; within a band, First before Second before the rest (and unknown last).
        let ranked = rank_search(
            vec![
                hit("summary", 0.2, 0, Some(First)),
                hit("headline", 1.0, 0, Some(OutOfNetwork)),
                hit("unknown", 0.9, 0, None),
                hit("second", 0.8, 0, Some(Second)),
            ],
            true,
        );
        assert_eq!(ids(&ranked), ["second", "headline", "unknown", "summary"]);
    }

    #[test]
    fn search_without_words_ranks_by_degree_then_most_recently_updated() {
        use Degree::*;
        let ranked = rank_search(
            vec![
                hit("old_first", 0.0, 10, Some(First)),
                hit("new_out", 0.0, 50, Some(OutOfNetwork)),
                hit("new_second", 0.0, 40, Some(Second)),
                hit("newer_first", 0.0, 30, Some(First)),
                hit("b_out", 0.0, 20, Some(OutOfNetwork)),
                hit("a_out", 0.0, 20, Some(OutOfNetwork)),
            ],
            false,
        );
        assert_eq!(
            ids(&ranked),
            [
                "newer_first",
                "old_first",
                "new_second",
                "new_out",
                "a_out",
                "b_out"
            ]
        );
    }

    #[test]
    fn search_ranks_degree_only_within_the_first_fifty() {
        // Equal relevance, in reverse text order; h51 is first degree but past the ranked
        // head, so it keeps its text position; h30 is first degree in the head and leads.
        let n = limits::SEARCH_DEGREE_RANKED + 2;
        let hits: Vec<SearchHit> = (0..n)
            .rev()
            .map(|i| {
                let degree = match i {
                    30 => Some(Degree::First),
                    51 => Some(Degree::First),
                    50 => None,
                    _ => Some(Degree::OutOfNetwork),
                };
                hit(&format!("h{i:02}"), 1.0, 0, degree)
            })
            .collect();
        let ranked = rank_search(hits, true);
        let mut expected: Vec<String> = vec!["h30".into()];
        expected.extend((0..n).filter(|i| *i != 30).map(|i| format!("h{i:02}")));
        assert_eq!(ids(&ranked), expected);
        assert_eq!(ranked[n - 1].member_id, "h51");
        assert!(rank_search(Vec::new(), true).is_empty());
    }

    fn candidate(id: &str, mutual_count: i64, affinity: Affinity) -> SuggestionCandidate {
        SuggestionCandidate {
            member_id: id.into(),
            mutual_count,
            mutual_ids: Vec::new(),
            affinity,
        }
    }

    fn current(company: &str) -> Position {
        Position {
            title: "Engineer".into(),
            company: company.into(),
            start: YearMonth {
                year: 2020,
                month: 1,
            },
            end: None,
            current: true,
        }
    }

    fn studied(school: &str) -> Education {
        Education {
            school: school.into(),
            degree: String::new(),
            field_of_study: String::new(),
            start_year: 0,
            end_year: 0,
        }
    }

    #[test]
    fn suggestions_are_scored_and_ordered_by_score_then_member_id() {
        let mut past = current("Initech");
        past.current = false;
        past.end = Some(YearMonth {
            year: 2021,
            month: 1,
        });
        let member = Affinity::of(&[current("Acme Corp"), past], &[studied("MIT")], "Software");
        // The member's past company is not theirs to share.
        assert_eq!(member.company_keys(), ["acme corp"]);
        let shared = |companies: &[&str], schools: &[&str], industry: Option<&str>| {
            Affinity::of_shared_keys(
                companies.iter().map(|s| s.to_string()).collect(),
                schools.iter().map(|s| s.to_string()).collect(),
                industry.map(str::to_owned),
            )
        };
        let inputs = SuggestionInputs {
            member,
            candidates: vec![
                // 5 x 10 = 50
                candidate("many", 5, Affinity::default()),
                // 10 + 30 + 20 + 10 = 70
                candidate("all", 1, shared(&["acme corp"], &["mit"], Some("software"))),
                // 2 x 10 + 30 = 50: ties "many", member id decides
                candidate("co", 2, shared(&["acme corp"], &[], None)),
                // 10 + 20 = 30
                candidate("school", 1, shared(&[], &["mit"], None)),
                // 10 + 10 = 20; a company the member does not have counts for nothing
                candidate("industry", 1, shared(&["globex"], &[], Some("software"))),
                // a different industry counts for nothing: 10
                candidate("other", 1, shared(&[], &[], Some("farming"))),
            ],
        };
        let ranked = rank_suggestions(inputs);
        let got: Vec<(&str, i64)> = ranked
            .iter()
            .map(|s| (s.member_id.as_str(), s.score))
            .collect();
        assert_eq!(
            got,
            [
                ("all", 70),
                ("co", 50),
                ("many", 50),
                ("school", 30),
                ("industry", 20),
                ("other", 10)
            ]
        );
        let texts = |id: &str| -> Vec<String> {
            ranked
                .iter()
                .find(|s| s.member_id == id)
                .unwrap()
                .reasons
                .iter()
                .map(|r| r.text.clone())
                .collect()
        };
        // Reasons name the member's own spellings.
        assert_eq!(
            texts("all"),
            [
                "1 mutual connection",
                "also at Acme Corp",
                "also studied at MIT",
                "also in Software"
            ]
        );
        assert_eq!(texts("many"), ["5 mutual connections"]);
        assert_eq!(texts("other"), ["1 mutual connection"]);
        let all = &ranked[0];
        let kinds: Vec<ReasonKind> = all.reasons.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [
                ReasonKind::MutualConnections,
                ReasonKind::SharedCompany,
                ReasonKind::SharedSchool,
                ReasonKind::SharedIndustry
            ]
        );
        assert_eq!(all.reasons[0].value, "1");
        assert_eq!(all.reasons[1].value, "Acme Corp");
        assert_eq!(all.mutual_count, 1);

        // A member without an industry shares none, whatever the candidate's.
        let ranked = rank_suggestions(SuggestionInputs {
            member: Affinity::of(&[], &[], "  "),
            candidates: vec![candidate("x", 1, shared(&[], &[], Some("")))],
        });
        assert_eq!(ranked[0].score, 10);

        // Paging resumes strictly after the cursor: the next of an equal score by member id.
        let cursor = SuggestionCursor {
            score: 50,
            member_id: "co".into(),
        };
        let s = |id: &str, score| Suggestion {
            member_id: id.into(),
            mutual_count: 0,
            mutual_ids: Vec::new(),
            score,
            reasons: Vec::new(),
        };
        assert!(cursor.precedes(&s("many", 50)));
        assert!(cursor.precedes(&s("all", 10)));
        assert!(!cursor.precedes(&s("co", 50)));
        assert!(!cursor.precedes(&s("abc", 50)));
        assert!(!cursor.precedes(&s("zzz", 70)));
    }

    #[test]
    fn skills_merge_case_duplicates() {
        let raw = vec!["Rust".to_string(), "rust ".to_string(), "Go".to_string()];
        assert_eq!(parse_skills(&raw).unwrap(), ["Rust", "Go"]);
        assert!(parse_skills(&[String::new()]).is_err());
        assert!(parse_skills(&vec!["x".to_string(); 51]).is_err());
    }
}
