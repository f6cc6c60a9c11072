//! Prometheus metrics: every server's calls counted by method and status code, with latency
//! histograms, recorded by one tower layer and served as text on `GET /metrics` from a port of
//! its own (`--metrics-listen`), so scraping never competes with gRPC traffic.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tonic::codegen::http;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    server: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    server: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: String,
    operation: String,
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~3.3 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The process's metrics: one registry shared by all of its servers.
pub struct Metrics {
    registry: Mutex<Registry>,
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram, fn() -> Histogram>,
    store: Family<StoreLabels, Histogram, fn() -> Histogram>,
    feed_index: Family<IndexLabels, Gauge>,
    feed_index_lag: Family<SourceLabels, Histogram, fn() -> Histogram>,
    shed: Family<ShedLabels, Counter>,
    degraded: Family<DegradedLabels, Counter>,
    probe_failures: Family<ProbeLabels, Counter>,
    refusals: Family<DependencyLabels, Counter>,
    connection_failures: Family<DependencyLabels, Counter>,
    visibility_checks: Family<AnsweredLabels, Counter>,
    ranking_model: Family<ModelLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    figure: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnsweredLabels {
    answered_by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    dependency: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShedLabels {
    server: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DegradedLabels {
    method: String,
    dependency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IndexLabels {
    part: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("pronet");
        let calls = Family::<CallLabels, Counter>::default();
        let latency = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "grpc_requests",
            "gRPC calls handled, by server, method and status code",
            calls.clone(),
        );
        registry.register(
            "grpc_request_duration_seconds",
            "Time to the response headers of gRPC calls, by server and method",
            latency.clone(),
        );
        let store = Family::<StoreLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "store_operation_duration_seconds",
            "Time of store operations, by store, operation and outcome (ok or error)",
            store.clone(),
        );
        let feed_index = Family::<IndexLabels, Gauge>::default();
        registry.register(
            "feed_index_size",
            "Sizes of the feed's in-memory index, by part (members, posts, edges, bytes, ...)",
            feed_index.clone(),
        );
        let feed_index_lag =
            Family::<SourceLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                // 250 µs .. ~8 s, doubling.
                Histogram::new(exponential_buckets(0.00025, 2.0, 16))
            });
        registry.register(
            "feed_index_lag_seconds",
            "From a write (its event's time, before the commit) to the feed index applying it, \
             by source service",
            feed_index_lag.clone(),
        );
        let shed = Family::<ShedLabels, Counter>::default();
        registry.register(
            "shed_requests",
            "Calls refused with RESOURCE_EXHAUSTED before any work because the server was at its \
             concurrency limit, by server and reason",
            shed.clone(),
        );
        let degraded = Family::<DegradedLabels, Counter>::default();
        registry.register(
            "degraded_responses",
            "Responses served without a failed or slow dependency (marked degraded), by method \
             and dependency",
            degraded.clone(),
        );
        let probe_failures = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "dependency_probe_failures",
            "Failed probes of a dependency (event head reads), by dependency and reason \
             (timeout, error, unreachable)",
            probe_failures.clone(),
        );
        let refusals = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "dependency_refusals",
            "Calls refused at once because their dependency was found down (fail fast)",
            refusals.clone(),
        );
        let connection_failures = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "dependency_connection_failures",
            "Calls to a dependency that failed in the transport (no connection, a reset or \
             torn-down connection), by dependency",
            connection_failures.clone(),
        );
        let visibility_checks = Family::<AnsweredLabels, Counter>::default();
        registry.register(
            "visibility_checks",
            "Whether a member may see a post, as the engagement service checks it before a \
             write, by who answered (cache: its event-fed cache; post_service: the post service)",
            visibility_checks.clone(),
        );
        let ranking_model =
            Family::<ModelLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "ranking_model",
            "The feed's learned ranking model in use, by figure (version, examples, \
             holdout_auc, holdout_log_loss, global_auc, train_seconds, state_bytes) and \
             engagement kind (react, comment, share; empty for the model's own figures)",
            ranking_model.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            calls,
            latency,
            store,
            feed_index,
            feed_index_lag,
            shed,
            degraded,
            probe_failures,
            refusals,
            connection_failures,
            visibility_checks,
            ranking_model,
        }
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn record(&self, server: &str, method: &str, code: &str, seconds: f64) {
        self.calls
            .get_or_create(&CallLabels {
                server: server.to_owned(),
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels {
                server: server.to_owned(),
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// Records one store operation (`store` e.g. `post`, `operation` the store method).
    pub fn store_operation(&self, store: &str, operation: &str, ok: bool, seconds: f64) {
        self.store
            .get_or_create(&StoreLabels {
                store: store.to_owned(),
                operation: operation.to_owned(),
                outcome: if ok { "ok" } else { "error" }.to_owned(),
            })
            .observe(seconds);
    }

    /// Sets one size of the feed index (`part` e.g. `posts`, `approx_bytes`).
    pub fn feed_index_size(&self, part: &str, value: i64) {
        self.feed_index
            .get_or_create(&IndexLabels {
                part: part.to_owned(),
            })
            .set(value);
    }

    /// Records how old (seconds) an event from `source` was when the feed index applied it.
    pub fn feed_index_lag(&self, source: &str, seconds: f64) {
        self.feed_index_lag
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a call shed by admission control.
    pub fn shed(&self, server: &str, reason: &str) {
        self.shed
            .get_or_create(&ShedLabels {
                server: server.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a response served degraded, without `dependency`.
    pub fn degraded(&self, method: &str, dependency: &str) {
        self.degraded
            .get_or_create(&DegradedLabels {
                method: method.to_owned(),
                dependency: dependency.to_owned(),
            })
            .inc();
    }

    /// Counts a failed probe of `dependency` (`reason`: timeout, error, unreachable).
    pub fn dependency_probe_failed(&self, dependency: &str, reason: &str) {
        self.probe_failures
            .get_or_create(&ProbeLabels {
                dependency: dependency.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a call refused at once because `dependency` was found down.
    pub fn dependency_refused(&self, dependency: &str) {
        self.refusals
            .get_or_create(&DependencyLabels {
                dependency: dependency.to_owned(),
            })
            .inc();
    }

    /// Counts a call to `dependency` that failed in the transport.
    pub fn dependency_connection_failed(&self, dependency: &str) {
        self.connection_failures
            .get_or_create(&DependencyLabels {
                dependency: dependency.to_owned(),
            })
            .inc();
    }

    /// Counts a visibility check answered by `answered_by` (`cache`, `post_service`).
    pub fn visibility_checked(&self, answered_by: &str) {
        self.visibility_checks
            .get_or_create(&AnsweredLabels {
                answered_by: answered_by.to_owned(),
            })
            .inc();
    }

    /// Runs a store operation (in a span of its own) and records how long it took and whether
    /// it failed.
    pub async fn time_store<T, E, F>(&self, store: &str, operation: &str, op: F) -> Result<T, E>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        use tracing::Instrument;
        let started = Instant::now();
        let result = op
            .instrument(tracing::info_span!("store", store, operation))
            .await;
        self.store_operation(
            store,
            operation,
            result.is_ok(),
            started.elapsed().as_secs_f64(),
        );
        result
    }

    /// Sets one figure of the feed's ranking model in use (`kind` empty for the model's own).
    pub fn ranking_model(&self, figure: &str, kind: &str, value: f64) {
        self.ranking_model
            .get_or_create(&ModelLabels {
                figure: figure.to_owned(),
                kind: kind.to_owned(),
            })
            .set(value);
    }

    /// The value of one counter series as exported (`series`: its name with its labels, as
    /// the text exposition shows them); 0 when it was never counted.
    pub fn counter(&self, series: &str) -> u64 {
        self.render()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    /// Serves `GET /metrics` on `listener` until `shutdown` fires.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: crate::shutdown::Shutdown,
    ) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await
    }
}

/// gRPC code name of a `grpc-status` value.
fn code_name(status: Option<&http::HeaderValue>) -> &'static str {
    let code = status
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Records every call of one server. Errors travel as trailers-only responses, so the code is
/// in the response headers; a response without `grpc-status` there is a success (its status
/// follows in the trailers). Latency is measured to the response headers, which for unary calls
/// is the whole call.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    server: &'static str,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>, server: &'static str) -> Self {
        Self { metrics, server }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    layer: MetricsLayer,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let layer = self.layer.clone();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let started = Instant::now();
            let response = inner.call(req).await?;
            let code = code_name(response.headers().get("grpc-status"));
            layer
                .metrics
                .record(layer.server, &method, code, started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_calls_and_latencies() {
        let m = Metrics::new();
        m.record("feed", "/pronet.feed.v1.FeedService/GetFeed", "OK", 0.012);
        m.record(
            "feed",
            "/pronet.feed.v1.FeedService/GetFeed",
            "NOT_FOUND",
            0.001,
        );
        let text = m.render();
        assert!(text.contains(
            "pronet_grpc_requests_total{server=\"feed\",method=\"/pronet.feed.v1.FeedService/GetFeed\",code=\"OK\"} 1"
        ), "{text}");
        assert!(text.contains("pronet_grpc_request_duration_seconds_count{server=\"feed\",method=\"/pronet.feed.v1.FeedService/GetFeed\"} 2"), "{text}");
    }

    #[tokio::test]
    async fn store_operations_are_timed() {
        let m = Metrics::new();
        let ok: Result<u8, ()> = m.time_store("post", "get_post", async { Ok(1) }).await;
        assert_eq!(ok, Ok(1));
        let _: Result<u8, ()> = m.time_store("post", "get_post", async { Err(()) }).await;
        let text = m.render();
        assert!(text.contains("pronet_store_operation_duration_seconds_count{store=\"post\",operation=\"get_post\",outcome=\"ok\"} 1"), "{text}");
        assert!(text.contains("outcome=\"error\"} 1"), "{text}");
    }

    #[test]
    fn codes_are_named() {
        assert_eq!(code_name(None), "OK");
        let v = http::HeaderValue::from_static("5");
        assert_eq!(code_name(Some(&v)), "NOT_FOUND");
    }
}
