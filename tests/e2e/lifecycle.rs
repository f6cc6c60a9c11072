//! Health, draining, restarts and durability.

use pronet_proto::engagement::v1 as epb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::{channel, spawn_app};

#[tokio::test]
async fn restart_on_the_same_data_dir_keeps_everything() {
    let Some(mut app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada").await;
    let bob = app.member("bob").await;
    app.connect(&ada, &bob).await;
    let cy = app.member("cy_lee").await;
    app.connect(&cy, &bob).await;
    app.follow_hashtag(&ada, "rust").await;
    let post = app
        .post(&bob, "Durable #rust thoughts", ppb::Visibility::Connections)
        .await;
    app.react(&ada, &post, epb::ReactionType::Love).await;
    app.comment(&ada, &post, "kept?").await;
    app.share(&ada, &post).await;

    app.restart().await;

    let mut profiles = app.profiles.clone();
    let again = profiles
        .get_profile(app.req(
            &ada,
            prpb::GetProfileRequest {
                lookup: Some(prpb::get_profile_request::Lookup::Handle("ada".into())),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    // The same profile, now with one connection.
    assert_eq!(again.connection_count, 1);
    assert_eq!(
        pronet_proto::profile::v1::Profile {
            connection_count: 0,
            ..again
        },
        ada.profile
    );
    let conns = profiles
        .list_connections(app.req(
            &ada,
            prpb::ListConnectionsRequest {
                member_id: ada.id.clone(),
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .connections;
    assert_eq!(conns.len(), 1);
    let mut posts = app.posts.clone();
    let got = posts
        .get_post(app.req(
            &ada,
            ppb::GetPostRequest {
                post_id: post.id.clone(),
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(got, post);
    let mut eng = app.engagement.clone();
    let stats = eng
        .batch_get_post_stats(app.req(
            &ada,
            epb::BatchGetPostStatsRequest {
                post_ids: vec![post.id.clone()],
                viewer_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(
        (stats[0].total_reactions, stats[0].comments, stats[0].shares),
        (1, 1, 1)
    );
    // Cy sees the post; Ada engaged with it, and that is remembered: it stays out of her feed.
    let feed = app.whole_feed(&cy, 10).await;
    assert_eq!(feed.len(), 1);
    assert!(app.whole_feed(&ada, 10).await.is_empty());
}

#[tokio::test]
async fn every_server_reports_serving_then_not_serving_while_draining() {
    use pronet::{RunningSuite, ServiceKind, SuiteAddrs, SuiteConfig};
    use std::time::Duration;

    let Some(storage) = crate::helpers::TestStorage::new("health").await else {
        return;
    };
    let auth = pronet_common::auth::AuthConfig::hs256(&[9u8; 32], "pronet").unwrap();
    let mut config = SuiteConfig::new(storage.storage(), SuiteAddrs::ephemeral(), auth.into());
    config.drain_delay = Duration::from_millis(1500);
    let suite = RunningSuite::start(config).await.unwrap();
    let addrs = suite.addrs;
    let mut clients = Vec::new();
    for kind in ServiceKind::ALL {
        let mut health = HealthClient::new(channel(addrs.get(kind)).await);
        for service in ["", kind.grpc_service()] {
            let status = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
        }
        let unknown = health
            .check(HealthCheckRequest {
                service: "no.such.Service".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        clients.push((kind, health));
    }

    let stop = suite.shutdown_handle();
    let stopped = tokio::spawn(suite.wait());
    stop.trigger();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (kind, health) in &mut clients {
        let status = health
            .check(HealthCheckRequest {
                service: kind.grpc_service().into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::NotServing as i32, "{kind:?}");
    }
    stopped.await.unwrap().unwrap();
}
