//! Profile-service types and rules: parsed values that cannot be invalid, and every limit in
//! one place (`limits`). By area: `profiles` (a profile's fields), `invitations`, `graph`
//! (connections, follows, degrees), `suggestions` (people you may know) and `search`.

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

mod graph;
mod invitations;
mod profiles;
mod search;
mod suggestions;

pub use graph::*;
pub use invitations::*;
pub use profiles::*;
pub use pronet_common::idempotency::IdempotencyKey;
pub use search::*;
pub use suggestions::*;

#[cfg(test)]
mod tests;
