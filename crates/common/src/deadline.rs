//! Request deadlines. Every call a server accepts gets a budget: the caller's `grpc-timeout`,
//! else the method's default ([`default_budget`]). The handler runs with its deadline in a
//! task-local ([`remaining`]), the server answers DEADLINE_EXCEEDED when it passes, and every
//! call to another service made while handling it carries what is left minus [`MARGIN`] as its
//! own `grpc-timeout` ([`crate::auth::ServiceAuth`] sets it), which the client channel also
//! enforces: no call waits longer than its caller still can.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::codegen::http;
use tonic::Status;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Kept back from a call's remaining budget when it calls another service: the time to turn
/// the answer (or its absence) into our own response.
pub const MARGIN: Duration = Duration::from_millis(10);

/// The budget of a unary call whose caller sets none.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(2);

/// The budget of bulk imports (up to 10,000 rows in one transaction) whose caller sets none.
pub const IMPORT_BUDGET: Duration = Duration::from_secs(120);

/// The default budget of a method (by its gRPC path) when its caller sets none; `None` for
/// streams, which last as long as their caller wants.
pub fn default_budget(path: &str) -> Option<Duration> {
    let method = path.rsplit('/').next().unwrap_or_default();
    match method {
        "StreamEvents" | "ExportState" | "Watch" | "ServerReflectionInfo" => None,
        m if m.starts_with("Import") => Some(IMPORT_BUDGET),
        _ => Some(DEFAULT_BUDGET),
    }
}

/// What is left of the current call's budget; `None` outside a call with a deadline.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// Runs `fut` with `deadline` as the current call's deadline (for tests and background work
/// that calls other services on a caller's behalf).
pub async fn scope<F: std::future::Future>(deadline: Instant, fut: F) -> F::Output {
    DEADLINE.scope(deadline, fut).await
}

/// The budget an outgoing call gets: what remains minus [`MARGIN`], or DEADLINE_EXCEEDED when
/// nothing would be left for it; `None` outside a call with a deadline.
pub fn outgoing_budget() -> Result<Option<Duration>, Status> {
    match remaining() {
        None => Ok(None),
        Some(left) if left > MARGIN => Ok(Some(left - MARGIN)),
        Some(_) => Err(Status::deadline_exceeded(
            "the caller's deadline leaves no time for a dependency call",
        )),
    }
}

/// Parses a `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The tower layer that gives every call of a server its deadline.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for DeadlineService<S>
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
        let path = req.uri().path();
        let budget = match req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
        {
            Some(raw) => parse_grpc_timeout(raw),
            None => default_budget(path),
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(budget) = budget else {
            return Box::pin(inner.call(req));
        };
        let deadline = Instant::now() + budget;
        let fut = inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, DEADLINE.scope(deadline, fut)).await {
                Ok(response) => response,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the call's deadline ({} ms) passed",
                    budget.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_does_not() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "-1S", "1s", "1.5S", "12"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn streams_have_no_default_budget_and_imports_a_long_one() {
        assert_eq!(
            default_budget("/pronet.events.v1.EventService/StreamEvents"),
            None
        );
        assert_eq!(default_budget("/grpc.health.v1.Health/Watch"), None);
        assert_eq!(
            default_budget("/pronet.post.v1.PostService/ImportPosts"),
            Some(IMPORT_BUDGET)
        );
        assert_eq!(
            default_budget("/pronet.feed.v1.FeedService/GetFeed"),
            Some(DEFAULT_BUDGET)
        );
    }

    #[tokio::test]
    async fn outgoing_calls_get_the_remaining_budget_less_the_margin() {
        assert!(outgoing_budget().unwrap().is_none(), "no call, no deadline");
        let deadline = Instant::now() + Duration::from_millis(500);
        let left = scope(deadline, async { outgoing_budget() })
            .await
            .unwrap()
            .unwrap();
        assert!(left <= Duration::from_millis(490) && left > Duration::from_millis(400));
        let spent = scope(Instant::now() + MARGIN / 2, async { outgoing_budget() }).await;
        assert_eq!(spent.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    }
}
