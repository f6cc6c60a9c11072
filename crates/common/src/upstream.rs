//! Calling another pronet service: lazily connected channels with connect and call deadlines,
//! and the mapping of a dependency's failure to the status our own caller sees.
//!
//! HTTP/2 connections are long-lived, so a Kubernetes ClusterIP Service would pin a client to
//! one replica. A dependency named by a DNS name (a headless Service) therefore gets a
//! balancing channel instead: the name is re-resolved every few seconds, every address becomes
//! an endpoint while its server's health says SERVING (a replica that drains says NOT_SERVING
//! first, and gets no new calls from then on), and calls are spread over the ready ones (power
//! of two choices). Addresses given as IP literals or `localhost` get one plain lazy
//! connection.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;
use tonic::codegen::http::Uri;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::error::ServiceError;

/// How often a dependency's DNS name is resolved again (new and gone replicas).
const RESOLVE_INTERVAL: Duration = Duration::from_secs(5);

/// Deadlines for calls to a dependency.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }
}

fn endpoint(uri: String, limits: CallLimits) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("invalid address {uri:?}: {e}"))?
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true))
}

/// A channel to `addr` (`host:port` or a full `http://` URI) that connects on first use and
/// reconnects after failures, so services can start in any order. A DNS name gets a balancing
/// channel over all the addresses it resolves to (see the module docs). Must be called within a
/// tokio runtime.
pub fn lazy_channel(addr: &str, limits: CallLimits) -> Result<Channel, String> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let single = endpoint(uri.clone(), limits)?;
    let parsed: Uri = uri
        .parse()
        .map_err(|e| format!("invalid address {uri:?}: {e}"))?;
    let host = parsed.host().unwrap_or_default().trim_matches(['[', ']']);
    if host.is_empty() || host == "localhost" || host.parse::<IpAddr>().is_ok() {
        return Ok(single.connect_lazy());
    }
    let port = parsed.port_u16().unwrap_or(80);
    Ok(dns_balanced(host.to_owned(), port, limits))
}

/// How long an endpoint whose health stream broke waits before watching it again.
const REWATCH_AFTER: Duration = Duration::from_secs(1);

/// A channel balanced over every address `host` resolves to, kept current by re-resolving;
/// each address is used while its server says it is SERVING ([`watch_endpoint`]).
fn dns_balanced(host: String, port: u16, limits: CallLimits) -> Channel {
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(async move {
        // Per resolved address: the stop signal of its watcher.
        let mut current: HashMap<SocketAddr, watch::Sender<bool>> = HashMap::new();
        loop {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(resolved) => {
                    let fresh: HashSet<SocketAddr> = resolved.collect();
                    let gone: Vec<SocketAddr> = current
                        .keys()
                        .filter(|a| !fresh.contains(a))
                        .copied()
                        .collect();
                    for addr in &gone {
                        if let Some(stop) = current.remove(addr) {
                            stop.send_replace(true);
                        }
                    }
                    let mut added = 0;
                    for addr in fresh {
                        if let std::collections::hash_map::Entry::Vacant(slot) = current.entry(addr)
                        {
                            let (stop, stopped) = watch::channel(false);
                            tokio::spawn(watch_endpoint(addr, limits, changes.clone(), stopped));
                            slot.insert(stop);
                            added += 1;
                        }
                    }
                    if added > 0 || !gone.is_empty() {
                        tracing::info!(
                            host,
                            replicas = current.len(),
                            "dependency addresses changed"
                        );
                    }
                }
                // Keep the last known addresses: a DNS hiccup must not empty the pool.
                Err(err) => tracing::warn!(host, error = %err, "cannot resolve dependency"),
            }
            if changes.is_closed() {
                return;
            }
            tokio::time::sleep(RESOLVE_INTERVAL).await;
        }
    });
    channel
}

/// A channel balanced over `addrs`, each used while its server says it is SERVING: a replica
/// that starts draining (health NOT_SERVING before it closes) gets no new calls.
pub fn balanced_over(addrs: &[SocketAddr], limits: CallLimits) -> Channel {
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    // The addresses never change: the watchers stop when the channel is dropped.
    let (stop, stopped) = watch::channel(false);
    for addr in addrs {
        tokio::spawn(watch_endpoint(
            *addr,
            limits,
            changes.clone(),
            stopped.clone(),
        ));
    }
    tokio::spawn(async move {
        changes.closed().await;
        stop.send_replace(true);
    });
    channel
}

/// Keeps `addr` in a balanced channel while its server's health (`grpc.health.v1.Health/Watch`
/// of the whole server, "") says SERVING, and out of it otherwise: when it reports NOT_SERVING
/// (draining before it stops), when its stream breaks (until it answers again), and for good
/// once `stop` is set (gone from DNS). A server without the health service is always in.
async fn watch_endpoint(
    addr: SocketAddr,
    limits: CallLimits,
    changes: tokio::sync::mpsc::Sender<Change<SocketAddr, Endpoint>>,
    mut stop: watch::Receiver<bool>,
) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let Ok(ep) = endpoint(format!("http://{addr}"), limits) else {
        return;
    };
    let mut in_pool = false;
    // Health streams live as long as the server: no call deadline for them.
    let Ok(health_ep) = Endpoint::from_shared(format!("http://{addr}")) else {
        return;
    };
    let health_ep = health_ep
        .connect_timeout(limits.connect_timeout)
        .tcp_nodelay(true);
    let set = |in_pool: &mut bool, wanted: bool| {
        let change = match (*in_pool, wanted) {
            (false, true) => Change::Insert(addr, ep.clone()),
            (true, false) => Change::Remove(addr),
            _ => return None,
        };
        *in_pool = wanted;
        Some(change)
    };
    loop {
        if *stop.borrow() {
            if let Some(c) = set(&mut in_pool, false) {
                let _ = changes.send(c).await;
            }
            return;
        }
        let mut client = HealthClient::new(health_ep.connect_lazy());
        let watched = client
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        match watched {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    let next = tokio::select! {
                        next = stream.message() => next,
                        _ = stop.changed() => break,
                    };
                    let serving = match next {
                        Ok(Some(m)) => m.status == ServingStatus::Serving as i32,
                        // The stream ended or broke: the server is gone or restarting.
                        _ => break,
                    };
                    if let Some(c) = set(&mut in_pool, serving) {
                        if !serving {
                            tracing::info!(%addr, "replica not serving: no new calls to it");
                        }
                        if changes.send(c).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(status) if status.code() == Code::Unimplemented => {
                if let Some(c) = set(&mut in_pool, true) {
                    if changes.send(c).await.is_err() {
                        return;
                    }
                }
                let _ = stop.changed().await;
                continue;
            }
            Err(_) => {}
        }
        if let Some(c) = set(&mut in_pool, false) {
            if changes.send(c).await.is_err() {
                return;
            }
        }
        if changes.is_closed() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(REWATCH_AFTER) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Whether a call failed in the transport (the connection could not be made, broke, or was
/// torn down, which cancels the calls on it) rather than with an answer of the dependency:
/// tonic attaches the transport's error as the status's source only then. A call that ran out
/// of time is not one: a slow dependency is not an unreachable one.
pub fn is_transport_failure(status: &Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    if source.is_none() {
        return false;
    }
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return false;
        }
        source = err.source();
    }
    status.code() != Code::DeadlineExceeded
}

/// Whether a call failed before anything was sent: the connection for it could not be made
/// (tonic's `ConnectError` in the failure's source chain). Such a call is safe to send again,
/// a write included.
pub fn never_sent(status: &Status) -> bool {
    use std::error::Error as _;
    let mut source = status.source();
    while let Some(err) = source {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Consecutive failed calls (or probes) of a dependency that, with [`SILENT_FOR`] of silence,
/// are evidence that it is down or hung.
pub const DOWN_AFTER_FAILURES: u32 = 3;
/// How long a dependency whose calls fail must have answered nothing at all to count as down:
/// a busy dependency answers something, a hung one nothing.
pub const SILENT_FOR: Duration = Duration::from_secs(1);
/// How long a dependency found down is skipped (its callers answer at once without it); then
/// one caller tries it again.
pub const DOWN_BACKOFF: Duration = Duration::from_millis(500);

/// Whether a dependency counts as down, on evidence only: it could not be reached (not even on
/// a new connection), or [`DOWN_AFTER_FAILURES`] calls in a row failed or ran out of time while
/// it answered nothing for [`SILENT_FOR`]. One slow or failed call is no such evidence (the
/// machine may just be busy), and one answer ends it. The rule every client of another
/// service applies, so that "down" means the same everywhere.
#[derive(Debug, Default)]
pub struct OutageEvidence {
    /// Failed calls since the last answer.
    failures: u32,
    /// When the dependency last answered anything.
    last_answer: Option<tokio::time::Instant>,
    /// Skipped until then (it was found down).
    down_until: Option<tokio::time::Instant>,
}

impl OutageEvidence {
    /// The dependency answered (anything but a failure to get an answer): it is up.
    pub fn answered(&mut self) {
        self.failures = 0;
        self.last_answer = Some(tokio::time::Instant::now());
        self.down_until = None;
    }

    /// A call failed or ran out of time (`unreachable`: not even a new connection could be
    /// made). Whether the dependency now counts as down, for [`DOWN_BACKOFF`].
    pub fn failed(&mut self, unreachable: bool) -> bool {
        self.failures += 1;
        let silent = self.last_answer.is_none_or(|at| at.elapsed() >= SILENT_FOR);
        let now = tokio::time::Instant::now();
        if unreachable || (self.failures >= DOWN_AFTER_FAILURES && silent) {
            self.down_until = Some(now + DOWN_BACKOFF);
            true
        } else {
            // No evidence: the next caller tries it.
            self.down_until = None;
            false
        }
    }

    /// Whether it counts as down now (callers skip it).
    pub fn is_down(&self) -> bool {
        self.down_until
            .is_some_and(|until| tokio::time::Instant::now() < until)
    }

    /// Whether this caller may call the dependency now: yes while it is up; while it is down,
    /// no, except the first caller after each [`DOWN_BACKOFF`], who tries it again while the
    /// others keep skipping it.
    pub fn may_call(&mut self) -> bool {
        match self.down_until {
            Some(until) if tokio::time::Instant::now() < until => false,
            Some(_) => {
                self.down_until = Some(tokio::time::Instant::now() + DOWN_BACKOFF);
                true
            }
            None => true,
        }
    }

    /// Failed calls since the last answer (for logs).
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// What our caller sees when a dependency fails: UNAVAILABLE when it is down or too slow
/// (the caller may retry), INTERNAL otherwise; the detail goes to the log only.
pub fn dependency_failed(dependency: &str, status: Status) -> Status {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            tracing::warn!(dependency, code = ?status.code(), message = status.message(), "dependency unavailable");
            Status::unavailable(format!("{dependency} service unavailable"))
        }
        code => {
            tracing::error!(
                dependency,
                ?code,
                message = status.message(),
                "dependency call failed"
            );
            Status::internal("internal error")
        }
    }
}

/// Retries per call at most (on top of the calls themselves), as a share: 10% extra load.
const RETRY_RATIO: f64 = 0.1;
/// Retries saved up at most, for quiet times (and the start).
const RETRY_RESERVE: f64 = 10.0;

/// A budget for retrying calls to one dependency: every call deposits [`RETRY_RATIO`] of a
/// retry, every retry takes one, so retries never add more than ~10% to the load a failing
/// dependency sees (it is failing because of load, perhaps).
#[derive(Debug, Clone)]
pub struct RetryBudget(std::sync::Arc<std::sync::Mutex<f64>>);

impl Default for RetryBudget {
    fn default() -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(RETRY_RESERVE)))
    }
}

impl RetryBudget {
    fn deposit(&self) {
        let mut tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *tokens = (*tokens + RETRY_RATIO).min(RETRY_RESERVE);
    }

    fn withdraw(&self) -> bool {
        let mut tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sends `request` with `method` on a clone of `client` (clients share one channel; a clone
    /// per call is cheap and needs no lock), retried as [`Self::call`] retries; the response's
    /// message.
    pub async fn send<C, R, T, F, Fut>(
        &self,
        client: &C,
        request: &R,
        method: F,
    ) -> Result<T, Status>
    where
        C: Clone,
        R: Clone,
        F: Fn(C, R) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call(|| method(client.clone(), request.clone()))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs an idempotent call (a read, or a write keyed by its request id), and runs it once
    /// more when it fails UNAVAILABLE (the dependency was unreachable or restarting), after a
    /// jittered 5-25 ms, if the budget and the caller's deadline allow. Never for other codes:
    /// DEADLINE_EXCEEDED means no time is left, and the others would fail again.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.call_retrying(call, |status| status.code() == Code::Unavailable)
            .await
    }

    /// As [`Self::call`], retrying the failures `retryable` picks instead of every UNAVAILABLE.
    pub async fn call_retrying<T, F, Fut>(
        &self,
        mut call: F,
        retryable: fn(&Status) -> bool,
    ) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        self.deposit();
        match call().await {
            Err(status) if retryable(&status) => {
                let backoff =
                    Duration::from_millis(5 + u64::from(getrandom::u32().unwrap_or(0) % 21));
                let room = crate::deadline::remaining().is_none_or(|left| left > backoff * 2);
                if !room || !self.withdraw() {
                    return Err(status);
                }
                tracing::debug!(
                    message = status.message(),
                    ?backoff,
                    "retrying an unavailable dependency"
                );
                tokio::time::sleep(backoff).await;
                call().await
            }
            other => other,
        }
    }
}

/// The profile service's client as another service holds it: its calls carry that service's
/// token (and the caller's deadline and trace).
pub type ProfileServiceClient =
    pronet_proto::profile::v1::profile_service_client::ProfileServiceClient<
        tonic::service::interceptor::InterceptedService<Channel, crate::auth::ServiceAuth>,
    >;

/// A client of another service as the services hold one: the generated client (its calls
/// carry this service's token; clones share one channel), the budget its idempotent calls are
/// retried within, and the called service's name, which its failures carry
/// ([`ServiceError::Dependency`]: UNAVAILABLE to this service's callers when the dependency was
/// unreachable, slow or shedding, INTERNAL otherwise; see [`dependency_failed`]).
#[derive(Debug, Clone)]
pub struct Upstream<C> {
    client: C,
    retries: RetryBudget,
    service: &'static str,
    /// Where calls that fail in the transport are counted.
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl<C: Clone> Upstream<C> {
    /// `client` of the `service` service (`profile`, `post`, `engagement`).
    pub fn new(service: &'static str, client: C) -> Self {
        Self {
            client,
            retries: RetryBudget::default(),
            service,
            metrics: None,
        }
    }

    /// Counts the calls that fail in the transport in `metrics`.
    pub fn with_metrics(
        mut self,
        metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    ) -> Self {
        self.metrics = metrics;
        self
    }

    /// `method` on a clone of the client, its transport failures counted.
    fn attempt<R, T, F, Fut>(
        &self,
        method: &F,
        client: C,
        request: R,
    ) -> impl std::future::Future<Output = Result<tonic::Response<T>, Status>> + use<'_, R, T, F, Fut, C>
    where
        F: Fn(C, R) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let call = method(client, request);
        async move {
            let result = call.await;
            if let (Err(status), Some(m)) = (&result, &self.metrics) {
                if is_transport_failure(status) {
                    m.dependency_connection_failed(self.service);
                }
            }
            result
        }
    }

    /// An idempotent call (a read): `method` on a clone of the client, retried once on
    /// UNAVAILABLE within the budget (see [`RetryBudget::call`]); the response's message.
    pub async fn read<R, T, F, Fut>(&self, request: &R, method: F) -> Result<T, ServiceError>
    where
        R: Clone,
        F: Fn(C, R) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.retries
            .send(&self.client, request, |c, r| self.attempt(&method, c, r))
            .await
            .map_err(ServiceError::dependency(self.service))
    }

    /// As [`Self::read`], with NOT_FOUND as `None`: what was asked about does not exist, or is
    /// hidden from whom it was asked for.
    pub async fn read_found<R, T, F, Fut>(
        &self,
        request: &R,
        method: F,
    ) -> Result<Option<T>, ServiceError>
    where
        R: Clone,
        F: Fn(C, R) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        match self
            .retries
            .send(&self.client, request, |c, r| self.attempt(&method, c, r))
            .await
        {
            Ok(message) => Ok(Some(message)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(ServiceError::dependency(self.service)(status)),
        }
    }

    /// A write: sent once (a write is retried only with its request id, by whoever holds it),
    /// except when it never left: a connection that could not be made sent nothing, so the
    /// write goes once more (a new connection), within the retry budget and the caller's
    /// deadline.
    pub async fn write<R, T, F, Fut>(&self, request: R, method: F) -> Result<T, ServiceError>
    where
        R: Clone,
        F: Fn(C, R) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.retries
            .call_retrying(
                || self.attempt(&method, self.client.clone(), request.clone()),
                never_sent,
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(ServiceError::dependency(self.service))
    }
}

impl Upstream<ProfileServiceClient> {
    /// The profile service over `channel`, called with a service token named `token_name`.
    pub fn profile(
        channel: Channel,
        auth: std::sync::Arc<crate::auth::AuthConfig>,
        token_name: &'static str,
    ) -> Self {
        let credentials = crate::auth::ServiceAuth::new(auth, token_name);
        let inner = tonic::service::interceptor::InterceptedService::new(channel, credentials);
        Self::new("profile", ProfileServiceClient::new(inner))
    }
}

/// How `viewer_id` relates to each of `member_ids`, asked of the profile service in calls of
/// at most `per_call` members (`BatchGetRelationships`), each retried within the budget.
/// Members the service leaves out relate to the viewer as strangers do.
pub async fn relationships(
    profile: &Upstream<ProfileServiceClient>,
    viewer_id: &str,
    member_ids: &[String],
    per_call: usize,
) -> Result<Vec<pronet_proto::profile::v1::Relationship>, ServiceError> {
    let mut found = Vec::with_capacity(member_ids.len());
    for chunk in member_ids.chunks(per_call.max(1)) {
        let request = pronet_proto::profile::v1::BatchGetRelationshipsRequest {
            viewer_id: viewer_id.to_owned(),
            member_ids: chunk.to_vec(),
        };
        let response = profile
            .read(&request, |mut c, r| async move {
                c.batch_get_relationships(r).await
            })
            .await?;
        found.extend(response.relationships);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_unavailable_is_retried_once_within_a_budget_of_a_tenth_of_the_calls() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let budget = RetryBudget::default();
        let calls = AtomicUsize::new(0);
        let always = |code: Code| {
            calls.store(0, Ordering::SeqCst);
            let calls = &calls;
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Status::new(code, "no"))
            }
        };
        budget
            .call(always(Code::InvalidArgument))
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        budget
            .call(always(Code::DeadlineExceeded))
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        budget.call(always(Code::Unavailable)).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one retry");
        // A dependency that is down: of 200 calls, the reserve and a tenth are retried.
        let retried = AtomicUsize::new(0);
        for _ in 0..200 {
            let attempts = AtomicUsize::new(0);
            let _ = budget
                .call(|| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>(Status::unavailable("down")) }
                })
                .await;
            retried.fetch_add(attempts.load(Ordering::SeqCst) - 1, Ordering::SeqCst);
        }
        let retried = retried.load(Ordering::SeqCst);
        assert!(
            (20..=32).contains(&retried),
            "{retried} retries of 200 calls"
        );
        // A success after a failure is returned.
        let flaky = AtomicUsize::new(0);
        let r = RetryBudget::default()
            .call(|| {
                let n = flaky.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        Err(Status::unavailable("restarting"))
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn transport_failures_are_told_from_answers_and_timeouts() {
        // An answer of the dependency: no source.
        assert!(!is_transport_failure(&Status::unavailable("shedding")));
        // A timeout of the call: not the transport's fault.
        let timeout = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(timeout.code(), Code::Cancelled);
        assert!(!is_transport_failure(&timeout));
        // A connection that could not be made.
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let connect = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused))));
        assert_eq!(connect.code(), Code::Unavailable);
        assert!(is_transport_failure(&connect));
        assert!(never_sent(&connect));
        // A connection that broke under a call may have carried it: not "never sent".
        let broken = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(!never_sent(&broken));
        assert!(!never_sent(&Status::unavailable("shedding")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_is_down_only_on_evidence() {
        // Unreachable: down at once, one caller tries again after the backoff.
        let mut e = OutageEvidence::default();
        assert!(e.failed(true));
        assert!(e.is_down() && !e.may_call());
        tokio::time::advance(DOWN_BACKOFF).await;
        assert!(e.may_call(), "the first caller after the backoff tries");
        assert!(!e.may_call(), "the others keep skipping meanwhile");
        e.answered();
        assert!(!e.is_down() && e.may_call());
        // Failures while it answers now and then: never down.
        for _ in 0..10 {
            assert!(!e.failed(false));
            tokio::time::advance(Duration::from_millis(300)).await;
            if e.failures() == DOWN_AFTER_FAILURES - 1 {
                e.answered();
            }
        }
        // Failures and silence: down after the third failure once silent.
        e.answered();
        assert!(!e.failed(false));
        assert!(!e.failed(false));
        assert!(!e.failed(false), "three failures, but it answered just now");
        tokio::time::advance(SILENT_FOR).await;
        assert!(e.failed(false), "failing and silent for {SILENT_FOR:?}");
        assert!(e.is_down());
    }

    #[tokio::test]
    async fn a_write_is_sent_again_only_when_it_never_left() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let upstream = Upstream::new("engagement", ());
        let refused = || {
            let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            Status::from_error(Box::new(tonic::ConnectError(Box::new(io))))
        };
        // Not sent (no connection): sent once more, and its answer is the write's.
        let calls = AtomicUsize::new(0);
        let written = upstream
            .write(7, |(), r: i32| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let failure = refused();
                async move {
                    if n == 0 {
                        Err(failure)
                    } else {
                        Ok(tonic::Response::new(r * 2))
                    }
                }
            })
            .await;
        assert_eq!(written.unwrap(), 14);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // UNAVAILABLE from the service itself (it may have applied the write): sent once.
        let calls = AtomicUsize::new(0);
        let failed = upstream
            .write(7, |(), _r: i32| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<tonic::Response<i32>, _>(Status::unavailable("shedding")) }
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn down_dependency_is_unavailable_and_other_failures_internal() {
        let s = dependency_failed("post", Status::unavailable("tcp connect error 127.0.0.1:1"));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "post service unavailable");
        let s = dependency_failed("post", Status::invalid_argument("secret detail"));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
    }

    #[test]
    fn accepts_host_port_and_uri() {
        assert!(lazy_channel_in_runtime("127.0.0.1:50051"));
        assert!(lazy_channel_in_runtime("http://localhost:50051"));
        assert!(lazy_channel_in_runtime(
            "profile.default.svc.cluster.local:50051"
        ));
        assert!(!lazy_channel_in_runtime("http://exa mple:1"));
    }

    #[tokio::test]
    async fn a_dns_name_gets_a_channel_balanced_over_its_addresses() {
        // A real health server on loopback, reached through the name "localhost" resolved by
        // the balancing channel (every address it resolves to becomes an endpoint).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let channel = dns_balanced("localhost".into(), port, CallLimits::default());
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let status = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    fn lazy_channel_in_runtime(addr: &str) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { lazy_channel(addr, CallLimits::default()).is_ok() })
    }
}
