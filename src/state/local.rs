//! State in a local directory: one `<rollout>.json` per rollout, written atomically, with a lock
//! file so two local runs cannot both act.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{RolloutState, StateError, StateStore, StateVersion, StateWrite, StoredState};
use crate::fsutil::{fingerprint, lock_within, read_capped, write_atomically, DirLock, WriteError, MIB};

/// State files are small (the history is capped), so anything larger is not one.
const STATE_READ_CAP: u64 = MIB;

/// A directory of state documents.
#[derive(Debug)]
pub struct LocalStateStore {
    dir: PathBuf,
    // Held for the store's life; the OS releases it if the process dies.
    lock: Option<File>,
}

impl LocalStateStore {
    /// Opens the directory for reading only (`plan`, `status`): no lock, nothing created.
    pub fn read_only(dir: &Path) -> LocalStateStore {
        LocalStateStore {
            dir: dir.to_path_buf(),
            lock: None,
        }
    }

    /// Opens the directory for a run that may write, creating it and taking its lock.
    ///
    /// While another run holds the lock this waits up to `wait` for it to finish, so the run
    /// then decides with the state the winner left.
    pub fn for_writing(dir: &Path, wait: Duration) -> Result<LocalStateStore, StateError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError::Io(format!("cannot create state directory {}: {e}", dir.display())))?;
        let lock_path = dir.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StateError::Io(format!("cannot open lock file {}: {e}", lock_path.display())))?;
        match lock_within(&lock, wait) {
            Ok(true) => Ok(LocalStateStore {
                dir: dir.to_path_buf(),
                lock: Some(lock),
            }),
            Ok(false) => Err(StateError::Locked(format!(
                "another flagramp run still holds {} after waiting {}s: nothing was decided; run again when it has finished, or raise --lock-wait",
                lock_path.display(),
                wait.as_secs()
            ))),
            Err(e) => Err(StateError::Io(format!("cannot lock {}: {e}", lock_path.display()))),
        }
    }

    fn path_of(&self, rollout: &str) -> PathBuf {
        self.dir.join(format!("{rollout}.json"))
    }

    fn read_raw(&self, rollout: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.path_of(rollout);
        read_capped(&path, STATE_READ_CAP).map_err(|e| StateError::Unreadable {
            rollout: rollout.into(),
            location: path.display().to_string(),
            detail: format!("the file {e}"),
        })
    }
}

#[async_trait::async_trait]
impl StateStore for LocalStateStore {
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError> {
        let Some(bytes) = self.read_raw(rollout)? else {
            return Ok(None);
        };
        let location = self.path_of(rollout).display().to_string();
        let state = super::decode(
            &bytes,
            rollout,
            location,
            "fix or move the file aside (flagramp will then treat the flag's current value as drift)",
        )?;
        Ok(Some(StoredState {
            state,
            version: StateVersion(fingerprint(&bytes)),
        }))
    }

    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError> {
        let current = self.read_raw(&state.rollout)?.map(|b| StateVersion(fingerprint(&b)));
        if current.as_ref() != expected {
            return Err(StateError::Conflict {
                rollout: state.rollout.clone(),
            });
        }
        let bytes = super::encode(state)?;
        let path = self.path_of(&state.rollout);
        write_atomically(&path, &bytes).map_err(|e| write_error(&path, e))?;
        Ok(StateVersion(fingerprint(&bytes)))
    }

    /// Every document is checked against its version under the directory's lock, then the
    /// ones still current are replaced together (one pass of syncs, [`DirLock::replace_all`]).
    async fn save_batch(&self, writes: &[StateWrite]) -> Vec<Result<StateVersion, StateError>> {
        let mut results: Vec<Option<Result<StateVersion, StateError>>> = (0..writes.len()).map(|_| None).collect();
        let lock = match DirLock::for_dir(&self.dir) {
            Ok(lock) => lock,
            Err(e) => {
                let why = format!("cannot lock {}: {e}", self.dir.display());
                return writes.iter().map(|_| Err(StateError::Io(why.clone()))).collect();
            }
        };
        let mut files = Vec::new();
        let mut written = Vec::new();
        for (i, write) in writes.iter().enumerate() {
            let current = match self.read_raw(&write.state.rollout) {
                Ok(raw) => raw.map(|b| StateVersion(fingerprint(&b))),
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            if current != write.expected {
                results[i] = Some(Err(StateError::Conflict {
                    rollout: write.state.rollout.clone(),
                }));
                continue;
            }
            match super::encode(&write.state) {
                Ok(bytes) => {
                    written.push((i, StateVersion(fingerprint(&bytes))));
                    files.push((self.path_of(&write.state.rollout), bytes));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let outcomes = lock.replace_all(&files);
        for (((i, version), outcome), (path, _)) in written.into_iter().zip(outcomes).zip(&files) {
            results[i] = Some(outcome.map(|()| version).map_err(|e| write_error(path, e)));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StateError::Io("internal: a write without a result".into()))))
            .collect()
    }

    fn excludes_other_runs(&self) -> bool {
        self.lock.is_some()
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::Io(format!("cannot list {}: {e}", self.dir.display()))),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(str::to_string)
            })
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }
}

fn write_error(path: &Path, e: WriteError) -> StateError {
    match e {
        WriteError::ReadOnly => StateError::Io(format!("{} {e}; nothing was written", path.display())),
        e => StateError::Io(format!("cannot write {}: {e}", path.display())),
    }
}
