//! State as JSON files on a dedicated branch, `rollouts/<name>.json`, written with the git data
//! API: each batch of documents is one commit (a tree built from the changed files, a commit on
//! the head that was read, and a fast-forward-only ref update as the compare-and-swap), and a
//! run reads every document with one query for the tree and a few for the blobs. A document's
//! version is its blob sha, as the contents API calls it, so versions read by earlier releases
//! stay valid (docs/state-branch.md).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{RolloutState, StateError, StateStore, StateVersion, StateWrite, StoredState};
use crate::github::{blob_sha, commit_message, BranchDir, GitHub, GitHubError, TreeItem};

/// Where state files live on the branch.
const STATE_DIR: &str = "rollouts";

/// The file at the root of a state branch that says what the branch is.
const MARKER: &str = "README.md";

/// The marker's text (docs/state-branch.md, "Layout").
const MARKER_TEXT: &str = "# flagramp state\n\n\
This branch holds the state of flagramp's rollouts: one JSON document per rollout,\n\
`rollouts/<rollout>.json` (state format 1), written by flagramp, one commit per phase of a run.\n\
Nothing else belongs here; do not merge this branch into another one. The format and the\n\
layout are described in flagramp's docs/state-branch.md.\n";

/// Commits tried per batch: the first, and one more each time another run's commit moved the
/// branch in between (docs/state-branch.md, "Overlapping runs"). Trying again decides nothing
/// again, so it is cheap and safe; 8 chunk jobs of a fan-out, each committing twice, can make a
/// batch lose several times in a row (BENCHMARKS.md, "GitHub economy").
const ATTEMPTS: usize = 16;

/// State documents on one branch of the repository.
#[derive(Debug, Clone)]
pub struct GitHubStateStore {
    github: Arc<GitHub>,
    branch: String,
    /// Whether a missing branch is created by the first write.
    create: bool,
    snapshot: Arc<Mutex<Snapshot>>,
    /// One batch at a time: this run's own commits never race each other.
    writing: Arc<tokio::sync::Mutex<()>>,
}

/// What the store last saw of the branch, and the documents it read.
#[derive(Debug, Default)]
struct Snapshot {
    /// The head last read or written.
    base: Option<Base>,
    /// Whether loads answer from `base` (set by [`StateStore::prefetch`]).
    prefetched: bool,
    /// Why the last prefetch failed: the loads it was for report it rather than each wait out
    /// the same unreachable GitHub again.
    failed: Option<String>,
    /// Documents read or written, by blob sha: a sha names its bytes, so these never go stale.
    blobs: HashMap<String, Vec<u8>>,
}

/// One head of the branch, as far as state goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Base {
    /// The head commit; `None` when the branch does not exist.
    head: Option<String>,
    /// Its root tree.
    tree: Option<String>,
    layout: Layout,
    /// The `rollouts` tree, if there is one.
    dir: Option<String>,
    /// The state files: rollout name → blob sha and size.
    files: BTreeMap<String, (String, u64)>,
}

/// What a state branch holds besides state (docs/state-branch.md, "Layout").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// No branch yet.
    Missing,
    /// `rollouts/` and the marker only.
    StateOnly,
    /// A copy of the default branch with `rollouts/` in it, as the previous release created
    /// it: moved to the state-only layout by the next write.
    RepositoryCopy,
}

impl Base {
    fn missing() -> Base {
        Base {
            head: None,
            tree: None,
            layout: Layout::Missing,
            dir: None,
            files: BTreeMap::new(),
        }
    }

    fn from_listing(listing: BranchDir) -> Base {
        let state_only = listing
            .root
            .iter()
            .all(|(name, kind)| (name == STATE_DIR && kind == "tree") || (name == MARKER && kind == "blob"));
        let files = listing
            .entries
            .into_iter()
            .filter(|e| e.kind == "blob")
            .filter_map(|e| {
                let name = e.name.strip_suffix(".json")?.to_string();
                Some((name, (e.oid, e.size)))
            })
            .collect();
        Base {
            head: Some(listing.head),
            tree: Some(listing.tree),
            layout: if state_only {
                Layout::StateOnly
            } else {
                Layout::RepositoryCopy
            },
            dir: listing.dir,
            files,
        }
    }

    fn has_marker(&self) -> bool {
        self.layout == Layout::StateOnly
    }

    fn version_of(&self, rollout: &str) -> Option<&str> {
        self.files.get(rollout).map(|(oid, _)| oid.as_str())
    }
}

/// One document of a batch on its way to a commit.
struct Pending {
    /// Its place in the batch.
    index: usize,
    rollout: String,
    text: String,
    /// Its blob sha once written.
    sha: String,
    expected: Option<String>,
    /// What the commit message says about it.
    what: String,
}

impl GitHubStateStore {
    /// The store on `branch`. With `create`, a missing branch is created by the first write (a
    /// commit with no parent: the branch holds state only); read-only runs, such as plans on pull
    /// requests, pass `false`. Opening reads nothing.
    pub async fn open(github: Arc<GitHub>, branch: &str, create: bool) -> Result<GitHubStateStore, StateError> {
        Ok(GitHubStateStore {
            github,
            branch: branch.to_string(),
            create,
            snapshot: Arc::default(),
            writing: Arc::default(),
        })
    }

    fn path_of(rollout: &str) -> String {
        format!("{STATE_DIR}/{rollout}.json")
    }

    fn snapshot(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the head and the state files' names and shas (one query), and keeps it.
    async fn read_base(&self) -> Result<Base, StateError> {
        let base = match self.github.branch_dir(&self.branch, STATE_DIR).await.map_err(io)? {
            Some(listing) => Base::from_listing(listing),
            None => Base::missing(),
        };
        self.snapshot().base = Some(base.clone());
        Ok(base)
    }

    /// The bytes of the blob `sha` of `rollout`'s file at commit `head`: kept, or asked of
    /// GraphQL, or, when GitHub does not give it whole as text there, of the contents API at
    /// that commit.
    async fn blob(&self, rollout: &str, sha: &str, size: u64, head: &str) -> Result<Vec<u8>, StateError> {
        if let Some(bytes) = self.snapshot().blobs.get(sha) {
            return Ok(bytes.clone());
        }
        let text = self
            .github
            .blob_texts(&[(sha.to_string(), size)])
            .await
            .map_err(io)?
            .pop()
            .flatten();
        let bytes = match text {
            Some(bytes) => bytes,
            None => {
                let path = Self::path_of(rollout);
                let file = self.github.get_file(head, &path).await.map_err(io)?;
                match file {
                    Some(file) if file.sha == sha => file.content,
                    _ => {
                        return Err(StateError::Io(format!(
                            "{path} on branch {} could not be read at commit {head}",
                            self.branch
                        )))
                    }
                }
            }
        };
        self.snapshot().blobs.insert(sha.to_string(), bytes.clone());
        Ok(bytes)
    }

    fn decode(&self, rollout: &str, bytes: &[u8], sha: String) -> Result<StoredState, StateError> {
        let location = format!("{} on branch {}", Self::path_of(rollout), self.branch);
        let state = super::decode(bytes, rollout, location, "fix or delete the file on the state branch")?;
        Ok(StoredState {
            state,
            version: StateVersion(sha),
        })
    }

    /// The tree of a commit of `pending` on `base`: on a state-only branch, `base`'s tree with
    /// the files replaced; otherwise (a copy of the repository, or no branch yet) a tree of
    /// `rollouts/` (as it was, then the files) and the marker only, which moves a branch of the
    /// previous release to the state-only layout while its history stays behind the commit.
    async fn tree_for(&self, base: &Base, pending: &[Pending]) -> Result<String, GitHubError> {
        let mut items: Vec<TreeItem> = Vec::with_capacity(pending.len() + 2);
        let base_tree = match base.layout {
            Layout::StateOnly => base.tree.as_deref(),
            Layout::RepositoryCopy | Layout::Missing => {
                // The API description: a tree given with paths inside it is that tree with
                // those paths replaced.
                if let Some(dir) = &base.dir {
                    items.push(TreeItem::Tree {
                        path: STATE_DIR.into(),
                        sha: dir.clone(),
                    });
                }
                None
            }
        };
        if !base.has_marker() {
            items.push(TreeItem::File {
                path: MARKER.into(),
                content: MARKER_TEXT.into(),
            });
        }
        for p in pending {
            items.push(TreeItem::File {
                path: Self::path_of(&p.rollout),
                content: p.text.clone(),
            });
        }
        self.github.create_tree(base_tree, &items).await
    }

    fn message(&self, base: &Base, pending: &[Pending]) -> String {
        let subject = match pending {
            [one] => format!("flagramp: {} {}", one.rollout, one.what),
            many => {
                let claims = many.iter().filter(|p| p.what.starts_with("claim")).count();
                let kind = match claims {
                    0 => "record",
                    n if n == many.len() => "claim",
                    _ => "state of",
                };
                format!("flagramp: {kind} {} rollouts", many.len())
            }
        };
        let names: Vec<&str> = pending.iter().map(|p| p.rollout.as_str()).collect();
        let layout = match base.layout {
            Layout::RepositoryCopy => "state only: rollouts/ and README.md; the repository copy stays in the history",
            _ => "",
        };
        commit_message(&subject, &[("Rollouts", &names.join(", ")), ("Layout", layout)])
    }

    /// Records a landed commit: the new head, and the written documents in the snapshot.
    fn landed(&self, base: &Base, commit: String, tree: String, pending: &[Pending]) {
        let mut snapshot = self.snapshot();
        let mut next = base.clone();
        next.head = Some(commit);
        next.tree = Some(tree);
        next.layout = Layout::StateOnly;
        // The `rollouts` tree changed; its new sha is not needed until a layout move, which
        // only a repository copy or a missing branch makes.
        next.dir = None;
        for p in pending {
            next.files
                .insert(p.rollout.clone(), (p.sha.clone(), p.text.len() as u64));
            snapshot.blobs.insert(p.sha.clone(), p.text.clone().into_bytes());
        }
        snapshot.base = Some(next);
    }

    fn write_error(&self, e: GitHubError) -> StateError {
        match e {
            GitHubError::Refused(m) => StateError::Io(format!(
                "{m}. Branch protection or a rule refused the write: exempt the state branch `{}` from rules, or let the token bypass them",
                self.branch
            )),
            GitHubError::Forbidden(m) => StateError::Io(format!(
                "{m}: the token cannot write the state branch (needs `permissions: contents: write`; forks and Dependabot get read-only tokens)"
            )),
            e => io(e),
        }
    }
}

fn io(e: GitHubError) -> StateError {
    StateError::Io(e.to_string())
}

/// What a document's commit says it is: a claim, or the last decision.
fn describe(state: &RolloutState) -> String {
    match (&state.pending, state.history.last()) {
        (Some(p), _) => format!("claim {}", p.to.describe()),
        (None, Some(last)) => format!("{} {}", last.decision.as_str(), last.to_percent),
        (None, None) => "state".into(),
    }
}

/// A short pause before committing again on a head another run just moved, so runs that
/// collide do not collide again in step.
async fn jitter(attempt: usize) {
    let ms = rand::random_range(20..=80) * attempt.min(8) as u64;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[async_trait::async_trait]
impl StateStore for GitHubStateStore {
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError> {
        let known = {
            let snapshot = self.snapshot();
            if let Some(why) = &snapshot.failed {
                return Err(StateError::Io(why.clone()));
            }
            match (&snapshot.base, snapshot.prefetched) {
                (Some(base), true) => Some(
                    base.files
                        .get(rollout)
                        .map(|(sha, size)| (sha.clone(), *size, base.head.clone().unwrap_or_default())),
                ),
                _ => None,
            }
        };
        match known {
            Some(None) => Ok(None),
            Some(Some((sha, size, head))) => {
                let bytes = self.blob(rollout, &sha, size, &head).await?;
                self.decode(rollout, &bytes, sha).map(Some)
            }
            // Not prefetched: the file alone, as the previous release read it.
            None => {
                let path = Self::path_of(rollout);
                let Some(file) = self.github.get_file(&self.branch, &path).await.map_err(io)? else {
                    return Ok(None);
                };
                self.decode(rollout, &file.content, file.sha).map(Some)
            }
        }
    }

    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError> {
        let write = StateWrite {
            state: state.clone(),
            expected: expected.cloned(),
        };
        self.save_batch(std::slice::from_ref(&write))
            .await
            .pop()
            .unwrap_or_else(|| Err(StateError::Io("internal: a batch of one gave no result".into())))
    }

    async fn save_batch(&self, writes: &[StateWrite]) -> Vec<Result<StateVersion, StateError>> {
        let _one_at_a_time = self.writing.lock().await;
        let mut results: Vec<Option<Result<StateVersion, StateError>>> = writes.iter().map(|_| None).collect();
        let mut pending = Vec::with_capacity(writes.len());
        for (index, write) in writes.iter().enumerate() {
            let encoded = super::encode(&write.state).and_then(|bytes| {
                String::from_utf8(bytes).map_err(|e| StateError::Io(format!("internal: state is not UTF-8: {e}")))
            });
            match encoded {
                Ok(text) => pending.push(Pending {
                    index,
                    rollout: write.state.rollout.clone(),
                    sha: blob_sha(text.as_bytes()),
                    text,
                    expected: write.expected.as_ref().map(|v| v.0.clone()),
                    what: describe(&write.state),
                }),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        let finish = |results: Vec<Option<Result<StateVersion, StateError>>>| {
            results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(StateError::Io("internal: a write got no result".into()))))
                .collect()
        };
        if pending.is_empty() {
            return finish(results);
        }

        // The head to commit on: the one last seen (no request), read again when a document's
        // version is not the one seen there, so a conflict is only ever reported on a fresh read.
        let seen = self.snapshot().base.clone();
        let (mut base, mut fresh) = match seen {
            Some(base) => (base, false),
            None => match self.read_base().await {
                Ok(base) => (base, true),
                Err(e) => {
                    let message = e.to_string();
                    for p in &pending {
                        results[p.index] = Some(Err(StateError::Io(message.clone())));
                    }
                    return finish(results);
                }
            },
        };
        for attempt in 0..ATTEMPTS {
            let stale = pending
                .iter()
                .any(|p| base.version_of(&p.rollout) != p.expected.as_deref());
            if stale && !fresh {
                match self.read_base().await {
                    Ok(now) => base = now,
                    Err(e) => {
                        let message = e.to_string();
                        for p in &pending {
                            results[p.index] = Some(Err(StateError::Io(message.clone())));
                        }
                        return finish(results);
                    }
                }
            }
            // Each document on its own version: one another run changed is a conflict, left out,
            // even when it now holds the very bytes this run writes (two runs' claims can be
            // identical, and only one of them may win); one written unchanged needs no commit.
            pending.retain(|p| match base.version_of(&p.rollout) {
                Some(now) if now == p.sha && p.expected.as_deref() == Some(now) => {
                    results[p.index] = Some(Ok(StateVersion(p.sha.clone())));
                    false
                }
                now if now == p.expected.as_deref() => true,
                _ => {
                    results[p.index] = Some(Err(StateError::Conflict {
                        rollout: p.rollout.clone(),
                    }));
                    false
                }
            });
            if pending.is_empty() {
                break;
            }
            if base.layout == Layout::Missing && !self.create {
                for p in &pending {
                    results[p.index] = Some(Err(StateError::Io(format!(
                        "the state branch {} does not exist, and this run does not create it",
                        self.branch
                    ))));
                }
                return finish(results);
            }

            let made = async {
                let tree = self.tree_for(&base, &pending).await?;
                let parents: Vec<String> = base.head.iter().cloned().collect();
                let commit = self
                    .github
                    .create_commit(&self.message(&base, &pending), &tree, &parents)
                    .await?;
                let moved = match &base.head {
                    Some(_) => self.github.fast_forward(&self.branch, &commit).await,
                    None => self.github.create_branch_at(&self.branch, &commit).await,
                };
                Ok::<_, GitHubError>((tree, commit, moved))
            }
            .await;
            let (tree, commit, moved) = match made {
                Ok(made) => made,
                Err(e) => {
                    let e = self.write_error(e);
                    let message = e.to_string();
                    for p in &pending {
                        results[p.index] = Some(Err(StateError::Io(message.clone())));
                    }
                    return finish(results);
                }
            };
            let refusal = match moved {
                Ok(()) => {
                    if base.layout != Layout::StateOnly {
                        tracing::info!(branch = %self.branch, "the state branch now holds state only");
                    }
                    self.landed(&base, commit, tree, &pending);
                    for p in &pending {
                        results[p.index] = Some(Ok(StateVersion(p.sha.clone())));
                    }
                    pending.clear();
                    break;
                }
                Err(e) => e,
            };
            // Not moved, or not known to have moved: the head says which. Still where it was
            // read → the update itself was refused; at this commit → it landed after all;
            // elsewhere → another run committed first, and this batch goes on its commit.
            let now = match self.read_base().await {
                Ok(now) => now,
                Err(_) => {
                    let message = self.write_error(refusal).to_string();
                    for p in &pending {
                        results[p.index] = Some(Err(StateError::Io(message.clone())));
                    }
                    return finish(results);
                }
            };
            if now.head.as_deref() == Some(commit.as_str()) {
                self.landed(&base, commit, tree, &pending);
                for p in &pending {
                    results[p.index] = Some(Ok(StateVersion(p.sha.clone())));
                }
                pending.clear();
                break;
            }
            if now.head == base.head {
                let refusal = match refusal {
                    GitHubError::Invalid(m) | GitHubError::Conflict(m) => GitHubError::Refused(format!(
                        "{m} (the branch is unchanged, so a branch rule or protection refused the update)"
                    )),
                    other => other,
                };
                let message = self.write_error(refusal).to_string();
                for p in &pending {
                    results[p.index] = Some(Err(StateError::Io(message.clone())));
                }
                return finish(results);
            }
            tracing::debug!(branch = %self.branch, attempt, "another run moved the state branch; applying this batch again");
            base = now;
            fresh = true;
            jitter(attempt + 1).await;
        }
        // Still moving after every attempt: the runner decides these again, on fresh state.
        for p in &pending {
            results[p.index] = Some(Err(StateError::Conflict {
                rollout: p.rollout.clone(),
            }));
        }
        finish(results)
    }

    async fn prefetch(&self, rollouts: &[String]) -> Result<(), StateError> {
        {
            let mut snapshot = self.snapshot();
            snapshot.prefetched = false;
            snapshot.failed = None;
        }
        let base = match self.read_base().await {
            Ok(base) => base,
            Err(e) => {
                self.snapshot().failed = Some(e.to_string());
                return Err(e);
            }
        };
        let wanted: Vec<(String, u64)> = {
            let snapshot = self.snapshot();
            let mut wanted: Vec<(String, u64)> = rollouts
                .iter()
                .filter_map(|r| base.files.get(r))
                .filter(|(sha, _)| !snapshot.blobs.contains_key(sha))
                .cloned()
                .collect();
            wanted.sort();
            wanted.dedup();
            wanted
        };
        let texts = match self.github.blob_texts(&wanted).await {
            Ok(texts) => texts,
            Err(e) => {
                let e = io(e);
                self.snapshot().failed = Some(e.to_string());
                return Err(e);
            }
        };
        let mut snapshot = self.snapshot();
        // Only what this run reads is kept: another chunk's documents are not.
        let keep: std::collections::HashSet<&str> = rollouts
            .iter()
            .filter_map(|r| base.files.get(r).map(|(sha, _)| sha.as_str()))
            .collect();
        snapshot.blobs.retain(|sha, _| keep.contains(sha.as_str()));
        for ((sha, _), text) in wanted.into_iter().zip(texts) {
            // A blob GitHub did not give whole is read alone when it is loaded.
            if let Some(bytes) = text {
                snapshot.blobs.insert(sha, bytes);
            }
        }
        snapshot.prefetched = true;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        let prefetched = {
            let snapshot = self.snapshot();
            snapshot
                .base
                .as_ref()
                .filter(|_| snapshot.prefetched)
                .map(|b| b.files.keys().cloned().collect::<Vec<_>>())
        };
        match prefetched {
            Some(names) => Ok(names),
            None => Ok(self.read_base().await?.files.into_keys().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_shas_are_git_blob_ids() {
        // `git hash-object --stdin` of the same bytes
        assert_eq!(blob_sha(b"hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(blob_sha(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }
}
