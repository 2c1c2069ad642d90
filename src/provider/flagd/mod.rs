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

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use store::{FlagFileStore, LocalFile, RepoFileOnBranch};

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
}

impl FlagdFile {
    /// The flag `key` in the file at `path` in the repository at `root`.
    pub fn new(root: &Path, path: &Path, key: String) -> FlagdFile {
        FlagdFile::in_store(Box::new(LocalFile::new(root, path)), path.to_path_buf(), key)
    }

    /// The flag `key` in the file that `store` holds.
    pub fn in_store(store: Box<dyn FlagFileStore>, shown_path: PathBuf, key: String) -> FlagdFile {
        FlagdFile { store, shown_path, key }
    }

    /// The file's text, its version and its parsed document.
    async fn load(&self) -> Result<(String, String, Value), ProviderError> {
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
        Ok((text, version, doc))
    }
}

#[async_trait::async_trait]
impl FlagProvider for FlagdFile {
    fn describe(&self) -> String {
        format!("flagd file {}", self.shown_path.display())
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let (_, _, doc) = self.load().await?;
        let flag = self.flag(&doc)?;
        Ok(FlagReading {
            value: self.understand(flag)?,
            version: flag_version(flag),
        })
    }

    /// Compare-and-swap on the flag, not the file: a change to another flag in the same file
    /// (another rollout of this run, or another run) is re-read and this flag's change applied
    /// to it again, without deciding again; a change to this flag is a conflict.
    async fn set(&self, to: FlagValue, seen: &FlagReading, note: &ChangeNote) -> Result<FlagReading, ProviderError> {
        let mut attempt = 1;
        loop {
            let (text, file_version, doc) = self.load().await?;
            let flag = self.flag(&doc)?;
            if flag_version(flag) != seen.version {
                return Err(ProviderError::Conflict(format!(
                    "flag `{}` in {} changed since it was read: another process set it; nothing was written",
                    self.key,
                    self.shown_path.display()
                )));
            }
            self.understand(flag)?;
            let out = self.rewrite(&text, &doc, to)?;
            match self.store.store(out.as_bytes(), &file_version, &self.key, note).await {
                Ok(()) => break,
                // Another flag of the file was written between our read and our write.
                Err(ProviderError::Conflict(_)) if attempt < REAPPLY_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
        let back = self.read().await?;
        if back.value != to {
            return Err(ProviderError::Io(format!(
                "{} reads back {} after setting {}",
                self.shown_path.display(),
                back.value.describe(),
                to.describe()
            )));
        }
        Ok(back)
    }
}
