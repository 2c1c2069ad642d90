//! Where a flagd file's bytes live: a file in the local checkout (written atomically under a
//! directory lock) or a file on a GitHub branch (written as a commit). Each load returns a
//! version, and a store replaces the bytes only if they are still at that version. Nothing here
//! parses the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsutil::{fingerprint, read_capped, DirLock, WriteError, MIB};
use crate::github::{GitHub, GitHubError};
use crate::provider::{ChangeNote, ProviderError};

/// Where a flag file's bytes live, with a version for compare-and-swap writes.
#[async_trait::async_trait]
pub trait FlagFileStore: std::fmt::Debug + Send + Sync {
    /// The bytes and their version, or `None` when the file does not exist.
    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError>;
    /// Replaces the file if it is still at `version`, for a change to flag `key` described by
    /// `note` (a store that keeps history, a branch, puts both in the commit message; a local
    /// file ignores them).
    async fn store(&self, bytes: &[u8], version: &str, key: &str, note: &ChangeNote) -> Result<(), ProviderError>;
    /// Which file this is, the same for every store of the same file: changes of one run to
    /// flags of the same file are written together.
    fn location(&self) -> String;
    /// Which file this is as given, before any resolving: two stores with the same given
    /// location have the same [`FlagFileStore::location`] (within a round of decisions).
    fn given_location(&self) -> String {
        self.location()
    }
    /// The file in the local checkout, when it is one: a run writes the local files of one
    /// directory together ([`LocalFile::store_all`]).
    fn as_local(&self) -> Option<&LocalFile> {
        None
    }
    /// The file on a GitHub branch, when it is one: a run writes the files of one branch in one
    /// commit ([`RepoFileOnBranch::store_all`]).
    fn as_branch_file(&self) -> Option<&RepoFileOnBranch> {
        None
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
    fn location(&self) -> String {
        // Two paths to one file (a link inside the repository) are one file.
        let real = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        format!("local {}", real.display())
    }

    fn given_location(&self) -> String {
        format!("local {}", self.path.display())
    }

    async fn load(&self) -> Result<Option<(Vec<u8>, String)>, ProviderError> {
        let Some(real) = self.resolve()? else { return Ok(None) };
        Ok(self.read_at(&real)?.map(|bytes| {
            let version = fingerprint(&bytes);
            (bytes, version)
        }))
    }

    async fn store(&self, bytes: &[u8], version: &str, _key: &str, _note: &ChangeNote) -> Result<(), ProviderError> {
        LocalFile::store_all(&[(self, bytes, version)])
            .pop()
            .unwrap_or_else(|| Err(ProviderError::Io("internal: a file write without a result".into())))
    }

    fn as_local(&self) -> Option<&LocalFile> {
        Some(self)
    }
}

impl LocalFile {
    fn not_written(&self, e: WriteError) -> ProviderError {
        match e {
            WriteError::ReadOnly => {
                ProviderError::NotWritten(format!("{} {e}; nothing was written", self.shown_path.display()))
            }
            e => ProviderError::NotWritten(format!(
                "cannot write {}: {e}; nothing was written",
                self.shown_path.display()
            )),
        }
    }

    /// Replaces each file with its bytes if it is still at its version. The files of one
    /// directory are read, checked and written under the directory's lock, in one pass
    /// ([`DirLock::replace_all`]): a second writer waits, then sees these versions and gets a
    /// conflict instead of overwriting them. One result per file, in order.
    pub fn store_all(files: &[(&LocalFile, &[u8], &str)]) -> Vec<Result<(), ProviderError>> {
        let mut results: Vec<Option<Result<(), ProviderError>>> = vec![None; files.len()];
        let mut by_dir: std::collections::BTreeMap<PathBuf, Vec<(usize, PathBuf)>> = Default::default();
        for (k, (file, _, _)) in files.iter().enumerate() {
            match file.resolve() {
                Ok(Some(real)) => {
                    let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
                    by_dir.entry(dir).or_default().push((k, real));
                }
                Ok(None) => results[k] = Some(Err(file.conflict())),
                Err(e) => results[k] = Some(Err(e)),
            }
        }
        for in_dir in by_dir.values() {
            let Some((_, some_file)) = in_dir.first() else { continue };
            let lock = match DirLock::for_file(some_file) {
                Ok(lock) => lock,
                Err(e) => {
                    let why = e.to_string();
                    for &(k, _) in in_dir {
                        results[k] = Some(Err(files[k]
                            .0
                            .not_written(WriteError::Io(std::io::Error::other(why.clone())))));
                    }
                    continue;
                }
            };
            let (mut replacing, mut batch) = (Vec::new(), Vec::new());
            for (k, real) in in_dir {
                let (file, bytes, version) = files[*k];
                match file.read_at(real) {
                    Ok(current) if current.as_deref().map(fingerprint).as_deref() == Some(version) => {
                        replacing.push(*k);
                        batch.push((real.clone(), bytes.to_vec()));
                    }
                    Ok(_) => results[*k] = Some(Err(file.conflict())),
                    Err(e) => results[*k] = Some(Err(e)),
                }
            }
            for (k, outcome) in replacing.into_iter().zip(lock.replace_all(&batch)) {
                results[k] = Some(outcome.map_err(|e| files[k].0.not_written(e)));
            }
        }
        if results.iter().any(|r| matches!(r, Some(Ok(())))) {
            crate::crashpoint::pause_at("after-flag-write");
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ProviderError::Io("internal: a file write without a result".into()))))
            .collect()
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
        GitHubError::RateLimited(m) | GitHubError::Invalid(m) | GitHubError::Other(m) => ProviderError::Io(m),
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

    fn location(&self) -> String {
        format!("branch {} {}", self.branch, self.path)
    }

    async fn store(&self, bytes: &[u8], version: &str, key: &str, note: &ChangeNote) -> Result<(), ProviderError> {
        let subject = format!("flagramp: update {key} in {}", self.path);
        let message = crate::github::commit_message(&subject, &[("Actor", &note.actor), ("Reason", &note.reason)]);
        self.write(bytes, version, &message).await
    }

    fn as_branch_file(&self) -> Option<&RepoFileOnBranch> {
        Some(self)
    }
}

/// What a refused branch write tells the person.
const BRANCH_RULE_HINT: &str = "Branch protection or a rule refused the write: let the token bypass it, or keep the flag file on a branch flagramp may write (`flag.flagd.branch`)";

/// One file of [`RepoFileOnBranch::store_all`].
#[derive(Debug, Clone, Copy)]
pub struct BranchFileWrite<'a> {
    /// The file.
    pub file: &'a RepoFileOnBranch,
    /// Its new bytes (a flag file: text).
    pub bytes: &'a [u8],
    /// The blob sha it was read at.
    pub version: &'a str,
    /// The flags it changes, for the commit message.
    pub keys: &'a str,
    /// Who changes them and why.
    pub note: &'a ChangeNote,
}

impl RepoFileOnBranch {
    /// The branch this file is on: files of the same branch are written in one commit.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// Writes several files of one branch (every file of `writes` is on the same branch of the
    /// same repository) in one commit with the git data API: each file is checked against the
    /// blob sha it was read at, and the ones still there are committed on the head that was
    /// read, which moves only as a fast-forward, so a run's flag files cost one commit, not one
    /// per file (docs/state-branch.md). A file changed since it was read, or a head another
    /// writer moved meanwhile, is a conflict: the caller reads again and applies again. One
    /// result per file, in order.
    pub async fn store_all(writes: &[BranchFileWrite<'_>]) -> Vec<Result<(), ProviderError>> {
        let Some(first) = writes.first() else {
            return Vec::new();
        };
        let (github, branch) = (&first.file.github, first.file.branch.as_str());
        let mut results: Vec<Option<Result<(), ProviderError>>> = vec![None; writes.len()];
        let conflict = |path: &str| {
            ProviderError::Conflict(format!(
                "{path} on branch {branch} changed since it was read: another run changed the flag file first"
            ))
        };
        // The head and each directory's files, all read at that one head.
        let mut head: Option<(String, String)> = None;
        let mut dirs = std::collections::BTreeMap::new();
        for write in writes {
            let dir = match write.file.path.rsplit_once('/') {
                Some((dir, _)) => dir.to_string(),
                None => String::new(),
            };
            if dirs.contains_key(&dir) {
                continue;
            }
            let listed = match github.branch_dir(branch, &dir).await {
                Ok(Some(listed)) => listed,
                Ok(None) => {
                    let gone = ProviderError::NotFound(format!("branch {branch} does not exist"));
                    return writes.iter().map(|_| Err(gone.clone())).collect();
                }
                Err(e) => {
                    let e = provider_error(e, "");
                    return writes.iter().map(|_| Err(e.clone())).collect();
                }
            };
            match &head {
                Some((sha, _)) if *sha != listed.head => {
                    // The branch moved between two reads: read everything again.
                    return writes.iter().map(|w| Err(conflict(&w.file.path))).collect();
                }
                Some(_) => {}
                None => head = Some((listed.head.clone(), listed.tree.clone())),
            }
            let blobs: std::collections::BTreeMap<String, String> = if dir.is_empty() {
                Default::default()
            } else {
                listed
                    .entries
                    .into_iter()
                    .filter(|e| e.kind == "blob")
                    .map(|e| (e.name, e.oid))
                    .collect()
            };
            dirs.insert(dir, blobs);
        }
        let Some((head, tree)) = head else {
            return Vec::new();
        };
        let mut items = Vec::new();
        let mut committing = Vec::new();
        for (k, write) in writes.iter().enumerate() {
            let (dir, name) = write
                .file
                .path
                .rsplit_once('/')
                .unwrap_or(("", write.file.path.as_str()));
            let at_head = dirs.get(dir).and_then(|blobs| blobs.get(name));
            let Ok(text) = String::from_utf8(write.bytes.to_vec()) else {
                results[k] = Some(Err(ProviderError::NotWritten(format!(
                    "{} is not text; nothing was written",
                    write.file.path
                ))));
                continue;
            };
            // A file at the root is not listed by directory: it is checked by its own write.
            if dir.is_empty() || at_head.map(String::as_str) != Some(write.version) {
                results[k] = Some(Err(conflict(&write.file.path)));
                continue;
            }
            items.push(crate::github::TreeItem::File {
                path: write.file.path.clone(),
                content: text,
            });
            committing.push(k);
        }
        if committing.is_empty() {
            return finish(results);
        }
        let paths: Vec<&str> = committing.iter().map(|&k| writes[k].file.path.as_str()).collect();
        let keys: Vec<&str> = committing.iter().map(|&k| writes[k].keys).collect();
        let reasons: Vec<&str> = committing.iter().map(|&k| writes[k].note.reason.as_str()).collect();
        let subject = format!("flagramp: update {} in {}", keys.join(", "), paths.join(", "));
        let message = crate::github::commit_message(
            &subject,
            &[("Actor", &first.note.actor), ("Reason", &reasons.join("; "))],
        );
        let made = async {
            let tree = github.create_tree(Some(&tree), &items).await?;
            let commit = github
                .create_commit(&message, &tree, std::slice::from_ref(&head))
                .await?;
            Ok::<_, GitHubError>((commit.clone(), github.fast_forward(branch, &commit).await))
        }
        .await;
        let outcome = match made {
            Ok((_, Ok(()))) => Ok(()),
            Ok((commit, Err(refused @ (GitHubError::Invalid(_) | GitHubError::Conflict(_))))) => {
                // Refused: the head says why. Another writer's commit → read again and apply
                // again; the head unchanged → a branch rule; at our commit → it landed.
                let dir = paths[0].rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                match github.branch_dir(branch, dir).await {
                    Ok(Some(now)) if now.head == commit => Ok(()),
                    Ok(Some(now)) if now.head == head => Err(provider_error(
                        match refused {
                            GitHubError::Invalid(m) | GitHubError::Conflict(m) => GitHubError::Refused(format!(
                                "{m} (the branch is unchanged, so a branch rule or protection refused the update)"
                            )),
                            other => other,
                        },
                        BRANCH_RULE_HINT,
                    )),
                    Ok(Some(_)) => Err(ProviderError::Conflict(format!(
                        "branch {branch} moved while its flag files were written: another run committed first"
                    ))),
                    Ok(None) | Err(_) => Err(provider_error(refused, BRANCH_RULE_HINT)),
                }
            }
            Ok((_, Err(e))) | Err(e) => Err(provider_error(e, BRANCH_RULE_HINT)),
        };
        for &k in &committing {
            results[k] = Some(outcome.clone());
        }
        finish(results)
    }
}

fn finish(results: Vec<Option<Result<(), ProviderError>>>) -> Vec<Result<(), ProviderError>> {
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ProviderError::Io("internal: a file write without a result".into()))))
        .collect()
}

impl RepoFileOnBranch {
    async fn write(&self, bytes: &[u8], version: &str, message: &str) -> Result<(), ProviderError> {
        self.github
            .put_file(&self.branch, &self.path, bytes, Some(version), message)
            .await
            .map(|_| ())
            .map_err(|e| provider_error(e, BRANCH_RULE_HINT))
    }
}
