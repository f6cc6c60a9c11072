//! The ranking model on disk, beside the saved index (`ranking-model.pb`): written after each
//! training (through a temporary file, synced, then renamed) and read at start, so a restarted
//! replica ranks with its last model at once instead of its priors while its log refills.

use std::path::{Path, PathBuf};

use foldhash::HashMap;
use pronet_proto::feed::v1 as pb;
use prost::Message;

use crate::domain::features::{Family, DENSE, DENSE_NAMES};
use crate::domain::model::{CalibrationBucket, Kind, KindReport, ModelReport, RankingModel, KINDS};

/// The layout this code writes and reads.
const LAYOUT: u32 = 1;

/// Where the model is kept beside the saved index at `index_path`.
pub fn model_path(index_path: &Path) -> PathBuf {
    index_path.with_file_name("ranking-model.pb")
}

/// A trained model's report as responses show it.
pub fn model_to_pb(model: &RankingModel) -> pb::RankingModel {
    use pronet_common::time::to_timestamp;
    let r = &model.report;
    let trained = model.version > 0;
    pb::RankingModel {
        version: model.version.min(i64::MAX as u64) as i64,
        train_time: trained.then(|| to_timestamp(r.train_time)),
        examples: r.examples as i64,
        log_records: r.log_records as i64,
        holdout_start: trained.then(|| to_timestamp(r.holdout_start)),
        holdout_examples: r.holdout_examples as i64,
        train_seconds: r.train_seconds,
        state_bytes: r.state_bytes as i64,
        kinds: Kind::ALL
            .into_iter()
            .map(|kind| {
                let k = &r.kinds[kind as usize];
                pb::ModelKindReport {
                    kind: kind_to_pb(kind) as i32,
                    positives: k.positives as i64,
                    holdout_log_loss: k.holdout_log_loss,
                    holdout_auc: k.holdout_auc,
                    global_only_log_loss: k.global_log_loss,
                    global_only_auc: k.global_auc,
                    calibration: k
                        .calibration
                        .iter()
                        .map(|b| pb::CalibrationBucket {
                            mean_predicted: b.mean_predicted,
                            observed_rate: b.observed_rate,
                            examples: b.examples as i64,
                        })
                        .collect(),
                    nonzero_weights: k.nonzero_weights as i64,
                }
            })
            .collect(),
        features: DENSE_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .chain(Family::ALL.iter().map(|f| format!("{} (hashed)", f.name())))
            .collect(),
        label_window_seconds: r.label_window / 1_000_000,
        learning_rate: r.learning_rate,
        families: r.families.iter().map(|f| f.name().to_owned()).collect(),
        selection: r
            .selection
            .iter()
            .map(|(name, loss)| pb::ModelCandidate {
                name: name.clone(),
                holdout_log_loss: *loss,
            })
            .collect(),
        epochs: r.epochs as i32,
    }
}

/// An engagement kind as the protos name it.
pub fn kind_to_pb(kind: Kind) -> pb::EngagementKind {
    match kind {
        Kind::React => pb::EngagementKind::React,
        Kind::Comment => pb::EngagementKind::Comment,
        Kind::Share => pb::EngagementKind::Share,
    }
}

/// The kind of a proto's engagement kind (`None` for UNSPECIFIED or unknown values).
fn kind_of(raw: i32) -> Option<Kind> {
    match pb::EngagementKind::try_from(raw) {
        Ok(pb::EngagementKind::React) => Some(Kind::React),
        Ok(pb::EngagementKind::Comment) => Some(Kind::Comment),
        Ok(pb::EngagementKind::Share) => Some(Kind::Share),
        _ => None,
    }
}

/// The report back from its protobuf form (as saved).
fn report_from_pb(m: &pb::RankingModel) -> ModelReport {
    let time = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .and_then(|t| pronet_common::time::from_timestamp(t).ok())
            .unwrap_or_default()
    };
    let mut kinds: [KindReport; KINDS] = Default::default();
    for k in &m.kinds {
        let Some(kind) = kind_of(k.kind) else {
            continue;
        };
        kinds[kind as usize] = KindReport {
            positives: k.positives.max(0) as u64,
            holdout_log_loss: k.holdout_log_loss,
            holdout_auc: k.holdout_auc,
            global_log_loss: k.global_only_log_loss,
            global_auc: k.global_only_auc,
            calibration: k
                .calibration
                .iter()
                .map(|b| CalibrationBucket {
                    mean_predicted: b.mean_predicted,
                    observed_rate: b.observed_rate,
                    examples: b.examples.max(0) as u64,
                })
                .collect(),
            nonzero_weights: k.nonzero_weights.max(0) as u64,
        };
    }
    ModelReport {
        train_time: time(&m.train_time),
        examples: m.examples.max(0) as u64,
        log_records: m.log_records.max(0) as u64,
        holdout_start: time(&m.holdout_start),
        holdout_examples: m.holdout_examples.max(0) as u64,
        train_seconds: m.train_seconds,
        state_bytes: m.state_bytes.max(0) as u64,
        label_window: m.label_window_seconds.saturating_mul(1_000_000),
        kinds,
        learning_rate: m.learning_rate,
        families: Family::ALL
            .into_iter()
            .filter(|f| m.families.iter().any(|n| n == f.name()))
            .collect(),
        selection: m
            .selection
            .iter()
            .map(|c| (c.name.clone(), c.holdout_log_loss))
            .collect(),
        epochs: m.epochs.max(0) as u32,
    }
}

/// The model as its file holds it.
pub fn encode(model: &RankingModel) -> Vec<u8> {
    let mut keys: Vec<(&u64, &[f32; KINDS])> = model.hashed.iter().collect();
    keys.sort_unstable_by_key(|(k, _)| **k);
    pb::SavedRankingModel {
        version: LAYOUT,
        dense_features: DENSE as u32,
        report: Some(model_to_pb(model)),
        dense: model.dense.iter().flatten().copied().collect(),
        keys: keys.iter().map(|(k, _)| **k).collect(),
        weights: keys.iter().flat_map(|(_, w)| w.iter().copied()).collect(),
    }
    .encode_to_vec()
}

/// The model of a file's bytes; why not when they are not one this code wrote.
pub fn decode(bytes: &[u8]) -> Result<RankingModel, String> {
    let saved = pb::SavedRankingModel::decode(bytes).map_err(|e| e.to_string())?;
    if saved.version != LAYOUT || saved.dense_features as usize != DENSE {
        return Err(format!(
            "layout {} with {} dense features (this build reads layout {LAYOUT} with {DENSE})",
            saved.version, saved.dense_features
        ));
    }
    if saved.dense.len() != KINDS * DENSE || saved.weights.len() != KINDS * saved.keys.len() {
        return Err("the weights do not match the keys".into());
    }
    let report = saved.report.ok_or("no report")?;
    let mut dense = [[0.0f32; DENSE]; KINDS];
    for (k, d) in dense.iter_mut().enumerate() {
        d.copy_from_slice(&saved.dense[k * DENSE..(k + 1) * DENSE]);
    }
    let mut hashed = HashMap::default();
    hashed.reserve(saved.keys.len());
    for (i, key) in saved.keys.iter().enumerate() {
        let w = &saved.weights[i * KINDS..(i + 1) * KINDS];
        hashed.insert(*key, [w[0], w[1], w[2]]);
    }
    Ok(RankingModel {
        version: report.version.max(0) as u64,
        dense,
        hashed,
        report: report_from_pb(&report),
    })
}

/// Writes the model to `path`, atomically (a crash leaves the previous file whole).
pub fn save(path: &Path, model: &RankingModel) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&encode(model))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The model saved at `path`: `None` when there is none or it cannot be used (said in the log).
pub fn load(path: &Path) -> Option<RankingModel> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the saved ranking model");
            return None;
        }
    };
    match decode(&bytes) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "the saved ranking model cannot be used; training anew");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::features::{features, stable_hash, Impression};
    use crate::domain::{AuthorRelation, Counts};

    #[test]
    fn a_saved_model_reads_back_equal_and_predicts_the_same() {
        let mut m = RankingModel::prior();
        m.version = 7;
        m.dense[1][3] = 0.25;
        m.hashed.insert(42, [0.5, -0.25, 1.0]);
        m.hashed.insert(7, [0.0, 0.0, 2.0]);
        m.report.examples = 1000;
        m.report.learning_rate = 0.3;
        m.report.families = vec![Family::MemberHashtag];
        m.report.selection = vec![("dense, learning rate 0.3".into(), 0.25)];
        m.report.kinds[0].holdout_auc = 0.8;
        m.report.kinds[0].calibration = vec![CalibrationBucket {
            mean_predicted: 0.1,
            observed_rate: 0.12,
            examples: 100,
        }];
        let back = decode(&encode(&m)).unwrap();
        assert_eq!(back, m);
        let counts = Counts::default();
        let f = features(&Impression {
            member: stable_hash("m"),
            post: 1,
            author: 2,
            tags: &[],
            create_time: 0,
            counts: &counts,
            relation: AuthorRelation::Other,
            followed_hashtags: 0,
            interest: 0.0,
            affinity: 0.0,
            at: 0,
        });
        assert_eq!(back.predict(&f), m.predict(&f));
    }

    #[test]
    fn a_file_of_another_layout_or_cut_short_is_refused_not_misread() {
        let m = RankingModel::prior();
        let bytes = encode(&m);
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());
        let mut other = pb::SavedRankingModel::decode(bytes.as_slice()).unwrap();
        other.dense_features += 1;
        assert!(decode(&other.encode_to_vec())
            .unwrap_err()
            .contains("dense features"));
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("none.pb")).is_none());
        let path = dir.path().join("ranking-model.pb");
        save(&path, &m).unwrap();
        assert_eq!(load(&path), Some(m));
    }
}
