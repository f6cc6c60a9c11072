//! kill -9 of the feed mid-stream: a `pronet serve feed` process that saves its index is killed
//! (SIGKILL, no shutdown) while members write and its events stream in, restarted on the same
//! data dir while the writes go on, and its index, once settled, must equal one rebuilt from
//! scratch by export. The restart must have loaded the saved copy and replayed the events since
//! (a rebuild by export would repair, and so hide, whatever the replay got wrong). The other
//! services run in this process, on the embedded store and, when it is reachable, PostgreSQL.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pronet::suite::{event_heads, Storage};
use pronet::{RunningSuite, SuiteAddrs, SuiteConfig};
use pronet_common::auth::{with_token, AuthConfig};
use pronet_feed::index::{FeedIndex, IndexView, Source};
use pronet_proto::engagement::v1 as epb;
use pronet_proto::engagement::v1::engagement_service_client::EngagementServiceClient;
use pronet_proto::post::v1 as ppb;
use pronet_proto::post::v1::post_service_client::PostServiceClient;
use pronet_proto::profile::v1 as prpb;
use pronet_proto::profile::v1::profile_service_client::ProfileServiceClient;
use tonic::transport::Channel;

const SECRET: &str = "feed-crash-test-secret-of-at-least-32-bytes";
/// What the feed logs for each source it loads by export.
const EXPORTED: &str = "state loaded from export";
/// What the feed logs when it starts from its saved copy.
const RESTORED: &str = "feed index loaded from its saved copy";

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], pronet_common::testing::unused_port()))
}

/// `pronet serve feed` on `data_dir`, following the suite at `suite`, saving its index every
/// 100 ms, logging to `log`.
fn start_feed(suite: &SuiteAddrs, data_dir: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_pronet"))
        .args(["serve", "feed", "--listen", &free_port().to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--profile-addr", &suite.profile.to_string()])
        .args(["--post-addr", &suite.post.to_string()])
        .args(["--engagement-addr", &suite.engagement.to_string()])
        .args(["--feed-save-every", "100ms", "--drain-delay", "0s"])
        .args(["--metrics-listen", &free_port().to_string()])
        .env("PRONET_JWT_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .env("PRONET_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starts pronet serve feed")
}

/// How many lines of the log at `path` say `what`.
fn logged(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

/// The index saved at `path`, if it can be loaded.
fn saved(path: &Path) -> Option<FeedIndex> {
    let bytes = std::fs::read(path).ok()?;
    FeedIndex::load(&bytes, i64::MAX / 4).ok().map(|(i, _)| i)
}

fn positions(index: &FeedIndex) -> [i64; 3] {
    Source::ALL.map(|s| index.position(s))
}

fn at(positions: [i64; 3], heads: [i64; 3]) -> bool {
    positions.iter().zip(heads).all(|(p, h)| *p >= h)
}

/// Waits until the feed saved an index at `heads` or past them to `path`.
async fn saved_at(path: &Path, heads: [i64; 3]) -> FeedIndex {
    for _ in 0..400 {
        if let Some(index) = saved(path).filter(|i| at(positions(i), heads)) {
            return index;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the feed saved no index at {heads:?} to {} (saved: {:?})",
        path.display(),
        saved(path).map(|i| positions(&i))
    );
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect")
}

/// Clients of the suite and members to write as.
#[derive(Clone)]
struct Writer {
    profiles: ProfileServiceClient<Channel>,
    posts: PostServiceClient<Channel>,
    engagement: EngagementServiceClient<Channel>,
    /// `(member id, token)`.
    members: Arc<Vec<(String, String)>>,
    /// Posts made so far.
    made: Arc<Mutex<Vec<String>>>,
}

impl Writer {
    async fn new(suite: &SuiteAddrs, auth: Arc<AuthConfig>, n: usize) -> Self {
        let mut profiles = ProfileServiceClient::new(channel(suite.profile).await);
        let mut members = Vec::new();
        for i in 0..n {
            let id = pronet_common::ids::new_id();
            let token = auth.member_token(&id, Duration::from_secs(600)).unwrap();
            profiles
                .create_profile(with_token(
                    prpb::CreateProfileRequest {
                        profile: Some(prpb::Profile {
                            handle: format!("killed{i}"),
                            display_name: format!("Killed {i}"),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    &token,
                ))
                .await
                .expect("create profile");
            members.push((id, token));
        }
        Self {
            profiles,
            posts: PostServiceClient::new(channel(suite.post).await),
            engagement: EngagementServiceClient::new(channel(suite.engagement).await),
            members: Arc::new(members),
            made: Arc::default(),
        }
    }

    /// Write number `i` of writer `w`: posts, follows, reactions, comments, shares, hides and
    /// deletions in turn (refusals change nothing and are fine).
    async fn write(&mut self, w: usize, i: usize) {
        let n = self.members.len();
        let (me, token) = self.members[(w + i) % n].clone();
        let (other, _) = self.members[(w + 2 * i + 1) % n].clone();
        let post = {
            let made = self.made.lock().unwrap();
            (!made.is_empty()).then(|| made[(i * 7 + w) % made.len()].clone())
        };
        match (i % 8, post) {
            (0 | 1, _) | (_, None) => {
                let created = self
                    .posts
                    .create_post(with_token(
                        ppb::CreatePostRequest {
                            author_id: me.clone(),
                            text: format!("post {w}/{i} #crash"),
                            visibility: ppb::Visibility::Public as i32,
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await;
                if let Ok(r) = created {
                    let id = r.into_inner().post.expect("post").id;
                    self.made.lock().unwrap().push(id);
                }
            }
            (2, _) if me != other => {
                let _ = self
                    .profiles
                    .follow(with_token(
                        prpb::FollowRequest {
                            member_id: me,
                            target: Some(prpb::follow_request::Target::FolloweeId(other)),
                        },
                        &token,
                    ))
                    .await;
            }
            (3 | 4, Some(post)) => {
                let _ = self
                    .engagement
                    .react(with_token(
                        epb::ReactRequest {
                            member_id: me,
                            post_id: post,
                            reaction_type: epb::ReactionType::Like as i32,
                        },
                        &token,
                    ))
                    .await;
            }
            (5, Some(post)) => {
                let _ = self
                    .engagement
                    .create_comment(with_token(
                        epb::CreateCommentRequest {
                            member_id: me,
                            post_id: post,
                            text: "noted".into(),
                            ..Default::default()
                        },
                        &token,
                    ))
                    .await;
            }
            (6, Some(post)) => {
                let _ = self
                    .engagement
                    .hide_post(with_token(
                        epb::HidePostRequest {
                            member_id: me,
                            post_id: post,
                        },
                        &token,
                    ))
                    .await;
            }
            (_, Some(post)) if i % 24 == 7 => {
                // Deletions are rarer: the author's token is needed, any member may try.
                let _ = self
                    .posts
                    .delete_post(with_token(ppb::DeletePostRequest { post_id: post }, &token))
                    .await;
            }
            (_, Some(post)) => {
                let _ = self
                    .engagement
                    .record_share(with_token(
                        epb::RecordShareRequest {
                            member_id: me,
                            post_id: post,
                        },
                        &token,
                    ))
                    .await;
            }
        }
    }

    /// Four writers writing until `stop` is set; how many writes they made.
    fn spawn(&self, stop: Arc<AtomicBool>) -> tokio::task::JoinSet<usize> {
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..4 {
            let (mut writer, stop) = (self.clone(), stop.clone());
            writers.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    writer.write(w, i).await;
                    i += 1;
                }
                i
            });
        }
        writers
    }
}

async fn heads(addrs: &SuiteAddrs, auth: &AuthConfig) -> [i64; 3] {
    event_heads(addrs, auth).await.expect("event heads")
}

/// An index built from scratch (every source exported) in this process, settled at `heads`.
async fn rebuilt(suite: &SuiteAddrs, auth: &Arc<AuthConfig>, heads: [i64; 3]) -> IndexView {
    let config = pronet_feed::FeedConfig::new(pronet_feed::Upstreams {
        profile_addr: suite.profile.to_string(),
        post_addr: suite.post.to_string(),
        engagement_addr: suite.engagement.to_string(),
        limits: pronet_common::upstream::CallLimits::default(),
        auth: auth.clone(),
    });
    let built = pronet_feed::build(&config).expect("feed builds");
    for _ in 0..1000 {
        {
            let index = built.index.read().unwrap();
            if at(positions(&index), heads) {
                assert_eq!(index.exports(), 3, "one export per source");
                return index.view();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rebuilt index did not reach {heads:?}");
}

async fn the_feed_killed_mid_stream_restarts_from_its_saved_copy(storage: Storage) {
    let auth = Arc::new(AuthConfig::hs256(SECRET.as_bytes(), "pronet").unwrap());
    let suite = RunningSuite::start(SuiteConfig::new(
        storage,
        SuiteAddrs::ephemeral(),
        auth.clone(),
    ))
    .await
    .expect("suite starts");
    let addrs = suite.addrs;
    let writer = Writer::new(&addrs, auth.clone(), 8).await;
    let feed_dir = tempfile::tempdir().unwrap();
    let path = feed_dir.path().join("feed-index.bin");
    let (first_log, second_log) = (
        feed_dir.path().join("first.log"),
        feed_dir.path().join("second.log"),
    );

    // The feed exports every source, then saves its index.
    let mut first = start_feed(&addrs, feed_dir.path(), &first_log);
    saved_at(&path, heads(&addrs, &auth).await).await;

    // Killed while writes stream in.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = writer.spawn(stop.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = heads(&addrs, &auth).await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = heads(&addrs, &auth).await;
    assert!(
        after.iter().zip(before).any(|(a, b)| *a > b),
        "events kept coming around the kill: {before:?} then {after:?}"
    );
    let left = saved(&path).expect("the kill left a whole saved copy");

    // Restarted on the same data dir while the writes go on.
    let mut second = start_feed(&addrs, feed_dir.path(), &second_log);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut writes = 0;
    while let Some(w) = writers.join_next().await {
        writes += w.unwrap();
    }
    assert!(writes > 40, "only {writes} writes");
    let end = heads(&addrs, &auth).await;
    assert!(
        !at(positions(&left), end),
        "the restarted feed had events to replay: saved at {:?}, heads {end:?}",
        positions(&left)
    );

    let restarted = saved_at(&path, end).await.view();
    second.kill().unwrap();
    second.wait().unwrap();
    let scratch = rebuilt(&addrs, &auth, end).await;
    assert_eq!(restarted, scratch, "the restarted feed equals a rebuild");
    assert_eq!(logged(&first_log, EXPORTED), 3, "the first start exported");
    assert_eq!(
        logged(&second_log, RESTORED),
        1,
        "the restart loaded its copy"
    );
    assert_eq!(
        logged(&second_log, EXPORTED),
        0,
        "the restart replayed events, exporting nothing"
    );
    suite.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_killed_mid_stream_restarts_from_its_saved_copy_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::Embedded(dir.path().to_path_buf());
    the_feed_killed_mid_stream_restarts_from_its_saved_copy(storage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_killed_mid_stream_restarts_from_its_saved_copy_on_postgres() {
    let Some(db) = pronet_common::testing::postgres_database("feedcrash").await else {
        return;
    };
    the_feed_killed_mid_stream_restarts_from_its_saved_copy(Storage::Postgres(db.url.clone()))
        .await;
}
