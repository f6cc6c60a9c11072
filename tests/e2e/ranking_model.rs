//! The learned ranking model, end to end: the feed trains it from the views and engagement it
//! was fed, reports it, and a feed ranked with the learned profile shows each item's
//! predictions term by term, so its score is reproducible from the response.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::ReactionType;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::post::v1::Visibility;

use crate::helpers::{spawn_app, TestApp};

async fn model_in_use(app: &TestApp) -> fpb::RankingModel {
    app.feed
        .clone()
        .get_ranking_model(app.service_req(fpb::GetRankingModelRequest {}))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap()
}

#[tokio::test]
async fn the_model_trains_from_the_log_and_learned_scores_are_reproducible_from_the_response() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let mut feed = app.feed.clone();
    // Before any training: version 0 (the priors).
    let before = model_in_use(&app).await;
    assert_eq!(before.version, 0);

    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    let cy = app.member("cy_lee").await;
    app.connect(&ada, &bob).await;
    app.connect(&cy, &bob).await;
    let rust = app
        .post(&bob, "Notes on #rust lifetimes", Visibility::Public)
        .await;
    let golf = app.post(&bob, "My #golf weekend", Visibility::Public).await;
    // Views an hour and more ago (an import keeps each view's time), Cy reacting to #rust.
    let hour = 3_600_000_000i64;
    let now = pronet_common::time::now_micros();
    let view = |post: &str, member: &str, t: i64| epb::ImportedImpression {
        post_id: post.into(),
        member_id: member.into(),
        view_time: Some(pronet_common::time::to_timestamp(t)),
    };
    app.engagement
        .clone()
        .import_engagement(app.service_req(epb::ImportEngagementRequest {
            impressions: vec![
                view(&rust.id, &cy.id, now - 3 * hour),
                view(&golf.id, &cy.id, now - 3 * hour),
            ],
            ..Default::default()
        }))
        .await
        .unwrap();
    app.react(&cy, &rust, ReactionType::Like).await;
    app.settle().await;

    let trained = feed
        .train_ranking_model(app.service_req(fpb::TrainRankingModelRequest {}))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(trained.version, 1);
    // Two views whose label window closed; the reaction came after the window (it was made
    // now, the view three hours ago), so no positive.
    assert_eq!(trained.examples, 2);
    assert!(trained.log_records >= 3, "{trained:?}");
    assert_eq!(trained.kinds.len(), 3);
    assert_eq!(trained.label_window_seconds, 3600);
    assert!(trained
        .features
        .iter()
        .any(|f| f == "member_x_hashtag (hashed)"));
    let got = model_in_use(&app).await;
    // (AUC is NaN without positives, so compare what identifies the model.)
    assert_eq!(
        (got.version, got.examples, got.train_time),
        (trained.version, trained.examples, trained.train_time)
    );

    // Ada's feed with the learned profile: every item explains its predictions.
    let page = feed
        .get_feed(app.req(
            &ada,
            fpb::GetFeedRequest {
                member_id: ada.id.clone(),
                page_size: 10,
                ranking_profile: "learned".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.ranking_profile, "learned");
    assert_eq!(page.items.len(), 2);
    for item in &page.items {
        assert_eq!(item.predictions.len(), 3);
        let mut expected = 0.0;
        for p in &item.predictions {
            assert_eq!(p.model_version, 1);
            let logit: f64 = p.terms.iter().map(|t| t.contribution).sum();
            let prob = 1.0 / (1.0 + (-logit).exp());
            assert!((prob - p.probability).abs() < 1e-9, "{p:?}");
            for t in &p.terms {
                assert!((t.contribution - t.weight * t.value).abs() < 1e-12, "{t:?}");
            }
            expected += p.probability * p.value;
        }
        assert!(item
            .predictions
            .iter()
            .flat_map(|p| &p.terms)
            .any(|t| t.name.starts_with("member_x_hashtag:#")));
        let signal = item
            .signals
            .iter()
            .find(|s| s.name == "expected_engagement")
            .expect("the learned signal");
        assert!((signal.value - expected.ln()).abs() < 1e-9, "{signal:?}");
        let sum: f64 = item.signals.iter().map(|s| s.contribution).sum();
        assert!((item.score - sum.exp()).abs() < 1e-9 * item.score.max(1.0));
    }
    // ExplainFeedItem shows the same learned terms for one post.
    let explained = feed
        .explain_feed_item(app.req(
            &ada,
            fpb::ExplainFeedItemRequest {
                member_id: ada.id.clone(),
                post_id: rust.id.clone(),
                ranking_profile: "learned".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(explained.position >= 1, "{explained:?}");
    let item = explained.item.unwrap();
    assert_eq!(item.predictions.len(), 3);
    for p in &item.predictions {
        let logit: f64 = p.terms.iter().map(|t| t.contribution).sum();
        assert!(
            (1.0 / (1.0 + (-logit).exp()) - p.probability).abs() < 1e-9,
            "{p:?}"
        );
    }
    assert!(item
        .predictions
        .iter()
        .flat_map(|p| &p.terms)
        .any(|t| t.name == "member_x_hashtag:#rust"));

    // The default profile does not read the model: no predictions.
    let default = app.feed_page(&ada, 10, "").await;
    assert!(default.items.iter().all(|i| i.predictions.is_empty()));
}
