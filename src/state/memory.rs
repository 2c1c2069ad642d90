//! State in memory, for backtests and tests: the same documents, compare-and-swap and encoding as
//! the real stores, kept in a map that lives as long as the store (and its clones).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{RolloutState, StateError, StateStore, StateVersion, StoredState};

/// What the map holds per rollout: the encoded document and the write that produced it.
#[derive(Debug, Default)]
struct Documents {
    files: BTreeMap<String, (Vec<u8>, u64)>,
    /// Counts every write, so that no two writes share a version (even of the same bytes).
    writes: u64,
}

/// State documents in memory. Clones share the documents.
///
/// Documents are stored as the bytes [`super::encode`] makes, the same as the local and GitHub
/// stores write, so the size cap and history trimming apply, and every load decodes them again.
#[derive(Debug, Clone, Default)]
pub struct MemoryStateStore {
    documents: Arc<Mutex<Documents>>,
    exclusive: bool,
}

impl MemoryStateStore {
    /// An empty store that, like the GitHub store, does not claim to keep other runs out: a recent
    /// claim found in it may belong to a run still at work.
    pub fn new() -> MemoryStateStore {
        MemoryStateStore::default()
    }

    /// An empty store used by one run at a time (a backtest replaying runs in order), so a claim
    /// found in it was left by a run that stopped, as with the local store's lock.
    pub fn exclusive() -> MemoryStateStore {
        MemoryStateStore {
            exclusive: true,
            ..MemoryStateStore::default()
        }
    }

    /// The bytes stored for `rollout`, as a file-backed store would hold them.
    pub fn raw(&self, rollout: &str) -> Option<Vec<u8>> {
        self.documents().files.get(rollout).map(|(bytes, _)| bytes.clone())
    }

    fn documents(&self) -> std::sync::MutexGuard<'_, Documents> {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn version_of(write: u64) -> StateVersion {
    StateVersion(format!("memory-{write}"))
}

#[async_trait::async_trait]
impl StateStore for MemoryStateStore {
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError> {
        let Some((bytes, write)) = self.documents().files.get(rollout).cloned() else {
            return Ok(None);
        };
        let location = format!("memory:{rollout}");
        let state = super::decode(&bytes, rollout, location, "the stored bytes are not a state document")?;
        Ok(Some(StoredState {
            state,
            version: version_of(write),
        }))
    }

    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError> {
        let bytes = super::encode(state)?;
        let mut documents = self.documents();
        let current = documents.files.get(&state.rollout).map(|(_, write)| version_of(*write));
        if current.as_ref() != expected {
            return Err(StateError::Conflict {
                rollout: state.rollout.clone(),
            });
        }
        documents.writes += 1;
        let write = documents.writes;
        documents.files.insert(state.rollout.clone(), (bytes, write));
        Ok(version_of(write))
    }

    fn excludes_other_runs(&self) -> bool {
        self.exclusive
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        // A BTreeMap's keys are already sorted, as the other stores sort theirs.
        Ok(self.documents().files.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percent::Percent;
    use crate::record::{DecisionKind, DecisionRecord};
    use crate::state::{HISTORY_CAP, STATE_SIZE_CAP};

    fn state(rollout: &str) -> RolloutState {
        RolloutState::new(rollout, "flag", vec![Percent::FULL])
    }

    fn bulky_record(i: usize) -> DecisionRecord {
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000 + i as i64, 0).unwrap();
        let reason = format!("decision {i}: {}", "r".repeat(10_000));
        DecisionRecord::bare("r", "flag", DecisionKind::Hold, at, "flagramp", reason)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn creates_only_when_absent_and_swaps_only_at_the_version_read() {
        block_on(async {
            let store = MemoryStateStore::new();
            assert!(store.load("r").await.unwrap().is_none());
            assert!(store.list().await.unwrap().is_empty());
            let v1 = store.save(&state("r"), None).await.unwrap();
            assert!(matches!(
                store.save(&state("r"), None).await,
                Err(StateError::Conflict { rollout }) if rollout == "r"
            ));
            let loaded = store.load("r").await.unwrap().unwrap();
            assert_eq!(loaded.state, state("r"));
            assert_eq!(loaded.version, v1);

            let mut next = state("r");
            next.paused = true;
            let v2 = store.save(&next, Some(&v1)).await.unwrap();
            assert_ne!(v1, v2);
            assert!(matches!(
                store.save(&next, Some(&v1)).await,
                Err(StateError::Conflict { .. })
            ));
            assert!(matches!(
                store.save(&state("other"), Some(&v2)).await,
                Err(StateError::Conflict { .. })
            ));
            assert_eq!(store.load("r").await.unwrap().unwrap().state, next);
        });
    }

    #[test]
    fn every_write_gets_a_new_version_even_of_the_same_document() {
        block_on(async {
            let store = MemoryStateStore::new();
            let v1 = store.save(&state("r"), None).await.unwrap();
            let v2 = store.save(&state("r"), Some(&v1)).await.unwrap();
            assert_ne!(v1, v2, "a rewrite of the same bytes is still a new version");
            let v3 = store.save(&state("s"), None).await.unwrap();
            assert_ne!(v3, v1);
            assert_ne!(v3, v2);
            assert_eq!(store.list().await.unwrap(), vec!["r".to_string(), "s".to_string()]);
        });
    }

    #[test]
    fn documents_are_stored_encoded_as_the_file_stores_write_them() {
        block_on(async {
            let store = MemoryStateStore::new();
            let mut big = state("r");
            for i in 0..HISTORY_CAP {
                big.push_history(bulky_record(i));
            }
            assert!(serde_json::to_vec_pretty(&big).unwrap().len() > STATE_SIZE_CAP);
            store.save(&big, None).await.unwrap();
            let raw = store.raw("r").unwrap();
            assert_eq!(raw, crate::state::encode(&big).unwrap());
            assert!(raw.len() <= STATE_SIZE_CAP);
            let loaded = store.load("r").await.unwrap().unwrap().state;
            assert!(!loaded.history.is_empty() && loaded.history.len() < big.history.len());
            assert_eq!(loaded.history.last(), big.history.last(), "the newest decision stays");
        });
    }

    #[test]
    fn clones_share_documents_and_only_an_exclusive_store_keeps_other_runs_out() {
        block_on(async {
            let store = MemoryStateStore::new();
            let clone = store.clone();
            let v = clone.save(&state("r"), None).await.unwrap();
            assert_eq!(store.load("r").await.unwrap().unwrap().version, v);
            assert!(!store.excludes_other_runs());
            assert!(MemoryStateStore::exclusive().excludes_other_runs());
        });
    }
}
