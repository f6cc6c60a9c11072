//! Timing every operation of a store: [`Timed`] wraps a store and [`timed_store!`] writes its
//! trait's impl, each operation delegated unchanged inside [`Metrics::time_store`] (a `store`
//! span and `pronet_store_operation_duration_seconds{store,operation,outcome}`), so the
//! services list their operations once instead of writing the delegation by hand.

use std::sync::Arc;

use crate::metrics::Metrics;

/// A store whose operations are timed; its trait impl comes from [`timed_store!`].
pub struct Timed<S: ?Sized> {
    inner: Arc<S>,
    metrics: Arc<Metrics>,
    store: &'static str,
}

impl<S: ?Sized> Timed<S> {
    /// `inner`'s operations, recorded under the `store` label `store` (e.g. `post`).
    pub fn new(store: &'static str, inner: Arc<S>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            metrics,
            store,
        }
    }

    /// `inner` timed under `store` into `metrics`, or into a registry of its own when none is
    /// given (timed and traced always: without an exporter the figures stay in the process).
    pub fn wrap(store: &'static str, inner: Arc<S>, metrics: Option<Arc<Metrics>>) -> Arc<Self> {
        Arc::new(Self::new(store, inner, metrics.unwrap_or_default()))
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Runs one operation of the wrapped store, timed and traced as `operation`.
    pub async fn time<T, E>(
        &self,
        operation: &'static str,
        op: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.metrics.time_store(self.store, operation, op).await
    }
}

/// The event side of a timed store: the outbox as it is, the export timed.
#[tonic::async_trait]
impl<S: ?Sized + crate::events::EventSource> crate::events::EventSource for Timed<S> {
    fn outbox(&self) -> crate::outbox::Outbox {
        self.inner.outbox()
    }

    async fn export_state(
        &self,
        since: Option<i64>,
        sink: &mut crate::events::ExportSink,
    ) -> Result<(), crate::events::ExportError> {
        self.time("export_state", self.inner.export_state(since, sink))
            .await
    }
}

/// Writes a service's `open_store(database, metrics)`: it opens (creating and migrating as
/// needed) the store a [`crate::db::DatabaseUrl`] names, on the backend the URL names (`$sqlite`
/// or `$pg` in schema `$schema`), its operations timed under `$name` (see [`Timed::wrap`]).
/// The one place a service names its backends:
/// `open_store!(dyn PostStore: SqlitePostStore | PgPostStore, SCHEMA, STORE_NAME);`
#[macro_export]
macro_rules! open_store {
    (dyn $trait:path: $sqlite:ty | $pg:ty, $schema:expr, $name:expr $(,)?) => {
        /// Opens (creating and migrating as needed) the store `database` names, on the backend
        /// it names, every operation timed into `metrics` (a registry of its own when `None`).
        /// The one place that knows which backends exist.
        pub async fn open_store(
            database: &$crate::db::DatabaseUrl,
            metrics: Option<std::sync::Arc<$crate::metrics::Metrics>>,
        ) -> Result<std::sync::Arc<dyn $trait>, sqlx::Error> {
            let store: std::sync::Arc<dyn $trait> = match database {
                $crate::db::DatabaseUrl::Sqlite(path) => {
                    std::sync::Arc::new(<$sqlite>::open(path).await?)
                }
                $crate::db::DatabaseUrl::Postgres(url) => {
                    std::sync::Arc::new(<$pg>::open(url, $schema).await?)
                }
            };
            Ok($crate::timed::Timed::wrap($name, store, metrics))
        }
    };
}

/// Implements a store trait (an `#[async_trait]` one) for [`Timed`]: every `async fn` listed
/// (its signature, as in the trait, ending with `;`) runs the wrapped store's own, timed under
/// its name; items in an optional `sync { ... }` are written as they are. (A store's event
/// side, [`crate::events::EventSource`], is timed for every `Timed` at once.)
#[macro_export]
macro_rules! timed_store {
    (
        impl $trait:path;
        $(
            $(#[$meta:meta])*
            async fn $name:ident(&self $(, $arg:ident : $argty:ty)* $(,)?) -> $ret:ty;
        )*
        $(sync { $($sync:tt)* })?
    ) => {
        #[async_trait::async_trait]
        impl $trait for $crate::timed::Timed<dyn $trait> {
            $(
                $(#[$meta])*
                async fn $name(&self $(, $arg: $argty)*) -> $ret {
                    self.time(stringify!($name), self.inner().$name($($arg),*)).await
                }
            )*
            $($($sync)*)?
        }
    };
}
