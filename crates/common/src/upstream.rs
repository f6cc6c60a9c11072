//! Calling another pronet service: lazily connected channels with connect and call deadlines,
//! and the mapping of a dependency's failure to the status our own caller sees.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

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

/// A channel to `addr` (`host:port` or a full `http://` URI) that connects on first use and
/// reconnects after failures, so services can start in any order.
pub fn lazy_channel(addr: &str, limits: CallLimits) -> Result<Channel, String> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri.clone())
        .map_err(|e| format!("invalid address {uri:?}: {e}"))?
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    fn lazy_channel_in_runtime(addr: &str) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async { lazy_channel(addr, CallLimits::default()).is_ok() })
    }
}
