//! Faults and overload, end to end: a dependency hung, down and back, too much load, hostile
//! metadata and tampered page tokens. A dependency is made to fail by a TCP proxy between a
//! server and it ([`FaultProxy`]): passing bytes, holding them (a hung process: connections
//! stay open, nothing comes back) or closing every connection (a process that is down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pronet::suite::{serve_service, Dependencies, ServiceKind, ServiceOptions};
use pronet::{RunningSuite, SuiteConfig};
use pronet_common::metrics::Metrics;
use pronet_common::shutdown::Shutdown;
use pronet_common::upstream::CallLimits;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::feed::v1 as fpb;
use pronet_proto::feed::v1::feed_service_client::FeedServiceClient;
use pronet_proto::post::v1::Visibility;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::Code;

use crate::helpers::{channel, spawn_app, Member, TestApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Hang,
    Down,
}

/// A TCP proxy to `upstream` whose behaviour the test switches.
struct FaultProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl FaultProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watching) = watch::channel(Mode::Pass);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *watching.borrow() == Mode::Down {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watching.clone()));
                tokio::spawn(pump(sr, cw, watching.clone()));
            }
        });
        Self { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Copies `from` to `to` while passing; holds while hung; closes when down.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Down => return,
            Mode::Hang => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Mode::Pass => {
                tokio::select! {
                    read = from.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if to.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    },
                    changed = mode.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Options for one more server of `app`'s suite whose dependencies are `deps`.
fn options(app: &TestApp, deps: Dependencies, database: &std::path::Path) -> ServiceOptions {
    ServiceOptions {
        database: pronet_common::db::DatabaseUrl::Sqlite(database.to_path_buf()),
        dependencies: deps,
        drain_delay: Duration::ZERO,
        feed_window: Duration::from_secs(14 * 86_400),
        feed_memory_budget: None,
        feed_saved_index: None,
        ranking_profiles: None,
        call_limits: CallLimits::default(),
        auth: app.auth.clone(),
        metrics: None,
        nats: None,
        shutdown: Shutdown::new(),
        admission: Default::default(),
    }
}

/// Starts one more server of `kind` with `opts`; its address and its stop signal.
async fn start_server(kind: ServiceKind, opts: ServiceOptions) -> (SocketAddr, Shutdown) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Shutdown::new();
    let s = stop.clone();
    tokio::spawn(async move { serve_service(kind, listener, &opts, s).await });
    (addr, stop)
}

/// A GetFeed of `member` with a deadline of `timeout`.
async fn get_feed(
    feed: &mut FeedServiceClient<tonic::transport::Channel>,
    app: &TestApp,
    member: &Member,
    page_size: i32,
    page_token: &str,
    timeout: Duration,
) -> Result<fpb::GetFeedResponse, tonic::Status> {
    let mut req = app.req(
        member,
        fpb::GetFeedRequest {
            member_id: member.id.clone(),
            page_size,
            page_token: page_token.to_owned(),
            ranking_profile: String::new(),
        },
    );
    req.set_timeout(timeout);
    feed.get_feed(req).await.map(|r| r.into_inner())
}

#[tokio::test]
async fn a_hung_or_down_post_service_degrades_feed_pages_instead_of_failing_them() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_f").await;
    let bob = app.member("bob_f").await;
    let cat = app.member("cat_f").await;
    app.connect(&ada, &bob).await;
    app.connect(&ada, &cat).await;
    for i in 0..6 {
        let author = if i % 2 == 0 { &bob } else { &cat };
        app.post(author, &format!("Post {i} #rust"), Visibility::Public)
            .await;
    }
    app.settle().await;

    // A second feed replica whose post service is behind the proxy.
    let addrs = app.addrs();
    let proxy = FaultProxy::start(addrs.post).await;
    let dir = tempfile::tempdir().unwrap();
    let deps = Dependencies {
        profile: addrs.profile.to_string(),
        post: proxy.addr.to_string(),
        engagement: addrs.engagement.to_string(),
    };
    let metrics = Metrics::new();
    let mut opts = options(&app, deps, &dir.path().join("unused.db"));
    opts.metrics = Some(metrics.clone());
    let (feed_addr, stop) = start_server(ServiceKind::Feed, opts).await;
    let mut feed = FeedServiceClient::new(channel(feed_addr).await);
    let second = Duration::from_secs(1);
    // Ready once its index has loaded (UNAVAILABLE until then).
    let mut warm = None;
    for _ in 0..500 {
        match get_feed(&mut feed, &app, &ada, 2, "", second).await {
            Ok(page) if page.items.len() == 2 => {
                warm = Some(page);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let warm = warm.expect("the replica serves");
    assert!(!warm.degraded);
    let mut kept: Vec<String> = warm
        .items
        .iter()
        .map(|i| i.post.clone().unwrap().id)
        .collect();

    // One slow answer is no evidence of an outage: the very next page asks the post service
    // again (and is whole), instead of skipping it for a while.
    proxy.set(Mode::Hang);
    let slow = get_feed(&mut feed, &app, &ada, 10, "", second)
        .await
        .unwrap();
    assert!(slow.degraded, "a page waits at most its budget for bodies");
    proxy.set(Mode::Pass);
    let next = get_feed(&mut feed, &app, &ada, 10, "", second)
        .await
        .unwrap();
    assert!(
        !next.degraded,
        "one slow call made the next page skip the post service"
    );
    // Its bodies are kept too.
    kept.extend(next.items.iter().map(|i| i.post.clone().unwrap().id));

    let broken = r#"pronet_dependency_connection_failures_total{dependency="post"}"#;
    for mode in [Mode::Hang, Mode::Down] {
        if mode == Mode::Down {
            // Past the backoff the hang opened, so this page really calls the post service
            // and finds it down (rather than skipping it while backing off).
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        let failures_before = metrics.counter(broken);
        proxy.set(mode);
        let page = get_feed(&mut feed, &app, &ada, 10, "", second)
            .await
            .unwrap_or_else(|s| panic!("{mode:?}: {s:?}"));
        assert!(page.degraded, "{mode:?}");
        assert_eq!(page.items.len(), 6, "{mode:?}: every post, from the index");
        for item in &page.items {
            let post = item.post.as_ref().unwrap();
            assert!(post.author_id == bob.id || post.author_id == cat.id);
            assert!(post.create_time.is_some());
            assert_eq!(post.hashtags, ["rust"]);
            // Bodies served before are kept; the others are partial.
            assert_eq!(item.partial, !kept.contains(&post.id), "{mode:?}");
            assert_eq!(post.text.is_empty(), item.partial);
            assert!(!item.signals.is_empty());
        }
        // Later pages of that ranking are served too.
        let first = get_feed(&mut feed, &app, &ada, 3, "", second)
            .await
            .unwrap();
        let next = get_feed(&mut feed, &app, &ada, 3, &first.next_page_token, second)
            .await
            .unwrap();
        assert_eq!(next.items.len(), 3);
        assert!(next.degraded);
        if mode == Mode::Down {
            assert!(
                metrics.counter(broken) > failures_before,
                "the down post service was called and found unreachable"
            );
        }
    }

    // Restarted: pages are whole again (after the short backoff).
    proxy.set(Mode::Pass);
    let mut whole = false;
    for _ in 0..200 {
        let page = get_feed(&mut feed, &app, &ada, 10, "", second)
            .await
            .unwrap();
        if !page.degraded {
            assert!(page.items.iter().all(|i| !i.partial));
            whole = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(whole, "pages stay degraded after the post service is back");
    stop.trigger();
}

#[tokio::test]
async fn reactions_fail_fast_and_retryable_while_the_post_service_hangs_or_is_down() {
    use pronet_common::event_head::{DOWN_AFTER_FAILURES, DOWN_BACKOFF};
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_r").await;
    let bob = app.member("bob_r").await;
    app.connect(&ada, &bob).await;
    let post = app.post(&bob, "React to me", Visibility::Public).await;

    let addrs = app.addrs();
    let proxy = FaultProxy::start(addrs.post).await;
    let dir = tempfile::tempdir().unwrap();
    let deps = Dependencies {
        profile: addrs.profile.to_string(),
        post: proxy.addr.to_string(),
        engagement: addrs.engagement.to_string(),
    };
    let metrics = Metrics::new();
    let mut opts = options(&app, deps, &dir.path().join("engagement.db"));
    opts.metrics = Some(metrics.clone());
    let (addr, stop) = start_server(ServiceKind::Engagement, opts).await;
    let mut eng = EngagementServiceClient::new(channel(addr).await);
    let react = |eng: &mut EngagementServiceClient<tonic::transport::Channel>| {
        let mut req = app.req(
            &ada,
            epb::ReactRequest {
                member_id: ada.id.clone(),
                post_id: post.id.clone(),
                reaction_type: epb::ReactionType::Like as i32,
            },
        );
        req.set_timeout(Duration::from_secs(3));
        let mut eng = eng.clone();
        async move { eng.react(req).await }
    };
    // Through the proxy, once the visibility cache has loaded (so head probes run).
    let mut probed = false;
    for _ in 0..200 {
        react(&mut eng).await.expect("a react through the proxy");
        if metrics.counter(r#"pronet_visibility_checks_total{answered_by="cache"}"#) > 0 {
            probed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        probed,
        "the engagement service never answered from its cache"
    );
    let series = |reason: &str| {
        format!(r#"pronet_dependency_probe_failures_total{{dependency="post",reason="{reason}"}}"#)
    };
    let refused = r#"pronet_dependency_refusals_total{dependency="post"}"#;

    proxy.set(Mode::Hang);
    for _ in 0..3 {
        let err = react(&mut eng).await.unwrap_err();
        // Not the caller's deadline: the server found its dependency down and said so.
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(err.message(), "post service unavailable");
    }
    assert!(
        metrics.counter(&series("timeout")) >= u64::from(DOWN_AFTER_FAILURES),
        "found down after consecutive timed-out probes"
    );
    assert!(metrics.counter(refused) >= 1, "later calls refused at once");

    // Down, once the hang's backoff has passed: a probe finds it unreachable.
    tokio::time::sleep(DOWN_BACKOFF + Duration::from_millis(200)).await;
    let unreachable = metrics.counter(&series("unreachable"));
    proxy.set(Mode::Down);
    for _ in 0..3 {
        let err = react(&mut eng).await.unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert_eq!(err.message(), "post service unavailable");
    }
    eprintln!(
        "DEBUG {}",
        metrics
            .render()
            .lines()
            .filter(|l| l.contains("dependency"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        metrics.counter(&series("unreachable")) > unreachable,
        "the down path ran: a probe could not reach the post service"
    );

    proxy.set(Mode::Pass);
    let mut back = false;
    for _ in 0..100 {
        if react(&mut eng).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "reactions work again once the post service is back");
    stop.trigger();
}

#[tokio::test]
async fn past_its_limit_a_server_sheds_calls_but_always_answers_health_checks() {
    let Some(storage) = crate::helpers::TestStorage::new("overload").await else {
        return;
    };
    let secret = format!(
        "{}{}",
        pronet_common::ids::new_id(),
        pronet_common::ids::new_id()
    );
    let auth =
        Arc::new(pronet_common::auth::AuthConfig::hs256(secret.as_bytes(), "pronet").unwrap());
    let mut config = SuiteConfig::new(
        storage.storage(),
        pronet::SuiteAddrs::ephemeral(),
        auth.clone(),
    );
    config.admission = pronet_common::admission::Override {
        max_in_flight: Some(1),
        queue_timeout: Some(Duration::from_millis(1)),
    };
    let suite = RunningSuite::start(config).await.expect("suite starts");
    let addrs = suite.addrs;
    let app = TestApp {
        suite: Some(suite),
        storage,
        auth,
        secret,
        profiles: pronet_proto::profile::v1::profile_service_client::ProfileServiceClient::new(
            channel(addrs.profile).await,
        ),
        posts: pronet_proto::post::v1::post_service_client::PostServiceClient::new(
            channel(addrs.post).await,
        ),
        engagement: EngagementServiceClient::new(channel(addrs.engagement).await),
        feed: FeedServiceClient::new(channel(addrs.feed).await),
    };
    let ada = app.member("ada_o").await;
    let bob = app.member("bob_o").await;
    app.connect(&ada, &bob).await;
    for i in 0..20 {
        app.post(&bob, &format!("Busy {i}"), Visibility::Public)
            .await;
    }
    app.settle().await;

    let health = tonic_health::pb::health_client::HealthClient::new(channel(addrs.feed).await);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        if i % 4 == 0 {
            let mut health = health.clone();
            calls.spawn(async move {
                let r = health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "pronet.feed.v1.FeedService".into(),
                    })
                    .await;
                ("health", r.map(|_| ()).map_err(|s| s.code()))
            });
        } else {
            let mut feed = app.feed.clone();
            let req = app.req(
                &ada,
                fpb::GetFeedRequest {
                    member_id: ada.id.clone(),
                    page_size: 20,
                    ..Default::default()
                },
            );
            calls.spawn(async move {
                (
                    "feed",
                    feed.get_feed(req).await.map(|_| ()).map_err(|s| s.code()),
                )
            });
        }
    }
    let (mut served, mut shed) = (0, 0);
    while let Some(done) = calls.join_next().await {
        match done.unwrap() {
            ("health", r) => assert_eq!(r, Ok(()), "a health check was refused"),
            (_, Ok(())) => served += 1,
            (_, Err(Code::ResourceExhausted)) => shed += 1,
            (_, Err(code)) => panic!("a GetFeed failed with {code:?}"),
        }
    }
    // 48 calls at once against one place and a 1 ms queue: a few are served (one at a time),
    // most are shed, and every one is either.
    eprintln!("overload: {served} served, {shed} shed of 48");
    assert_eq!(served + shed, 48);
    assert!(served >= 1, "nothing was served");
    assert!(
        shed * 2 >= 48,
        "only {shed} of 48 calls were shed against a limit of 1 ({served} served)"
    );
}

#[tokio::test]
async fn oversized_metadata_is_refused_per_call_and_the_connection_lives_on() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_m").await;
    app.settle().await;
    let mut feed = app.feed.clone();
    for size in [20 * 1024, 200 * 1024] {
        let mut req = app.req(
            &ada,
            fpb::GetFeedRequest {
                member_id: ada.id.clone(),
                ..Default::default()
            },
        );
        req.metadata_mut()
            .insert("x-padding", "a".repeat(size).parse().unwrap());
        let err = feed.get_feed(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{size}: {err:?}");
        assert!(err.message().starts_with("request metadata is"), "{err:?}");
        // The same connection still serves.
        let ok = feed
            .get_feed(app.req(
                &ada,
                fpb::GetFeedRequest {
                    member_id: ada.id.clone(),
                    ..Default::default()
                },
            ))
            .await;
        assert!(ok.is_ok(), "{ok:?}");
    }
}

#[tokio::test]
async fn a_tampered_page_token_is_invalid_argument() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_t").await;
    let bob = app.member("bob_t").await;
    app.connect(&ada, &bob).await;
    for i in 0..4 {
        app.post(&bob, &format!("Page {i}"), Visibility::Public)
            .await;
    }
    let page = app.feed_page(&ada, 2, "").await;
    assert!(!page.next_page_token.is_empty());
    let mut bytes = URL_SAFE_NO_PAD.decode(&page.next_page_token).unwrap();
    // Drop the last served hash's byte: the page would show an item again.
    let at = bytes.len() - 17;
    bytes[at] ^= 0xff;
    let tampered = URL_SAFE_NO_PAD.encode(bytes);
    let err = app
        .feed
        .clone()
        .get_feed(app.req(
            &ada,
            fpb::GetFeedRequest {
                member_id: ada.id.clone(),
                page_size: 2,
                page_token: tampered,
                ranking_profile: String::new(),
            },
        ))
        .await
        .unwrap_err();
    crate::helpers::assert_bad_request(&err, &["page_token"]);
    assert!(err.message().contains("altered"), "{err:?}");
    // The genuine one still works.
    let next = app.feed_page(&ada, 2, &page.next_page_token).await;
    assert_eq!(next.items.len(), 2);
}

#[tokio::test]
async fn a_replica_stopped_under_load_drains_without_failing_a_call() {
    use pronet_proto::profile::v1 as prpb;
    use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_d").await;
    // Two more replicas of the profile service on the suite's own profile store.
    let addrs = app.addrs();
    let deps = Dependencies {
        profile: addrs.profile.to_string(),
        post: addrs.post.to_string(),
        engagement: addrs.engagement.to_string(),
    };
    let mut opts = options(&app, deps, std::path::Path::new("unused"));
    opts.database = app.storage.storage().database(ServiceKind::Profile);
    opts.drain_delay = Duration::from_millis(300);
    let (a, stop_a) = start_server(ServiceKind::Profile, opts.clone()).await;
    let (b, stop_b) = start_server(ServiceKind::Profile, opts).await;
    // A client balanced over both, as the services balance over a headless Service's
    // addresses: each used while its health says SERVING.
    let balanced = pronet_common::upstream::balanced_over(&[a, b], CallLimits::default());
    let client = ProfileServiceClient::new(balanced);
    let mut health_a = tonic_health::pb::health_client::HealthClient::new(channel(a).await);

    let load = {
        let (client, app_req) = (client.clone(), ada.clone());
        let token = app
            .auth
            .member_token(&ada.id, Duration::from_secs(600))
            .unwrap();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            let end = tokio::time::Instant::now() + Duration::from_millis(1500);
            let mut calls = tokio::task::JoinSet::new();
            while tokio::time::Instant::now() < end {
                let mut c = client.clone();
                let req = pronet_common::auth::with_token(
                    prpb::GetProfileRequest {
                        lookup: Some(prpb::get_profile_request::Lookup::MemberId(
                            app_req.id.clone(),
                        )),
                    },
                    &token,
                );
                calls.spawn(async move { c.get_profile(req).await.map(|_| ()) });
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            while let Some(r) = calls.join_next().await {
                match r.unwrap() {
                    Ok(()) => ok += 1,
                    Err(s) => failed.push(s),
                }
            }
            (ok, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_a.trigger();
    // Not serving first (so balancers and probes stop sending), still answering meanwhile.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = health_a
        .check(tonic_health::pb::HealthCheckRequest {
            service: "pronet.profile.v1.ProfileService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 100, "only {ok} calls served");
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {:?}",
        failed.len(),
        ok + failed.len(),
        failed.first()
    );
    // Replica A is gone; B still serves.
    assert!(
        tokio::net::TcpStream::connect(a).await.is_err(),
        "A still listens"
    );
    stop_b.trigger();
}

#[tokio::test]
async fn after_a_restart_thousands_of_concurrent_reacts_all_succeed() {
    let Some(mut app) = spawn_app().await else {
        return;
    };
    let author = app.member("author_rs").await;
    let mut fans = Vec::new();
    for i in 0..40 {
        fans.push(app.member(&format!("fan_rs_{i}")).await);
    }
    let mut posts = Vec::new();
    for i in 0..25 {
        posts.push(
            app.post(&author, &format!("Restart {i}"), Visibility::Public)
                .await
                .id,
        );
    }
    app.settle().await;
    // The whole suite restarted on its data, as a rolling deploy restarts every service.
    let metrics = Metrics::new();
    app.restart_counted(Some(metrics.clone())).await;

    // 4,000 Reacts, 64 in flight at a time, as soon as the suite answers: every one succeeds
    // (none is refused because a dependency looked down while it was not), and no connection
    // between the services is torn down on the way (which retries would hide).
    const TOTAL: usize = 4000;
    let places = Arc::new(tokio::sync::Semaphore::new(64));
    let kinds = [
        epb::ReactionType::Like,
        epb::ReactionType::Celebrate,
        epb::ReactionType::Support,
        epb::ReactionType::Insightful,
    ];
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..TOTAL {
        let permit = places.clone().acquire_owned().await.unwrap();
        let fan = &fans[i % fans.len()];
        let req = app.req(
            fan,
            epb::ReactRequest {
                member_id: fan.id.clone(),
                post_id: posts[(i / fans.len()) % posts.len()].clone(),
                reaction_type: kinds[i % kinds.len()] as i32,
            },
        );
        let mut eng = app.engagement.clone();
        calls.spawn(async move {
            let r = eng.react(req).await.map(|_| ());
            drop(permit);
            r
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = calls.join_next().await {
        if let Err(status) = done.unwrap() {
            failed.push(status);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {TOTAL} Reacts failed after a restart; the first: {:?}",
        failed.len(),
        failed.first()
    );
    let text = metrics.render();
    let dependency_trouble: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("pronet_dependency_connection_failures_total")
                || l.starts_with("pronet_dependency_refusals_total")
        })
        .collect();
    assert!(
        dependency_trouble.is_empty(),
        "connections torn down or calls refused under ordinary load: {dependency_trouble:?}"
    );
    assert!(
        metrics.counter(r#"pronet_visibility_checks_total{answered_by="cache"}"#) > 0,
        "the Reacts were checked by the cache (its head probes ran)"
    );
}
