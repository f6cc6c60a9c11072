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
