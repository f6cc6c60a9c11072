//! The ranking profiles in use: the built-in ones, or a file's, re-read when the file changes.
//! A file that does not parse or validate is refused with its error in the log and the
//! profiles in use stay; at start, such a file stops the server instead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::domain::ProfileSet;

/// The profiles in use, swapped whole on a reload.
#[derive(Debug)]
pub struct RankingProfiles {
    current: RwLock<Arc<ProfileSet>>,
    path: Option<PathBuf>,
    /// What the file looked like when last read: (modified, length, content).
    seen: std::sync::Mutex<Option<(Option<SystemTime>, u64, String)>>,
}

impl RankingProfiles {
    /// The built-in profiles.
    pub fn built_in() -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(ProfileSet::built_in())),
            path: None,
            seen: Default::default(),
        })
    }

    /// Fixed profiles (tests, `bench eval`).
    pub fn fixed(set: ProfileSet) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(Arc::new(set)),
            path: None,
            seen: Default::default(),
        })
    }

    /// The profiles of `path`, refused with the file's error when it is not valid.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        let (stamp, text) = read(path)?;
        let set = ProfileSet::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(set)),
            path: Some(path.to_owned()),
            seen: std::sync::Mutex::new(Some((stamp.0, stamp.1, text))),
        }))
    }

    /// The profiles to rank with now.
    pub fn current(&self) -> Arc<ProfileSet> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reads the file again if it changed: `Ok(true)` when new profiles are in use,
    /// `Ok(false)` when nothing changed (or there is no file), `Err` when the new file was
    /// refused (the profiles in use stay).
    pub fn reload(&self) -> Result<bool, String> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stamp = (meta.modified().ok(), meta.len());
        if seen.as_ref().is_some_and(|(m, len, _)| (*m, *len) == stamp) {
            return Ok(false);
        }
        let (stamp, text) = read(path)?;
        if seen.as_ref().is_some_and(|(_, _, old)| *old == text) {
            *seen = Some((stamp.0, stamp.1, text));
            return Ok(false);
        }
        // Remember the refused file too, so it is reported once, not at every poll.
        let parsed = ProfileSet::parse(&text);
        *seen = Some((stamp.0, stamp.1, text));
        let set = parsed.map_err(|e| format!("{}: {e}", path.display()))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(true)
    }

    /// Polls the file every `every` until `shutdown`, logging each reload or refusal.
    pub fn watch(
        self: &Arc<Self>,
        every: Duration,
        shutdown: pronet_common::shutdown::Shutdown,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.path.as_ref()?;
        let me = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.wait() => return,
                }
                match me.reload() {
                    Ok(true) => {
                        let set = me.current();
                        let names: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
                        tracing::info!(profiles = ?names, default = %set.default_profile().name, "ranking profiles reloaded");
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(%error, "ranking profiles file refused; the profiles in use stay")
                    }
                }
            }
        }))
    }
}

fn read(path: &Path) -> Result<((Option<SystemTime>, u64), String), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(((meta.modified().ok(), meta.len()), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "default = \"a\"\n[profiles.a.weights]\nfreshness = 1.0\n";
    const TWO: &str =
        "default = \"b\"\n[profiles.b]\npublished = true\n[profiles.b.weights]\nquality = 1.0\n";

    #[test]
    fn a_changed_file_is_reloaded_and_a_bad_one_refused_keeping_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ranking.toml");
        std::fs::write(&path, ONE).unwrap();
        let profiles = RankingProfiles::load(&path).unwrap();
        assert_eq!(profiles.current().default_profile().name, "a");
        assert_eq!(profiles.reload(), Ok(false));

        std::fs::write(&path, TWO).unwrap();
        assert_eq!(profiles.reload(), Ok(true));
        assert_eq!(profiles.current().default_profile().name, "b");

        std::fs::write(
            &path,
            "default = \"b\"\n[profiles.b.weights]\nnot_a_signal = 1\n",
        )
        .unwrap();
        let err = profiles.reload().unwrap_err();
        assert!(err.contains("not_a_signal"), "{err}");
        assert_eq!(profiles.current().default_profile().name, "b");
        // Reported once: the same bad file is not an error again.
        assert_eq!(profiles.reload(), Ok(false));
    }

    #[test]
    fn a_bad_file_at_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ranking.toml");
        std::fs::write(&path, "default = \"zzz\"\n[profiles.a]\n").unwrap();
        let err = RankingProfiles::load(&path).unwrap_err();
        assert!(err.contains("zzz"), "{err}");
        assert!(RankingProfiles::load(&dir.path().join("missing.toml")).is_err());
    }
}
