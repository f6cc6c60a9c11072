//! A source's committed event head, asked for when a reader must know its state is at least as
//! new as a request (read-after-write across services): every change acknowledged before the
//! request has a sequence at or below the head a probe *started after the request's arrival*
//! reads ([`HeadProbe`]).
//!
//! # Never a reason to cut a connection
//!
//! A probe is one unary `GetEventHead` call, run to its end in a task of its own: a reader that
//! stops waiting (its own deadline, [`PROBE_WAIT`]) leaves the probe running instead of
//! cancelling it. Cancelled HTTP/2 streams are what broke the connection before: each
//! cancelled call is reset, the response frames still on their way arrive for a stream the
//! client has forgotten (h2 remembers at most 50 resets a second), and each such frame counts
//! towards h2's limit of 1,024 locally-reset streams per connection, after which h2 tears the
//! connection down (`GOAWAY ENHANCE_YOUR_CALM too_many_internal_resets`) and fails every call
//! on it. Hundreds of head reads a second, each a stream read to its first message and then
//! dropped, reached the limit within seconds.
//!
//! # Down only on evidence
//!
//! A slow probe is not a down source: the machine may just be busy. A reader that gets no head
//! within [`PROBE_WAIT`] hears [`HeadError::Unknown`] and answers another way (the source's
//! owner directly, within the caller's deadline). The source counts as down
//! ([`HeadError::Down`]: refuse at once, for [`DOWN_BACKOFF`]) only on evidence: a probe that
//! could not reach it twice in a row (a fresh connection attempt included), or
//! [`DOWN_AFTER_FAILURES`] consecutive failed probes (errors or [`PROBE_TIMEOUT`]s) while the
//! source answered nothing at all for [`SILENT_FOR`], probes or the readers' direct calls
//! ([`HeadProbe::answered`]): a busy source answers something, a hung one nothing. A failed
//! probe is followed by another at once, so a hung source is found down within about
//! [`SILENT_FOR`] whether requests come or not (a short pause between, so a source that fails
//! every probe at once is not called in a loop), and one answer clears the count.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pronet_proto::events::v1 as pb;
use pronet_proto::events::v1::event_service_client::EventServiceClient;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Status;

use crate::auth::ServiceAuth;
use crate::metrics::Metrics;
use crate::upstream::{is_transport_failure, lazy_channel, CallLimits, OutageEvidence};

type Client = EventServiceClient<InterceptedService<Channel, ServiceAuth>>;

/// How long a reader waits for a probe's answer before it answers another way; the probe
/// itself goes on.
pub const PROBE_WAIT: Duration = Duration::from_millis(300);
/// A probe's own deadline: past it, the probe has failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
pub use crate::upstream::{DOWN_AFTER_FAILURES, DOWN_BACKOFF, SILENT_FOR};
/// The pause before probing again after a failed probe: a source that fails every probe at
/// once (while it answers readers directly) gets at most 20 probes a second.
const REPROBE_AFTER: Duration = Duration::from_millis(50);

/// Why a probe gave no head.
#[derive(Debug, Clone)]
pub enum HeadError {
    /// The source is down or hung, on evidence: refuse at once (UNAVAILABLE, retryable).
    Down(Status),
    /// No head for now (a slow or failed probe that is no evidence yet): answer another way.
    Unknown,
}

/// Probes one source's committed head. Coalesced: at most one probe is in flight per source,
/// and a finished probe answers every reader that arrived before it started. Under load that
/// is one small call per round trip, not one per request; alone, a reader pays one round trip.
pub struct HeadProbe {
    shared: Arc<Shared>,
}

struct Shared {
    /// The source's name (`post`, `profile`), for logs and metrics.
    source: &'static str,
    client: Client,
    state: Mutex<State>,
    /// The number of the last probe finished, to wait on.
    finished: watch::Sender<u64>,
    metrics: Option<Arc<Metrics>>,
}

struct State {
    /// Probes started so far (each gets the next number).
    started: u64,
    in_flight: bool,
    /// The number of the last probe finished, and what it read.
    finished: u64,
    last: Result<i64, HeadError>,
    /// Whether the source counts as down ([`OutageEvidence`]): fed by the probes and by the
    /// readers' direct calls.
    evidence: OutageEvidence,
}

impl HeadProbe {
    /// Probes the EventService of `source` at `addr`; its calls carry `auth`.
    pub fn new(
        source: &'static str,
        addr: &str,
        auth: ServiceAuth,
        limits: CallLimits,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, String> {
        let client = EventServiceClient::with_interceptor(lazy_channel(addr, limits)?, auth);
        Ok(Self {
            shared: Arc::new(Shared {
                source,
                client,
                state: Mutex::new(State {
                    started: 0,
                    in_flight: false,
                    finished: 0,
                    last: Err(HeadError::Unknown),
                    evidence: OutageEvidence::default(),
                }),
                finished: watch::channel(0).0,
                metrics,
            }),
        })
    }

    /// The source's committed head as read by a probe started after this call began; waits at
    /// most [`PROBE_WAIT`].
    pub async fn head(&self) -> Result<i64, HeadError> {
        let shared = &self.shared;
        // Subscribed before looking, so a probe finishing in between is not missed.
        let mut finished = shared.finished.subscribe();
        let arrived = {
            let state = shared.lock();
            if let Some(refused) = state.refusal(shared) {
                return Err(refused);
            }
            state.started
        };
        let wait = async {
            loop {
                {
                    let mut state = shared.lock();
                    // Probe `arrived + 1` and later were started after this call began.
                    if state.finished > arrived {
                        return state.last.clone();
                    }
                    if !state.in_flight {
                        Shared::start(shared, &mut state, Duration::ZERO);
                    }
                }
                if finished.changed().await.is_err() {
                    return Err(HeadError::Unknown);
                }
            }
        };
        tokio::time::timeout(PROBE_WAIT, wait)
            .await
            .unwrap_or(Err(HeadError::Unknown))
    }

    /// Tells the probe that the source answered a reader's direct call: it is up, whatever
    /// its probes say.
    pub fn answered(&self) {
        self.shared.lock().evidence.answered();
    }

    /// Resolves once the source is found down (see the module docs), with the status to
    /// answer: a reader asking the source's owner directly stops waiting for it then.
    pub async fn found_down(&self) -> Status {
        let mut finished = self.shared.finished.subscribe();
        loop {
            if let Some(HeadError::Down(status)) = self.shared.lock().down() {
                return status;
            }
            if finished.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

impl State {
    /// What the source counts as now: down (with the status to answer) or not.
    fn down(&self) -> Option<HeadError> {
        match &self.last {
            Err(HeadError::Down(status)) if self.evidence.is_down() => {
                Some(HeadError::Down(status.clone()))
            }
            _ => None,
        }
    }

    /// The answer while the source counts as down (counted as a refusal), `None` otherwise.
    fn refusal(&self, shared: &Shared) -> Option<HeadError> {
        let down = self.down()?;
        if let Some(m) = &shared.metrics {
            m.dependency_refused(shared.source);
        }
        Some(down)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the next probe, after `pause`, in a task of its own (see the module docs: never
    /// cancelled).
    fn start(shared: &Arc<Self>, state: &mut State, pause: Duration) {
        state.started += 1;
        state.in_flight = true;
        let number = state.started;
        let shared = shared.clone();
        tokio::spawn(async move {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let read = shared.read_head().await;
            shared.finish(number, read);
        });
    }

    /// Records probe `number`'s outcome, wakes its readers, and probes again at once after a
    /// failure that is no evidence yet.
    fn finish(self: &Arc<Self>, number: u64, read: Result<i64, ProbeFailure>) {
        {
            let mut state = self.lock();
            state.in_flight = false;
            state.finished = number;
            match read {
                Ok(head) => {
                    if state.evidence.failures() > 0 {
                        tracing::info!(source = self.source, "event head probes answer again");
                    }
                    state.evidence.answered();
                    state.last = Ok(head);
                }
                Err(failure) => {
                    if let Some(m) = &self.metrics {
                        m.dependency_probe_failed(self.source, failure.reason());
                    }
                    let unreachable = matches!(failure, ProbeFailure::Unreachable(_));
                    if state.evidence.failed(unreachable) {
                        tracing::warn!(
                            source = self.source,
                            failures = state.evidence.failures(),
                            error = %failure,
                            "event head probes failed: the source counts as down"
                        );
                        state.last = Err(HeadError::Down(Status::unavailable(format!(
                            "{} service unreachable: {failure}",
                            self.source
                        ))));
                    } else {
                        tracing::info!(
                            source = self.source,
                            failures = state.evidence.failures(),
                            error = %failure,
                            "event head probe failed; probing again"
                        );
                        state.last = Err(HeadError::Unknown);
                        Self::start(self, &mut state, REPROBE_AFTER);
                    }
                }
            }
        }
        self.finished.send_replace(number);
    }

    /// One head read, once more at once if it failed in the transport (a broken connection
    /// is re-established by the retry; a second such failure means the source is unreachable).
    async fn read_head(&self) -> Result<i64, ProbeFailure> {
        match self.ask().await {
            Err(status) if is_transport_failure(&status) => {
                if let Some(m) = &self.metrics {
                    m.dependency_connection_failed(self.source);
                }
                let jitter =
                    Duration::from_millis(5 + u64::from(getrandom::u32().unwrap_or(0) % 21));
                tokio::time::sleep(jitter).await;
                self.ask().await.map_err(|status| {
                    if is_transport_failure(&status) {
                        if let Some(m) = &self.metrics {
                            m.dependency_connection_failed(self.source);
                        }
                        ProbeFailure::Unreachable(status)
                    } else {
                        ProbeFailure::classify(status)
                    }
                })
            }
            other => other.map_err(ProbeFailure::classify),
        }
    }

    async fn ask(&self) -> Result<i64, Status> {
        let mut request = tonic::Request::new(pb::GetEventHeadRequest {});
        request.set_timeout(PROBE_TIMEOUT);
        // The probe runs in its own task, outside any caller's deadline: its own timeout is
        // what bounds it.
        let mut client = self.client.clone();
        Ok(client
            .get_event_head(request)
            .await?
            .into_inner()
            .head_sequence)
    }
}

/// Why one probe failed.
#[derive(Debug)]
enum ProbeFailure {
    /// Not reachable twice in a row: evidence on its own.
    Unreachable(Status),
    /// No answer within [`PROBE_TIMEOUT`].
    TimedOut(Status),
    /// An answer that is an error.
    Failed(Status),
}

impl ProbeFailure {
    fn classify(status: Status) -> Self {
        match status.code() {
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Self::TimedOut(status),
            _ => Self::Failed(status),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "unreachable",
            Self::TimedOut(_) => "timeout",
            Self::Failed(_) => "error",
        }
    }
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Self::Unreachable(s) | Self::TimedOut(s) | Self::Failed(s)) = self;
        write!(f, "{}: {:?}: {}", self.reason(), s.code(), s.message())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use pronet_proto::events::v1::event_service_server::{EventService, EventServiceServer};
    use tonic::{Request, Response};

    use super::*;

    /// An event service whose head reads take `delays[n]` (the n-th call; the last one after),
    /// or fail when the delay is `None`.
    struct Scripted {
        delays: Vec<Option<Duration>>,
        calls: AtomicU64,
        /// Calls the client gave up before their end (it reset their streams).
        abandoned: Arc<AtomicU64>,
    }

    /// Counts a call as abandoned unless it reached its end.
    struct EndGuard(Arc<AtomicU64>, bool);

    impl Drop for EndGuard {
        fn drop(&mut self) {
            if !self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    type Stream<T> = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send>>;

    #[tonic::async_trait]
    impl EventService for Scripted {
        type StreamEventsStream = Stream<pb::StreamEventsResponse>;
        type ExportStateStream = Stream<pb::ExportStateResponse>;

        /// As the real service answers a head read by stream: the opening message (the
        /// head), then the end once its tail task has looked at the outbox (a moment later).
        async fn stream_events(
            &self,
            _: Request<pb::StreamEventsRequest>,
        ) -> Result<Response<Self::StreamEventsStream>, Status> {
            let opening = pb::StreamEventsResponse {
                events: Vec::new(),
                head_sequence: 7,
            };
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let abandoned = self.abandoned.clone();
            tokio::spawn(async move {
                let _ = tx.send(Ok(opening)).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
                if tx.is_closed() {
                    abandoned.fetch_add(1, Ordering::SeqCst);
                }
            });
            Ok(Response::new(Box::pin(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            )))
        }

        async fn export_state(
            &self,
            _: Request<pb::ExportStateRequest>,
        ) -> Result<Response<Self::ExportStateStream>, Status> {
            Err(Status::unimplemented("not scripted"))
        }

        async fn acknowledge_events(
            &self,
            _: Request<pb::AcknowledgeEventsRequest>,
        ) -> Result<Response<pb::AcknowledgeEventsResponse>, Status> {
            Err(Status::unimplemented("not scripted"))
        }

        async fn get_event_head(
            &self,
            _: Request<pb::GetEventHeadRequest>,
        ) -> Result<Response<pb::GetEventHeadResponse>, Status> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            let delay = self.delays[n.min(self.delays.len() - 1)];
            let mut end = EndGuard(self.abandoned.clone(), false);
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            end.1 = true;
            match delay {
                Some(_) => Ok(Response::new(pb::GetEventHeadResponse {
                    head_sequence: n as i64 + 1,
                })),
                None => Err(Status::internal("scripted failure")),
            }
        }
    }

    /// A probe of the `post` source at `addr`, counting in metrics of its own.
    fn probe_at(addr: std::net::SocketAddr) -> (HeadProbe, Arc<Metrics>) {
        let metrics = Metrics::new();
        let auth = ServiceAuth::new(crate::testing::test_auth(), "tests");
        let probe = HeadProbe::new(
            "post",
            &addr.to_string(),
            auth,
            CallLimits::default(),
            Some(metrics.clone()),
        )
        .unwrap();
        (probe, metrics)
    }

    /// A probe of a [`Scripted`] source: the probe, its metrics and the source's count of
    /// abandoned calls.
    async fn probe_of(delays: Vec<Option<Duration>>) -> (HeadProbe, Arc<Metrics>, Arc<AtomicU64>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let abandoned = Arc::new(AtomicU64::new(0));
        let service = Scripted {
            delays,
            calls: AtomicU64::new(0),
            abandoned: abandoned.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(EventServiceServer::new(service))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let (probe, metrics) = probe_at(addr);
        (probe, metrics, abandoned)
    }

    const FAST: Option<Duration> = Some(Duration::from_millis(1));

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thousands_of_probes_back_to_back_never_tear_their_connection_down() {
        // Each call arrives after the last probe finished, so each starts a probe of its own:
        // thousands of calls on one HTTP/2 connection within seconds. A probe that stopped
        // reading a call before its end would reset its stream: h2 keeps at most 50 such
        // streams a second in mind and refuses the late frames of the others, and tears the
        // connection down after 1,024 refusals. The source counts every call given up.
        let (probe, metrics, abandoned) = probe_of(vec![Some(Duration::ZERO)]).await;
        let mut calls = tokio::task::JoinSet::new();
        let probe = Arc::new(probe);
        for _ in 0..4 {
            let probe = probe.clone();
            calls.spawn(async move {
                for _ in 0..1500 {
                    probe.head().await?;
                }
                Ok::<(), HeadError>(())
            });
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap().expect("every probe answers");
        }
        assert_eq!(
            abandoned.load(Ordering::SeqCst),
            0,
            "probes gave up calls before their end (each a reset stream)"
        );
        let text = metrics.render();
        assert!(
            !text.contains("pronet_dependency_connection_failures_total")
                && !text.contains("pronet_dependency_probe_failures_total"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_slow_probe_is_no_evidence_of_an_outage() {
        // One probe far slower than the wait, then quick answers.
        let (probe, metrics, _) = probe_of(vec![Some(Duration::from_millis(900)), FAST]).await;
        // The reader stops waiting and answers another way; the source is not down.
        assert!(matches!(probe.head().await, Err(HeadError::Unknown)));
        // Once the slow probe has timed out (one failure), the source is still not refused.
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The next probe answers: heads again, and the source was never refused.
        let mut head = None;
        for _ in 0..50 {
            match probe.head().await {
                Ok(h) => {
                    head = Some(h);
                    break;
                }
                Err(HeadError::Down(s)) => panic!("found down after one slow probe: {s:?}"),
                Err(HeadError::Unknown) => {}
            }
        }
        assert!(head.is_some(), "the probes answer again");
        assert!(!metrics
            .render()
            .contains("pronet_dependency_refusals_total"));
    }

    #[tokio::test]
    async fn consecutive_failed_probes_find_the_source_down_and_one_answer_clears_it() {
        // Three failures in a row, then answers.
        let (probe, metrics, _) = probe_of(vec![None, None, None, FAST]).await;
        // The first failure is probed again at once, without waiting for readers: three
        // consecutive failures are evidence.
        let mut down = false;
        for _ in 0..20 {
            if let Err(HeadError::Down(status)) = probe.head().await {
                assert_eq!(status.code(), tonic::Code::Unavailable);
                down = true;
                break;
            }
        }
        assert!(down, "found down after {DOWN_AFTER_FAILURES} failed probes");
        // Refused at once while backing off.
        assert!(matches!(probe.head().await, Err(HeadError::Down(_))));
        assert!(metrics
            .render()
            .contains("pronet_dependency_refusals_total{dependency=\"post\"} "));
        assert!(metrics.render().contains(
            "pronet_dependency_probe_failures_total{dependency=\"post\",reason=\"error\"} 3"
        ));
        // After the backoff, the next probe answers and the source is up again.
        tokio::time::sleep(DOWN_BACKOFF).await;
        assert_eq!(probe.head().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn failed_probes_of_a_source_that_answers_readers_are_no_evidence_until_it_falls_silent()
    {
        // Every probe fails, but the source answers the readers' direct calls (a busy source
        // whose event store is slow, say): not down.
        let (probe, metrics, _) = probe_of(vec![None]).await;
        for _ in 0..15 {
            probe.answered();
            if let Err(HeadError::Down(s)) = probe.head().await {
                panic!("found down while it answered: {s:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let failed = metrics.counter(
            "pronet_dependency_probe_failures_total{dependency=\"post\",reason=\"error\"}",
        );
        assert!(
            failed >= u64::from(DOWN_AFTER_FAILURES),
            "the probes failed meanwhile ({failed})"
        );
        // The answers stop: once silent for long enough, the failing probes are evidence.
        let mut down = false;
        for _ in 0..40 {
            if let Err(HeadError::Down(_)) = probe.head().await {
                down = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            down,
            "found down once it answered nothing for {SILENT_FOR:?}"
        );
    }

    #[tokio::test]
    async fn a_source_that_cannot_be_reached_is_down_at_once() {
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = unused.local_addr().unwrap();
        drop(unused);
        let (probe, metrics) = probe_at(addr);
        assert!(matches!(probe.head().await, Err(HeadError::Down(_))));
        assert!(metrics.render().contains(
            "pronet_dependency_probe_failures_total{dependency=\"post\",reason=\"unreachable\"} 1"
        ));
    }
}
