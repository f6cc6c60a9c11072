//! `pronet`: run the whole suite in one process (`up`), or one service (`serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use pronet::bench::graph::{self as bench_graph, SeedShape};
use pronet::bench::{
    self, open_loop::Schedule, run as bench_runs, workload::Draws, workload::Mix,
    workload::Workload,
};
use pronet::demo::{self, DemoShape};
use pronet::suite::{serve_service, Dependencies, ServiceOptions, Storage};
use pronet::{RunningSuite, ServiceKind, SuiteAddrs, SuiteConfig};
use pronet_common::auth::AuthConfig;
use pronet_common::config::{parse_duration, process_env, EnvMap};
use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;
use pronet_common::shutdown::{self, Shutdown};
use pronet_common::upstream::CallLimits;

#[derive(Parser, Debug)]
#[command(
    name = "pronet",
    version,
    about = "A professional network backend: four gRPC services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs all four services in this process, on the embedded store.
    Up(UpArgs),
    /// Runs one service (as a Kubernetes pod does).
    Serve(ServeArgs),
    /// Prints a token signed with the servers' key: for a member, or for a service.
    Token(TokenArgs),
    /// Seeds a running suite with a large network, or drives it open loop and reports latency.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Fills a running suite with a seeded network through its public API.
    Seed(BenchSeedArgs),
    /// Issues requests at a fixed rate (open loop) and reports latency percentiles.
    Run(BenchRunArgs),
    /// Ranking quality: a simulated world with planted interests, loaded into a fresh embedded
    /// suite, each ranking profile's feeds scored by NDCG@10 against the ground truth.
    Eval(BenchEvalArgs),
}

#[derive(Args, Debug)]
struct BenchEvalArgs {
    /// An edge list (`a b` per line, members from 0), e.g. ../shared/datasets/socfb-Reed98/socfb-Reed98.edges;
    /// left out: a generated graph of --members.
    #[arg(long)]
    graph: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    members: usize,
    #[arg(long, default_value_t = 40)]
    mean_degree: usize,
    /// Hidden topics (one hashtag each).
    #[arg(long, default_value_t = 12)]
    topics: usize,
    /// Posts a member writes on average.
    #[arg(long, default_value_t = 10.0)]
    posts_per_member: f64,
    /// Share of the posts in their network a member was shown.
    #[arg(long, default_value_t = 0.4)]
    seen_fraction: f64,
    /// Members whose feeds are scored.
    #[arg(long, default_value_t = 200)]
    sample: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Ranking profiles to compare (TOML, as --ranking-profiles); left out: the built-in ones.
    /// The default profile is also scored with each of its signals switched off.
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// Where the suite keeps its data while the evaluation runs (removed after).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the report as JSON too.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchTarget {
    /// `profile=ADDR,post=ADDR,engagement=ADDR,feed=ADDR`; left out: the `pronet up` ports.
    #[arg(long, default_value = "", value_parser = bench::parse_targets)]
    targets: SuiteAddrs,
    /// The servers' data dir: its development key signs the bench's tokens (as `pronet token`),
    /// and `bench seed` writes its member ids there.
    #[arg(long, env = "PRONET_DATA_DIR", default_value = "./pronet-data")]
    data_dir: PathBuf,
}

#[derive(Args, Debug)]
struct BenchSeedArgs {
    #[command(flatten)]
    target: BenchTarget,
    /// Members to create (ignored with --graph, which brings its own).
    #[arg(long, default_value_t = SeedShape::default().members)]
    members: usize,
    /// Average connections per member of the generated graph.
    #[arg(long, default_value_t = SeedShape::default().mean_degree)]
    mean_degree: usize,
    /// No member of the generated graph gets more connections than this.
    #[arg(long, default_value_t = SeedShape::default().max_hub)]
    max_hub: usize,
    /// Make the first N members big hubs on top of the generated graph (preferential
    /// attachment alone tops out near mean-degree/2 x sqrt(members)).
    #[arg(long, default_value_t = SeedShape::default().hubs)]
    hubs: usize,
    /// About how many connections each of those hubs gets.
    #[arg(long, default_value_t = SeedShape::default().hub_size)]
    hub_size: usize,
    /// Load this edge list (`a b` per line, members from 0) instead of generating a graph.
    #[arg(long)]
    graph: Option<PathBuf>,
    #[arg(long, default_value_t = SeedShape::default().posts)]
    posts: usize,
    /// Posts are spread over this many days before now.
    #[arg(long, default_value_t = SeedShape::default().days)]
    days: u32,
    #[arg(long, default_value_t = SeedShape::default().reactions)]
    reactions: usize,
    #[arg(long, default_value_t = SeedShape::default().comments)]
    comments: usize,
    #[arg(long, default_value_t = SeedShape::default().shares)]
    shares: usize,
    /// Impressions (a member shown a post).
    #[arg(long, default_value_t = SeedShape::default().impressions)]
    impressions: usize,
    /// Size of the hashtag vocabulary (drawn Zipf).
    #[arg(long, default_value_t = SeedShape::default().hashtags)]
    hashtags: usize,
    /// The same seed gives the same members, graph, posts and engagement.
    #[arg(long, default_value_t = SeedShape::default().seed)]
    seed: u64,
    /// Calls in flight (imports: at most 4).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Only these phases (comma-separated), e.g. to finish a seed that was interrupted.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "profiles,connections,follows,posts,engagement"
    )]
    phases: Vec<bench::seed::Phase>,
}

#[derive(Args, Debug)]
struct BenchRunArgs {
    #[command(flatten)]
    target: BenchTarget,
    #[arg(long, value_enum, default_value = "feed")]
    mix: Mix,
    /// Requests per second (the starting rate of --find-max).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long a run (or each --find-max step) issues requests.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// HTTP/2 connections to each server; requests go round-robin over them.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight per connection at most; more wait (and their latency counts).
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// How long requests still in flight at the end may take.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Zipf exponent of member draws (about 1: a few members make most requests); 0 = uniform.
    #[arg(long, default_value_t = 0.0)]
    skew: f64,
    /// Act as the members of `up --demo` instead of those `bench seed` wrote.
    #[arg(long)]
    members_from_demo: bool,
    /// Only members with this many connections make requests, `MIN..MAX` (MAX excluded) or
    /// `MIN..` (from the counts `bench seed` wrote): how an operation grows with the member's
    /// network. Not for the health mix, which acts as nobody.
    #[arg(long, value_parser = bench::DegreeBand::parse, conflicts_with = "members_from_demo")]
    degree: Option<bench::DegreeBand>,
    /// Seed of the request draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Search the highest rate whose p99 holds --slo-p99 (doubling, then bisection).
    #[arg(long, requires = "slo_p99")]
    find_max: bool,
    /// The p99 latency objective of --find-max, e.g. 25ms.
    #[arg(long, value_parser = parse_duration)]
    slo_p99: Option<Duration>,
    /// At most this many --find-max steps.
    #[arg(long, default_value_t = 14)]
    max_steps: usize,
    /// Server processes to report CPU and peak RSS of (repeatable).
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The feed's metrics (`http://HOST:PORT/metrics`, `up --metrics-listen`): report how long
    /// the run's writes took to reach the feed's index (freshness).
    #[arg(long)]
    feed_metrics: Option<String>,
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// The member to act as (the token's subject).
    #[arg(long, required_unless_present = "service", conflicts_with = "service")]
    member_id: Option<String>,
    /// A service token instead (for the internal RPCs), e.g. `feed`.
    #[arg(long)]
    service: Option<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// The data dir whose development secret `pronet up` generated (when PRONET_JWT_SECRET and
    /// PRONET_JWT_PRIVATE_KEY_FILE are not set).
    #[arg(long, env = "PRONET_DATA_DIR", default_value = "./pronet-data")]
    data_dir: PathBuf,
}

#[derive(Args, Debug)]
struct UpArgs {
    /// Where the services keep their data.
    #[arg(long, env = "PRONET_DATA_DIR", default_value = "./pronet-data")]
    data_dir: PathBuf,
    /// Fill an empty store with the demo network and print a member to try.
    #[arg(long)]
    demo: bool,
    /// `postgres://USER@HOST:PORT/DB` runs all four services on one PostgreSQL database, each
    /// in its own schema; `sqlite://DIR` keeps SQLite files in DIR. Default: SQLite in --data-dir.
    #[arg(long, env = "PRONET_DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long, default_value = "127.0.0.1:50051")]
    profile_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:50052")]
    post_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:50053")]
    engagement_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:50054")]
    feed_listen: SocketAddr,
    /// How long health reports NOT_SERVING before the listeners close.
    #[arg(long, env = "PRONET_DRAIN_DELAY", default_value = "0s", value_parser = parse_duration)]
    drain_delay: Duration,
    /// How far back feed candidates reach.
    #[arg(long, env = "PRONET_FEED_WINDOW", default_value = "14d", value_parser = parse_duration)]
    feed_window: Duration,
    /// Most memory the feed's index may hold, e.g. `1GiB` (its own estimate); past it its
    /// oldest posts leave before the window. Unset: the window alone bounds it.
    #[arg(long, env = "PRONET_FEED_MEMORY_BUDGET", value_parser = parse_size)]
    feed_memory_budget: Option<usize>,
    /// How often the feed saves its index to `feed-index.bin` in the data dir, to start from
    /// it next time (replaying the events since) instead of exporting every service; `0s`:
    /// never save or load it.
    #[arg(long, env = "PRONET_FEED_SAVE_EVERY", default_value = "5m", value_parser = parse_duration)]
    feed_save_every: Duration,
    /// The feed's ranking profiles file (TOML, see crates/feed/ranking.toml); re-read when it
    /// changes. Unset: the built-in profiles.
    #[arg(long, env = "PRONET_RANKING_PROFILES")]
    ranking_profiles: Option<std::path::PathBuf>,
    /// Serve Prometheus metrics of all four services on this address (`GET /metrics`).
    #[arg(long, env = "PRONET_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Carry domain events over NATS JetStream at this URL (`nats://HOST:PORT`) instead of
    /// each service's gRPC event stream (production).
    #[arg(long, env = "PRONET_NATS_URL")]
    nats_url: Option<String>,
    /// Prefix of the JetStream streams and subjects (several suites on one NATS server).
    #[arg(long, env = "PRONET_NATS_PREFIX", default_value = "pronet", value_parser = parse_nats_prefix)]
    nats_prefix: String,
    /// Most calls each server takes at once; more wait up to --queue-timeout, then are shed
    /// with RESOURCE_EXHAUSTED. Default: 4 per core for the feed, 512 for the others.
    #[arg(long, env = "PRONET_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// Longest a call waits for a place before it is shed. Default: 20ms for the feed, 100ms
    /// for the others.
    #[arg(long, env = "PRONET_QUEUE_TIMEOUT", value_parser = parse_duration)]
    queue_timeout: Option<Duration>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    service: ServiceKind,
    /// Address to listen on.
    #[arg(long, env = "PRONET_LISTEN", default_value = "0.0.0.0:50051")]
    listen: SocketAddr,
    /// Where the service keeps its data (and the development JWT secret).
    #[arg(long, env = "PRONET_DATA_DIR", default_value = "./pronet-data")]
    data_dir: PathBuf,
    /// `postgres://USER@HOST:PORT/DB` (the service uses its own schema) or `sqlite://FILE`.
    /// Default: `<data-dir>/<service>.db`.
    #[arg(long, env = "PRONET_DATABASE_URL")]
    database_url: Option<String>,
    /// The profile service (for the feed service).
    #[arg(long, env = "PRONET_PROFILE_ADDR", default_value = "127.0.0.1:50051")]
    profile_addr: String,
    /// The post service (for the feed and engagement services).
    #[arg(long, env = "PRONET_POST_ADDR", default_value = "127.0.0.1:50052")]
    post_addr: String,
    /// The engagement service (for the feed service).
    #[arg(
        long,
        env = "PRONET_ENGAGEMENT_ADDR",
        default_value = "127.0.0.1:50053"
    )]
    engagement_addr: String,
    /// How long health reports NOT_SERVING before the listener closes, so load balancers
    /// stop routing to this replica first.
    #[arg(long, env = "PRONET_DRAIN_DELAY", default_value = "5s", value_parser = parse_duration)]
    drain_delay: Duration,
    /// How far back feed candidates reach.
    #[arg(long, env = "PRONET_FEED_WINDOW", default_value = "14d", value_parser = parse_duration)]
    feed_window: Duration,
    /// Most memory the feed's index may hold, e.g. `1GiB` (its own estimate); past it its
    /// oldest posts leave before the window. Unset: the window alone bounds it.
    #[arg(long, env = "PRONET_FEED_MEMORY_BUDGET", value_parser = parse_size)]
    feed_memory_budget: Option<usize>,
    /// How often the feed saves its index to `feed-index.bin` in the data dir, to start from
    /// it next time (replaying the events since) instead of exporting every service; `0s`:
    /// never save or load it.
    #[arg(long, env = "PRONET_FEED_SAVE_EVERY", default_value = "5m", value_parser = parse_duration)]
    feed_save_every: Duration,
    /// The feed's ranking profiles file (TOML, see crates/feed/ranking.toml); re-read when it
    /// changes. Unset: the built-in profiles.
    #[arg(long, env = "PRONET_RANKING_PROFILES")]
    ranking_profiles: Option<std::path::PathBuf>,
    /// Deadline of each call to another service.
    #[arg(long, env = "PRONET_CALL_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    call_timeout: Duration,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, env = "PRONET_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// Carry domain events over NATS JetStream at this URL (`nats://HOST:PORT`) instead of
    /// each service's gRPC event stream (production).
    #[arg(long, env = "PRONET_NATS_URL")]
    nats_url: Option<String>,
    /// Prefix of the JetStream streams and subjects (several suites on one NATS server).
    #[arg(long, env = "PRONET_NATS_PREFIX", default_value = "pronet", value_parser = parse_nats_prefix)]
    nats_prefix: String,
    /// Most calls each server takes at once; more wait up to --queue-timeout, then are shed
    /// with RESOURCE_EXHAUSTED. Default: 4 per core for the feed, 512 for the others.
    #[arg(long, env = "PRONET_MAX_IN_FLIGHT")]
    max_in_flight: Option<usize>,
    /// Longest a call waits for a place before it is shed. Default: 20ms for the feed, 100ms
    /// for the others.
    #[arg(long, env = "PRONET_QUEUE_TIMEOUT", value_parser = parse_duration)]
    queue_timeout: Option<Duration>,
}

/// A size in bytes: a number with an optional `KiB`, `MiB` or `GiB` (or `K`, `M`, `G`).
fn parse_size(raw: &str) -> Result<usize, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a size like 512MiB"))?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (KiB, MiB or GiB)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

/// A stream and subject prefix: letters, digits, `_` and `-` (no `.`, `*`, `>` or spaces).
fn parse_nats_prefix(raw: &str) -> Result<String, String> {
    if raw.is_empty()
        || raw.len() > 32
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("must be 1-32 letters, digits, '_' or '-'".into());
    }
    Ok(raw.to_owned())
}

fn nats_config(url: Option<String>, prefix: String) -> Option<pronet_common::nats::NatsConfig> {
    url.map(|url| pronet_common::nats::NatsConfig { url, prefix })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = process_env();
    if let Command::Token(args) = &cli.command {
        let _telemetry = pronet_common::telemetry::install(&env, None);
        return token(args, &env);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Traces go out on this runtime: the pipeline lives (and flushes) within it.
        let service = match &cli.command {
            Command::Serve(args) => format!("pronet-{}", args.service.name()),
            _ => "pronet".to_string(),
        };
        let _telemetry = pronet_common::telemetry::init(&env, &service);
        match cli.command {
            Command::Up(args) => up(args, &env).await,
            Command::Serve(args) => serve(args, &env).await,
            Command::Bench(BenchCommand::Run(args)) => bench_run(args, &env).await,
            Command::Bench(BenchCommand::Seed(args)) => bench_seed(args, &env).await,
            Command::Bench(BenchCommand::Eval(args)) => bench_eval(args).await,
            Command::Token(_) => Ok(()),
        }
    })
}

fn token(args: &TokenArgs, env: &EnvMap) -> anyhow::Result<()> {
    let auth = AuthConfig::from_env(env, Some(&args.data_dir), false)?;
    let token = match (&args.member_id, &args.service) {
        (Some(member), _) => {
            pronet_common::ids::parse_id(member).map_err(|e| anyhow::anyhow!("--member-id {e}"))?;
            auth.member_token(member, args.ttl)
        }
        (None, Some(service)) => auth.service_token(service, args.ttl),
        (None, None) => Err("give --member-id or --service".to_string()),
    }
    .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(())
}

async fn up(args: UpArgs, env: &EnvMap) -> anyhow::Result<()> {
    let started = Instant::now();
    // Without a configured key, a development secret is generated once in the data dir.
    let auth = Arc::new(AuthConfig::from_env(env, Some(&args.data_dir), true)?);
    let storage = Storage::from_url(args.database_url.as_deref(), &args.data_dir)
        .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    let mut config = SuiteConfig::new(
        storage.clone(),
        SuiteAddrs {
            profile: args.profile_listen,
            post: args.post_listen,
            engagement: args.engagement_listen,
            feed: args.feed_listen,
        },
        auth.clone(),
    );
    config.drain_delay = args.drain_delay;
    config.feed_window = args.feed_window;
    config.feed_memory_budget = args.feed_memory_budget;
    config.feed_saved_index = saved_index(&args.data_dir, args.feed_save_every);
    config.ranking_profiles = args.ranking_profiles.clone();
    config.nats = nats_config(args.nats_url, args.nats_prefix);
    config.admission = pronet_common::admission::Override {
        max_in_flight: args.max_in_flight,
        queue_timeout: args.queue_timeout,
    };
    let metrics = args.metrics_listen.map(|_| Metrics::new());
    config.metrics = metrics.clone();
    let suite = RunningSuite::start(config).await?;
    if let (Some(addr), Some(metrics)) = (args.metrics_listen, metrics) {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("metrics on http://{}/metrics", listener.local_addr()?);
        tokio::spawn(metrics.serve(listener, suite.shutdown_handle()));
    }
    let addrs = suite.addrs;
    let stop = suite.shutdown_handle();
    tokio::spawn(async move {
        shutdown::signal().await;
        stop.trigger();
    });

    let mut try_member = None;
    if args.demo {
        let stopping = suite.shutdown_handle();
        let summary = tokio::select! {
            s = demo::seed(&addrs, &auth, DemoShape::default()) => s?,
            _ = stopping.wait() => return suite.wait().await,
        };
        if summary.already_seeded {
            println!("demo network already in {}", storage.describe());
        } else {
            println!(
                "demo network written in {:.1}s: {} members, {} connections, {} follows, {} posts, \
                 {} reactions, {} comments, {} shares",
                summary.elapsed.as_secs_f64(),
                summary.members,
                summary.connections,
                summary.follows,
                summary.posts,
                summary.reactions,
                summary.comments,
                summary.shares
            );
        }
        // The feed reads what the demo wrote from the services' events: wait until it has.
        suite.settle(Duration::from_secs(120)).await?;
        println!(
            "try member @{} (member_id {})",
            summary.try_handle, summary.try_member_id
        );
        try_member = Some(summary.try_member_id);
    }

    println!(
        "pronet is ready in {:.2}s (data: {})",
        started.elapsed().as_secs_f64(),
        storage.describe()
    );
    for kind in ServiceKind::ALL {
        println!(
            "  {:<10} {}  {}",
            kind.name(),
            addrs.get(kind),
            kind.grpc_service()
        );
    }
    let member = try_member.unwrap_or_else(|| "MEMBER_ID".into());
    let data_dir = args.data_dir.display();
    println!("every call but health and reflection needs a token:");
    println!("  TOKEN=$(pronet token --data-dir {data_dir} --member-id {member})");
    println!("try:");
    println!("  grpcurl -plaintext {} list", addrs.feed);
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" -d '{{\"member_id\":\"{member}\",\"page_size\":5}}' {} pronet.feed.v1.FeedService/GetFeed",
        addrs.feed
    );
    suite.wait().await
}

/// Where the feed saves its index (`None` when `every` is zero).
fn saved_index(
    data_dir: &std::path::Path,
    every: Duration,
) -> Option<pronet_feed::events::SavedIndex> {
    (!every.is_zero()).then(|| pronet_feed::events::SavedIndex {
        path: data_dir.join("feed-index.bin"),
        every,
    })
}

async fn serve(args: ServeArgs, env: &EnvMap) -> anyhow::Result<()> {
    let auth = Arc::new(AuthConfig::from_env(env, Some(&args.data_dir), false)?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let database = match args.database_url.as_deref() {
        Some(url) => DatabaseUrl::parse(url).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?,
        None => DatabaseUrl::Sqlite(args.data_dir.join(format!("{}.db", args.service.name()))),
    };
    let metrics = Metrics::new();
    let opts = ServiceOptions {
        database,
        dependencies: Dependencies {
            profile: args.profile_addr,
            post: args.post_addr,
            engagement: args.engagement_addr,
        },
        drain_delay: args.drain_delay,
        feed_window: args.feed_window,
        feed_memory_budget: args.feed_memory_budget,
        feed_saved_index: saved_index(&args.data_dir, args.feed_save_every),
        ranking_profiles: args.ranking_profiles.clone(),
        call_limits: CallLimits {
            request_timeout: args.call_timeout,
            ..CallLimits::default()
        },
        auth,
        metrics: Some(metrics.clone()),
        nats: nats_config(args.nats_url, args.nats_prefix),
        // serve_service gives the service the stop signal it serves with.
        shutdown: Shutdown::new(),
        admission: pronet_common::admission::Override {
            max_in_flight: args.max_in_flight,
            queue_timeout: args.queue_timeout,
        },
    };
    let stop = Shutdown::new();
    let metrics_listener = tokio::net::TcpListener::bind(args.metrics_listen).await?;
    tokio::spawn(metrics.serve(metrics_listener, stop.clone()));
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        trigger.trigger();
    });
    tracing::info!(service = args.service.name(), listen = %listener.local_addr()?, "starting");
    serve_service(args.service, listener, &opts, stop).await
}

async fn bench_run(args: BenchRunArgs, env: &EnvMap) -> anyhow::Result<()> {
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let auth = AuthConfig::from_env(env, Some(&args.target.data_dir), false)?;
    let members = if args.mix == Mix::Health {
        Vec::new()
    } else if args.members_from_demo {
        demo::member_ids(&DemoShape::default())
    } else {
        bench::read_members(&args.target.data_dir)?
    };
    anyhow::ensure!(
        args.degree.is_none() || args.mix != Mix::Health,
        "--degree selects members, and the health mix acts as nobody"
    );
    let acting = match args.degree {
        Some(band) => {
            let degrees = bench::read_degrees(&args.target.data_dir)?;
            anyhow::ensure!(
                degrees.len() == members.len(),
                "{} counts for {} members: seed again",
                degrees.len(),
                members.len()
            );
            let acting = band.members(&degrees);
            anyhow::ensure!(!acting.is_empty(), "no member has a count in {band:?}");
            Some(acting)
        }
        None => None,
    };
    let setup = bench_runs::RunSetup {
        mix: args.mix,
        duration_s: args.duration.as_secs_f64(),
        connections: args.connections,
        max_in_flight: args.max_in_flight,
        members: acting.as_ref().map_or(members.len(), Vec::len),
        degree: args.degree,
        skew: args.skew,
    };
    let workload = Arc::new(
        Workload::connect(
            args.mix,
            &args.target.targets,
            args.connections,
            &auth,
            members,
            acting,
            Draws {
                skew: args.skew,
                seed: args.seed,
            },
        )
        .await?,
    );
    let schedule = Schedule {
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        max_in_flight: args.max_in_flight,
        drain_timeout: args.drain_timeout,
    };
    if !args.json {
        println!(
            "mix {:?}, {} connections x {} in flight, {} members, steps of {:?}",
            args.mix, args.connections, args.max_in_flight, setup.members, args.duration
        );
        println!("{}", bench_runs::header());
    }
    let lag_before = match &args.feed_metrics {
        Some(url) => Some(bench::freshness::scrape(url).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let json = args.json;
    let print_row = |r: &bench_runs::StepReport| {
        if !json {
            println!("{}", bench_runs::row(r));
        }
    };
    match (args.find_max, args.slo_p99) {
        (true, Some(slo)) => {
            let search = bench_runs::find_max(
                &workload,
                schedule,
                args.rate,
                slo,
                &args.server_pids,
                args.max_steps,
                print_row,
            )
            .await;
            if json {
                let out = serde_json::json!({ "setup": setup, "search": search });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &search.best {
                    Some(best) => println!(
                        "max rate holding p99 <= {:.1} ms: {:.0}/s (p99 {:.2} ms)",
                        search.slo_p99_ms, best.offered_rps, best.latency.p99_ms
                    ),
                    None => println!("no rate held p99 <= {:.1} ms", search.slo_p99_ms),
                }
            }
        }
        _ => {
            let report = bench_runs::step(&workload, schedule, &args.server_pids).await;
            if json {
                let out = serde_json::json!({ "setup": setup, "run": report });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_row(&report);
            }
        }
    }
    if let (Some(url), Some(before)) = (&args.feed_metrics, lag_before) {
        // What was written in the last moment of the run is still arriving.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = bench::freshness::scrape(url).map_err(anyhow::Error::msg)?;
        for lag in bench::freshness::lag_between(&before, &after) {
            if json {
                println!("{}", serde_json::to_string(&lag)?);
            } else {
                println!(
                    "freshness {}: {} events reached the feed index, p50 <= {} ms, p99 <= {} ms",
                    lag.source, lag.events, lag.p50_ms_at_most, lag.p99_ms_at_most
                );
            }
        }
    }
    Ok(())
}

async fn bench_eval(args: BenchEvalArgs) -> anyhow::Result<()> {
    let graph = match &args.graph {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                bench_graph::parse_edge_list(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let profiles = match &args.profiles {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            pronet_feed::domain::ProfileSet::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => pronet_feed::domain::ProfileSet::built_in(),
    };
    let default = profiles.default_profile().name.clone();
    let shape = bench::eval::EvalShape {
        graph,
        members: args.members,
        mean_degree: args.mean_degree,
        topics: args.topics,
        posts_per_member: args.posts_per_member,
        seen_fraction: args.seen_fraction,
        sample: args.sample,
        seed: args.seed,
        ..Default::default()
    };
    let dir = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("pronet-eval-{}", std::process::id()))
    });
    let report = bench::eval::run(&shape, dir.clone(), profiles).await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    println!(
        "world: {} members, {} connections, {} posts, {} impressions, {} reactions; loaded through the API in {:.1}s; {} members scored",
        report.members,
        report.edges,
        report.posts,
        report.impressions,
        report.engagements,
        report.load_seconds,
        report.sampled
    );
    print!("{}", report.table(&default));
    if let (Some(best), Some(ours)) = (report.best_baseline(), report.ndcg(&default)) {
        println!(
            "{default}: {ours:.4}, {:+.1}% over the best baseline ({} {:.4}), {:.3} of the oracle",
            (ours / best.ndcg - 1.0) * 100.0,
            best.profile,
            best.ndcg,
            ours
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

async fn bench_seed(args: BenchSeedArgs, env: &EnvMap) -> anyhow::Result<()> {
    let auth = AuthConfig::from_env(env, Some(&args.target.data_dir), false)?;
    let shape = SeedShape {
        members: args.members,
        mean_degree: args.mean_degree,
        max_hub: args.max_hub,
        hubs: args.hubs,
        hub_size: args.hub_size,
        posts: args.posts,
        days: args.days,
        reactions: args.reactions,
        comments: args.comments,
        shares: args.shares,
        impressions: args.impressions,
        hashtags: args.hashtags.max(1),
        seed: args.seed,
    };
    let loaded = match &args.graph {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let g = bench_graph::parse_edge_list(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            println!(
                "loaded {}: {} members, {} connections",
                path.display(),
                g.0,
                g.1.len()
            );
            Some(g)
        }
        None => None,
    };
    let planned = Instant::now();
    let plan = bench_graph::plan(&shape, loaded);
    let ids = bench_graph::member_ids(shape.seed, plan.members);
    println!(
        "planned in {:.1}s: {} members, {} connections, {} follows, {} posts, {} engagement events",
        planned.elapsed().as_secs_f64(),
        plan.members,
        plan.edges.len(),
        plan.follows.len(),
        plan.posts.len(),
        shape.reactions + shape.comments + shape.shares + shape.impressions
    );
    let members_file = args.target.data_dir.join(bench::MEMBERS_FILE);
    std::fs::write(&members_file, ids.join("\n") + "\n")
        .with_context(|| format!("writing {}", members_file.display()))?;
    let degrees_file = args.target.data_dir.join(bench::DEGREES_FILE);
    let degrees: Vec<String> = bench::degrees(plan.members, &plan.edges)
        .iter()
        .map(usize::to_string)
        .collect();
    std::fs::write(&degrees_file, degrees.join("\n") + "\n")
        .with_context(|| format!("writing {}", degrees_file.display()))?;
    // A full seed records its "now"; a later run of some phases reuses it, so the posts it
    // writes get the same times, hence the same ids, as the first run planned.
    let anchor_file = args.target.data_dir.join(bench::SEED_TIME_FILE);
    let recorded = std::fs::read_to_string(&anchor_file)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    let anchor = match recorded {
        Some(t) if !args.phases.contains(&bench::seed::Phase::Profiles) => t,
        _ => {
            let now = pronet_common::time::now_micros();
            std::fs::write(&anchor_file, format!("{now}\n"))
                .with_context(|| format!("writing {}", anchor_file.display()))?;
            now
        }
    };
    let started = Instant::now();
    let phases = bench::seed::write(
        &args.target.targets,
        &auth,
        &shape,
        &plan,
        &ids,
        shape.seed,
        anchor,
        args.concurrency.max(1),
        &args.phases,
        |p| {
            let errors = p
                .errors
                .iter()
                .map(|(k, v)| format!(" {k}={v}"))
                .collect::<String>();
            println!(
                "{:>12}: {:>9} in {:>7.1}s = {:>8.0}/s{}",
                p.name,
                p.ok,
                p.elapsed.as_secs_f64(),
                p.per_second(),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(", errors:{errors}")
                }
            );
        },
    )
    .await?;
    let items: u64 = phases.iter().map(|p| p.ok).sum();
    println!(
        "seeded in {:.1}s ({:.0} items/s); members written to {}",
        started.elapsed().as_secs_f64(),
        items as f64 / started.elapsed().as_secs_f64().max(1e-9),
        members_file.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("3TiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn nats_prefixes_are_one_subject_token() {
        assert_eq!(parse_nats_prefix("pronet"), Ok("pronet".into()));
        assert!(parse_nats_prefix("a.b").is_err());
        assert!(parse_nats_prefix("").is_err());
        assert!(parse_nats_prefix("x>").is_err());
    }
}
