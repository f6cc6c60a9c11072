//! Ranking quality at a small size (`pronet bench eval --suite small`): two simulated worlds
//! whose truths differ (interest-dominated with a 12 h half-life, quality-dominated with a week),
//! each loaded through the API into its own embedded suite, the feed's model trained from the
//! loaded log. A floor, not a timing.
//!
//! On every world the learned profile must beat every classic baseline and the best half-life
//! of each tuned decayed baseline (picked on that world), the hand-weighted default must beat
//! the classics, and the model's personal part must earn its place on its time-split holdout
//! where the truth is personal.

use std::collections::BTreeMap;

use pronet::bench::eval::{
    run_suite, small_suite, RowKind, SuiteReport, BASELINES, TUNED_FAMILIES,
};
use pronet_feed::domain::ProfileSet;

async fn small() -> SuiteReport {
    let dir = tempfile::tempdir().unwrap();
    let shapes: Vec<_> = small_suite()
        .iter()
        .map(|w| w.shape(std::path::Path::new("unused: generated graphs")))
        .collect::<Result<_, _>>()
        .unwrap();
    let suite = run_suite(
        &shapes,
        dir.path().join("eval"),
        ProfileSet::built_in(),
        |_| {},
    )
    .await
    .expect("the evaluation runs");
    assert_eq!(suite.worlds.len(), shapes.len());
    suite
}

/// Every rival `profile` does not beat on every world, by world.
fn losses(suite: &SuiteReport, profile: &str, tuned: bool) -> BTreeMap<String, Vec<String>> {
    let mut losses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for report in &suite.worlds {
        let table = report.table();
        let ours = report
            .ndcg(profile)
            .unwrap_or_else(|| panic!("{profile} scored on {}\n{table}", report.world));
        let mut rivals: Vec<(String, f64)> = BASELINES
            .iter()
            .filter_map(|b| report.ndcg(b).map(|n| ((*b).to_owned(), n)))
            .collect();
        assert_eq!(rivals.len(), BASELINES.len(), "{}\n{table}", report.world);
        if tuned {
            for (family, _) in TUNED_FAMILIES {
                let t = report
                    .tuned
                    .iter()
                    .find(|t| t.family == family)
                    .unwrap_or_else(|| panic!("{family} tuned on {}\n{table}", report.world));
                assert_eq!(report.row(&t.best).map(|r| r.kind), Some(RowKind::Tuned));
                rivals.push((t.best.clone(), t.ndcg));
            }
        }
        for (name, theirs) in rivals {
            if ours <= theirs {
                losses
                    .entry(report.world.clone())
                    .or_default()
                    .push(format!("{profile} {ours:.4} <= {name} {theirs:.4}"));
            }
        }
    }
    losses
}

fn tables(suite: &SuiteReport) -> String {
    let worlds: String = suite
        .worlds
        .iter()
        .map(|r| format!("\n## {}\n{}", r.world, r.table()))
        .collect();
    format!("{}{worlds}", suite.table())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_every_small_world_the_learned_profile_beats_every_tuned_baseline_and_learns_the_member()
{
    let suite = small().await;
    // The learned profile against every classic and the best half-life of each tuned family.
    let lost = losses(&suite, "learned", true);
    assert!(lost.is_empty(), "{lost:#?}\n{}", tables(&suite));
    // The default (hand-weighted) profile against the classics.
    let default = ProfileSet::built_in().default_profile().name.clone();
    let lost = losses(&suite, &default, false);
    assert!(lost.is_empty(), "{lost:#?}\n{}", tables(&suite));
    for report in &suite.worlds {
        let table = report.table();
        // The ablations were scored too, one per weighted signal.
        assert!(
            report.rows.iter().any(|r| r.kind == RowKind::Ablation),
            "{}\n{table}",
            report.world
        );
        assert!(report.sampled >= 40, "{}\n{table}", report.world);
        // The feed trained a model from the loaded log before anything was scored.
        let model = report.model.as_ref().expect("a model was trained");
        assert!(model.version >= 1 && model.examples > 1000, "{model:?}");
        let react = model.kind("react").expect("a react model");
        assert!(react.holdout_auc > 0.65, "{}: {react:?}", report.world);
        if report.world.contains("interest") {
            // Where the truth is personal, the personal part earns its place on the holdout.
            assert!(
                react.holdout_auc > react.global_only_auc
                    && react.holdout_log_loss < react.global_only_log_loss,
                "{}: {react:?}",
                report.world
            );
        } else {
            // Elsewhere it must not cost more than it brings.
            assert!(
                react.holdout_log_loss < react.global_only_log_loss * 1.01,
                "{}: {react:?}",
                report.world
            );
        }
    }
}
