//! A flagd flag-definition file in the repository (the built-in default provider).
//!
//! flagramp owns one flag's `state` and a `fractional` targeting rule with the `on` variant
//! first and weights in thousandths of a percent, so a raise adds users without reshuffling
//! anyone already on. Every other flag and field is kept as it was.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{reading_of, ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::fsutil::{fingerprint, read_capped, DirLock, WriteError, MIB};
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

/// Flag files are small; anything larger is not one (and would be slow to parse on every run).
const FLAG_FILE_READ_CAP: u64 = 8 * MIB;

/// A file in the local checkout.
#[derive(Debug, Clone)]
pub struct LocalFile {
    root: PathBuf,
    path: PathBuf,
    shown_path: PathBuf,
}

impl LocalFile {
    /// The file at `path` relative to the repository `root` (absolute paths are taken as they
    /// are), named `path` in messages.
    pub fn new(root: &Path, path: &Path) -> LocalFile {
        LocalFile {
            root: root.to_path_buf(),
            path: root.join(path),
            shown_path: path.to_path_buf(),
        }
    }

    /// The file's real path, through any links, as long as it stays inside the repository;
    /// `None` when it does not exist.
    fn resolve(&self) -> Result<Option<PathBuf>, ProviderError> {
        let io =
            |e: std::io::Error| ProviderError::Io(format!("cannot read flagd file {}: {e}", self.shown_path.display()));
        let real = match std::fs::canonicalize(&self.path) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let root = std::fs::canonicalize(&self.root).map_err(io)?;
        if !real.starts_with(&root) {
            return Err(ProviderError::CannotOwn(format!(
                "flagd file {} leads to {}, outside the repository {}: flagramp never reads or writes through a link out of the repository; point `flag.flagd.path` at a file inside it",
                self.shown_path.display(),
                real.display(),
                root.display()
            )));
        }
        Ok(Some(real))
    }

    fn read_at(&self, real: &Path) -> Result<Option<Vec<u8>>, ProviderError> {
        read_capped(real, FLAG_FILE_READ_CAP)
            .map_err(|e| ProviderError::Io(format!("flagd file {} {e}", self.shown_path.display())))
    }

    fn conflict(&self) -> ProviderError {
        ProviderError::Conflict(format!(
            "{} changed since it was read: another process wrote it; nothing was written",
            self.shown_path.display()
        ))
    }
}

#[async_trait::async_trait]
impl FlagFileStore for LocalFile {
    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError> {
        let Some(real) = self.resolve()? else { return Ok(None) };
        Ok(self.read_at(&real)?.map(|bytes| {
            let version = fingerprint(&bytes);
            (bytes, version)
        }))
    }

    async fn store(&self, bytes: &[u8], version: &str) -> Result<(), ProviderError> {
        let not_written = |e: WriteError| match e {
            WriteError::ReadOnly => {
                ProviderError::NotWritten(format!("{} {e}; nothing was written", self.shown_path.display()))
            }
            e => ProviderError::NotWritten(format!(
                "cannot write {}: {e}; nothing was written",
                self.shown_path.display()
            )),
        };
        let Some(real) = self.resolve()? else {
            return Err(self.conflict());
        };
        // Read, check and write under the directory lock: a second writer waits, then sees this
        // write's version and gets a conflict instead of overwriting it.
        let lock = DirLock::for_file(&real).map_err(not_written)?;
        let current = self.read_at(&real)?.map(|b| fingerprint(&b));
        if current.as_deref() != Some(version) {
            return Err(self.conflict());
        }
        lock.replace(&real, bytes).map_err(not_written)?;
        crate::crashpoint::pause_at("after-flag-write");
        Ok(())
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
        // Refusals happen before anything is written, so a claim made for them can be withdrawn.
        GitHubError::Refused(m) => ProviderError::Refused(format!("{m}. {hint}")),
        GitHubError::Forbidden(m) => ProviderError::Auth(format!(
            "{m}: the token cannot write contents (needs `permissions: contents: write`)"
        )),
        GitHubError::NotFound(m) => ProviderError::NotFound(m),
        GitHubError::RateLimited(m) | GitHubError::Other(m) => ProviderError::Io(m),
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

/// The largest fractional weight flagramp reads. It writes thousandths of a percent (at most
/// 100000); far larger weights are a mistake, not a share.
const MAX_WEIGHT: u64 = u32::MAX as u64;

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

    fn understand(&self, flag: &Map<String, Value>) -> Result<FlagValue, ProviderError> {
        let variants = flag.get("variants").and_then(Value::as_object);
        if !variants.is_some_and(|v| v.contains_key("on") && v.contains_key("off")) {
            return Err(self.cannot_own("has no `on` and `off` variants"));
        }
        let enabled = match flag.get("state").and_then(Value::as_str) {
            Some("ENABLED") => true,
            Some("DISABLED") => false,
            _ => return Err(self.cannot_own("has a `state` other than ENABLED or DISABLED")),
        };
        let Some(targeting) = flag.get("targeting").filter(|t| is_a_rule(t)) else {
            // No rule: everyone gets the default variant.
            let percent = match flag.get("defaultVariant").and_then(Value::as_str) {
                Some("on") => Percent::FULL,
                _ => Percent::ZERO,
            };
            return Ok(reading_of(enabled, percent));
        };
        let rule = targeting
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("fractional"))
            .and_then(Value::as_array)
            .ok_or_else(|| self.cannot_own("has targeting other than a single `fractional` rule"))?;
        let buckets = match rule.first() {
            Some(first) if !first.is_array() => &rule[1..],
            _ => &rule[..],
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
        if on > MAX_WEIGHT || off > MAX_WEIGHT {
            return Err(self.cannot_own(&format!(
                "has a fractional weight above {MAX_WEIGHT} (flagramp writes weights in thousandths of a percent, 0 to 100000)"
            )));
        }
        let percent = Percent::share(on, on + off)
            .ok_or_else(|| self.cannot_own("has a fractional rule whose weights add up to 0"))?;
        Ok(reading_of(enabled, percent))
    }

    /// The file's `text` with only this flag's `state` and fractional weights changed (its
    /// `targeting` added or replaced when it has no rule yet): every other byte stays as it was,
    /// so numbers, escapes and formatting that a JSON round trip would change survive.
    fn rewrite(&self, text: &str, doc: &Value, to: FlagValue) -> Result<String, ProviderError> {
        let broken = |why: String| {
            ProviderError::CannotOwn(format!(
                "flagramp cannot change flag `{}` in {} without touching the rest of the file ({why}), so it changed nothing",
                self.key,
                self.shown_path.display()
            ))
        };
        let mut edits = owned_flag_edits(text, &self.key, to).map_err(broken)?;
        edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
        let mut out = text.to_string();
        for (span, replacement) in edits {
            out.replace_range(span, &replacement);
        }
        // The splice must have changed this flag and nothing else.
        let written: Value = serde_json::from_str(&out).map_err(|e| broken(format!("the result is not JSON: {e}")))?;
        let without_flag = |d: &Value| {
            let mut d = d.clone();
            if let Some(flags) = d.get_mut("flags").and_then(Value::as_object_mut) {
                flags.shift_remove(&self.key);
            }
            d
        };
        if without_flag(&written) != without_flag(doc) {
            return Err(broken("the result changes other flags".into()));
        }
        if self.understand(self.flag(&written)?)? != to {
            return Err(broken(format!("the result does not read as {}", to.describe())));
        }
        Ok(out)
    }
}

/// Whether a flag's `targeting` holds a rule: absent, `null` and `{}` mean none.
fn is_a_rule(targeting: &Value) -> bool {
    !targeting.is_null() && targeting.as_object().is_none_or(|o| !o.is_empty())
}

/// An object's members as raw text borrowed from the file; the last of duplicate keys wins, as
/// when the file is parsed into a document.
fn members(text: &str) -> Result<HashMap<String, &RawValue>, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

fn member<'t>(members: &HashMap<String, &'t RawValue>, key: &str) -> Result<&'t RawValue, String> {
    members.get(key).copied().ok_or_else(|| format!("no `{key}`"))
}

/// Where `part`, a slice borrowed from `whole`, lies in it.
fn span(whole: &str, part: &RawValue) -> Result<Range<usize>, String> {
    let part = part.get();
    (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .map(|start| start..start + part.len())
        .filter(|s| s.end <= whole.len())
        .ok_or_else(|| "a value outside the file".into())
}

/// The replacements in `text` that set the flag `key` to `to`.
fn owned_flag_edits(text: &str, key: &str, to: FlagValue) -> Result<Vec<(Range<usize>, String)>, String> {
    let flags = member(&members(text)?, "flags")?;
    let flag_raw = member(&members(flags.get())?, key)?;
    let flag = members(flag_raw.get())?;
    let mut edits = Vec::new();

    let state = member(&flag, "state")?;
    let wanted = if to.enabled { "ENABLED" } else { "DISABLED" };
    if serde_json::from_str::<String>(state.get()).ok().as_deref() != Some(wanted) {
        edits.push((span(text, state)?, format!("\"{wanted}\"")));
    }
    if !to.enabled {
        // Turning off keeps the rule, so turning on again serves the same users.
        return Ok(edits);
    }
    let on = to.percent.millis();
    let weights = [on, Percent::FULL.millis() - on];
    let targeting = flag.get("targeting").copied();
    let has_rule = targeting
        .map(|t| serde_json::from_str::<Value>(t.get()).is_ok_and(|v| is_a_rule(&v)))
        .unwrap_or(false);
    match targeting {
        Some(targeting) if has_rule => {
            // `[bucketing input?, ["on", w], ["off", w]]`: only the two weights change.
            let rule = member(&members(targeting.get())?, "fractional")?;
            let buckets: Vec<&RawValue> = serde_json::from_str(rule.get()).map_err(|e| e.to_string())?;
            let last_two = buckets
                .len()
                .checked_sub(2)
                .map(|i| &buckets[i..])
                .ok_or("a short rule")?;
            for (bucket, weight) in last_two.iter().zip(weights) {
                let pair: Vec<&RawValue> = serde_json::from_str(bucket.get()).map_err(|e| e.to_string())?;
                let old = pair.get(1).ok_or("a bucket without a weight")?;
                edits.push((span(text, old)?, weight.to_string()));
            }
        }
        _ => {
            let style = MemberStyle::of(text, flag_raw, &flag)?;
            let rule = style.rule(weights);
            match targeting {
                Some(empty) => edits.push((span(text, empty)?, rule)),
                None => {
                    let end = flag
                        .values()
                        .map(|v| span(text, v).map(|s| s.end))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .max()
                        .ok_or("an empty flag object")?;
                    edits.push((end..end, format!(",{}\"targeting\"{}{rule}", style.lead, style.colon)));
                }
            }
        }
    }
    Ok(edits)
}

/// How an object's members are laid out, so a new member looks like its neighbours.
struct MemberStyle<'t> {
    /// What comes between `{` (or `,`) and a key: a newline and indentation, or nothing.
    lead: &'t str,
    /// What comes between a key and its value: `:`, `: `, ` : `.
    colon: &'t str,
}

impl<'t> MemberStyle<'t> {
    fn of(text: &'t str, object: &RawValue, members: &HashMap<String, &RawValue>) -> Result<MemberStyle<'t>, String> {
        let object = span(text, object)?;
        let inner = &text[object.start + 1..object.end];
        let lead = &inner[..inner.len() - inner.trim_start().len()];
        let key_start = object.start + 1 + lead.len();
        let first_value = members
            .values()
            .map(|v| span(text, v).map(|s| s.start))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min()
            .ok_or("an empty flag object")?;
        let key_and_colon = text.get(key_start..first_value).ok_or("a member out of order")?;
        let colon_at = key_and_colon.rfind(':').ok_or("a member without `:`")?;
        let colon_start = key_and_colon[..colon_at].trim_end().len();
        Ok(MemberStyle {
            lead,
            colon: &key_and_colon[colon_start..],
        })
    }

    fn rule(&self, [on, off]: [u32; 2]) -> String {
        if self.colon.contains(' ') {
            format!("{{\"fractional\": [[\"on\", {on}], [\"off\", {off}]]}}")
        } else {
            format!("{{\"fractional\":[[\"on\",{on}],[\"off\",{off}]]}}")
        }
    }
}

#[async_trait::async_trait]
impl FlagProvider for FlagdFile {
    fn describe(&self) -> String {
        format!("flagd file {}", self.shown_path.display())
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let (_, version, doc) = self.load().await?;
        Ok(FlagReading {
            value: self.understand(self.flag(&doc)?)?,
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
        let (text, version, doc) = self.load().await?;
        if version != seen.version {
            return Err(ProviderError::Conflict(format!(
                "{} changed since it was read: another process wrote it; nothing was written",
                self.shown_path.display()
            )));
        }
        self.understand(self.flag(&doc)?)?;
        let out = self.rewrite(&text, &doc, to)?;
        self.store
            .store_noted(out.as_bytes(), &version, &self.key, note)
            .await?;
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
