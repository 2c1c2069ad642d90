//! Flag providers: where the percentage really lives. One module per provider behind
//! [`FlagProvider`]; the flag system is the source of truth, state never overrides it.

mod flagd;
pub mod launchdarkly;
pub mod memory;
pub mod unleash;

use std::path::PathBuf;
use std::sync::Arc;

pub use flagd::{set_together, FlagFileStore, FlagdChange, FlagdFile, LocalFile, RepoFileOnBranch, SharedReads};
pub use memory::{MemoryFlag, MemoryFlags};

use crate::github::GitHub;
use crate::percent::Percent;
use crate::secrets::Secrets;
use crate::spec::{FlagSpec, ProviderSpec};
use crate::state::FlagValue;

/// A flag as read, with the version a write must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagReading {
    /// On/off and percentage.
    pub value: FlagValue,
    /// Opaque compare-and-swap token.
    pub version: String,
}

/// What a flag that is `enabled` and serves `on` to `percent` of users reads as: on at that
/// share, else off. One rule for every provider: a flag that is enabled but serves `on` to
/// nobody (0%, or no rollout giving `on` anything) is off in every way that matters, so a flag
/// created enabled-but-off can be started rather than reported as drift.
pub fn reading_of(enabled: bool, percent: Percent) -> FlagValue {
    if enabled && percent > Percent::ZERO {
        FlagValue::on(percent)
    } else {
        FlagValue::OFF
    }
}

/// Why a provider could not read or set a flag. None of these is a metric failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The flag, or where it should be, does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The flag exists in a shape flagramp will not take over.
    #[error("{0}")]
    CannotOwn(String),
    /// The flag changed between reading and writing.
    #[error("{0}")]
    Conflict(String),
    /// The provider is not available in this build.
    #[error("{0}")]
    Unsupported(String),
    /// The credentials are missing or refused (401, 403).
    #[error("{0}")]
    Auth(String),
    /// The provider refuses the change for a reason a person must resolve: an approval or
    /// change request is required, a release plan or experiment steers the flag.
    #[error("{0}")]
    Refused(String),
    /// A write failed before it could change anything (a read-only file or directory, a full
    /// disk before the rename): certainly nothing was written.
    #[error("{0}")]
    NotWritten(String),
    /// Reading or writing failed; a write may or may not have happened.
    #[error("{0}")]
    Io(String),
}

/// Reads and sets one flag.
#[async_trait::async_trait]
pub trait FlagProvider: std::fmt::Debug + Send + Sync {
    /// Where the flag lives, for reports: `flagd file flags/flags.flagd.json`.
    fn describe(&self) -> String;

    /// Reads the flag's current value.
    async fn read(&self) -> Result<FlagReading, ProviderError>;

    /// Sets the flag, failing with [`ProviderError::Conflict`] if it changed since `seen` was
    /// read; returns the value read back after the write. `note` says who changed the flag and
    /// why, kept where the flag system keeps a note with each change (a flagd file's commit
    /// message on a branch); a provider that keeps none ignores it. Callers with nothing to say
    /// pass `&ChangeNote::default()`.
    async fn set(&self, to: FlagValue, seen: &FlagReading, note: &ChangeNote) -> Result<FlagReading, ProviderError>;

    /// The flag as a flagd file's, when it is one: a run writes all its changes to one file
    /// together ([`flagd::set_together`]).
    fn as_flagd_file(&self) -> Option<&flagd::FlagdFile> {
        None
    }
}

/// Who changes a flag and why, as the decision record says (already redacted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeNote {
    /// `flagramp`, or the person who ran a manual command.
    pub actor: String,
    /// The decision's reason.
    pub reason: String,
}

/// Where flag files are read and written.
#[derive(Debug, Clone)]
pub enum FlagFiles {
    /// In the local checkout at this root.
    Local(PathBuf),
    /// On a branch of the GitHub repository (the flagd spec's `branch`, else `default_branch`).
    GitHub {
        /// The client.
        github: Arc<GitHub>,
        /// Used when a spec names no branch.
        default_branch: String,
    },
}

/// The provider a spec names; tokens are read from the environment through `secrets`.
pub fn for_flag(flag: &FlagSpec, files: &FlagFiles, secrets: &Secrets) -> Result<Box<dyn FlagProvider>, ProviderError> {
    for_flag_in_run(flag, files, secrets, None)
}

/// [`for_flag`] for one of a run's rollouts: flag files are read through the run's `reads`,
/// once for all the flags they hold.
pub fn for_flag_in_run(
    flag: &FlagSpec,
    files: &FlagFiles,
    secrets: &Secrets,
    reads: Option<&SharedReads>,
) -> Result<Box<dyn FlagProvider>, ProviderError> {
    let token = |var: &str| secrets.read(var).map_err(|e| ProviderError::Auth(e.to_string()));
    let shared = |file: FlagdFile| match reads {
        Some(reads) => file.with_shared_reads(reads),
        None => file,
    };
    match (&flag.provider, files) {
        (ProviderSpec::Flagd { path, .. }, FlagFiles::Local(root)) => {
            Ok(Box::new(shared(FlagdFile::new(root, path, flag.key.clone()))))
        }
        (ProviderSpec::Flagd { path, branch }, FlagFiles::GitHub { github, default_branch }) => {
            let branch = branch.clone().unwrap_or_else(|| default_branch.clone());
            let shown = PathBuf::from(format!("{} on branch {branch}", path.display()));
            let store = RepoFileOnBranch::new(github.clone(), branch, path.to_string_lossy().into_owned());
            Ok(Box::new(shared(FlagdFile::in_store(
                Box::new(store),
                shown,
                flag.key.clone(),
            ))))
        }
        (
            ProviderSpec::Unleash {
                url,
                project,
                environment,
                token_env,
            },
            _,
        ) => Ok(Box::new(
            unleash::UnleashFlag::new(url, project, environment, token(token_env)?, &flag.key)
                .with_token_env(token_env),
        )),
        (
            ProviderSpec::LaunchDarkly {
                project,
                environment,
                token_env,
                base_url,
                on_variation,
            },
            _,
        ) => Ok(Box::new(launchdarkly::LaunchDarklyFlag::new(
            base_url.as_deref().unwrap_or(launchdarkly::DEFAULT_BASE_URL),
            project,
            environment,
            token(token_env)?,
            &flag.key,
            on_variation.clone(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_for_nobody_reads_as_off() {
        let ten = Percent::from_millis(10_000).unwrap();
        assert_eq!(reading_of(true, ten), FlagValue::on(ten));
        assert_eq!(reading_of(true, Percent::FULL), FlagValue::on(Percent::FULL));
        assert_eq!(reading_of(true, Percent::ZERO), FlagValue::OFF);
        assert_eq!(reading_of(false, ten), FlagValue::OFF);
        assert_eq!(reading_of(false, Percent::ZERO), FlagValue::OFF);
    }
}
