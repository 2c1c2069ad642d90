//! A flagd flag-definition file in the repository (the built-in default provider).
//!
//! flagramp owns one flag's `state` and a `fractional` targeting rule with the `on` variant
//! first and weights in thousandths of a percent, so a raise adds users without reshuffling
//! anyone already on. Every other flag and field is kept as it was.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::fsutil::{fingerprint, write_atomically};
use crate::github::{GitHub, GitHubError};
use crate::percent::Percent;
use crate::state::FlagValue;

/// Where a flag file's bytes live, with a version for compare-and-swap writes.
#[async_trait::async_trait]
pub trait FlagFileStore: std::fmt::Debug + Send + Sync {
    /// The bytes and their version, or `None` when the file does not exist.
    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError>;
    /// Replaces the file if it is still at `version`.
    async fn store(&self, bytes: &[u8], version: &str) -> Result<(), ProviderError>;

    /// [`store`](FlagFileStore::store), for a change to `key` described by `note` (a store
    /// that keeps history, a branch, puts it in the commit message).
    async fn store_noted(
        &self,
        bytes: &[u8],
        version: &str,
        key: &str,
        note: &ChangeNote,
    ) -> Result<(), ProviderError> {
        let _ = (key, note);
        self.store(bytes, version).await
    }
}

/// A file in the local checkout.
#[derive(Debug, Clone)]
pub struct LocalFile {
    path: PathBuf,
    shown_path: PathBuf,
}

impl LocalFile {
    /// The file at `path`, named `shown_path` in messages.
    pub fn new(path: PathBuf, shown_path: PathBuf) -> LocalFile {
        LocalFile { path, shown_path }
    }
}

#[async_trait::async_trait]
impl FlagFileStore for LocalFile {
    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => {
                let version = fingerprint(&bytes);
                Ok(Some((bytes, version)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ProviderError::Io(format!(
                "cannot read flagd file {}: {e}",
                self.shown_path.display()
            ))),
        }
    }

    async fn store(&self, bytes: &[u8], version: &str) -> Result<(), ProviderError> {
        let current = std::fs::read(&self.path).map(|b| fingerprint(&b)).unwrap_or_default();
        if current != version {
            return Err(ProviderError::Conflict(format!(
                "{} changed since it was read: another process wrote it; nothing was written",
                self.shown_path.display()
            )));
        }
        write_atomically(&self.path, bytes)
            .map_err(|e| ProviderError::Io(format!("cannot write {}: {e}", self.shown_path.display())))
    }
}

/// A file on a branch of the GitHub repository, read and written through the contents API with
/// the blob sha as compare-and-swap (never the possibly stale workspace copy).
#[derive(Debug, Clone)]
pub struct RepoFileOnBranch {
    github: Arc<GitHub>,
    branch: String,
    path: String,
}

impl RepoFileOnBranch {
    /// `path` on `branch`.
    pub fn new(github: Arc<GitHub>, branch: String, path: String) -> RepoFileOnBranch {
        RepoFileOnBranch { github, branch, path }
    }
}

fn provider_error(e: GitHubError, hint: &str) -> ProviderError {
    match e {
        GitHubError::Conflict(m) => ProviderError::Conflict(format!("{m}: another run changed the flag file first")),
        GitHubError::Refused(m) => ProviderError::Io(format!("{m}. {hint}")),
        GitHubError::Forbidden(m) => ProviderError::Io(format!(
            "{m}: the token cannot write contents (needs `permissions: contents: write`)"
        )),
        GitHubError::NotFound(m) => ProviderError::NotFound(m),
        GitHubError::Other(m) => ProviderError::Io(m),
    }
}

#[async_trait::async_trait]
impl FlagFileStore for RepoFileOnBranch {
    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError> {
        let file = self
            .github
            .get_file(&self.branch, &self.path)
            .await
            .map_err(|e| provider_error(e, ""))?;
        Ok(file.map(|f| (f.content, f.sha)))
    }

    async fn store(&self, bytes: &[u8], version: &str) -> Result<(), ProviderError> {
        self.write(bytes, version, &format!("flagramp: update {}", self.path))
            .await
    }

    async fn store_noted(
        &self,
        bytes: &[u8],
        version: &str,
        key: &str,
        note: &ChangeNote,
    ) -> Result<(), ProviderError> {
        let subject = format!("flagramp: update {key} in {}", self.path);
        let message = crate::github::commit_message(&subject, &[("Actor", &note.actor), ("Reason", &note.reason)]);
        self.write(bytes, version, &message).await
    }
}

impl RepoFileOnBranch {
    async fn write(&self, bytes: &[u8], version: &str, message: &str) -> Result<(), ProviderError> {
        self.github
            .put_file(&self.branch, &self.path, bytes, Some(version), message)
            .await
            .map(|_| ())
            .map_err(|e| {
                provider_error(
                    e,
                    "Branch protection or a rule refused the write: let the token bypass it, or keep the flag file on a branch flagramp may write (`flag.flagd.branch`)",
                )
            })
    }
}

/// One flag in one flagd JSON file.
#[derive(Debug)]
pub struct FlagdFile {
    store: Box<dyn FlagFileStore>,
    shown_path: PathBuf,
    key: String,
}

/// What flagramp understood of the flag's targeting, so a write can keep the bucketing input.
struct Owned {
    value: FlagValue,
    bucket_by: Option<Value>,
}

impl FlagdFile {
    /// The flag `key` in the local file at `path` (`shown_path` is how reports name it).
    pub fn new(path: PathBuf, shown_path: PathBuf, key: String) -> FlagdFile {
        FlagdFile::in_store(Box::new(LocalFile::new(path, shown_path.clone())), shown_path, key)
    }

    /// The flag `key` in the file that `store` holds.
    pub fn in_store(store: Box<dyn FlagFileStore>, shown_path: PathBuf, key: String) -> FlagdFile {
        FlagdFile { store, shown_path, key }
    }

    async fn load(&self) -> Result<(String, Value), ProviderError> {
        let Some((bytes, version)) = self.store.load().await? else {
            return Err(ProviderError::NotFound(format!(
                "flagd file {} does not exist: create it or fix `flag.flagd.path`",
                self.shown_path.display()
            )));
        };
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::CannotOwn(format!(
                "flagd file {} is not valid JSON: {e}",
                self.shown_path.display()
            ))
        })?;
        Ok((version, doc))
    }

    fn flag<'d>(&self, doc: &'d Value) -> Result<&'d Map<String, Value>, ProviderError> {
        let flags = doc.get("flags").and_then(Value::as_object).ok_or_else(|| {
            ProviderError::CannotOwn(format!(
                "flagd file {} has no `flags` object",
                self.shown_path.display()
            ))
        })?;
        flags.get(&self.key).and_then(Value::as_object).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "flag `{}` is not in {}: add it with variants {{\"on\": true, \"off\": false}} and \"state\": \"DISABLED\"",
                self.key,
                self.shown_path.display()
            ))
        })
    }

    fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "flag `{}` in {} {why}; flagramp only changes a flag whose targeting is empty or a fractional split of `on` then `off`, so it changed nothing",
            self.key,
            self.shown_path.display()
        ))
    }

    /// An enabled flag that serves `on` to nobody is off in every way that matters, so a
    /// flag created enabled-but-off can be started rather than reported as drift.
    fn value(enabled: bool, percent: Percent) -> FlagValue {
        if enabled && percent > Percent::ZERO {
            FlagValue::on(percent)
        } else {
            FlagValue::OFF
        }
    }

    fn understand(&self, flag: &Map<String, Value>) -> Result<Owned, ProviderError> {
        let variants = flag.get("variants").and_then(Value::as_object);
        if !variants.is_some_and(|v| v.contains_key("on") && v.contains_key("off")) {
            return Err(self.cannot_own("has no `on` and `off` variants"));
        }
        let enabled = match flag.get("state").and_then(Value::as_str) {
            Some("ENABLED") => true,
            Some("DISABLED") => false,
            _ => return Err(self.cannot_own("has a `state` other than ENABLED or DISABLED")),
        };
        let targeting = flag
            .get("targeting")
            .filter(|t| !t.is_null() && t.as_object().is_none_or(|o| !o.is_empty()));
        let Some(targeting) = targeting else {
            // No rule: everyone gets the default variant.
            let percent = match flag.get("defaultVariant").and_then(Value::as_str) {
                Some("on") => Percent::FULL,
                _ => Percent::ZERO,
            };
            return Ok(Owned {
                value: Self::value(enabled, percent),
                bucket_by: None,
            });
        };
        let rule = targeting
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("fractional"))
            .and_then(Value::as_array)
            .ok_or_else(|| self.cannot_own("has targeting other than a single `fractional` rule"))?;
        let (bucket_by, buckets) = match rule.first() {
            Some(first) if !first.is_array() => (Some(first.clone()), &rule[1..]),
            _ => (None, &rule[..]),
        };
        let weight = |bucket: &Value, name: &str| -> Option<u64> {
            let pair = bucket.as_array()?;
            (pair.len() == 2 && pair[0].as_str() == Some(name)).then(|| pair[1].as_u64())?
        };
        let (on, off) = match buckets {
            [on, off] => (weight(on, "on"), weight(off, "off")),
            _ => (None, None),
        };
        let (Some(on), Some(off)) = (on, off) else {
            return Err(self.cannot_own("has a fractional rule that is not [\"on\", weight], [\"off\", weight]"));
        };
        if on + off == 0 {
            return Err(self.cannot_own("has a fractional rule whose weights add up to 0"));
        }
        let millis = ((u128::from(on) * 100_000 + u128::from(on + off) / 2) / u128::from(on + off)) as u32;
        let percent = Percent::from_millis(millis).expect("a share of the total is at most 100%");
        Ok(Owned {
            value: Self::value(enabled, percent),
            bucket_by,
        })
    }
}

#[async_trait::async_trait]
impl FlagProvider for FlagdFile {
    fn describe(&self) -> String {
        format!("flagd file {}", self.shown_path.display())
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let (version, doc) = self.load().await?;
        let owned = self.understand(self.flag(&doc)?)?;
        Ok(FlagReading {
            value: owned.value,
            version,
        })
    }

    async fn set(&self, to: FlagValue, seen: &FlagReading) -> Result<FlagReading, ProviderError> {
        self.set_noted(to, seen, &ChangeNote::default()).await
    }

    async fn set_noted(
        &self,
        to: FlagValue,
        seen: &FlagReading,
        note: &ChangeNote,
    ) -> Result<FlagReading, ProviderError> {
        let (version, mut doc) = self.load().await?;
        if version != seen.version {
            return Err(ProviderError::Conflict(format!(
                "{} changed since it was read: another process wrote it; nothing was written",
                self.shown_path.display()
            )));
        }
        let owned = self.understand(self.flag(&doc)?)?;
        let flag = doc
            .get_mut("flags")
            .and_then(|f| f.get_mut(&self.key))
            .and_then(Value::as_object_mut)
            .expect("checked by understand");
        if to.enabled {
            let on = to.percent.millis();
            let mut rule = Vec::new();
            rule.extend(owned.bucket_by);
            rule.push(json!(["on", on]));
            rule.push(json!(["off", Percent::FULL.millis() - on]));
            flag.insert("state".into(), json!("ENABLED"));
            flag.insert("targeting".into(), json!({ "fractional": rule }));
        } else {
            flag.insert("state".into(), json!("DISABLED"));
        }
        let mut out = serde_json::to_vec_pretty(&doc).map_err(|e| ProviderError::Io(e.to_string()))?;
        out.push(b'\n');
        self.store.store_noted(&out, &version, &self.key, note).await?;
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
