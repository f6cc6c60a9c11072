//! The `bench` commands: seeding a suite, driving it open loop, and the ranking evaluation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pronet::bench::eval::{self, EngagementMix};
use pronet::bench::graph::{self as bench_graph, SeedShape};
use pronet::bench::{
    self, open_loop::Schedule, run as bench_runs, workload::Draws, workload::Mix,
    workload::Workload,
};
use pronet::demo::{self, DemoShape};
use pronet::SuiteAddrs;
use pronet_common::auth::AuthConfig;
use pronet_common::config::{parse_duration, EnvMap};

/// Which world(s) `bench eval` runs: a suite of named worlds (`--suite`), one of them
/// (`--world`), or, with neither, one custom world from the flags below (by default the
/// balanced 48 h world of a generated graph of 1000 members).
#[derive(Args, Debug)]
pub(crate) struct BenchEvalArgs {
    /// Run every world of a suite: `standard` (six worlds of about 1000 members, generated and
    /// Reed98 graphs, truths that differ in mix, half-life and ties) or `small` (the CI floor
    /// test's two worlds of 300 members).
    #[arg(long, value_enum, conflicts_with_all = WORLD_FLAGS)]
    suite: Option<EvalSuite>,
    /// Run one named world of the suites (e.g. gen-interest-12h, reed98-balanced-48h).
    #[arg(long, conflicts_with_all = WORLD_FLAGS)]
    world: Option<String>,
    /// Where the named worlds find their datasets (Reed98: socfb-Reed98/socfb-Reed98.edges).
    #[arg(long, default_value = "../shared/datasets")]
    datasets: PathBuf,
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
    /// Hours for the truth's interest in a post to halve.
    #[arg(long, default_value_t = 48.0)]
    truth_half_life: f64,
    /// What drives the truth's engagement: interest x quality (balanced), mostly the topic's
    /// interest (interest), or mostly the post's quality (quality).
    #[arg(long, value_enum, default_value = "balanced")]
    truth_mix: EngagementMix,
    /// The truth's tie factor for a post by someone not connected (a connection's: 1).
    #[arg(long, default_value_t = 0.5)]
    truth_tie_other: f64,
    /// Members whose feeds are scored [default: 200; a named world brings its own].
    #[arg(long)]
    sample: Option<usize>,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Ranking profiles to compare (TOML, as --ranking-profiles); left out: the built-in ones.
    /// The default profile is also scored with each of its signals switched off, and the tuned
    /// baselines (popularity and X 2023 rates times freshness over a grid of half-lives) are
    /// added.
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// Where the suite keeps its data while the evaluation runs (removed after).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the report as JSON too.
    #[arg(long)]
    json: bool,
}

/// The flags of a custom world, which a named world or suite replaces.
const WORLD_FLAGS: [&str; 10] = [
    "graph",
    "members",
    "mean_degree",
    "topics",
    "posts_per_member",
    "seen_fraction",
    "truth_half_life",
    "truth_mix",
    "truth_tie_other",
    "seed",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EvalSuite {
    Standard,
    Small,
}

#[derive(Args, Debug)]
pub(crate) struct BenchTarget {
    /// `profile=ADDR,post=ADDR,engagement=ADDR,feed=ADDR`; left out: the `pronet up` ports.
    #[arg(long, default_value = "", value_parser = bench::parse_targets)]
    targets: SuiteAddrs,
    /// The servers' data dir: its development key signs the bench's tokens (as `pronet token`),
    /// and `bench seed` writes its member ids there.
    #[arg(long, env = "PRONET_DATA_DIR", default_value = "./pronet-data")]
    data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub(crate) struct BenchSeedArgs {
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
pub(crate) struct BenchRunArgs {
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

pub(crate) async fn bench_run(args: BenchRunArgs, env: &EnvMap) -> anyhow::Result<()> {
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

pub(crate) async fn bench_eval(args: BenchEvalArgs) -> anyhow::Result<()> {
    let profiles = match &args.profiles {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            pronet_feed::domain::ProfileSet::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => pronet_feed::domain::ProfileSet::built_in(),
    };
    let specs = match (args.suite, &args.world) {
        (Some(EvalSuite::Standard), _) => eval::standard_suite(),
        (Some(EvalSuite::Small), _) => eval::small_suite(),
        (None, Some(name)) => {
            let known = || {
                eval::standard_suite()
                    .into_iter()
                    .chain(eval::small_suite())
                    .map(|w| w.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![eval::find_world(name)
                .with_context(|| format!("no world {name:?} (known: {})", known()))?]
        }
        (None, None) => Vec::new(),
    };
    let mut shapes = specs
        .iter()
        .map(|w| w.shape(&args.datasets))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if shapes.is_empty() {
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
        anyhow::ensure!(
            args.truth_half_life > 0.0 && args.truth_tie_other > 0.0 && args.truth_tie_other <= 1.0,
            "--truth-half-life must be positive and --truth-tie-other in (0, 1]"
        );
        let truth = eval::Truth {
            half_life_hours: args.truth_half_life,
            mix: args.truth_mix,
            tie_other: args.truth_tie_other,
        };
        shapes.push(eval::EvalShape {
            name: format!("custom-{}", truth.label()),
            graph,
            members: args.members,
            mean_degree: args.mean_degree,
            topics: args.topics,
            posts_per_member: args.posts_per_member,
            seen_fraction: args.seen_fraction,
            sample: 200,
            seed: args.seed,
            truth,
            ..Default::default()
        });
    }
    if let Some(sample) = args.sample {
        for shape in &mut shapes {
            shape.sample = sample;
        }
    }
    let dir = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("pronet-eval-{}", std::process::id()))
    });
    let started = Instant::now();
    let report = eval::run_suite(&shapes, dir.clone(), profiles, |r| {
        println!(
            "\n## {} ({}, seed {})\n\nworld: {} members, {} connections, {} posts, {} impressions, {} reactions ({:.1}% of impressions); loaded through the API in {:.1}s, trained in {:.1}s, {} members scored in {:.1}s\n",
            r.world,
            r.truth.label(),
            r.seed,
            r.members,
            r.edges,
            r.posts,
            r.impressions,
            r.engagements,
            r.engagement_rate() * 100.0,
            r.load_seconds,
            r.train_seconds,
            r.sampled,
            r.score_seconds
        );
        print!("{}", r.table());
        let s = r.summary();
        println!(
            "{}: {:.4}, {:+.1}% over the best baseline ({} {:.4}), {:.3} of the oracle",
            s.default_profile,
            s.default_ndcg,
            (s.ratio - 1.0) * 100.0,
            s.best_baseline,
            s.best_baseline_ndcg,
            s.default_ndcg
        );
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    if report.worlds.len() > 1 {
        println!(
            "\n## Summary ({} worlds in {:.0}s)\n\n{}",
            report.worlds.len(),
            started.elapsed().as_secs_f64(),
            report.table()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

pub(crate) async fn bench_seed(args: BenchSeedArgs, env: &EnvMap) -> anyhow::Result<()> {
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
