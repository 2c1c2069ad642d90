//! State as JSON files on a dedicated branch, read and written only through the contents API
//! with each file's blob sha as compare-and-swap: two overlapping runs cannot both write.

use std::sync::Arc;

use super::{RolloutState, StateError, StateStore, StateVersion, StoredState};
use crate::github::{GitHub, GitHubError};

/// Where state files live on the branch.
const STATE_DIR: &str = "rollouts";

/// State documents on one branch of the repository.
#[derive(Debug, Clone)]
pub struct GitHubStateStore {
    github: Arc<GitHub>,
    branch: String,
}

impl GitHubStateStore {
    /// The store on `branch`. With `create_from` (the default branch), a missing `branch` is
    /// created from it; read-only runs, such as plans on pull requests, pass `None`.
    pub async fn open(
        github: Arc<GitHub>,
        branch: &str,
        create_from: Option<&str>,
    ) -> Result<GitHubStateStore, StateError> {
        let store = GitHubStateStore {
            github,
            branch: branch.to_string(),
        };
        if let Some(default) = create_from {
            if store.github.branch_sha(branch).await.map_err(io)?.is_none() {
                let sha = store.github.branch_sha(default).await.map_err(io)?.ok_or_else(|| {
                    StateError::Io(format!(
                        "the default branch {default} has no commit to start {branch} from"
                    ))
                })?;
                store.github.create_branch(branch, &sha).await.map_err(|e| {
                    StateError::Io(format!(
                        "cannot create the state branch {branch}: {e} (the token needs `contents: write`)"
                    ))
                })?;
                tracing::info!(branch, from = %default, "created the state branch");
            }
        }
        Ok(store)
    }

    fn path_of(rollout: &str) -> String {
        format!("{STATE_DIR}/{rollout}.json")
    }
}

fn io(e: GitHubError) -> StateError {
    StateError::Io(e.to_string())
}

#[async_trait::async_trait]
impl StateStore for GitHubStateStore {
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError> {
        let path = Self::path_of(rollout);
        let Some(file) = self.github.get_file(&self.branch, &path).await.map_err(io)? else {
            return Ok(None);
        };
        let location = format!("{path} on branch {}", self.branch);
        let state = super::decode(
            &file.content,
            rollout,
            location,
            "fix or delete the file on the state branch",
        )?;
        Ok(Some(StoredState {
            state,
            version: StateVersion(file.sha),
        }))
    }

    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError> {
        let bytes = super::encode(state)?;
        let what = match (&state.pending, state.history.last()) {
            (Some(p), _) => format!("claim {}", p.to.describe()),
            (None, Some(last)) => format!("{} {}", last.decision.as_str(), last.to_percent),
            (None, None) => "state".into(),
        };
        let message = format!("flagramp: {} {what}", state.rollout);
        let path = Self::path_of(&state.rollout);
        match self.github.put_file(&self.branch, &path, &bytes, expected.map(|v| v.0.as_str()), &message).await {
            Ok(sha) => Ok(StateVersion(sha)),
            Err(GitHubError::Conflict(_)) => Err(StateError::Conflict { rollout: state.rollout.clone() }),
            Err(GitHubError::Refused(m)) => Err(StateError::Io(format!(
                "{m}. Branch protection or a rule refused the write: exempt the state branch `{}` from rules, or let the token bypass them",
                self.branch
            ))),
            Err(GitHubError::Forbidden(m)) => Err(StateError::Io(format!(
                "{m}: the token cannot write the state branch (needs `permissions: contents: write`; forks and Dependabot get read-only tokens)"
            ))),
            Err(e) => Err(io(e)),
        }
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        let names = self.github.list_dir(&self.branch, STATE_DIR).await.map_err(io)?;
        let mut names: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }
}
