//! Structured logs and traces through `tracing`. Logs: filter from `RUST_LOG` (default
//! `info`), human-readable by default, JSON lines with `PRONET_LOG_FORMAT=json`. Traces:
//! OpenTelemetry, exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, with the other standard `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, ...); off otherwise.
//!
//! With traces on, every call's span continues the W3C `traceparent` its caller sent
//! ([`server_span`]), every call to another service sends its own ([`inject`], from the
//! service credentials' interceptor), each store operation is a child span, and each call's
//! span carries its `trace_id`, so every log line of a request names its trace.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::codegen::http;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::EnvMap;

/// Whether spans go to OpenTelemetry (set once, by [`install`]).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Keeps the trace pipeline alive; dropping it flushes the spans still buffered.
#[must_use = "dropping it stops exporting traces"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("flushing traces failed: {e}");
            }
        }
    }
}

/// Installs logging, and tracing when the environment asks for it. Must run inside the tokio
/// runtime (the exporter's batches go out on it). `service` names the process in traces unless
/// `OTEL_SERVICE_NAME` does. Later calls only log (tests start many servers).
pub fn init(env: &EnvMap, service: &str) -> Telemetry {
    let wanted = env.contains_key("OTEL_EXPORTER_OTLP_ENDPOINT")
        || env.contains_key("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let provider = if wanted {
        match otlp_provider(env, service) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("traces are off: cannot build the OTLP exporter: {e}");
                None
            }
        }
    } else {
        None
    };
    install(env, provider)
}

fn otlp_provider(env: &EnvMap, service: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    // The endpoint and its options come from the standard variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| e.to_string())?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource(env, service))
        .build())
}

/// The process's resource: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` when set, else
/// `service`.
pub fn resource(env: &EnvMap, service: &str) -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    if env.contains_key("OTEL_SERVICE_NAME") {
        builder.build()
    } else {
        builder.with_service_name(service.to_owned()).build()
    }
}

/// Installs the global subscriber: logs as the environment says, and spans to `provider`'s
/// tracer when given (tests give one with an in-memory exporter). A no-op when a subscriber is
/// installed already.
pub fn install(env: &EnvMap, provider: Option<SdkTracerProvider>) -> Telemetry {
    let filter = env
        .get("RUST_LOG")
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn"));
    let json = env.get("PRONET_LOG_FORMAT").map(String::as_str) == Some("json");
    let plain = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("pronet")));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(plain)
        .with(json)
        .with(otel)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        TRACING.store(true, Ordering::SeqCst);
    }
    Telemetry {
        provider: if installed { provider } else { None },
    }
}

/// Whether spans are exported.
pub fn tracing_on() -> bool {
    TRACING.load(Ordering::Relaxed)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// The span of one call a server handles: named by server and path, continuing the caller's
/// trace (its `traceparent`), with the trace id as a field so every log line shows it.
pub fn server_span(server: &'static str, req: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc",
        server,
        path = %req.uri().path(),
        trace_id = tracing::field::Empty
    );
    if tracing_on() {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
        // Only fails when no OpenTelemetry layer is installed, which tracing_on() excludes.
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// Adds the current span's trace context to an outgoing call (`traceparent`).
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    if tracing_on() {
        let context = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
    }
}
