//! Profile search: query terms, hits and how they are ranked.

use super::*;

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
