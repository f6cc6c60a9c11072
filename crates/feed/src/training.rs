//! The ranking model's trainer: off the request path, it copies the index's training log,
//! replays it into examples ([`replay`]) and learns a new model with FTRL-Proximal
//! ([`ftrl`]), then publishes it in the [`ModelSlot`] that ranking reads. It trains when the
//! log has grown enough since the last model (checked every `interval`), or when asked
//! (`FeedService.TrainRankingModel`); one training at a time, on a blocking thread, with its
//! CPU share bounded.

pub mod ftrl;
pub mod replay;
pub mod saved;

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
    /// Where each published model is saved (beside the saved index), if anywhere.
    saved: Option<std::path::PathBuf>,
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
            saved: None,
        }
    }

    /// Saves each published model to `path`, and starts from the one saved there, if any.
    pub fn with_saved_model(mut self, path: std::path::PathBuf) -> Self {
        if let Some(model) = saved::load(&path) {
            tracing::info!(
                file = %path.display(),
                version = model.version,
                examples = model.report.examples,
                "ranking model loaded"
            );
            self.report(&model);
            self.slot.publish(Arc::new(model));
        }
        self.saved = Some(path);
        self
    }

    pub fn slot(&self) -> &Arc<ModelSlot> {
        &self.slot
    }

    /// Trains a model from the log as it is now and publishes it. `requested`: a caller is
    /// waiting (the CPU share is lifted, and the model is published whatever it learned from;
    /// on its own the trainer keeps a model trained on more than twice the examples, such as
    /// one loaded at start while the log refills).
    pub async fn train_now(&self, requested: bool) -> Result<Arc<RankingModel>, String> {
        let _one = self.running.lock().await;
        let index = self.index.clone();
        let mut settings = self.config.settings;
        if requested {
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
        let current = self.slot.current();
        if !requested && model.report.examples * 2 < current.report.examples {
            tracing::info!(
                examples = model.report.examples,
                current_examples = current.report.examples,
                "ranking model kept: the new one learned from less than half the examples"
            );
            return Ok(current);
        }
        let model = Arc::new(model);
        self.report(&model);
        self.slot.publish(model.clone());
        if let Some(path) = self.saved.clone() {
            let saving = model.clone();
            let done = tokio::task::spawn_blocking(move || saved::save(&path, &saving)).await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not save the ranking model"),
                Err(e) => tracing::warn!(error = %e, "the ranking model saver failed"),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::FeedIndex;

    fn trainer(index: &SharedIndex) -> Trainer {
        Trainer::new(
            index.clone(),
            Arc::new(ModelSlot::default()),
            TrainerConfig::default(),
            None,
        )
    }

    #[tokio::test]
    async fn a_restarted_trainer_ranks_with_the_saved_model_and_keeps_it_over_a_poorer_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved::model_path(&dir.path().join("feed-index.bin"));
        let index: SharedIndex = Arc::new(RwLock::new(FeedIndex::new(i64::MAX / 4)));
        // A model that learned from a large log, saved as a trainer saves it.
        let mut rich = RankingModel::prior();
        rich.version = 4;
        rich.report.examples = 50_000;
        rich.hashed.insert(9, [1.0, 0.0, 0.0]);
        saved::save(&path, &rich).unwrap();

        let restarted = trainer(&index).with_saved_model(path.clone());
        assert_eq!(*restarted.slot().current(), rich);
        // The log is empty after the restart: on its own the trainer keeps the saved model...
        let kept = restarted.train_now(false).await.unwrap();
        assert_eq!(kept.version, 4);
        assert_eq!(restarted.slot().current().version, 4);
        // ...and an operator's request replaces it, saved for the next start.
        let asked = restarted.train_now(true).await.unwrap();
        assert_eq!(asked.version, 5);
        assert_eq!(asked.report.examples, 0);
        assert_eq!(saved::load(&path).unwrap().version, 5);
        let again = trainer(&index).with_saved_model(path);
        assert_eq!(again.slot().current().version, 5);
    }
}
