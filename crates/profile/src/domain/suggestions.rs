//! People you may know: affinity, second-degree candidates and how they are scored.

use super::*;

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
