//! `pronet`: run the whole suite in one process (`up`), or one service (`serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
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
    /// Serve Prometheus metrics of all four services on this address (`GET /metrics`).
    #[arg(long, env = "PRONET_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
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
    /// Deadline of each call to another service.
    #[arg(long, env = "PRONET_CALL_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    call_timeout: Duration,
    /// Serve Prometheus metrics on this address (`GET /metrics`).
    #[arg(long, env = "PRONET_METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = process_env();
    pronet_common::telemetry::init(&env);
    if let Command::Token(args) = &cli.command {
        return token(args, &env);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up(args, &env).await,
            Command::Serve(args) => serve(args, &env).await,
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

async fn serve(args: ServeArgs, env: &EnvMap) -> anyhow::Result<()> {
    let auth = Arc::new(AuthConfig::from_env(env, Some(&args.data_dir), false)?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let database = match args.database_url.as_deref() {
        Some(url) => DatabaseUrl::parse(url).map_err(|e| anyhow::anyhow!("--database-url: {e}"))?,
        None => DatabaseUrl::Sqlite(args.data_dir.join(format!("{}.db", args.service.name()))),
    };
    let mut opts = ServiceOptions {
        database,
        dependencies: Dependencies {
            profile: args.profile_addr,
            post: args.post_addr,
            engagement: args.engagement_addr,
        },
        drain_delay: args.drain_delay,
        feed_window: args.feed_window,
        call_limits: CallLimits {
            request_timeout: args.call_timeout,
            ..CallLimits::default()
        },
        auth,
        metrics: None,
    };
    let stop = Shutdown::new();
    let metrics = Metrics::new();
    opts.metrics = Some(metrics.clone());
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
