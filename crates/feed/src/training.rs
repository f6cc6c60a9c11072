//! The ranking model's trainer: off the request path, it copies the index's training log,
//! replays it into examples ([`replay`]) and learns a new model with FTRL-Proximal
//! ([`ftrl`]), then publishes it in the [`ModelSlot`] that ranking reads. It trains when the
//! log has grown enough since the last model (checked every `interval`), or when asked
//! (`FeedService.TrainRankingModel`); one training at a time, on a blocking thread, with its
//! CPU share bounded.

pub mod ftrl;
pub mod replay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pronet_common::metrics::Metrics;
use pronet_common::shutdown::Shutdown;
use pronet_common::time::now_micros;
use tokio::sync::watch;

use crate::domain::model::{Kind, RankingModel};
use crate::events::SharedIndex;
pub use replay::TrainSettings;

/// The model ranking uses now. Readers take an `Arc` and keep it for their whole ranking, so a
/// new model never changes a ranking half way.
#[derive(Debug)]
pub struct ModelSlot {
    current: RwLock<Arc<RankingModel>>,
}

impl Default for ModelSlot {
    fn default() -> Self {
        Self {
            current: RwLock::new(Arc::new(RankingModel::prior())),
        }
    }
}

impl ModelSlot {
    pub fn current(&self) -> Arc<RankingModel> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn publish(&self, model: Arc<RankingModel>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = model;
    }
}

/// When the trainer trains on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainerConfig {
    pub settings: TrainSettings,
    /// How often the log's growth is checked.
    pub interval: Duration,
    /// Train again once the log gained this share of its size since the last model...
    pub grow_share: f64,
    /// ...and at least this many records.
    pub min_new_records: u64,
    /// Records the index's training log keeps.
    pub log_capacity: usize,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        let settings = TrainSettings {
            cpu_share: 0.5,
            ..TrainSettings::default()
        };
        Self {
            settings,
            interval: Duration::from_secs(60),
            grow_share: 0.1,
            min_new_records: 1000,
            log_capacity: crate::index::DEFAULT_LOG_CAPACITY,
        }
    }
}

/// Trains models from the index's log and publishes them.
pub struct Trainer {
    index: SharedIndex,
    slot: Arc<ModelSlot>,
    config: TrainerConfig,
    /// One training at a time.
    running: tokio::sync::Mutex<()>,
    /// The log's `appended` when the current model's data was copied.
    trained_at: AtomicU64,
    metrics: Option<Arc<Metrics>>,
}

impl Trainer {
    pub fn new(
        index: SharedIndex,
        slot: Arc<ModelSlot>,
        config: TrainerConfig,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            index,
            slot,
            config,
            running: tokio::sync::Mutex::new(()),
            trained_at: AtomicU64::new(0),
            metrics,
        }
    }

    pub fn slot(&self) -> &Arc<ModelSlot> {
        &self.slot
    }

    /// Trains a model from the log as it is now and publishes it. `full_speed` lifts the CPU
    /// share (a caller is waiting).
    pub async fn train_now(&self, full_speed: bool) -> Result<Arc<RankingModel>, String> {
        let _one = self.running.lock().await;
        let index = self.index.clone();
        let mut settings = self.config.settings;
        if full_speed {
            settings.cpu_share = 1.0;
        }
        let version = self.slot.current().version + 1;
        let model = tokio::task::spawn_blocking(move || {
            // A copy under the read lock (tens of milliseconds for a million records); the
            // replay runs without it.
            let data = index
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .training_data();
            let model = replay::train(&data, &settings, now_micros(), version);
            (data.appended, model)
        })
        .await
        .map_err(|e| format!("training failed: {e}"))?;
        let (appended, model) = model;
        self.trained_at.store(appended, Ordering::Relaxed);
        let model = Arc::new(model);
        self.report(&model);
        self.slot.publish(model.clone());
        Ok(model)
    }

    fn report(&self, model: &RankingModel) {
        let r = &model.report;
        tracing::info!(
            version = model.version,
            examples = r.examples,
            log_records = r.log_records,
            holdout_examples = r.holdout_examples,
            react_auc = r.kinds[0].holdout_auc,
            react_global_auc = r.kinds[0].global_auc,
            react_log_loss = r.kinds[0].holdout_log_loss,
            train_seconds = r.train_seconds,
            state_bytes = r.state_bytes,
            "ranking model trained"
        );
        let Some(m) = &self.metrics else {
            return;
        };
        m.ranking_model("version", "", model.version as f64);
        m.ranking_model("examples", "", r.examples as f64);
        m.ranking_model("train_seconds", "", r.train_seconds);
        m.ranking_model("state_bytes", "", r.state_bytes as f64);
        for kind in Kind::ALL {
            let k = &r.kinds[kind as usize];
            m.ranking_model("holdout_auc", kind.name(), k.holdout_auc);
            m.ranking_model("holdout_log_loss", kind.name(), k.holdout_log_loss);
            m.ranking_model("global_auc", kind.name(), k.global_auc);
        }
    }

    /// Whether the log grew enough since the last model.
    fn due(&self) -> bool {
        let (len, appended) = self
            .index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .log_stats();
        let new = appended.saturating_sub(self.trained_at.load(Ordering::Relaxed));
        new >= self.config.min_new_records && new as f64 >= self.config.grow_share * len as f64
    }

    /// Trains whenever the log has grown enough, from when the index is ready until the stop.
    pub fn spawn(
        self: Arc<Self>,
        mut ready: watch::Receiver<bool>,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let stopped = shutdown.wait();
            tokio::pin!(stopped);
            tokio::select! {
                _ = ready.wait_for(|r| *r) => {}
                _ = &mut stopped => return,
            }
            loop {
                if self.due() {
                    if let Err(e) = self.train_now(false).await {
                        tracing::warn!(error = %e, "ranking model training failed");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.config.interval) => {}
                    _ = &mut stopped => return,
                }
            }
        })
    }
}
