//! Starting pronet services: all four in one process (`pronet up`, the tests) or one of them
//! (`pronet serve`, as Kubernetes runs it). Either way each service gets its own listener, its
//! own store file and the shared bootstrap (health, reflection, graceful shutdown).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pronet_common::admission::{Limits, Override};
use pronet_common::auth::{Access, AuthConfig};
use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;
use pronet_common::nats::NatsConfig;
use pronet_common::server::{serve, ServerSpec};
use pronet_common::shutdown::Shutdown;
use pronet_common::upstream::CallLimits;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tonic::service::Routes;

/// The four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceKind {
    Profile,
    Post,
    Engagement,
    Feed,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 4] = [Self::Profile, Self::Post, Self::Engagement, Self::Feed];

    pub fn name(self) -> &'static str {
        match self {
            Self::Profile => "profile",
            Self::Post => "post",
            Self::Engagement => "engagement",
            Self::Feed => "feed",
        }
    }

    pub fn grpc_service(self) -> &'static str {
        match self {
            Self::Profile => pronet_profile::SERVICE_NAME,
            Self::Post => pronet_post::SERVICE_NAME,
            Self::Engagement => pronet_engagement::SERVICE_NAME,
            Self::Feed => pronet_feed::SERVICE_NAME,
        }
    }

    /// Who may call each of the service's methods.
    pub fn access(self) -> fn(&str) -> Access {
        match self {
            Self::Profile => pronet_profile::access,
            Self::Post => pronet_post::access,
            Self::Engagement => pronet_engagement::access,
            Self::Feed => pronet_feed::access,
        }
    }

    /// The admission limits of the service's server: the feed computes, the others wait on
    /// storage (see [`pronet_common::admission::Limits`]).
    pub fn default_admission(self) -> Limits {
        match self {
            Self::Feed => Limits::cpu_bound(),
            _ => Limits::io_bound(),
        }
    }

    fn spec(
        self,
        drain_delay: Duration,
        metrics: Option<Arc<Metrics>>,
        ready: Option<watch::Receiver<bool>>,
        admission: Override,
    ) -> ServerSpec {
        let mut services = vec![self.grpc_service()];
        if self != Self::Feed {
            // Every service with a store serves its events too.
            services.push(pronet_common::events::SERVICE_NAME);
        }
        ServerSpec {
            name: self.name(),
            services,
            drain_delay,
            access: self.access(),
            metrics,
            ready,
            admission: self.default_admission().overridden(admission),
        }
    }

    /// The default port of `pronet up`.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Profile => 50051,
            Self::Post => 50052,
            Self::Engagement => 50053,
            Self::Feed => 50054,
        }
    }
}

/// Where a service's dependencies listen (`host:port` or `http://host:port`).
#[derive(Debug, Clone)]
pub struct Dependencies {
    pub profile: String,
    pub post: String,
    pub engagement: String,
}

/// Where the suite keeps its data: SQLite files in a directory (one per service), or one
/// PostgreSQL database (one schema per service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Embedded(PathBuf),
    Postgres(String),
}

impl Storage {
    /// From `--database-url`: `postgres://...` is a database; `sqlite://DIR` a directory of
    /// SQLite files. Without one, SQLite files in `data_dir`.
    pub fn from_url(url: Option<&str>, data_dir: &Path) -> Result<Self, String> {
        match url.map(DatabaseUrl::parse).transpose()? {
            None => Ok(Self::Embedded(data_dir.to_path_buf())),
            Some(DatabaseUrl::Sqlite(dir)) => Ok(Self::Embedded(dir)),
            Some(DatabaseUrl::Postgres(url)) => Ok(Self::Postgres(url)),
        }
    }

    /// The database of one service.
    pub fn database(&self, kind: ServiceKind) -> DatabaseUrl {
        match self {
            Self::Embedded(dir) => DatabaseUrl::Sqlite(dir.join(format!("{}.db", kind.name()))),
            Self::Postgres(url) => DatabaseUrl::Postgres(url.clone()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(dir) => format!("SQLite files in {}", dir.display()),
            Self::Postgres(url) => format!(
                "PostgreSQL {} (a schema per service)",
                DatabaseUrl::Postgres(url.clone()).redacted()
            ),
        }
    }
}

/// Everything one service needs to start.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The service's own database.
    pub database: DatabaseUrl,
    pub dependencies: Dependencies,
    pub drain_delay: Duration,
    pub feed_window: Duration,
    /// The feed index's memory budget (`--feed-memory-budget`).
    pub feed_memory_budget: Option<usize>,
    /// Where the feed saves its index (`--feed-save-every`).
    pub feed_saved_index: Option<pronet_feed::events::SavedIndex>,
    /// The feed's ranking profiles file (`None`: built in).
    pub ranking_profiles: Option<std::path::PathBuf>,
    pub call_limits: CallLimits,
    /// Keys to verify callers' tokens and sign this service's own.
    pub auth: Arc<AuthConfig>,
    /// Where calls are counted (served by `--metrics-listen`).
    pub metrics: Option<Arc<Metrics>>,
    /// Events over NATS JetStream instead of the services' gRPC streams.
    pub nats: Option<NatsConfig>,
    /// The server's stop signal (event streams end and the feed's readers stop with it).
    pub shutdown: Shutdown,
    /// Admission limits over the service's defaults.
    pub admission: Override,
}

/// One service, built: its routes, and whether it can serve (the feed: its index is loaded;
/// the others: their store answers).
pub struct BuiltService {
    pub routes: Routes,
    pub ready: Option<watch::Receiver<bool>>,
    /// The feed's index (to watch its positions in tests and tools).
    pub feed_index: Option<pronet_feed::events::SharedIndex>,
    /// The feed's index saver, to await after the server stopped (its last save).
    pub saver: Option<tokio::task::JoinHandle<()>>,
}

/// Builds one service's routes (opening its store, if it has one).
pub async fn build_routes(
    kind: ServiceKind,
    opts: &ServiceOptions,
) -> anyhow::Result<BuiltService> {
    let (mut feed_index, mut saver) = (None, None);
    let database = opts.database.clone();
    let shown = database.redacted();
    let store = pronet_common::server::StoreConfig {
        database,
        metrics: opts.metrics.clone(),
        nats: opts.nats.clone(),
        shutdown: opts.shutdown.clone(),
    };
    let (routes, ready) = match kind {
        ServiceKind::Profile => store_service(
            pronet_profile::build(&store)
                .await
                .with_context(|| format!("opening the profile store {shown}"))?,
        ),
        ServiceKind::Post => store_service(
            pronet_post::build(&pronet_post::PostConfig {
                store,
                profile_addr: opts.dependencies.profile.clone(),
                engagement_addr: opts.dependencies.engagement.clone(),
                call_limits: opts.call_limits,
                auth: opts.auth.clone(),
            })
            .await
            .with_context(|| format!("starting the post service on {shown}"))?,
        ),
        ServiceKind::Engagement => store_service(
            pronet_engagement::build(&pronet_engagement::EngagementConfig {
                store,
                post_addr: opts.dependencies.post.clone(),
                profile_addr: opts.dependencies.profile.clone(),
                call_limits: opts.call_limits,
                auth: opts.auth.clone(),
            })
            .await
            .with_context(|| format!("starting the engagement service on {shown}"))?,
        ),
        ServiceKind::Feed => {
            let mut config = pronet_feed::FeedConfig::new(pronet_feed::Upstreams {
                profile_addr: opts.dependencies.profile.clone(),
                post_addr: opts.dependencies.post.clone(),
                engagement_addr: opts.dependencies.engagement.clone(),
                limits: opts.call_limits,
                auth: opts.auth.clone(),
            });
            config.window = opts.feed_window;
            config.memory_budget = opts.feed_memory_budget;
            config.saved_index = opts.feed_saved_index.clone();
            config.ranking_profiles = opts.ranking_profiles.clone();
            config.metrics = opts.metrics.clone();
            config.nats = opts.nats.clone();
            config.shutdown = opts.shutdown.clone();
            let built = pronet_feed::build(&config).map_err(anyhow::Error::msg)?;
            feed_index = Some(built.index);
            saver = built.saver;
            (built.routes, Some(built.ready))
        }
    };
    Ok(BuiltService {
        routes,
        ready,
        feed_index,
        saver,
    })
}

/// A store service's routes and readiness as the suite holds them.
fn store_service(
    built: pronet_common::server::StoreService,
) -> (Routes, Option<watch::Receiver<bool>>) {
    (built.routes, Some(built.store_ready))
}

/// Serves one service on `listener` until `shutdown` fires.
pub async fn serve_service(
    kind: ServiceKind,
    listener: TcpListener,
    opts: &ServiceOptions,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let opts = ServiceOptions {
        shutdown: shutdown.clone(),
        ..opts.clone()
    };
    let built = build_routes(kind, &opts).await?;
    serve(
        kind.spec(
            opts.drain_delay,
            opts.metrics.clone(),
            built.ready,
            opts.admission,
        ),
        listener,
        built.routes,
        opts.auth.clone(),
        shutdown,
    )
    .await?;
    if let Some(saver) = built.saver {
        let _ = saver.await;
    }
    Ok(())
}

/// Listen addresses of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteAddrs {
    pub profile: SocketAddr,
    pub post: SocketAddr,
    pub engagement: SocketAddr,
    pub feed: SocketAddr,
}

impl SuiteAddrs {
    pub fn get(&self, kind: ServiceKind) -> SocketAddr {
        match kind {
            ServiceKind::Profile => self.profile,
            ServiceKind::Post => self.post,
            ServiceKind::Engagement => self.engagement,
            ServiceKind::Feed => self.feed,
        }
    }

    /// All four on loopback port 0: the OS picks free ports (tests).
    pub fn ephemeral() -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Self {
            profile: any,
            post: any,
            engagement: any,
            feed: any,
        }
    }

    /// The default ports on loopback.
    pub fn defaults() -> Self {
        let at = |kind: ServiceKind| -> SocketAddr { ([127, 0, 0, 1], kind.default_port()).into() };
        Self {
            profile: at(ServiceKind::Profile),
            post: at(ServiceKind::Post),
            engagement: at(ServiceKind::Engagement),
            feed: at(ServiceKind::Feed),
        }
    }
}

/// Configuration of the whole suite in one process.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    pub storage: Storage,
    pub listen: SuiteAddrs,
    pub drain_delay: Duration,
    pub feed_window: Duration,
    pub feed_memory_budget: Option<usize>,
    pub feed_saved_index: Option<pronet_feed::events::SavedIndex>,
    /// The feed's ranking profiles file (`None`: built in).
    pub ranking_profiles: Option<std::path::PathBuf>,
    pub auth: Arc<AuthConfig>,
    pub metrics: Option<Arc<Metrics>>,
    pub nats: Option<NatsConfig>,
    /// Admission limits of every server over each service's defaults.
    pub admission: Override,
    /// Calls to other services: connect and call deadlines.
    pub call_limits: CallLimits,
}

impl SuiteConfig {
    pub fn new(storage: Storage, listen: SuiteAddrs, auth: Arc<AuthConfig>) -> Self {
        Self {
            storage,
            listen,
            auth,
            metrics: None,
            nats: None,
            drain_delay: Duration::ZERO,
            feed_window: Duration::from_secs(14 * 86_400),
            feed_memory_budget: None,
            feed_saved_index: None,
            ranking_profiles: None,
            admission: Override::default(),
            call_limits: CallLimits::default(),
        }
    }
}

/// How long `start` waits for the feed's index to load the other services' state.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// The four services running in this process.
pub struct RunningSuite {
    pub addrs: SuiteAddrs,
    /// The feed's in-memory index.
    pub feed_index: Option<pronet_feed::events::SharedIndex>,
    auth: Arc<AuthConfig>,
    shutdown: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
}

/// The newest event sequence each of profile, post and engagement has committed, asked over
/// their event streams (a stream resumed past every event opens with the head and closes).
pub async fn event_heads(addrs: &SuiteAddrs, auth: &AuthConfig) -> anyhow::Result<[i64; 3]> {
    use pronet_proto::events::v1 as pb;
    use pronet_proto::events::v1::event_service_client::EventServiceClient;
    let token = auth
        .service_token("pronet", Duration::from_secs(60))
        .map_err(anyhow::Error::msg)?;
    let mut heads = [0; 3];
    for (i, addr) in [addrs.profile, addrs.post, addrs.engagement]
        .into_iter()
        .enumerate()
    {
        let mut client = EventServiceClient::connect(format!("http://{addr}")).await?;
        let request = pronet_common::auth::with_token(
            pb::StreamEventsRequest {
                after_sequence: i64::MAX,
                stop_at_head: true,
                ..Default::default()
            },
            &token,
        );
        let mut stream = client.stream_events(request).await?.into_inner();
        heads[i] = stream
            .message()
            .await?
            .context("the event stream opened without its head")?
            .head_sequence;
    }
    Ok(heads)
}

impl RunningSuite {
    /// Binds every listener first (so port 0 resolves and dependencies know where to call),
    /// then opens the stores and serves.
    pub async fn start(config: SuiteConfig) -> anyhow::Result<Self> {
        if let Storage::Embedded(dir) = &config.storage {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating data dir {}", dir.display()))?;
        }
        let mut listeners = Vec::new();
        for kind in ServiceKind::ALL {
            let addr = config.listen.get(kind);
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the {} service to {addr}", kind.name()))?;
            listeners.push((kind, listener));
        }
        let bound = |kind: ServiceKind| -> anyhow::Result<SocketAddr> {
            let (_, l) = listeners
                .iter()
                .find(|(k, _)| *k == kind)
                .context("listener missing")?;
            Ok(l.local_addr()?)
        };
        let addrs = SuiteAddrs {
            profile: bound(ServiceKind::Profile)?,
            post: bound(ServiceKind::Post)?,
            engagement: bound(ServiceKind::Engagement)?,
            feed: bound(ServiceKind::Feed)?,
        };
        let mut opts = ServiceOptions {
            database: config.storage.database(ServiceKind::Profile),
            dependencies: Dependencies {
                profile: addrs.profile.to_string(),
                post: addrs.post.to_string(),
                engagement: addrs.engagement.to_string(),
            },
            drain_delay: config.drain_delay,
            feed_window: config.feed_window,
            feed_memory_budget: config.feed_memory_budget,
            feed_saved_index: config.feed_saved_index.clone(),
            ranking_profiles: config.ranking_profiles.clone(),
            call_limits: config.call_limits,
            auth: config.auth.clone(),
            metrics: config.metrics.clone(),
            nats: config.nats.clone(),
            shutdown: Shutdown::new(),
            admission: config.admission,
        };
        // Open every store before serving anything, so a broken data dir fails the start.
        let mut built = Vec::new();
        for (kind, listener) in listeners {
            opts.database = config.storage.database(kind);
            built.push((kind, listener, build_routes(kind, &opts).await?));
        }
        let shutdown = opts.shutdown.clone();
        let mut tasks = JoinSet::new();
        let (mut feed_ready, mut feed_index) = (None, None);
        for (kind, listener, service) in built {
            let routes = service.routes;
            if kind == ServiceKind::Feed {
                feed_ready = service.ready.clone();
                feed_index = service.feed_index.clone();
            }
            let spec = kind.spec(
                config.drain_delay,
                config.metrics.clone(),
                service.ready,
                config.admission,
            );
            let (shutdown, auth) = (shutdown.clone(), config.auth.clone());
            let saver = service.saver;
            tasks.spawn(async move {
                serve(spec, listener, routes, auth, shutdown)
                    .await
                    .with_context(|| format!("{} server", kind.name()))?;
                // The feed saves its index once more after it stopped serving.
                if let Some(saver) = saver {
                    let _ = saver.await;
                }
                Ok(())
            });
        }
        let suite = Self {
            addrs,
            shutdown,
            tasks,
            feed_index,
            auth: config.auth.clone(),
        };
        // Serve only once the feed's index has loaded what the other services hold.
        if let Some(mut ready) = feed_ready {
            let loaded = tokio::time::timeout(READY_TIMEOUT, ready.wait_for(|r| *r)).await;
            if !matches!(loaded, Ok(Ok(_))) {
                suite.shutdown.trigger();
                anyhow::bail!("the feed index did not load within {READY_TIMEOUT:?}");
            }
        }
        Ok(suite)
    }

    /// Waits until the feed's index has applied every event committed so far (it trails the
    /// writes by milliseconds): what `up --demo` and the tests do before reading feeds.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        use pronet_feed::index::Source;
        let heads = event_heads(&self.addrs, &self.auth).await?;
        let index = self.feed_index.as_ref().context("no feed in this suite")?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let positions = {
                let index = index.read().unwrap_or_else(|p| p.into_inner());
                Source::ALL.map(|s| index.position(s))
            };
            if positions.iter().zip(heads).all(|(p, h)| *p >= h) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!("the feed index is at {positions:?}, the services at {heads:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A handle that stops the suite when triggered.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs until shutdown is triggered or a server fails; then stops all of them.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(err) = result {
                tracing::error!(error = %format!("{err:#}"), "server stopped");
                self.shutdown.trigger();
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Drains and stops every server, waiting for in-flight calls.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.trigger();
        self.wait().await
    }
}
