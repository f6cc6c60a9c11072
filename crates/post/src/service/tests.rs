use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;
use pronet_common::testing::{as_member, with_caller};
use pronet_common::upstream::{lazy_channel, CallLimits};
use prost_types::Timestamp;
use tonic::Code;

use super::*;
use crate::profiles::GrpcRelationships;
use crate::store::sqlite::SqlitePostStore;

/// The profile service's handles: members spelled as `Ada`, `Bob`, `Carol` (ids `ada`,
/// `bob`, `carol`). Every call is recorded.
#[derive(Default)]
struct FakeHandles {
    calls: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl Handles for FakeHandles {
    async fn lookup_handles(
        &self,
        handles: &[String],
    ) -> Result<HashMap<String, Mention>, PostError> {
        self.calls.lock().unwrap().push(handles.to_vec());
        Ok(handles
            .iter()
            .filter_map(|h| {
                let spelled = match h.as_str() {
                    "ada" => "Ada",
                    "bob" => "Bob",
                    "carol" => "Carol",
                    _ => return None,
                };
                let mention = Mention {
                    handle: spelled.into(),
                    member_id: h.clone(),
                };
                Some((h.clone(), mention))
            })
            .collect())
    }
}

/// The profile service's members: `ada`, `bob` and `carol` exist (or nobody can tell, when
/// `down`). Every call is recorded.
#[derive(Default)]
struct FakeMembers {
    down: bool,
    calls: Mutex<Vec<Vec<String>>>,
}

#[async_trait]
impl Members for FakeMembers {
    async fn existing_members(&self, member_ids: &[String]) -> Result<HashSet<String>, PostError> {
        self.calls.lock().unwrap().push(member_ids.to_vec());
        if self.down {
            return Err(PostError::Dependency {
                dependency: "profile",
                status: Box::new(Status::unavailable("down")),
            });
        }
        Ok(member_ids
            .iter()
            .filter(|id| ["ada", "bob", "carol"].contains(&id.as_str()))
            .cloned()
            .collect())
    }
}

/// The engagement service: shares are recorded (or fail, when `down`), engagement per post
/// is set up by each test.
#[derive(Default)]
struct FakeEngagement {
    down: bool,
    engagement: Mutex<HashMap<String, i64>>,
    shares: Mutex<Vec<(String, String)>>,
    stats_calls: Mutex<Vec<usize>>,
}

impl FakeEngagement {
    fn set(&self, post_id: &str, engagement: i64) {
        self.engagement
            .lock()
            .unwrap()
            .insert(post_id.into(), engagement);
    }

    fn shares(&self) -> Vec<(String, String)> {
        self.shares.lock().unwrap().clone()
    }
}

#[async_trait]
impl Engagement for FakeEngagement {
    async fn record_share(&self, member_id: &str, post_id: &str) -> Result<(), PostError> {
        if self.down {
            return Err(PostError::Dependency {
                dependency: "engagement",
                status: Box::new(Status::unavailable("down")),
            });
        }
        self.shares
            .lock()
            .unwrap()
            .push((member_id.into(), post_id.into()));
        Ok(())
    }

    async fn engagement(&self, post_ids: &[String]) -> Result<HashMap<String, i64>, PostError> {
        self.stats_calls.lock().unwrap().push(post_ids.len());
        let known = self.engagement.lock().unwrap();
        Ok(post_ids
            .iter()
            .filter_map(|id| known.get(id).map(|n| (id.clone(), *n)))
            .collect())
    }
}

/// The profile service's answers, from pairs set up by each test; every call is recorded.
#[derive(Default)]
struct FakeRelationships {
    connected: Vec<(String, String)>,
    blocked: Vec<(String, String)>,
    calls: Mutex<Vec<(String, Vec<String>)>>,
}

impl FakeRelationships {
    fn connect(mut self, a: &str, b: &str) -> Self {
        self.connected.push((a.into(), b.into()));
        self
    }

    /// `a` blocks `b`.
    fn block(mut self, a: &str, b: &str) -> Self {
        self.blocked.push((a.into(), b.into()));
        self
    }

    fn calls(&self) -> Vec<(String, Vec<String>)> {
        self.calls.lock().unwrap().clone()
    }
}

fn either_way(pairs: &[(String, String)], a: &str, b: &str) -> bool {
    pairs
        .iter()
        .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
}

#[async_trait]
impl Relationships for FakeRelationships {
    async fn relationships(
        &self,
        viewer: &str,
        members: &[String],
    ) -> Result<HashMap<String, Relation>, PostError> {
        self.calls
            .lock()
            .unwrap()
            .push((viewer.to_owned(), members.to_vec()));
        Ok(members
            .iter()
            .map(|m| {
                let relation = Relation {
                    connected: either_way(&self.connected, viewer, m),
                    blocked: either_way(&self.blocked, viewer, m),
                };
                (m.clone(), relation)
            })
            .collect())
    }
}

async fn api_full(
    dir: &tempfile::TempDir,
    relationships: Arc<dyn Relationships>,
    handles: Arc<dyn Handles>,
    engagement: Arc<dyn Engagement>,
) -> PostApi {
    let store = SqlitePostStore::open(&dir.path().join("post.db"))
        .await
        .unwrap();
    let members = Arc::new(FakeMembers::default());
    PostApi::new(Arc::new(store), relationships, handles, members, engagement)
}

async fn api_with_members(dir: &tempfile::TempDir, members: Arc<FakeMembers>) -> PostApi {
    let store = SqlitePostStore::open(&dir.path().join("post.db"))
        .await
        .unwrap();
    PostApi::new(
        Arc::new(store),
        Arc::new(FakeRelationships::default()),
        Arc::new(FakeHandles::default()),
        members,
        Arc::new(FakeEngagement::default()),
    )
}

async fn api_with(dir: &tempfile::TempDir, relationships: Arc<dyn Relationships>) -> PostApi {
    let handles = Arc::new(FakeHandles::default());
    api_full(
        dir,
        relationships,
        handles,
        Arc::new(FakeEngagement::default()),
    )
    .await
}

async fn api(dir: &tempfile::TempDir) -> PostApi {
    api_with(dir, Arc::new(FakeRelationships::default())).await
}

/// A request as the auth layer hands it over.
fn as_service<T>(message: T) -> Request<T> {
    pronet_common::testing::as_service("feed", message)
}

fn new_post(author: &str, text: &str, visibility: pb::Visibility) -> pb::CreatePostRequest {
    pb::CreatePostRequest {
        author_id: author.into(),
        text: text.into(),
        visibility: visibility as i32,
        reshare_of: String::new(),
        create_time: None,
        request_id: String::new(),
    }
}

async fn create_with(api: &PostApi, author: &str, text: &str, v: pb::Visibility) -> pb::Post {
    api.create_post(as_member(author, new_post(author, text, v)))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap()
}

async fn create(api: &PostApi, author: &str, text: &str) -> pb::Post {
    create_with(api, author, text, pb::Visibility::Public).await
}

fn get(post_id: &str, viewer_id: &str) -> pb::GetPostRequest {
    pb::GetPostRequest {
        post_id: post_id.into(),
        viewer_id: viewer_id.into(),
    }
}

fn batch(ids: &[&str], allow_missing: bool, viewer_id: &str) -> pb::BatchGetPostsRequest {
    pb::BatchGetPostsRequest {
        post_ids: ids.iter().map(|s| s.to_string()).collect(),
        allow_missing,
        viewer_id: viewer_id.into(),
    }
}

fn by_author(author_id: &str, viewer_id: &str) -> pb::ListPostsByAuthorRequest {
    pb::ListPostsByAuthorRequest {
        author_id: author_id.into(),
        page_size: 0,
        page_token: String::new(),
        viewer_id: viewer_id.into(),
        start_time: None,
        end_time: None,
    }
}

fn ids(posts: &[pb::Post]) -> Vec<&str> {
    posts.iter().map(|p| p.id.as_str()).collect()
}

async fn listed(api: &PostApi, request: Request<pb::ListPostsByAuthorRequest>) -> Vec<String> {
    let posts = api
        .list_posts_by_author(request)
        .await
        .unwrap()
        .into_inner()
        .posts;
    posts.into_iter().map(|p| p.id).collect()
}

#[tokio::test]
async fn creates_a_post_with_its_hashtags_and_mentions() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let post = create(&api, "ada", "Hi @Bob! #MentalHealth matters, mail a@b.com").await;
    assert_eq!(post.author_id, "ada");
    assert_eq!(post.hashtags, ["mentalhealth"]);
    assert_eq!(post.mentions, ["bob"]);
    assert_eq!(post.visibility, pb::Visibility::Public as i32);
    assert!(post.create_time.is_some());
    let got = api
        .get_post(as_member("ada", get(&post.id, "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(got, post);
}

#[tokio::test]
async fn a_request_without_a_caller_is_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let err = api.get_post(Request::new(get("p", ""))).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = api
        .create_post(Request::new(new_post("ada", "hi", pb::Visibility::Public)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn rejects_every_invalid_create_field_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    // Validation comes before the author check: "not an id" is not the caller either.
    let err = api
        .create_post(as_member(
            "ada",
            new_post("not an id", "", pb::Visibility::Unspecified),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in ["author_id:", "text:", "visibility:"] {
        assert!(err.message().contains(field), "{}", err.message());
    }
    let mut req = new_post("ada", &"x".repeat(3001), pb::Visibility::Public);
    req.visibility = 7;
    let err = api.create_post(as_member("ada", req)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("text:"));
    assert!(err.message().contains("visibility:"));
}

#[tokio::test]
async fn a_member_cannot_post_as_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let err = api
        .create_post(as_member(
            "ada",
            new_post("bob", "hi", pb::Visibility::Public),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "author_id must be the caller's own member id"
    );
    let none = api
        .list_posts_by_author(as_service(by_author("bob", "")))
        .await
        .unwrap()
        .into_inner();
    assert!(none.posts.is_empty());
}

#[tokio::test]
async fn a_member_cannot_backfill_create_time() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let mut req = new_post("ada", "from the archive", pb::Visibility::Public);
    req.create_time = Some(Timestamp {
        seconds: 1_600_000_000,
        nanos: 0,
    });
    let err = api.create_post(as_member("ada", req)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "create_time can only be set by services");
}

#[tokio::test]
async fn a_service_may_post_for_anyone_and_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let past = Timestamp {
        seconds: 1_600_000_000,
        nanos: 0,
    };
    let mut req = new_post("bob", "from the archive", pb::Visibility::Public);
    req.create_time = Some(past);
    let post = api
        .create_post(as_service(req))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(post.author_id, "bob");
    assert_eq!(post.create_time, Some(past));
    let now = api
        .create_post(as_service(new_post("cat", "now", pb::Visibility::Public)))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(now.author_id, "cat");
}

fn with_request_id(mut req: pb::CreatePostRequest, request_id: &str) -> pb::CreatePostRequest {
    req.request_id = request_id.into();
    req
}

async fn created(api: &PostApi, request: Request<pb::CreatePostRequest>) -> pb::Post {
    api.create_post(request)
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap()
}

#[tokio::test]
async fn a_retried_create_returns_the_first_post_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let req = with_request_id(new_post("ada", "once", pb::Visibility::Public), "req-1");
    let first = created(&api, as_member("ada", req.clone())).await;
    let again = created(&api, as_member("ada", req)).await;
    assert_eq!(again, first);
    // The first result wins even when the retry says something else.
    let changed = with_request_id(new_post("ada", "twice", pb::Visibility::Public), "req-1");
    assert_eq!(created(&api, as_member("ada", changed)).await, first);
    assert_eq!(
        listed(&api, as_member("ada", by_author("ada", ""))).await,
        [first.id.as_str()]
    );
    // Without a request id every call creates.
    let a = create(&api, "ada", "same").await;
    let b = create(&api, "ada", "same").await;
    assert_ne!(a.id, b.id);
}

#[tokio::test]
async fn request_ids_are_scoped_by_caller() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let req = |author: &str| with_request_id(new_post(author, "hi", pb::Visibility::Public), "r");
    let by_ada = created(&api, as_member("ada", req("ada"))).await;
    let by_bob = created(&api, as_member("bob", req("bob"))).await;
    let by_feed = created(&api, as_service(req("ada"))).await;
    let by_demo = created(
        &api,
        with_caller(Caller::Service("demo".into()), req("ada")),
    )
    .await;
    // The feed's retry is its own post again.
    assert_eq!(created(&api, as_service(req("ada"))).await, by_feed);
    let mut ids = vec![by_ada.id, by_bob.id, by_feed.id, by_demo.id];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn rejects_an_invalid_request_id_with_the_other_fields() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    for bad in ["not valid!", &"a".repeat(65)] {
        let req = with_request_id(new_post("ada", "", pb::Visibility::Public), bad);
        let err = api.create_post(as_member("ada", req)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("request_id:"), "{}", err.message());
        assert!(err.message().contains("text:"), "{}", err.message());
    }
}

#[tokio::test]
async fn backfilled_posts_may_not_come_from_the_future() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let mut req = new_post("ada", "from the future", pb::Visibility::Public);
    req.create_time = Some(Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    let err = api.create_post(as_service(req)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("create_time:"));
}

#[tokio::test]
async fn unknown_post_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let err = api
        .get_post(as_member("ada", get("missing", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");
    let err = api
        .get_post(as_member("ada", get("", "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn batch_get_keeps_request_order_and_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let a = create(&api, "ada", "first").await;
    let b = create(&api, "bob", "second").await;
    let batch = |ids: &[&str], allow_missing| {
        let api = api.clone();
        let req = batch(ids, allow_missing, "");
        async move { api.batch_get_posts(as_member("ada", req)).await }
    };
    let got = batch(&[&b.id, &a.id, &b.id], false)
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [b.id.as_str(), a.id.as_str(), b.id.as_str()]);

    let err = batch(&[&a.id, "missing"], false).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post missing not found");

    let got = batch(&["missing", &a.id], true)
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [a.id.as_str()]);

    let err = batch(&["ok", "b a d", ""], false).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("post_ids[1]"));
    assert!(err.message().contains("post_ids[2]"));
    let err = batch(&["x"; 1001], true).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn lists_an_authors_posts_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    for i in 0..5 {
        create(&api, "ada", &format!("post {i}")).await;
    }
    let list = |token: String, page_size| {
        let api = api.clone();
        let req = pb::ListPostsByAuthorRequest {
            page_size,
            page_token: token,
            ..by_author("ada", "")
        };
        async move { api.list_posts_by_author(as_member("ada", req)).await }
    };
    let first = list(String::new(), 3).await.unwrap().into_inner();
    assert_eq!(first.posts.len(), 3);
    assert_eq!(first.posts[0].text, "post 4");
    assert!(!first.next_page_token.is_empty());
    let second = list(first.next_page_token, 3).await.unwrap().into_inner();
    let texts: Vec<&str> = second.posts.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["post 1", "post 0"]);
    assert!(second.next_page_token.is_empty());

    let err = list("garbage".into(), -1).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("page_size"));
    assert!(err.message().contains("page_token"));

    let none = api
        .list_posts_by_author(as_member("ada", by_author("nobody", "")))
        .await
        .unwrap()
        .into_inner();
    assert!(none.posts.is_empty());
    assert!(none.next_page_token.is_empty());
}

#[tokio::test]
async fn a_connections_only_post_is_seen_by_its_author_and_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRelationships::default().connect("bob", "ada");
    let api = api_with(&dir, Arc::new(fake)).await;
    let private = create_with(&api, "ada", "for my network", pb::Visibility::Connections).await;
    let public = create(&api, "ada", "for everyone").await;

    for viewer in ["ada", "bob"] {
        let got = api
            .get_post(as_member(viewer, get(&private.id, "")))
            .await
            .unwrap()
            .into_inner()
            .post
            .unwrap();
        assert_eq!(got, private, "{viewer}");
    }

    // A stranger is told exactly what a missing post would tell them.
    let err = api
        .get_post(as_member("cat", get(&private.id, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");

    let got = api
        .batch_get_posts(as_member(
            "cat",
            batch(&[&private.id, &public.id], true, ""),
        ))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [public.id.as_str()]);
    let err = api
        .batch_get_posts(as_member(
            "cat",
            batch(&[&public.id, &private.id], false, ""),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), format!("post {} not found", private.id));

    let got = api
        .batch_get_posts(as_member(
            "bob",
            batch(&[&private.id, &public.id], false, ""),
        ))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [private.id.as_str(), public.id.as_str()]);
}

#[tokio::test]
async fn a_block_hides_even_public_posts_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRelationships::default()
        .block("ada", "eve")
        .block("dan", "ada");
    let api = api_with(&dir, Arc::new(fake)).await;
    let post = create(&api, "ada", "hello world").await;
    for viewer in ["eve", "dan"] {
        let err = api
            .get_post(as_member(viewer, get(&post.id, "")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{viewer}");
        assert_eq!(err.message(), "post not found");
        let got = api
            .batch_get_posts(as_member(viewer, batch(&[&post.id], true, "")))
            .await
            .unwrap()
            .into_inner()
            .posts;
        assert!(got.is_empty(), "{viewer}");
        let list = api
            .list_posts_by_author(as_member(viewer, by_author("ada", "")))
            .await
            .unwrap()
            .into_inner();
        assert!(list.posts.is_empty(), "{viewer}");
        assert!(list.next_page_token.is_empty());
    }
}

#[tokio::test]
async fn an_authors_list_holds_only_what_the_viewer_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRelationships::default()
        .connect("ada", "bob")
        .block("eve", "ada");
    let api = api_with(&dir, Arc::new(fake)).await;
    let p1 = create(&api, "ada", "one").await;
    let p2 = create_with(&api, "ada", "two", pb::Visibility::Connections).await;
    let p3 = create(&api, "ada", "three").await;
    let p4 = create_with(&api, "ada", "four", pb::Visibility::Connections).await;
    let all = [
        p4.id.as_str(),
        p3.id.as_str(),
        p2.id.as_str(),
        p1.id.as_str(),
    ];

    assert_eq!(
        listed(&api, as_member("ada", by_author("ada", ""))).await,
        all
    );
    assert_eq!(
        listed(&api, as_member("bob", by_author("ada", ""))).await,
        all
    );
    assert_eq!(
        listed(&api, as_member("cat", by_author("ada", ""))).await,
        [p3.id.as_str(), p1.id.as_str()]
    );
    assert!(listed(&api, as_member("eve", by_author("ada", "")))
        .await
        .is_empty());

    // Pages of a stranger's view are full: hidden posts do not leave holes.
    let req = pb::ListPostsByAuthorRequest {
        page_size: 1,
        ..by_author("ada", "")
    };
    let first = api
        .list_posts_by_author(as_member("cat", req.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&first.posts), [p3.id.as_str()]);
    let second = api
        .list_posts_by_author(as_member(
            "cat",
            pb::ListPostsByAuthorRequest {
                page_token: first.next_page_token,
                ..req
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second.posts), [p1.id.as_str()]);
}

#[tokio::test]
async fn a_service_gets_the_named_viewers_view_or_everything() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeRelationships::default().connect("ada", "bob"));
    let api = api_with(&dir, fake.clone()).await;
    let private = create_with(&api, "ada", "network only", pb::Visibility::Connections).await;
    let calls_before = fake.calls().len();

    // Without a viewer: everything, and nobody is asked about anyone.
    let got = api
        .get_post(as_service(get(&private.id, "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(got, private);
    let got = api
        .batch_get_posts(as_service(batch(&[&private.id], false, "")))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [private.id.as_str()]);
    assert_eq!(
        listed(&api, as_service(by_author("ada", ""))).await,
        [private.id.as_str()]
    );
    assert_eq!(fake.calls().len(), calls_before);

    // For a connection: visible.
    assert!(api
        .get_post(as_service(get(&private.id, "bob")))
        .await
        .is_ok());
    assert_eq!(
        listed(&api, as_service(by_author("ada", "bob"))).await,
        [private.id.as_str()]
    );

    // For a stranger: missing.
    let err = api
        .get_post(as_service(get(&private.id, "cat")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");
    let got = api
        .batch_get_posts(as_service(batch(&[&private.id], true, "cat")))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert!(got.is_empty());
    assert!(listed(&api, as_service(by_author("ada", "cat")))
        .await
        .is_empty());
    assert_eq!(fake.calls().last().unwrap().0, "cat");
}

#[tokio::test]
async fn a_member_cannot_borrow_another_viewers_view() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let post = create(&api, "ada", "hello").await;
    let denied = |err: Status| {
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(err.message(), "viewer_id is for service callers");
    };
    denied(
        api.get_post(as_member("cat", get(&post.id, "ada")))
            .await
            .unwrap_err(),
    );
    denied(
        api.batch_get_posts(as_member("cat", batch(&[&post.id], true, "ada")))
            .await
            .unwrap_err(),
    );
    denied(
        api.list_posts_by_author(as_member("cat", by_author("ada", "ada")))
            .await
            .unwrap_err(),
    );
    // Naming themself is what they get anyway.
    assert!(api
        .get_post(as_member("cat", get(&post.id, "cat")))
        .await
        .is_ok());
    // Field errors come first, all at once, whoever names whom.
    let err = api
        .get_post(as_member("cat", get("b a d", "no t ok")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("post_id:"), "{}", err.message());
    assert!(err.message().contains("viewer_id:"), "{}", err.message());
}

#[tokio::test]
async fn the_profile_service_is_asked_only_about_other_authors() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeRelationships::default());
    let api = api_with(&dir, fake.clone()).await;
    let own1 = create(&api, "ada", "mine").await;
    let own2 = create_with(&api, "ada", "also mine", pb::Visibility::Connections).await;
    api.get_post(as_member("ada", get(&own2.id, "")))
        .await
        .unwrap();
    api.batch_get_posts(as_member("ada", batch(&[&own1.id, &own2.id], false, "")))
        .await
        .unwrap();
    listed(&api, as_member("ada", by_author("ada", ""))).await;
    api.get_post(as_service(get(&own2.id, "ada")))
        .await
        .unwrap();
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    // Others are asked about once each, whatever the number of their posts.
    let bob1 = create(&api, "bob", "bob's").await;
    let bob2 = create(&api, "bob", "bob's again").await;
    let cat = create(&api, "cat", "cat's").await;
    api.batch_get_posts(as_member(
        "ada",
        batch(
            &[&bob1.id, &own1.id, &cat.id, &bob2.id, &bob1.id],
            false,
            "",
        ),
    ))
    .await
    .unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let (viewer, mut members) = calls[0].clone();
    members.sort();
    assert_eq!(viewer, "ada");
    assert_eq!(members, ["bob", "cat"]);
}

#[tokio::test]
async fn a_down_profile_service_makes_other_authors_posts_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let auth = pronet_common::testing::test_auth();
    let channel = lazy_channel("127.0.0.1:1", CallLimits::default()).unwrap();
    let api = api_with(&dir, Arc::new(GrpcRelationships::new(channel, auth))).await;
    let post = create(&api, "ada", "hello").await;

    // The author's own reads need no profile service.
    assert!(api
        .get_post(as_member("ada", get(&post.id, "")))
        .await
        .is_ok());
    assert_eq!(
        listed(&api, as_member("ada", by_author("ada", ""))).await,
        [post.id.as_str()]
    );

    let unavailable = |err: Status| {
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(err.message(), "profile service unavailable");
    };
    unavailable(
        api.get_post(as_member("bob", get(&post.id, "")))
            .await
            .unwrap_err(),
    );
    unavailable(
        api.batch_get_posts(as_member("bob", batch(&[&post.id], true, "")))
            .await
            .unwrap_err(),
    );
    unavailable(
        api.list_posts_by_author(as_service(by_author("ada", "bob")))
            .await
            .unwrap_err(),
    );
}

fn recent_request(author_ids: &[&str], hashtags: &[&str]) -> pb::ListRecentPostsByAuthorsRequest {
    pb::ListRecentPostsByAuthorsRequest {
        author_ids: author_ids.iter().map(|s| s.to_string()).collect(),
        hashtags: hashtags.iter().map(|s| s.to_string()).collect(),
        since: Some(Timestamp::default()),
        max_posts: 0,
        max_posts_per_author: 0,
    }
}

#[tokio::test]
async fn recent_posts_by_authors_and_hashtags() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let a1 = create(&api, "ada", "one").await;
    let a2 = create(&api, "ada", "two").await;
    let c1 = create(&api, "cat", "about #Rust").await;
    create(&api, "dan", "unrelated").await;
    let mut req = recent_request(&["ada", "ada"], &["#RUST", "rust"]);
    req.max_posts_per_author = 1;
    let posts = api
        .list_recent_posts_by_authors(as_service(req))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&posts), [c1.id.as_str(), a2.id.as_str()]);
    assert_ne!(a1.id, a2.id);

    let empty = api
        .list_recent_posts_by_authors(as_service(recent_request(&[], &[])))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.posts.is_empty());
}

#[tokio::test]
async fn recent_posts_are_for_services_only() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let err = api
        .list_recent_posts_by_authors(as_member("ada", recent_request(&["ada"], &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "this method is for pronet services only");
}

#[tokio::test]
async fn rejects_every_invalid_recent_field_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let mut req = recent_request(&["ok", "not ok"], &["rust", "#2024"]);
    req.since = None;
    req.max_posts = -1;
    req.max_posts_per_author = -1;
    let err = api
        .list_recent_posts_by_authors(as_service(req))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in [
        "author_ids[1]:",
        "hashtags[1]:",
        "since:",
        "max_posts:",
        "max_posts_per_author:",
    ] {
        assert!(err.message().contains(field), "{}", err.message());
    }
    let mut req = recent_request(&["ok"], &[]);
    req.since = Some(Timestamp {
        seconds: i64::MAX,
        nanos: 0,
    });
    let err = api
        .list_recent_posts_by_authors(as_service(req))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("since:"));
}

fn delete(post_id: &str) -> pb::DeletePostRequest {
    pb::DeletePostRequest {
        post_id: post_id.into(),
    }
}

fn edit(post_id: &str, text: &str, paths: &[&str]) -> pb::UpdatePostRequest {
    pb::UpdatePostRequest {
        post: Some(pb::Post {
            id: post_id.into(),
            text: text.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    }
}

fn by_tag(hashtag: &str, page_size: i32, token: &str) -> pb::ListPostsByHashtagRequest {
    pb::ListPostsByHashtagRequest {
        hashtag: hashtag.into(),
        page_size,
        page_token: token.into(),
        viewer_id: String::new(),
    }
}

fn reshare(author: &str, of: &str, text: &str, v: pb::Visibility) -> pb::CreatePostRequest {
    pb::CreatePostRequest {
        reshare_of: of.into(),
        ..new_post(author, text, v)
    }
}

fn trending(window_seconds: Option<i64>, page_size: i32) -> pb::ListTrendingHashtagsRequest {
    pb::ListTrendingHashtagsRequest {
        window: window_seconds.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
        page_size,
    }
}

#[tokio::test]
async fn the_author_deletes_a_post_and_it_is_gone_from_every_read() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let gone = create(&api, "ada", "bye #rust").await;
    let kept = create(&api, "ada", "hi #rust").await;
    api.delete_post(as_member("ada", delete(&gone.id)))
        .await
        .unwrap();

    let err = api
        .get_post(as_member("ada", get(&gone.id, "")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");
    let got = api
        .batch_get_posts(as_service(batch(&[&gone.id, &kept.id], true, "")))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&got), [kept.id.as_str()]);
    assert_eq!(
        listed(&api, as_service(by_author("ada", ""))).await,
        [kept.id.as_str()]
    );
    let tagged = api
        .list_posts_by_hashtag(as_member("bob", by_tag("rust", 0, "")))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&tagged), [kept.id.as_str()]);
    let recent = api
        .list_recent_posts_by_authors(as_service(recent_request(&["ada"], &["rust"])))
        .await
        .unwrap()
        .into_inner()
        .posts;
    assert_eq!(ids(&recent), [kept.id.as_str()]);
    let top = api
        .list_trending_hashtags(as_member("bob", trending(None, 0)))
        .await
        .unwrap()
        .into_inner()
        .hashtags;
    assert_eq!(top[0].posts, 1);

    // Deleting again is deleting nothing.
    let err = api
        .delete_post(as_member("ada", delete(&gone.id)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");
}

#[tokio::test]
async fn only_the_author_deletes_and_invisible_posts_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let public = create(&api, "ada", "public").await;
    let private = create_with(&api, "ada", "private", pb::Visibility::Connections).await;
    let err = api
        .delete_post(as_member("bob", delete(&public.id)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    for id in [private.id.as_str(), "unknown"] {
        let err = api
            .delete_post(as_member("bob", delete(id)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{id}");
        assert_eq!(err.message(), "post not found");
    }
    let err = api
        .delete_post(as_member("ada", delete("b a d")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("post_id:"));
    let err = api
        .delete_post(as_service(delete(&public.id)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Nothing was deleted.
    assert!(api
        .get_post(as_member("ada", get(&private.id, "")))
        .await
        .is_ok());
}

#[tokio::test]
async fn the_author_edits_the_text_and_extractions_follow() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let post = create(&api, "ada", "old #rust @bob").await;
    assert!(!post.edited);
    assert!(post.update_time.is_none());
    for paths in [&[][..], &["text"][..]] {
        let updated = api
            .update_post(as_member(
                "ada",
                edit(&post.id, "new #Go @Carol @ghost", paths),
            ))
            .await
            .unwrap()
            .into_inner()
            .post
            .unwrap();
        assert_eq!(updated.text, "new #Go @Carol @ghost");
        assert_eq!(updated.hashtags, ["go"]);
        assert_eq!(updated.mentions, ["carol"]);
        assert_eq!(updated.mentioned_members[0].handle, "Carol");
        assert!(updated.edited);
        assert!(updated.update_time.is_some());
        assert_eq!(updated.create_time, post.create_time);
        let got = api
            .get_post(as_member("bob", get(&post.id, "")))
            .await
            .unwrap()
            .into_inner()
            .post
            .unwrap();
        assert_eq!(got, updated);
    }
    let rust = api
        .list_posts_by_hashtag(as_member("ada", by_tag("rust", 0, "")))
        .await
        .unwrap()
        .into_inner();
    assert!(rust.posts.is_empty());
}

#[tokio::test]
async fn edits_are_validated_and_the_authors_own() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let post = create(&api, "ada", "mine").await;
    let private = create_with(&api, "ada", "mine too", pb::Visibility::Connections).await;
    let err = api
        .update_post(as_member(
            "ada",
            edit(&post.id, "x", &["text", "visibility"]),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("update_mask.paths[1]:"),
        "{}",
        err.message()
    );
    let err = api
        .update_post(as_member("ada", edit(&post.id, "", &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("post.text:"), "{}", err.message());
    let err = api
        .update_post(as_member("ada", edit(&post.id, &"x".repeat(3001), &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = api
        .update_post(as_member("bob", edit(&post.id, "hijack", &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = api
        .update_post(as_member("bob", edit(&private.id, "hijack", &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    api.delete_post(as_member("ada", delete(&post.id)))
        .await
        .unwrap();
    let err = api
        .update_post(as_member("ada", edit(&post.id, "again", &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn lists_posts_by_hashtag_newest_first_as_the_viewer_may_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeRelationships::default()
        .connect("ada", "bob")
        .block("eve", "cat");
    let api = api_with(&dir, Arc::new(fake)).await;
    let p1 = create(&api, "ada", "one #Rust").await;
    let p2 = create_with(&api, "ada", "two #rust", pb::Visibility::Connections).await;
    let p3 = create(&api, "eve", "three #rust").await;
    let p4 = create(&api, "ada", "four #RUST").await;
    create(&api, "ada", "other #go").await;

    let all = |viewer: &'static str| {
        let api = api.clone();
        async move {
            let posts = api
                .list_posts_by_hashtag(as_member(viewer, by_tag("#Rust", 0, "")))
                .await
                .unwrap()
                .into_inner()
                .posts;
            posts.into_iter().map(|p| p.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(all("bob").await, [p4.id.as_str(), &p3.id, &p2.id, &p1.id]);
    assert_eq!(all("cat").await, [p4.id.as_str(), &p1.id]);

    // Pages stay full for a viewer who may not see everything.
    let first = api
        .list_posts_by_hashtag(as_member("cat", by_tag("rust", 1, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&first.posts), [p4.id.as_str()]);
    let second = api
        .list_posts_by_hashtag(as_member("cat", by_tag("rust", 1, &first.next_page_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second.posts), [p1.id.as_str()]);

    let err = api
        .list_posts_by_hashtag(as_member("cat", by_tag("#", -1, "junk")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in ["hashtag:", "page_size:", "page_token:"] {
        assert!(err.message().contains(field), "{}", err.message());
    }
    let mut req = by_tag("rust", 0, "");
    req.viewer_id = "bob".into();
    let err = api
        .list_posts_by_hashtag(as_member("cat", req))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn lists_an_authors_posts_between_two_times() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let at = |seconds| Some(Timestamp { seconds, nanos: 0 });
    for seconds in [100, 200, 300] {
        let mut req = new_post("ada", &format!("at {seconds}"), pb::Visibility::Public);
        req.create_time = at(seconds);
        api.create_post(as_service(req)).await.unwrap();
    }
    let range = |start, end| pb::ListPostsByAuthorRequest {
        start_time: start,
        end_time: end,
        ..by_author("ada", "")
    };
    let texts = |req| {
        let api = api.clone();
        async move {
            let posts = api
                .list_posts_by_author(as_service(req))
                .await
                .unwrap()
                .into_inner()
                .posts;
            posts.into_iter().map(|p| p.text).collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(range(at(200), at(300))).await, ["at 200"]);
    assert_eq!(texts(range(at(200), None)).await, ["at 300", "at 200"]);
    assert_eq!(texts(range(None, at(200))).await, ["at 100"]);
    for (start, end) in [(at(300), at(200)), (at(200), at(200))] {
        let err = api
            .list_posts_by_author(as_service(range(start, end)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("end_time:"), "{}", err.message());
    }
    let bad = Some(Timestamp {
        seconds: 0,
        nanos: -1,
    });
    let err = api
        .list_posts_by_author(as_service(range(bad, None)))
        .await
        .unwrap_err();
    assert!(err.message().contains("start_time:"), "{}", err.message());
}

async fn fakes(
    dir: &tempfile::TempDir,
    relationships: FakeRelationships,
    engagement: FakeEngagement,
) -> (PostApi, Arc<FakeEngagement>) {
    let engagement = Arc::new(engagement);
    let handles = Arc::new(FakeHandles::default());
    let api = api_full(dir, Arc::new(relationships), handles, engagement.clone()).await;
    (api, engagement)
}

#[tokio::test]
async fn a_reshare_points_at_the_root_original_and_records_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let relationships = FakeRelationships::default();
    let (api, engagement) = fakes(&dir, relationships, FakeEngagement::default()).await;
    let original = create(&api, "ada", "original #rust").await;
    let first = created(
        &api,
        as_member(
            "bob",
            reshare("bob", &original.id, "", pb::Visibility::Public),
        ),
    )
    .await;
    assert_eq!(first.reshare_of, original.id);
    assert_eq!(first.text, "");
    assert_eq!(first.reshared_post.as_deref(), Some(&original));
    // A reshare of the reshare reshares the original.
    let second = created(
        &api,
        as_member(
            "cat",
            reshare("cat", &first.id, "via bob", pb::Visibility::Public),
        ),
    )
    .await;
    assert_eq!(second.reshare_of, original.id);
    assert_eq!(
        engagement.shares(),
        [
            ("bob".to_string(), original.id.clone()),
            ("cat".to_string(), original.id.clone())
        ]
    );
    let got = api
        .get_post(as_member("dan", get(&second.id, "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(got, second);
    // A deleted original leaves the reshare without it, and cannot be reshared.
    api.delete_post(as_member("ada", delete(&original.id)))
        .await
        .unwrap();
    let got = api
        .get_post(as_member("dan", get(&second.id, "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(got.reshare_of, original.id);
    assert!(got.reshared_post.is_none());
    let err = api
        .create_post(as_member(
            "dan",
            reshare("dan", &original.id, "", pb::Visibility::Public),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "post not found");
}

#[tokio::test]
async fn reshares_respect_the_originals_visibility() {
    let dir = tempfile::tempdir().unwrap();
    let relationships = FakeRelationships::default().connect("ada", "bob");
    let (api, _) = fakes(&dir, relationships, FakeEngagement::default()).await;
    let private = create_with(&api, "ada", "network", pb::Visibility::Connections).await;
    let err = api
        .create_post(as_member(
            "bob",
            reshare("bob", &private.id, "", pb::Visibility::Public),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "a connections-only post cannot be reshared publicly"
    );
    let ok = created(
        &api,
        as_member(
            "bob",
            reshare("bob", &private.id, "", pb::Visibility::Connections),
        ),
    )
    .await;
    assert_eq!(ok.reshared_post.as_deref(), Some(&private));
    // Who may not see the original is told it does not exist.
    for id in [private.id.as_str(), "unknown"] {
        let err = api
            .create_post(as_member(
                "cat",
                reshare("cat", id, "", pb::Visibility::Connections),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{id}");
        assert_eq!(err.message(), "post not found");
    }
    // A reshare's viewer who may not see the original gets the reshare alone.
    let got = api
        .get_post(as_member("ada", get(&ok.id, "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert!(got.reshared_post.is_some());
    // Text may be empty only for a reshare, and is at most 3000 characters either way.
    let err = api
        .create_post(as_member(
            "bob",
            reshare(
                "bob",
                &private.id,
                &"x".repeat(3001),
                pb::Visibility::Connections,
            ),
        ))
        .await
        .unwrap_err();
    assert!(err.message().contains("text:"));
    let err = api
        .create_post(as_member(
            "bob",
            reshare("bob", "b a d", "", pb::Visibility::Connections),
        ))
        .await
        .unwrap_err();
    assert!(err.message().contains("reshare_of:"));
}

#[tokio::test]
async fn a_lost_share_count_does_not_undo_the_reshare() {
    let dir = tempfile::tempdir().unwrap();
    let down = FakeEngagement {
        down: true,
        ..FakeEngagement::default()
    };
    let (api, _) = fakes(&dir, FakeRelationships::default(), down).await;
    let original = create(&api, "ada", "original").await;
    let shared = created(
        &api,
        as_member(
            "bob",
            reshare("bob", &original.id, "", pb::Visibility::Public),
        ),
    )
    .await;
    assert!(api
        .get_post(as_member("bob", get(&shared.id, "")))
        .await
        .is_ok());
}

#[tokio::test]
async fn mentions_keep_only_handles_of_members() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let post = create(&api, "ada", "hi @BOB and @ghost, @carol @bob").await;
    assert_eq!(post.mentions, ["bob", "carol"]);
    let members: Vec<(&str, &str)> = post
        .mentioned_members
        .iter()
        .map(|m| (m.handle.as_str(), m.member_id.as_str()))
        .collect();
    assert_eq!(members, [("Bob", "bob"), ("Carol", "carol")]);
}

#[tokio::test]
async fn a_down_profile_service_fails_posts_with_mentions() {
    let dir = tempfile::tempdir().unwrap();
    let auth = pronet_common::testing::test_auth();
    let channel = lazy_channel("127.0.0.1:1", CallLimits::default()).unwrap();
    let profiles = Arc::new(GrpcRelationships::new(channel, auth));
    let engagement = Arc::new(FakeEngagement::default());
    let api = api_full(&dir, profiles.clone(), profiles, engagement).await;
    let post = create(&api, "ada", "no mentions").await;
    let err = api
        .create_post(as_member(
            "ada",
            new_post("ada", "hi @bob", pb::Visibility::Public),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "profile service unavailable");
    let err = api
        .update_post(as_member("ada", edit(&post.id, "hi @bob", &[])))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        listed(&api, as_member("ada", by_author("ada", "")))
            .await
            .len()
            == 1
    );
}

#[tokio::test]
async fn trending_hashtags_rank_by_growth_of_posts_and_engagement() {
    let dir = tempfile::tempdir().unwrap();
    let (api, engagement) = fakes(
        &dir,
        FakeRelationships::default(),
        FakeEngagement::default(),
    )
    .await;
    let now = now_micros() / 1_000_000;
    let day = 86_400;
    let backfill = |text: &str, seconds_ago: i64| {
        let mut req = new_post("ada", text, pb::Visibility::Public);
        req.create_time = Some(Timestamp {
            seconds: now - seconds_ago,
            nanos: 0,
        });
        let api = api.clone();
        async move { created(&api, as_service(req)).await }
    };
    // rust: 2 now, 1 before; go: 1 now with engagement 5, 0 before; old: only before.
    let r1 = backfill("#rust", day).await;
    backfill("#rust #go", 2 * day).await;
    let before = backfill("#rust", 8 * day).await;
    let go = backfill("#go", 3 * day).await;
    backfill("#old", 9 * day).await;
    engagement.set(&go.id, 5);
    engagement.set(&r1.id, 1);
    engagement.set(&before.id, 3);

    let top = api
        .list_trending_hashtags(as_member("bob", trending(None, 0)))
        .await
        .unwrap()
        .into_inner()
        .hashtags;
    let got: Vec<(&str, i64, i64, i64, i64, f64)> = top
        .iter()
        .map(|t| {
            (
                t.hashtag.as_str(),
                t.posts,
                t.previous_posts,
                t.engagement,
                t.previous_engagement,
                t.growth,
            )
        })
        .collect();
    assert_eq!(got, [("go", 2, 0, 5, 0, 8.0), ("rust", 2, 1, 1, 3, 0.8)]);
    let one = api
        .list_trending_hashtags(as_service(trending(Some(30 * day), 1)))
        .await
        .unwrap()
        .into_inner()
        .hashtags;
    // rust (3 posts, engagement 4) and go (2, 5) tie on growth: more posts first.
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].hashtag, "rust");
    assert_eq!(
        (one[0].posts, one[0].engagement, one[0].growth),
        (3, 4, 8.0)
    );
}

#[tokio::test]
async fn trending_rejects_bad_windows_and_page_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    for (window, page_size) in [(Some(0), 0), (Some(-5), 0), (Some(91 * 86_400), -1)] {
        let err = api
            .list_trending_hashtags(as_member("ada", trending(window, page_size)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("window:"), "{}", err.message());
    }
    let empty = api
        .list_trending_hashtags(as_member("ada", trending(Some(90 * 86_400), 200)))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.hashtags.is_empty());
}

fn imported(id: &str, author: &str, text: &str, seconds: i64) -> pb::ImportedPost {
    pb::ImportedPost {
        id: id.into(),
        author_id: author.into(),
        text: text.into(),
        visibility: pb::Visibility::Public as i32,
        create_time: Some(Timestamp { seconds, nanos: 0 }),
    }
}

fn import(posts: Vec<pb::ImportedPost>) -> pb::ImportPostsRequest {
    pb::ImportPostsRequest { posts }
}

#[tokio::test]
async fn imports_posts_with_their_times_and_hashtags_and_skips_them_when_retried() {
    let dir = tempfile::tempdir().unwrap();
    let members = Arc::new(FakeMembers::default());
    let api = api_with_members(&dir, members.clone()).await;
    let posts = vec![
        imported("p1", "ada", "Hello #Rust and @bob", 1_600_000_000),
        imported("p2", "bob", "no tags", 1_600_000_100),
        imported("p3", "ada", "#rust #WASM", 1_600_000_200),
    ];
    let done = api
        .import_posts(as_service(import(posts.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.imported, done.skipped), (3, 0));
    // The authors, each once, in one call.
    assert_eq!(
        *members.calls.lock().unwrap(),
        [vec!["ada".to_string(), "bob".to_string()]]
    );
    let p1 = api
        .get_post(as_service(get("p1", "")))
        .await
        .unwrap()
        .into_inner()
        .post
        .unwrap();
    assert_eq!(p1.author_id, "ada");
    assert_eq!(p1.hashtags, ["rust"]);
    // Mentions stay text: they are not resolved on import.
    assert!(p1.mentions.is_empty() && p1.mentioned_members.is_empty());
    assert_eq!(p1.create_time.unwrap().seconds, 1_600_000_000);
    let tagged = api
        .list_posts_by_hashtag(as_service(by_tag("rust", 10, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&tagged.posts), ["p3", "p1"]);

    // A retry, and a repeat within the request, write nothing.
    let mut retry = posts;
    retry.push(imported("p4", "carol", "new #rust", 1_600_000_300));
    retry.push(imported("p4", "carol", "again", 1_600_000_300));
    let done = api
        .import_posts(as_service(import(retry)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.imported, done.skipped), (1, 4));
    let tagged = api
        .list_posts_by_hashtag(as_service(by_tag("rust", 10, "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&tagged.posts), ["p4", "p3", "p1"]);
}

#[tokio::test]
async fn rejects_every_invalid_imported_field_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let members = Arc::new(FakeMembers::default());
    let api = api_with_members(&dir, members.clone()).await;
    let future = now_micros() / 1_000_000 + 3600;
    let mut unspecified = imported("p4", "ada", "ok", 1);
    unspecified.visibility = pb::Visibility::Unspecified as i32;
    let mut timeless = imported("p5", "ada", "ok", 1);
    timeless.create_time = None;
    let posts = vec![
        imported("p0", "ada", "ok", 1),
        imported("not ok", "ada", "ok", 1),
        imported("p2", "", "ok", 1),
        imported("p3", "ada", " \n ", 1),
        unspecified,
        timeless,
        imported("p6", "ada", "ok", future),
    ];
    let err = api
        .import_posts(as_service(import(posts)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "posts[1].id: must contain only letters, digits, '-' and '_'; \
         posts[2].author_id: must not be empty; posts[3].text: must not be blank; \
         posts[4].visibility: must be VISIBILITY_PUBLIC or VISIBILITY_CONNECTIONS; \
         posts[5].create_time: is required; posts[6].create_time: must not be in the future"
    );
    // Nothing was written, and the profile service was not asked.
    assert!(members.calls.lock().unwrap().is_empty());
    let err = api.get_post(as_service(get("p0", ""))).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn rejects_more_than_a_thousand_imported_posts() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let posts = (0..1001)
        .map(|i| imported(&format!("p{i}"), "ada", "ok", 1))
        .collect();
    let err = api
        .import_posts(as_service(import(posts)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "posts: must have at most 1000 items, got 1001"
    );
}

#[tokio::test]
async fn an_import_naming_an_unknown_author_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(&dir).await;
    let posts = vec![
        imported("p1", "ada", "ok", 1),
        imported("p2", "zed", "ok", 1),
        imported("p3", "yan", "ok", 1),
    ];
    let err = api
        .import_posts(as_service(import(posts)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        err.message(),
        "posts[1].author_id: names no member; posts[2].author_id: names no member"
    );
    let err = api.get_post(as_service(get("p1", ""))).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn imports_are_for_services_only_and_need_the_profile_service() {
    let dir = tempfile::tempdir().unwrap();
    let members = Arc::new(FakeMembers {
        down: true,
        ..FakeMembers::default()
    });
    let api = api_with_members(&dir, members).await;
    let posts = vec![imported("p1", "ada", "ok", 1)];
    let err = api
        .import_posts(as_member("ada", import(posts.clone())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "this method is for pronet services only");
    let err = api
        .import_posts(as_service(import(posts)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "profile service unavailable");
    let empty = api
        .import_posts(as_service(import(Vec::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((empty.imported, empty.skipped), (0, 0));
}
