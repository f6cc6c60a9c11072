//! Faults of the event path, end to end: a feed replica whose sources sit behind a TCP proxy
//! ([`CutProxy`]) that breaks an export midway or the live streams after it, and a JetStream
//! stream that lost an event. Each time the replica's index must end equal to one rebuilt from
//! scratch, and it must have rebuilt by export only where nothing else could repair it (a
//! rebuild repairs lost events, and so would hide them).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pronet_feed::events::SharedIndex;
use pronet_proto::engagement::v1 as epb;
use pronet_proto::events::v1 as evpb;
use pronet_proto::events::v1::event::Payload;
use pronet_proto::events::v1::event_service_client::EventServiceClient;
use pronet_proto::post::v1 as ppb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::events::{
    extra_feed, feed_config, random_write, saved_copy_at, saving_feed, settled_view, Rng,
};
use crate::helpers::{channel, spawn_app, spawn_app_with, Member, TestApp};

/// Whether a [`CutProxy`] passes connections or drops them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Pass,
    Down,
}

/// A TCP proxy to one source: it passes bytes, drops every connection while down (a source
/// that is unreachable), and can cut its first connection once a number of bytes came back
/// from the source (a stream broken midway).
struct CutProxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    /// Connections passed on to the source.
    connections: Arc<AtomicUsize>,
    /// Connections cut after their byte budget.
    cuts: Arc<AtomicUsize>,
}

impl CutProxy {
    /// A proxy to `upstream`; its first connection is cut after `first_budget` bytes from the
    /// source, when given.
    async fn start(upstream: SocketAddr, first_budget: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (link, watching) = watch::channel(Link::Pass);
        let connections = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (count, cut_count) = (connections.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if *watching.borrow() == Link::Down {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let first = count.fetch_add(1, Ordering::SeqCst) == 0;
                let budget = first_budget.filter(|_| first);
                // Either direction ending ends the other: the connection closes as a whole.
                let (closed, _) = watch::channel(false);
                let closed = Arc::new(closed);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watching.clone(), closed.clone(), None, None));
                tokio::spawn(pump(
                    sr,
                    cw,
                    watching.clone(),
                    closed,
                    budget,
                    Some(cut_count.clone()),
                ));
            }
        });
        Self {
            addr,
            link,
            connections,
            cuts,
        }
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to` until either side closes, the link goes down, or `budget` bytes have
/// passed (then the connection is cut and counted in `cuts`).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
    closed: Arc<watch::Sender<bool>>,
    mut budget: Option<usize>,
    cuts: Option<Arc<AtomicUsize>>,
) {
    let mut ended = closed.subscribe();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *link.borrow_and_update() == Link::Down || *ended.borrow_and_update() {
            break;
        }
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let pass = budget.map_or(n, |b| n.min(b));
                if to.write_all(&buf[..pass]).await.is_err() {
                    break;
                }
                if let Some(left) = budget.as_mut() {
                    *left -= pass;
                    if *left == 0 {
                        if let Some(cuts) = &cuts {
                            cuts.fetch_add(1, Ordering::SeqCst);
                        }
                        break;
                    }
                }
            }
            changed = link.changed() => if changed.is_err() { break },
            _ = ended.changed() => {}
        }
    }
    closed.send_replace(true);
}

/// A feed replica of the suite whose sources are reached at `profile`, `post` and
/// `engagement` (proxies, or the services themselves), once it is ready.
async fn replica_via(
    app: &TestApp,
    profile: SocketAddr,
    post: SocketAddr,
    engagement: SocketAddr,
) -> SharedIndex {
    let mut config = feed_config(app);
    config.upstreams.profile_addr = profile.to_string();
    config.upstreams.post_addr = post.to_string();
    config.upstreams.engagement_addr = engagement.to_string();
    let built = pronet_feed::build(&config).expect("feed builds");
    let mut ready = built.ready.clone();
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
        .await
        .expect("the replica loads in time")
        .expect("ready");
    built.index
}

fn exports(index: &SharedIndex) -> u64 {
    index.read().unwrap_or_else(|p| p.into_inner()).exports()
}

async fn members(app: &TestApp, prefix: &str, n: usize) -> Vec<Member> {
    let mut members = Vec::new();
    for i in 0..n {
        members.push(app.member(&format!("{prefix}_{i}")).await);
    }
    members
}

/// The encoded size of each message of `addr`'s ExportState, as a replica reads it.
async fn export_message_sizes(app: &TestApp, addr: SocketAddr) -> Vec<usize> {
    let mut client =
        EventServiceClient::new(channel(addr).await).max_decoding_message_size(64 << 20);
    let mut stream = client
        .export_state(app.service_req(evpb::ExportStateRequest::default()))
        .await
        .expect("export")
        .into_inner();
    let mut sizes = Vec::new();
    while let Some(message) = stream.message().await.expect("export message") {
        sizes.push(prost::Message::encoded_len(&message));
    }
    sizes
}

#[tokio::test]
async fn an_export_cut_midway_is_retried_from_scratch_and_counts_nothing_twice() {
    let Some(app) = spawn_app().await else { return };
    let members = members(&app, "cut", 4).await;
    let mut rng = Rng(0x3C6E_F372_FE94_F82B);
    let mut posts = Vec::new();
    for _ in 0..60 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    // Enough comments for an export of several messages (1,000 events each): counts are what
    // a partial export applied twice would get wrong.
    let post = app
        .post(&members[0], "comment on me", ppb::Visibility::Public)
        .await;
    let comments: Vec<epb::ImportedComment> = (0..2500)
        .map(|i| epb::ImportedComment {
            id: pronet_common::ids::new_id(),
            post_id: post.id.clone(),
            member_id: members[1 + i % 3].id.clone(),
            text: format!("comment {i}"),
            create_time: Some(pronet_common::time::to_timestamp(
                pronet_common::time::now_micros() - 1_000_000,
            )),
        })
        .collect();
    let imported = app
        .engagement
        .clone()
        .import_engagement(app.service_req(epb::ImportEngagementRequest {
            comments,
            ..Default::default()
        }))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(imported.comments, 2500);

    let addrs = app.addrs();
    let sizes = export_message_sizes(&app, addrs.engagement).await;
    assert!(sizes.len() >= 3, "an export of several messages: {sizes:?}");
    // Cut in the middle of the second message: the first was applied when the stream broke.
    let proxy = CutProxy::start(addrs.engagement, Some(sizes[0] + sizes[1] / 2)).await;
    let replica = replica_via(&app, addrs.profile, addrs.post, proxy.addr).await;
    assert_eq!(proxy.cuts(), 1, "the export's connection was cut");
    assert!(proxy.connections() >= 2, "the follower connected again");

    let rebuilt = settled_view(&app, &extra_feed(&app).await).await;
    let view = settled_view(&app, &replica).await;
    assert_eq!(
        view.posts[&post.id].counts.comments, 2500,
        "each comment counted once"
    );
    assert_eq!(
        view, rebuilt,
        "the replica equals an index built from scratch"
    );
    assert_eq!(
        exports(&replica),
        3,
        "one whole export per source: the cut one did not count, its retry did"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_streams_break_resumes_after_its_position_without_exporting_again() {
    let Some(app) = spawn_app().await else { return };
    let members = members(&app, "resume", 6).await;
    let mut rng = Rng(0xA54F_F53A_5F1D_36F1);
    let mut posts = Vec::new();
    for _ in 0..60 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    let addrs = app.addrs();
    let proxies = [
        CutProxy::start(addrs.profile, None).await,
        CutProxy::start(addrs.post, None).await,
        CutProxy::start(addrs.engagement, None).await,
    ];
    let replica = replica_via(&app, proxies[0].addr, proxies[1].addr, proxies[2].addr).await;
    assert_eq!(exports(&replica), 3, "one export per source to start");

    // Writes go on while every source is unreachable twice: the live streams break, and the
    // events committed meanwhile come with the resumed streams.
    let done = std::cell::Cell::new(false);
    let writing = async {
        let mut rng = Rng(0x510E_527F_ADE6_82D1);
        let mut writes = 0;
        while !done.get() {
            random_write(&app, &mut rng, &members, &mut posts).await;
            writes += 1;
        }
        writes
    };
    let breaking = async {
        let mut missed = true;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let connected = proxies.each_ref().map(CutProxy::connections);
            let before = app.event_heads().await;
            proxies.iter().for_each(|p| p.set(Link::Down));
            tokio::time::sleep(Duration::from_millis(400)).await;
            let after = app.event_heads().await;
            proxies.iter().for_each(|p| p.set(Link::Pass));
            missed &= after.iter().zip(before).any(|(a, b)| *a > b);
            // Every follower connects again, after its back-off.
            let mut back = false;
            for _ in 0..500 {
                back = proxies
                    .iter()
                    .zip(connected)
                    .all(|(p, c)| p.connections() > c);
                if back {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(back, "every follower connected again after the break");
        }
        done.set(true);
        missed
    };
    let (writes, missed) = tokio::join!(writing, breaking);
    assert!(
        missed,
        "events were committed while the sources were unreachable"
    );
    assert!(writes > 20, "writes went on throughout: {writes}");

    let rebuilt = settled_view(&app, &extra_feed(&app).await).await;
    assert_eq!(
        settled_view(&app, &replica).await,
        rebuilt,
        "the replica equals an index built from scratch"
    );
    assert_eq!(
        exports(&replica),
        3,
        "the streams resumed after their positions: nothing was exported again"
    );
}

#[tokio::test]
async fn a_gap_in_the_jetstream_stream_is_rebuilt_by_export() {
    let Some(nats) = pronet_common::testing::nats("e2e_gap").await else {
        return;
    };
    let Some(app) = spawn_app_with(Some(nats.config.clone())).await else {
        nats.cleanup().await;
        return;
    };
    let members = members(&app, "gap", 6).await;
    let mut rng = Rng(0x9B05_688C_2B3E_6C1F);
    let mut posts = Vec::new();
    for _ in 0..80 {
        random_write(&app, &mut rng, &members, &mut posts).await;
    }
    // A replica on JetStream saves its settled index, and stops.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed-index.bin");
    let stop = pronet_common::shutdown::Shutdown::new();
    let mut first = saving_feed(&app, &path, &stop, Some(nats.config.clone()));
    settled_view(&app, &first.index).await;
    let saved = saved_copy_at(&path, app.event_heads().await).await;
    stop.trigger();
    first
        .saver
        .take()
        .expect("a saver")
        .await
        .expect("the last save");
    let position = saved.position(pronet_feed::index::Source::Post);

    // New posts, one of which JetStream then loses.
    for (i, author) in members.iter().take(4).enumerate() {
        app.post(
            author,
            &format!("after the save {i}"),
            ppb::Visibility::Public,
        )
        .await;
    }
    let head = app.event_heads().await[1];
    assert_eq!(head, position + 4, "four post events after the saved copy");
    let js = pronet_common::nats::connect(&nats.config.url)
        .await
        .unwrap();
    let stream = js
        .get_stream(nats.config.stream_name("post"))
        .await
        .expect("the post stream");
    let mut lost = None;
    for _ in 0..500 {
        if nats.stream_messages("post").await >= head as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for sequence in 1..=head as u64 {
        let message = stream.get_raw_message(sequence).await.expect("a message");
        let event = pronet_common::nats::decode(&message.payload).expect("an event");
        if event.sequence == position + 2 {
            assert!(
                matches!(event.payload, Some(Payload::PostCreated(_))),
                "{event:?}"
            );
            assert!(stream.delete_message(sequence).await.expect("deleted"));
            lost = Some(event);
            break;
        }
    }
    assert!(lost.is_some(), "found the event to lose in JetStream");

    // Restarted from its saved copy, the replica reads JetStream after the saved position,
    // finds the gap, and rebuilds the post service's share by export.
    let second = saving_feed(
        &app,
        &path,
        &pronet_common::shutdown::Shutdown::new(),
        Some(nats.config.clone()),
    );
    let mut ready = second.ready.clone();
    tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
        .await
        .expect("the restarted replica is ready in time")
        .expect("ready");
    let view = settled_view(&app, &second.index).await;
    let rebuilt = settled_view(&app, &extra_feed(&app).await).await;
    assert_eq!(
        view, rebuilt,
        "the replica equals an index built from scratch"
    );
    assert_eq!(
        exports(&second.index),
        1,
        "the post service's share, and only it, was rebuilt by export"
    );
    nats.cleanup().await;
}
