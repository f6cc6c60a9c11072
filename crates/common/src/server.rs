//! Bootstrap shared by every pronet server: one listener, the service's routes, the standard
//! health service (each service SERVING when ready, NOT_SERVING while draining), reflection v1
//! and v1alpha over every descriptor set, and graceful shutdown.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::auth::{AccessFn, AuthConfig, AuthLayer};
use crate::shutdown::Shutdown;

/// Largest request message a server decodes; anything bigger is refused before it is parsed.
pub const MAX_DECODING_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What a server serves and how it stops.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Short name for logs, e.g. `profile`.
    pub name: &'static str,
    /// Fully-qualified gRPC service names served, e.g. `pronet.profile.v1.ProfileService`.
    pub services: Vec<&'static str>,
    /// How long to report NOT_SERVING before closing the listener, so load balancers stop
    /// sending new calls first.
    pub drain_delay: Duration,
    /// Who may call each of the service's methods.
    pub access: AccessFn,
    /// Where calls are counted; `None` records nothing.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Whether the server can serve yet (the feed while its index loads): its services'
    /// health is NOT_SERVING while it is false (the server's own "" status stays SERVING, so a
    /// liveness probe does not restart a replica that is loading). `None`: ready from the start.
    pub ready: Option<tokio::sync::watch::Receiver<bool>>,
    /// How many calls the server takes at once, and how long one may wait for a place.
    pub admission: crate::admission::Limits,
}

/// What every service with a store is configured with, whatever else it needs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store: an embedded SQLite file or a PostgreSQL database (in the service's schema).
    pub database: crate::db::DatabaseUrl,
    /// Where store operations are timed (`pronet_store_operation_duration_seconds`); `None`
    /// keeps the figures in a registry of the store's own.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Also publish the outbox to NATS JetStream (production); the gRPC event stream is
    /// served either way.
    pub nats: Option<crate::nats::NatsConfig>,
    /// The server's stop signal: open event streams end when it fires.
    pub shutdown: Shutdown,
}

impl StoreConfig {
    /// An embedded or PostgreSQL store, untimed, without NATS, never told to stop (tests).
    pub fn new(database: crate::db::DatabaseUrl) -> Self {
        Self {
            database,
            metrics: None,
            nats: None,
            shutdown: Shutdown::default(),
        }
    }
}

/// A service with a store, built: its routes, and whether its store answers (its health is
/// NOT_SERVING while it does not; see [`crate::events::watch_store`]).
pub struct StoreService {
    pub routes: Routes,
    pub store_ready: tokio::sync::watch::Receiver<bool>,
}

impl StoreService {
    /// A service's `routes` served beside its store's event stream: the store's outbox is
    /// relayed to NATS when configured, its `EventService` is added to the routes, and its
    /// readiness is watched. The one way every service with a store is put together.
    pub fn new(
        routes: Routes,
        source: &'static str,
        store: std::sync::Arc<dyn crate::events::EventSource>,
        config: &StoreConfig,
    ) -> Self {
        let shutdown = &config.shutdown;
        let outbox = store.outbox();
        if let Some(nats) = &config.nats {
            crate::nats::spawn_relay(nats.clone(), source, outbox.clone());
        }
        let store_ready = crate::events::watch_store(source, outbox, shutdown.clone());
        let routes = routes.add_service(crate::events::event_service(
            source,
            store,
            shutdown.clone(),
        ));
        Self {
            routes,
            store_ready,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

fn reflection_builder(spec: &ServerSpec) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pronet_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so grpcurl can print the BadRequest of an error.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_V1)
        .with_service_name(REFLECTION_V1ALPHA);
    for service in &spec.services {
        builder = builder.with_service_name(*service);
    }
    builder
}

/// Serves `routes` on `listener` until `shutdown` fires, then drains: health turns NOT_SERVING,
/// after `drain_delay` the listener closes and in-flight calls finish.
pub async fn serve(
    spec: ServerSpec,
    listener: TcpListener,
    routes: Routes,
    auth: std::sync::Arc<AuthConfig>,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = reflection_builder(&spec).build_v1()?;
    let reflection_v1alpha = reflection_builder(&spec).build_v1alpha()?;

    // "" is the whole server's status, which probes without a service name ask for: the
    // process is up (startup and liveness probes). Readiness is the services' own status.
    let draining = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let initially = match &spec.ready {
        Some(ready) if !*ready.borrow() => ServingStatus::NotServing,
        _ => ServingStatus::Serving,
    };
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    for service in spec.services.iter().copied() {
        reporter.set_service_status(service, initially).await;
    }
    if let Some(mut ready) = spec.ready.clone() {
        let (reporter, services, draining) =
            (reporter.clone(), spec.services.clone(), draining.clone());
        tokio::spawn(async move {
            while ready.changed().await.is_ok() {
                let status = if *ready.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if draining.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                tracing::info!(ready = ?status, "readiness changed");
                for service in services.iter().copied() {
                    reporter.set_service_status(service, status).await;
                }
            }
        });
    }

    let addr = listener.local_addr().ok();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = {
        let spec = spec.clone();
        async move {
            shutdown.wait().await;
            draining.store(true, std::sync::atomic::Ordering::SeqCst);
            for service in spec.services.iter().copied().chain([""]) {
                reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(server = spec.name, delay = ?spec.drain_delay, "draining");
            tokio::time::sleep(spec.drain_delay).await;
            let _ = stop_tx.send(());
        }
    };
    tokio::spawn(drain);

    tracing::info!(server = spec.name, ?addr, services = ?spec.services, "serving");
    let name = spec.name;
    // Small RPCs dominate: send them at once instead of letting Nagle's algorithm wait for the
    // peer's delayed ACK (40 ms stalls on multi-segment responses). Set on the incoming stream:
    // the builder's own setting only applies to listeners tonic binds itself.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        // Detects dead peers on long-lived HTTP/2 connections.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // One span per call so every log line of a request names its method (and, with
        // traces on, its trace, continued from the caller's).
        .trace_fn(move |req| crate::telemetry::server_span(name, req))
        // A call with more metadata than a server takes still reaches the admission layer,
        // which refuses it with a status, instead of HTTP/2 resetting the stream.
        .http2_max_header_list_size(crate::admission::HTTP2_MAX_HEADER_LIST_BYTES)
        // Counts every call by method and code, rejected ones included.
        .layer(tower::util::option_layer(
            spec.metrics
                .clone()
                .map(|m| crate::metrics::MetricsLayer::new(m, name)),
        ))
        // Sheds what the server cannot take now before any work (probes pass untouched).
        .layer(crate::admission::AdmissionLayer::new(
            spec.admission,
            name,
            spec.metrics.clone(),
        ))
        // Every call gets its deadline, which its calls to other services inherit.
        .layer(crate::deadline::DeadlineLayer)
        // Every call is authenticated here, once, before any handler runs.
        .layer(AuthLayer::new(auth, spec.access))
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        })
        .await?;
    tracing::info!(server = spec.name, "stopped");
    Ok(())
}
