//! A block racing reactions: the engagement service answers "may this member see this post"
//! from a cache fed by events, which lags the profile service by milliseconds; a block
//! acknowledged before a React is sent must still refuse it, and the counts must be exactly what
//! was acknowledged.

use std::time::{Duration, Instant};

use pronet_proto::engagement::v1 as epb;
use pronet_proto::post::v1 as ppb;
use pronet_proto::profile::v1 as prpb;
use tonic::Code;

use crate::helpers::{spawn_app, Member, TestApp};

/// Posts reacted to, one React each (a member's second React to a post changes no count).
const POSTS: usize = 60;
/// Reacts in flight at once.
const WORKERS: usize = 4;

/// One React: when it was sent and answered, and how.
struct Outcome {
    post: usize,
    sent: Instant,
    code: Code,
}

async fn react(app: &TestApp, who: &Member, post: &ppb::Post) -> Code {
    match app
        .engagement
        .clone()
        .react(app.req(
            who,
            epb::ReactRequest {
                member_id: who.id.clone(),
                post_id: post.id.clone(),
                reaction_type: epb::ReactionType::Like as i32,
            },
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// `blocker` blocks `blocked` while `reactor` reacts to `author`'s posts from several tasks;
/// returns the outcomes, when the block was acknowledged, and the posts.
async fn race(
    app: &TestApp,
    author: &Member,
    reactor: &Member,
    blocker: &Member,
    blocked: &Member,
) -> (Vec<Outcome>, Instant, Vec<ppb::Post>) {
    // The workers' posts, and one the reactor reacts to the moment the block is acknowledged.
    let mut posts = Vec::with_capacity(POSTS + 1);
    for i in 0..=POSTS {
        posts.push(
            app.post(author, &format!("post {i}"), ppb::Visibility::Public)
                .await,
        );
    }
    // The engagement service's cache has heard of everything so far, as the feed has.
    app.settle().await;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let reacts = async {
        let workers = (0..WORKERS).map(|_| async {
            let mut outcomes = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(post) = posts.get(i).filter(|_| i < POSTS) else {
                    return outcomes;
                };
                let sent = Instant::now();
                let code = react(app, reactor, post).await;
                outcomes.push(Outcome {
                    post: i,
                    sent,
                    code,
                });
            }
        });
        futures_util::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    let block = async {
        // Let a part of the reacts through first.
        while next.load(std::sync::atomic::Ordering::SeqCst) < POSTS / 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        app.profiles
            .clone()
            .block_member(app.req(
                blocker,
                prpb::BlockMemberRequest {
                    member_id: blocker.id.clone(),
                    blocked_id: blocked.id.clone(),
                },
            ))
            .await
            .expect("block");
        let blocked_at = Instant::now();
        let code = react(app, reactor, &posts[POSTS]).await;
        let at_once = Outcome {
            post: POSTS,
            sent: blocked_at,
            code,
        };
        (blocked_at, at_once)
    };
    let (mut outcomes, (blocked_at, at_once)) = tokio::join!(reacts, block);
    outcomes.push(at_once);
    (outcomes, blocked_at, posts)
}

/// Every React sent after the block was acknowledged was refused as today (the post is not
/// found); the ones before it succeeded; each post's count is what was acknowledged.
async fn assert_block_honoured(
    app: &TestApp,
    author: &Member,
    outcomes: &[Outcome],
    blocked_at: Instant,
    posts: &[ppb::Post],
) {
    assert_eq!(outcomes.len(), POSTS + 1);
    let mut after = 0;
    for o in outcomes {
        if o.sent >= blocked_at {
            after += 1;
            assert_eq!(
                o.code,
                Code::NotFound,
                "post {} reacted after the block",
                o.post
            );
        } else {
            // Concurrent with the block: either answer is right, nothing else is.
            assert!(
                matches!(o.code, Code::Ok | Code::NotFound),
                "post {}: {:?}",
                o.post,
                o.code
            );
        }
    }
    assert!(after > 0, "no React was sent after the block");
    let stats = app
        .engagement
        .clone()
        .batch_get_post_stats(app.req(
            author,
            epb::BatchGetPostStatsRequest {
                post_ids: posts.iter().map(|p| p.id.clone()).collect(),
                viewer_id: String::new(),
            },
        ))
        .await
        .expect("stats")
        .into_inner()
        .stats;
    let mut acknowledged = vec![0i64; POSTS + 1];
    for o in outcomes.iter().filter(|o| o.code == Code::Ok) {
        acknowledged[o.post] += 1;
    }
    let counted: Vec<i64> = stats.iter().map(|s| s.total_reactions).collect();
    assert_eq!(counted, acknowledged);
}

#[tokio::test]
async fn reacts_after_the_author_blocks_the_reactor_are_refused() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_blocks").await;
    let bob = app.member("bob_reacts").await;
    let (outcomes, blocked_at, posts) = race(&app, &ada, &bob, &ada, &bob).await;
    assert_block_honoured(&app, &ada, &outcomes, blocked_at, &posts).await;
}

#[tokio::test]
async fn reacts_after_the_reactor_blocks_the_author_are_refused() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_is_blocked").await;
    let bob = app.member("bob_blocks").await;
    let (outcomes, blocked_at, posts) = race(&app, &ada, &bob, &bob, &ada).await;
    assert_block_honoured(&app, &ada, &outcomes, blocked_at, &posts).await;
}

#[tokio::test]
async fn reacts_after_a_removed_connection_to_connections_only_posts_are_refused() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_disconnects").await;
    let bob = app.member("bob_connected").await;
    app.connect(&ada, &bob).await;
    let post = app
        .post(&ada, "for my network", ppb::Visibility::Connections)
        .await;
    app.settle().await;
    assert_eq!(react(&app, &bob, &post).await, Code::Ok);
    app.profiles
        .clone()
        .remove_connection(app.req(
            &ada,
            prpb::RemoveConnectionRequest {
                member_id: ada.id.clone(),
                connection_id: bob.id.clone(),
            },
        ))
        .await
        .expect("remove connection");
    // At once, before the cache can have heard of it through its stream.
    assert_eq!(react(&app, &bob, &post).await, Code::NotFound);
    // A deletion is honoured at once too, even for the author.
    app.posts
        .clone()
        .delete_post(app.req(
            &ada,
            ppb::DeletePostRequest {
                post_id: post.id.clone(),
            },
        ))
        .await
        .expect("delete post");
    assert_eq!(react(&app, &ada, &post).await, Code::NotFound);
}

/// Serial React latency (run by hand: `cargo test -p pronet-tests --test e2e react_latency --
/// --ignored --nocapture`).
#[tokio::test]
#[ignore]
async fn react_latency() {
    let Some(app) = spawn_app().await else {
        return;
    };
    let ada = app.member("ada_latency").await;
    let bob = app.member("bob_latency").await;
    let mut posts = Vec::new();
    for i in 0..500 {
        posts.push(
            app.post(&ada, &format!("post {i}"), ppb::Visibility::Public)
                .await,
        );
    }
    app.settle().await;
    let mut took = Vec::with_capacity(posts.len());
    for post in &posts {
        let started = Instant::now();
        assert_eq!(react(&app, &bob, post).await, Code::Ok);
        took.push(started.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
    println!(
        "React latency over {} posts: p50 {:?}, p90 {:?}, p99 {:?}",
        took.len(),
        at(0.5),
        at(0.9),
        at(0.99)
    );
}
