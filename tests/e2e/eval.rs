//! Ranking quality at a small size (`pronet bench eval`): a simulated world with planted
//! interests, loaded through the API into its own embedded suite; the default profile must beat
//! every classic baseline by NDCG@10. A floor, not a timing.

use pronet::bench::eval::{run, EvalShape, BASELINES};
use pronet_feed::domain::ProfileSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pronet_ranks_better_than_every_classic_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let shape = EvalShape {
        members: 300,
        mean_degree: 20,
        sample: 80,
        seed: 11,
        ..Default::default()
    };
    let report = run(&shape, dir.path().join("eval"), ProfileSet::built_in())
        .await
        .expect("the evaluation runs");
    let table = report.table("pronet");
    let pronet = report.ndcg("pronet").unwrap();
    for baseline in BASELINES {
        let b = report.ndcg(baseline).unwrap();
        assert!(
            pronet > b,
            "pronet {pronet:.4} <= {baseline} {b:.4}\n{table}"
        );
    }
    // The ablations were scored too, one per weighted signal.
    assert!(report.ndcg("pronet-no-quality").is_some(), "{table}");
    assert!(report.sampled >= 40, "{table}");
    assert!(pronet < 1.0);
}
