//! `pronet`: run the whole suite in one process (`up`), or one service (`serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use pronet::demo::{self, DemoShape};
use pronet::suite::{serve_service, Dependencies, ServiceOptions, Storage};
use pronet::{RunningSuite, ServiceKind, SuiteAddrs, SuiteConfig};
use pronet_common::auth::AuthConfig;
use pronet_common::config::{parse_duration, process_env, EnvMap};
use pronet_common::db::DatabaseUrl;
use pronet_common::metrics::Metrics;
use pronet_common::shutdown::{self, Shutdown};
use pronet_common::upstream::CallLimits;

mod bench_commands;
use bench_commands::{
    bench_eval, bench_run, bench_seed, BenchEvalArgs, BenchRunArgs, BenchSeedArgs,
};

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
    /// Ranking quality: simulated worlds with planted ground truths, each loaded into a fresh
    /// embedded suite, the feed's model trained, each ranking profile's feeds scored by NDCG@10
    /// against the truth, beside classic baselines tuned per world. `--suite standard` runs
    /// every named world, `--world NAME` one of them; with neither, one custom world from the
    /// flags (by default the balanced 48 h world of 1000 generated members).
    Eval(BenchEvalArgs),
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

/// The command line, with each flag's environment fallback (`PRONET_*`) read from `env`
/// instead of the process: the one place configuration comes from the environment, which
/// tests inject. A flag given wins over its variable, which wins over the built-in default.
fn cli_from(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    env: &EnvMap,
) -> Result<Cli, clap::Error> {
    fn route(cmd: clap::Command, env: &EnvMap) -> clap::Command {
        let cmd = cmd.mut_args(|arg| {
            let Some(var) = arg.get_env().and_then(|v| v.to_str()).map(str::to_owned) else {
                return arg;
            };
            let help = arg
                .get_help()
                .map(|h| format!("{h} [env: {var}]"))
                .unwrap_or_else(|| format!("[env: {var}]"));
            let arg = arg.env(None).help(help);
            match env.get(&var) {
                Some(value) => arg.default_value(value.clone()),
                None => arg,
            }
        });
        let subcommands: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        subcommands
            .into_iter()
            .fold(cmd, |cmd, name| cmd.mut_subcommand(name, |c| route(c, env)))
    }
    let matches = route(Cli::command(), env).try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

fn main() -> anyhow::Result<()> {
    let env = process_env();
    let cli = cli_from(std::env::args_os(), &env).unwrap_or_else(|e| e.exit());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split_whitespace().map(Into::into).collect()
    }

    #[test]
    fn flags_fall_back_to_the_injected_environment_not_the_process() {
        let env: EnvMap = [
            ("PRONET_FEED_WINDOW".to_string(), "3d".to_string()),
            ("PRONET_MAX_IN_FLIGHT".to_string(), "7".to_string()),
        ]
        .into();
        let Command::Serve(a) = cli_from(args("pronet serve feed"), &env).unwrap().command else {
            panic!("not serve");
        };
        assert_eq!(a.feed_window, Duration::from_secs(3 * 86_400));
        assert_eq!(a.max_in_flight, Some(7));
        // A flag wins over its variable; without either, the built-in default.
        let Command::Serve(a) = cli_from(args("pronet serve feed --feed-window 1d"), &env)
            .unwrap()
            .command
        else {
            panic!("not serve");
        };
        assert_eq!(a.feed_window, Duration::from_secs(86_400));
        let Command::Serve(a) = cli_from(args("pronet serve feed"), &EnvMap::new())
            .unwrap()
            .command
        else {
            panic!("not serve");
        };
        assert_eq!(a.feed_window, Duration::from_secs(14 * 86_400));
        assert_eq!(a.max_in_flight, None);
        // A bad value from the environment is refused like a bad flag.
        let bad: EnvMap = [("PRONET_FEED_WINDOW".to_string(), "soon".to_string())].into();
        assert!(cli_from(args("pronet serve feed"), &bad).is_err());
    }

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
