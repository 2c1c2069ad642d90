//! A flagd flag-definition file in the repository (the built-in default provider).
//!
//! flagramp owns one flag's `state` and a `fractional` targeting rule with the `on` variant
//! first and weights in thousandths of a percent, so a raise adds users without reshuffling
//! anyone already on. Every other flag and field is kept as it was.
//!
//! Split by concern: [`store`] holds the file's bytes (a file in the checkout, or one on a
//! GitHub branch) and replaces them only at the version read, [`flag`] says what one flag in the
//! file means (its `state` and `fractional` weights as a [`FlagValue`]) and rewrites only those
//! bytes, and this module is the [`FlagProvider`] that reads, checks the version and writes.

mod flag;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

pub use store::{BranchFileWrite, FlagFileStore, LocalFile, RepoFileOnBranch};

use super::{ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::state::FlagValue;

/// How many times a change is applied again to a file whose other flags changed meanwhile.
const REAPPLY_ATTEMPTS: u32 = 8;

/// The version of one flag: a fingerprint of its definition, so that changes to the file's
/// other flags leave it as it was.
fn flag_version(flag: &serde_json::Map<String, Value>) -> String {
    let bytes = serde_json::to_vec(flag).unwrap_or_default();
    format!("flag:{}", crate::fsutil::fingerprint(&bytes))
}

/// One flag in one flagd JSON file.
#[derive(Debug)]
pub struct FlagdFile {
    store: Box<dyn FlagFileStore>,
    shown_path: PathBuf,
    key: String,
    reads: Option<SharedReads>,
}

/// A flag file as read: its text, version and parsed document.
#[derive(Debug)]
struct Loaded {
    text: String,
    version: String,
    doc: Value,
}

type ReadOnce = Arc<tokio::sync::OnceCell<Result<Arc<Loaded>, ProviderError>>>;

/// A run's reads of its flag files, shared by its rollouts: a file of a thousand flags is read
/// and parsed once per round of decisions, not once per flag. Writes never use it: they read the
/// file afresh, as their compare-and-swap (each flag's version), so a stale read costs at most a
/// conflict, never a lost change. Clones share the reads.
#[derive(Debug, Clone, Default)]
pub struct SharedReads(Arc<Mutex<Reads>>);

#[derive(Debug, Default)]
struct Reads {
    /// Each file's read, by its location.
    files: HashMap<String, ReadOnce>,
    /// Each file's location, by its location as given: resolving a path through its links costs
    /// a system call per path component, once per file and round rather than once per rollout.
    locations: HashMap<String, String>,
}

impl SharedReads {
    /// Drops every read: the next reads go to the files again (a new round of decisions).
    pub fn forget_all(&self) {
        let mut reads = self.reads();
        reads.files.clear();
        reads.locations.clear();
    }

    fn forget(&self, location: &str) {
        self.reads().files.remove(location);
    }

    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The location of the file `store` holds, resolved once per round.
    fn location(&self, store: &dyn FlagFileStore) -> String {
        let given = store.given_location();
        if let Some(known) = self.reads().locations.get(&given) {
            return known.clone();
        }
        let location = store.location();
        self.reads().locations.insert(given, location.clone());
        location
    }

    /// The file of `flag`, read once however many flags of it are asked for at once.
    async fn load(&self, flag: &FlagdFile) -> Result<Arc<Loaded>, ProviderError> {
        let location = flag.location();
        let once = self.reads().files.entry(location).or_default().clone();
        once.get_or_init(|| async { flag.load().await.map(Arc::new) })
            .await
            .clone()
    }
}

impl FlagdFile {
    /// The flag `key` in the file at `path` in the repository at `root`.
    pub fn new(root: &Path, path: &Path, key: String) -> FlagdFile {
        FlagdFile::in_store(Box::new(LocalFile::new(root, path)), path.to_path_buf(), key)
    }

    /// The flag `key` in the file that `store` holds.
    pub fn in_store(store: Box<dyn FlagFileStore>, shown_path: PathBuf, key: String) -> FlagdFile {
        FlagdFile {
            store,
            shown_path,
            key,
            reads: None,
        }
    }

    /// The same flag, read through the run's shared reads.
    pub fn with_shared_reads(mut self, reads: &SharedReads) -> FlagdFile {
        self.reads = Some(reads.clone());
        self
    }

    /// The file's text, its version and its parsed document, read now.
    async fn load(&self) -> Result<Loaded, ProviderError> {
        let Some((bytes, version)) = self.store.load().await? else {
            return Err(ProviderError::NotFound(format!(
                "flagd file {} does not exist: create it or fix `flag.flagd.path`",
                self.shown_path.display()
            )));
        };
        let not_json = |e: &dyn std::fmt::Display| {
            ProviderError::CannotOwn(format!(
                "flagd file {} is not valid JSON: {e}",
                self.shown_path.display()
            ))
        };
        let text = String::from_utf8(bytes).map_err(|e| not_json(&e))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| not_json(&e))?;
        Ok(Loaded { text, version, doc })
    }
}

#[async_trait::async_trait]
impl FlagProvider for FlagdFile {
    fn describe(&self) -> String {
        format!("flagd file {}", self.shown_path.display())
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let loaded = match &self.reads {
            Some(reads) => reads.load(self).await?,
            None => Arc::new(self.load().await?),
        };
        let flag = self.flag(&loaded.doc)?;
        Ok(FlagReading {
            value: self.understand(flag)?,
            version: flag_version(flag),
        })
    }

    /// Compare-and-swap on the flag, not the file: a change to another flag in the same file
    /// (another rollout of this run, or another run) is re-read and this flag's change applied
    /// to it again, without deciding again; a change to this flag is a conflict.
    async fn set(&self, to: FlagValue, seen: &FlagReading, note: &ChangeNote) -> Result<FlagReading, ProviderError> {
        let change = FlagdChange {
            flag: self,
            to,
            seen,
            note,
        };
        set_together(&[change])
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::Io("internal: a change without a result".into())))
    }

    fn as_flagd_file(&self) -> Option<&FlagdFile> {
        Some(self)
    }
}

/// One change of [`set_together`].
#[derive(Debug, Clone, Copy)]
pub struct FlagdChange<'a> {
    /// The flag.
    pub flag: &'a FlagdFile,
    /// Its new value.
    pub to: FlagValue,
    /// The reading the change was decided on: its version is the compare-and-swap.
    pub seen: &'a FlagReading,
    /// Who changes it and why.
    pub note: &'a ChangeNote,
}

impl FlagdFile {
    /// Which file the flag lives in: flags with the same location are written together.
    pub fn location(&self) -> String {
        match &self.reads {
            Some(reads) => reads.location(self.store.as_ref()),
            None => self.store.location(),
        }
    }
}

/// Sets several flags, in one or many files, so that a run's changes cost one write per file,
/// not one per rollout: the flags of one file are edited together, and the local files of one
/// directory are written in one pass (one flush). Each change is checked against its own flag: a
/// flag changed since it was read is a conflict and left out, the others are written. A file
/// that meets another writer's write is read again and this run's flags applied again. One
/// result per change, in order.
pub async fn set_together(changes: &[FlagdChange<'_>]) -> Vec<Result<FlagReading, ProviderError>> {
    let mut results: Vec<Option<Result<FlagReading, ProviderError>>> = vec![None; changes.len()];
    for attempt in 1..=REAPPLY_ATTEMPTS {
        let mut by_file: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, change) in changes.iter().enumerate().filter(|(i, _)| results[*i].is_none()) {
            by_file.entry(change.flag.location()).or_default().push(i);
        }
        if by_file.is_empty() {
            break;
        }
        let edits = futures::future::join_all(by_file.values().map(|idxs| edit_file(changes, idxs))).await;
        let mut writes = Vec::new();
        for (refused, write) in edits {
            for (i, result) in refused {
                results[i] = Some(result);
            }
            writes.extend(write);
        }
        let written = write_files(&writes).await;
        for (write, outcome) in writes.iter().zip(written) {
            let first = changes[write.ours[0]].flag;
            match outcome {
                Ok(()) => {
                    // Reads shared before this write are out of date now.
                    if let Some(reads) = &first.reads {
                        reads.forget(&first.location());
                    }
                    let written: Value = serde_json::from_str(&write.out).unwrap_or_default();
                    for &i in &write.ours {
                        let read = changes[i].flag.flag(&written).map(|flag| FlagReading {
                            value: changes[i].to,
                            version: flag_version(flag),
                        });
                        results[i] = Some(read);
                    }
                }
                // Another writer got in between our read and our write: read again, apply again.
                Err(ProviderError::Conflict(_)) if attempt < REAPPLY_ATTEMPTS => {}
                Err(e) => {
                    for &i in &write.ours {
                        results[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(ProviderError::Conflict(
                    "the flag file kept changing while it was written; nothing was written".into(),
                ))
            })
        })
        .collect()
}

/// One file's edit, ready to write.
struct FileWrite<'a> {
    /// The changes it carries (indices into the changes), all flags of this file.
    ours: Vec<usize>,
    flag: &'a FlagdFile,
    out: String,
    /// The version the file was read at: the write is compare-and-swap on it.
    version: String,
    keys: String,
    note: ChangeNote,
}

/// Reads the file of the changes `idxs` (one file) afresh and edits every flag of it still as
/// it was read. Returns the changes settled now (a flag changed since, a flag flagramp cannot
/// own, an unreadable file) and the write, if any is left to make.
async fn edit_file<'a>(
    changes: &[FlagdChange<'a>],
    idxs: &[usize],
) -> (Vec<(usize, Result<FlagReading, ProviderError>)>, Option<FileWrite<'a>>) {
    let first = changes[idxs[0]].flag;
    let Loaded { text, version, doc } = match first.load().await {
        Ok(loaded) => loaded,
        Err(e) => return (idxs.iter().map(|&i| (i, Err(e.clone()))).collect(), None),
    };
    let mut settled = Vec::new();
    let mut ours = Vec::new();
    for &i in idxs {
        let change = &changes[i];
        let checked = change.flag.flag(&doc).and_then(|flag| {
            if flag_version(flag) != change.seen.version {
                return Err(ProviderError::Conflict(format!(
                    "flag `{}` in {} changed since it was read: another process set it; nothing was written",
                    change.flag.key,
                    change.flag.shown_path.display()
                )));
            }
            change.flag.understand(flag)
        });
        match checked {
            Ok(_) => ours.push(i),
            Err(e) => settled.push((i, Err(e))),
        }
    }
    if ours.is_empty() {
        return (settled, None);
    }
    let edits: Vec<(&FlagdFile, FlagValue)> = ours.iter().map(|&i| (changes[i].flag, changes[i].to)).collect();
    let out = match flag::rewrite_all(&text, &doc, &edits) {
        Ok(out) => out,
        Err(e) => {
            settled.extend(ours.iter().map(|&i| (i, Err(e.clone()))));
            return (settled, None);
        }
    };
    let note = ChangeNote {
        actor: changes[ours[0]].note.actor.clone(),
        // One flag's reason is kept as it is; several are told apart by their keys.
        reason: match ours.as_slice() {
            [only] => changes[*only].note.reason.clone(),
            _ => ours
                .iter()
                .map(|&i| format!("{}: {}", changes[i].flag.key, changes[i].note.reason))
                .collect::<Vec<_>>()
                .join("; "),
        },
    };
    let keys = ours
        .iter()
        .map(|&i| changes[i].flag.key.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let write = FileWrite {
        ours,
        flag: first,
        out,
        version,
        keys,
        note,
    };
    (settled, Some(write))
}

/// Writes the edited files: the local ones of a directory in one pass, the others (files on a
/// branch) each on its own, side by side. One result per write, in order.
async fn write_files(writes: &[FileWrite<'_>]) -> Vec<Result<(), ProviderError>> {
    let mut results: Vec<Option<Result<(), ProviderError>>> = vec![None; writes.len()];
    let mut local = Vec::new();
    let mut elsewhere = Vec::new();
    for (k, write) in writes.iter().enumerate() {
        match write.flag.store.as_local() {
            Some(file) => local.push((k, file)),
            None => elsewhere.push(k),
        }
    }
    let stored = LocalFile::store_all(
        &local
            .iter()
            .map(|&(k, file)| (file, writes[k].out.as_bytes(), writes[k].version.as_str()))
            .collect::<Vec<_>>(),
    );
    for (&(k, _), result) in local.iter().zip(stored) {
        results[k] = Some(result);
    }
    // Files on a branch: the files of one branch in one commit when there are several.
    let mut by_branch: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut alone = Vec::new();
    for &k in &elsewhere {
        match writes[k].flag.store.as_branch_file() {
            Some(file) => by_branch.entry(file.branch()).or_default().push(k),
            None => alone.push(k),
        }
    }
    for ks in by_branch.into_values() {
        if ks.len() == 1 {
            alone.extend(ks);
            continue;
        }
        let batch: Vec<BranchFileWrite<'_>> = ks
            .iter()
            .filter_map(|&k| {
                Some(BranchFileWrite {
                    file: writes[k].flag.store.as_branch_file()?,
                    bytes: writes[k].out.as_bytes(),
                    version: &writes[k].version,
                    keys: &writes[k].keys,
                    note: &writes[k].note,
                })
            })
            .collect();
        for (&k, result) in ks.iter().zip(RepoFileOnBranch::store_all(&batch).await) {
            results[k] = Some(result);
        }
    }
    let stored = futures::future::join_all(alone.iter().map(|&k| {
        let write = &writes[k];
        write
            .flag
            .store
            .store(write.out.as_bytes(), &write.version, &write.keys, &write.note)
    }))
    .await;
    for (&k, result) in alone.iter().zip(stored) {
        results[k] = Some(result);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProviderError::Io("internal: a file write without a result".into()))))
        .collect()
}
