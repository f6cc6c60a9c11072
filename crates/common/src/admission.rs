//! Admission control: a server takes at most `max_in_flight` calls at once. A call that finds
//! every place taken waits at most `queue_timeout` (and never past its own deadline) among at
//! most `max_queued` others; otherwise it is shed at once with RESOURCE_EXHAUSTED, which says
//! to retry with backoff. Past saturation the server keeps serving what it admitted within its
//! latency goal instead of queueing everything until every call misses its deadline, and the
//! queue (so the memory held by waiting calls) is bounded.
//!
//! Health checks and reflection are never shed, nor counted: a saturated server must still
//! answer its probes. Long-lived streams (the event stream, exports) are not counted either:
//! they would hold a place for their whole life.
//!
//! Oversized request metadata is refused here too, per call, with INVALID_ARGUMENT.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::codegen::http;
use tonic::Status;

/// Most bytes of request metadata (header names and values) a call may carry.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// What HTTP/2 itself accepts in one header block: larger than [`MAX_METADATA_BYTES`], so a
/// call with too much metadata reaches [`AdmissionLayer`] and gets a clear status instead of
/// a reset stream.
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 1024 * 1024;

/// A server's admission limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Calls served at once.
    pub max_in_flight: usize,
    /// Calls waiting for a place at once; more are shed at once.
    pub max_queued: usize,
    /// Longest a call waits for a place.
    pub queue_timeout: Duration,
}

impl Limits {
    /// For servers whose calls mostly wait on storage: many in flight, so writes batch.
    pub fn io_bound() -> Self {
        Self {
            max_in_flight: 512,
            max_queued: 1024,
            queue_timeout: Duration::from_millis(100),
        }
    }

    /// These limits with what an operator set instead (`--max-in-flight`, `--queue-timeout`):
    /// the queue holds up to four times the calls in flight.
    pub fn overridden(mut self, o: Override) -> Self {
        if let Some(n) = o.max_in_flight {
            self.max_in_flight = n.max(1);
            self.max_queued = 4 * self.max_in_flight;
        }
        if let Some(t) = o.queue_timeout {
            self.queue_timeout = t;
        }
        self
    }

    /// For servers whose calls mostly compute (the feed's ranking): a few per core, so an
    /// admitted call is not slowed by all the others.
    pub fn cpu_bound() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            max_in_flight: 4 * cores,
            max_queued: 16 * cores,
            queue_timeout: Duration::from_millis(20),
        }
    }
}

/// Limits an operator sets for every server of a process, over each service's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Override {
    pub max_in_flight: Option<usize>,
    pub queue_timeout: Option<Duration>,
}

/// Whether calls to this path are never limited: probes, discovery, long-lived streams. Event
/// head reads are probes too: one small read per round trip of a reader, and shedding one
/// would make a busy service look down to its readers.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
        || path == "/pronet.events.v1.EventService/StreamEvents"
        || path == "/pronet.events.v1.EventService/ExportState"
        || path == "/pronet.events.v1.EventService/GetEventHead"
}

/// The tower layer that admits or sheds every call of a server.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    limits: Limits,
    places: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    server: &'static str,
}

impl AdmissionLayer {
    pub fn new(
        limits: Limits,
        server: &'static str,
        metrics: Option<Arc<crate::metrics::Metrics>>,
    ) -> Self {
        Self {
            limits,
            places: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            metrics,
            server,
        }
    }

    fn shed(&self, why: &'static str) -> Status {
        if let Some(m) = &self.metrics {
            m.shed(self.server, why);
        }
        Status::resource_exhausted(format!(
            "the {} server is overloaded ({why}); retry with backoff",
            self.server
        ))
    }
}

impl<S> tower::Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    layer: AdmissionLayer,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Bytes of a request's metadata as HTTP/2 counts them (name + value + 32 per entry).
fn metadata_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum()
}

impl<S, B> tower::Service<http::Request<B>> for AdmissionService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let size = metadata_bytes(req.headers());
        if size > MAX_METADATA_BYTES {
            let status = Status::invalid_argument(format!(
                "request metadata is {size} bytes; at most {MAX_METADATA_BYTES} are accepted"
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        if exempt(req.uri().path()) {
            return Box::pin(inner.call(req));
        }
        let layer = self.layer.clone();
        // A free place: in at once, no await.
        if let Ok(permit) = layer.places.clone().try_acquire_owned() {
            let fut = inner.call(req);
            return Box::pin(async move {
                let response = fut.await;
                drop(permit);
                response
            });
        }
        // Full: wait briefly among a bounded few, never past the call's own deadline.
        if layer.waiting.fetch_add(1, Ordering::SeqCst) >= layer.limits.max_queued {
            layer.waiting.fetch_sub(1, Ordering::SeqCst);
            let status = layer.shed("queue full");
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let wait = match req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::deadline::parse_grpc_timeout)
        {
            // At most half the caller's budget goes to waiting.
            Some(budget) => layer.limits.queue_timeout.min(budget / 2),
            None => layer.limits.queue_timeout,
        };
        Box::pin(async move {
            let permit = tokio::time::timeout(wait, layer.places.clone().acquire_owned()).await;
            layer.waiting.fetch_sub(1, Ordering::SeqCst);
            match permit {
                Ok(Ok(permit)) => {
                    let response = inner.call(req).await;
                    drop(permit);
                    response
                }
                _ => Ok(layer.shed("waited too long for a place").into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_discovery_and_streams_are_exempt_and_calls_are_not() {
        assert!(exempt("/grpc.health.v1.Health/Check"));
        assert!(exempt(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(exempt("/pronet.events.v1.EventService/StreamEvents"));
        assert!(exempt("/pronet.events.v1.EventService/GetEventHead"));
        assert!(!exempt("/pronet.feed.v1.FeedService/GetFeed"));
        assert!(!exempt("/pronet.events.v1.EventService/AcknowledgeEvents"));
    }

    #[test]
    fn metadata_is_counted_as_http2_counts_it() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", http::HeaderValue::from_static("Bearer x"));
        assert_eq!(metadata_bytes(&h), "authorization".len() + 8 + 32);
    }
}
