//! Ranking quality at a small size (`pronet bench eval --suite small`): two simulated worlds
//! whose truths differ (interest-dominated with a 12 h half-life, quality-dominated with a week),
//! each loaded through the API into its own embedded suite. On every world the default profile
//! (whatever ranking.toml names) must beat every classic baseline and the best half-life of
//! each tuned decayed baseline, picked on that world. A floor, not a timing.

use std::collections::BTreeMap;

use pronet::bench::eval::{run_suite, small_suite, RowKind, BASELINES, TUNED_FAMILIES};
use pronet_feed::domain::ProfileSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_profile_beats_every_tuned_baseline_on_every_small_world() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = ProfileSet::built_in();
    let default = profiles.default_profile().name.clone();
    let shapes: Vec<_> = small_suite()
        .iter()
        .map(|w| w.shape(std::path::Path::new("unused: generated graphs")))
        .collect::<Result<_, _>>()
        .unwrap();
    let suite = run_suite(&shapes, dir.path().join("eval"), profiles, |_| {})
        .await
        .expect("the evaluation runs");
    let summary = suite.table();
    assert_eq!(suite.worlds.len(), shapes.len());

    // Every loss on every world, reported at once.
    let mut losses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for report in &suite.worlds {
        let table = report.table();
        let ours = report.ndcg(&default).expect("the default was scored");
        let mut rivals: Vec<(String, f64)> = BASELINES
            .iter()
            .filter_map(|b| report.ndcg(b).map(|n| ((*b).to_owned(), n)))
            .collect();
        assert_eq!(rivals.len(), BASELINES.len(), "{}\n{table}", report.world);
        for (family, _) in TUNED_FAMILIES {
            let tuned = report
                .tuned
                .iter()
                .find(|t| t.family == family)
                .unwrap_or_else(|| panic!("{family} tuned on {}\n{table}", report.world));
            assert_eq!(
                report.row(&tuned.best).map(|r| r.kind),
                Some(RowKind::Tuned)
            );
            rivals.push((tuned.best.clone(), tuned.ndcg));
        }
        for (name, theirs) in rivals {
            if ours <= theirs {
                losses
                    .entry(report.world.clone())
                    .or_default()
                    .push(format!("{default} {ours:.4} <= {name} {theirs:.4}"));
            }
        }
        // The ablations were scored too, one per weighted signal.
        assert!(
            report.rows.iter().any(|r| r.kind == RowKind::Ablation),
            "{}\n{table}",
            report.world
        );
        assert!(report.sampled >= 40, "{}\n{table}", report.world);
        assert!(ours < 1.0, "{}\n{table}", report.world);
    }
    let tables: String = suite
        .worlds
        .iter()
        .map(|r| format!("\n## {}\n{}", r.world, r.table()))
        .collect();
    assert!(
        losses.is_empty(),
        "the default profile lost: {losses:#?}\n{summary}{tables}"
    );
}
