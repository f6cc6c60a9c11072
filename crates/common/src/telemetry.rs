//! Structured logs through `tracing`: filter from `RUST_LOG` (default `info`), human-readable
//! by default, JSON lines with `PRONET_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

use crate::config::EnvMap;

/// Installs the global subscriber once; later calls are no-ops (tests start many servers).
pub fn init(env: &EnvMap) {
    let filter = env
        .get("RUST_LOG")
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn"));
    let json = env.get("PRONET_LOG_FORMAT").map(String::as_str) == Some("json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
