//! The application layer: what both front ends (the CLI and the GitHub Action) ask for, as one
//! [`RunRequest`], carried out once here. Finding and loading specs, picking the rollout a
//! command names, building the [`Runner`] over the right state store and flag files, and
//! status all live here, so that the two front ends differ only in where their request comes
//! from and where their output goes. Listing rollouts in chunks for a fan-out matrix is
//! [`list`]; which pull request a rollout reports to is [`reports_to`], for comments and chunks
//! alike.

pub mod list;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::engine::ManualOp;
use crate::github::{GitHub, GitHubError};
use crate::http::Deadline;
use crate::provider::FlagFiles;
use crate::record::Status;
use crate::runner::{Decided, Mode, NoProgress, Progress, Runner};
use crate::secrets::Secrets;
use crate::spec::{self, PullRequestRef, RolloutSpec, SpecErrors};
use crate::state::{GitHubStateStore, LocalStateStore, StateError, StateStore};

pub use crate::record::AUTOMATIC_ACTOR;

/// The operation a run performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Decide and act.
    Run,
    /// Decide, change nothing.
    Plan,
    /// Report status.
    Status,
    /// Validate specs only.
    Validate,
    /// List the rollouts in chunks for a matrix of jobs ([`list`]); decides nothing.
    List,
    /// A person's command.
    Manual(ManualOp),
}

impl Operation {
    /// How a person would type it (`advance --force` included).
    pub fn describe(&self) -> &'static str {
        match self {
            Operation::Run => "run",
            Operation::Plan => "plan",
            Operation::Status => "status",
            Operation::Validate => "validate",
            Operation::List => "list",
            Operation::Manual(ManualOp::Advance { force: true }) => "advance --force",
            Operation::Manual(m) => m.command(),
        }
    }
}

/// Where state and flag files live.
#[derive(Debug, Clone)]
pub enum Place {
    /// A local checkout: state in a directory, flag files in the working tree (the CLI).
    Local {
        /// The directory of state files.
        state_dir: PathBuf,
        /// How long a writing run waits for another local run's lock.
        lock_wait: Duration,
    },
    /// A GitHub repository: state on a branch, flag files on their branches, through the API
    /// (the Action).
    GitHub {
        /// The API client.
        github: Arc<GitHub>,
        /// The state branch.
        state_branch: String,
        /// The repository's default branch (flag files without a `branch:` live there; a new
        /// state branch starts from it).
        default_branch: String,
    },
}

/// One run, as a front end asks for it.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// What to do.
    pub operation: Operation,
    /// The one rollout to act on, if the request names one.
    pub rollout: Option<String>,
    /// Spec files or directories.
    pub spec_paths: Vec<PathBuf>,
    /// The evaluation time; `None`: the clock, read once the state store is open (after any
    /// wait for another run's lock).
    pub now: Option<DateTime<Utc>>,
    /// The person acting (recorded with manual commands).
    pub actor: String,
    /// The person's reason (manual commands).
    pub reason: String,
    /// Decide only, change nothing.
    pub dry_run: bool,
    /// The repository root: command checks run here, local flag files are relative to it.
    pub repo_root: PathBuf,
    /// Where state and flag files live.
    pub place: Place,
    /// The run's time budget.
    pub budget: Option<Deadline>,
    /// `status` also lists state whose spec is gone.
    pub include_orphans: bool,
    /// How many rollouts are decided at once.
    pub concurrency: usize,
    /// The workflow run, when in GitHub Actions: notifications link to it.
    pub run_url: Option<String>,
    /// Told as each rollout is decided (`None`: nobody).
    pub progress: Option<Arc<dyn Progress>>,
}

impl RunRequest {
    /// Whether this request may write state or flags.
    pub fn writes(&self) -> bool {
        matches!(self.operation, Operation::Run | Operation::Manual(_)) && !self.dry_run
    }

    fn mode(&self) -> Mode {
        match self.operation {
            Operation::Manual(op) => Mode::Manual {
                op,
                reason: self.reason.clone(),
                dry_run: self.dry_run,
            },
            Operation::Run if !self.dry_run => Mode::Run,
            _ => Mode::Plan,
        }
    }
}

/// What a request produced.
#[derive(Debug)]
pub enum Outcome {
    /// One decision per rollout, in spec order (`run`, `plan`, manual commands).
    Decided(Vec<Decided>),
    /// One status per rollout (`status`), orphans last.
    Statuses(Vec<Status>),
    /// Nothing to decide (`validate`, `list`).
    Validated,
}

/// Why a request could not be carried out. Exit codes follow from the kind (`src/exit.rs`).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A spec path that is not there.
    #[error("spec path {} does not exist", .0.display())]
    NoSuchSpecPath(PathBuf),
    /// A spec path that could not be read.
    #[error(transparent)]
    Discover(std::io::Error),
    /// Paths that hold no spec file.
    #[error("no rollout specs (*.yml, *.yaml) found in {}", shown_paths(.0))]
    NoSpecs(Vec<PathBuf>),
    /// Invalid specs, every problem with its position.
    #[error(transparent)]
    Spec(#[from] SpecErrors),
    /// The request names a rollout no spec has.
    #[error("unknown rollout `{name}`; rollouts in these specs: {}", .known.join(", "))]
    UnknownRollout {
        /// The name asked for.
        name: String,
        /// The names the specs have.
        known: Vec<String>,
    },
    /// A manual command could not even be decided: another run holds the state.
    #[error("`{command} {rollout}` refused: {why}")]
    Refused {
        /// The command.
        command: &'static str,
        /// The rollout.
        rollout: String,
        /// Why.
        why: String,
    },
    /// The state store could not be opened or read.
    #[error(transparent)]
    State(#[from] StateError),
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The spec files under `paths` (each a file or a directory), sorted; every path must exist.
pub fn find_spec_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AppError> {
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        return Err(AppError::NoSuchSpecPath(missing.clone()));
    }
    spec::discover(paths).map_err(AppError::Discover)
}

/// Every spec under `paths`, all valid, or every problem found.
pub fn load_specs(paths: &[PathBuf]) -> Result<Vec<RolloutSpec>, AppError> {
    let files = find_spec_files(paths)?;
    if files.is_empty() {
        return Err(AppError::NoSpecs(paths.to_vec()));
    }
    Ok(spec::load_all(&files)?)
}

/// Every spec under `paths` with the repository's defaults given to those without their own
/// ([`load_all_in`]).
pub fn load_specs_in(paths: &[PathBuf], repo_root: &Path) -> Result<Vec<RolloutSpec>, AppError> {
    let files = find_spec_files(paths)?;
    if files.is_empty() {
        return Err(AppError::NoSpecs(paths.to_vec()));
    }
    Ok(load_all_in(&files, repo_root)?)
}

/// The spec `files`, each given the repository's defaults (`.github/flagramp.yml` under
/// `repo_root`, docs/rules.md §5) unless it has its own: the settings file is validated with
/// the specs, and its problems are reported with theirs.
pub fn load_all_in(files: &[PathBuf], repo_root: &Path) -> Result<Vec<RolloutSpec>, SpecErrors> {
    let config = spec::load_repo_config(&repo_root.join(spec::REPO_CONFIG_FILE));
    match (spec::load_all(files), config) {
        (Ok(mut specs), Ok(config)) => {
            let config = config.unwrap_or_default();
            for spec in &mut specs {
                spec.apply_defaults(&config);
            }
            Ok(specs)
        }
        (Err(mut errors), Err(more)) => {
            errors.diagnostics.splice(0..0, more.diagnostics);
            Err(errors)
        }
        (Ok(_), Err(errors)) | (Err(errors), Ok(_)) => Err(errors),
    }
}

/// The specs a request acts on: all of them, or the one it names.
pub fn select(specs: Vec<RolloutSpec>, rollout: Option<&str>) -> Result<Vec<RolloutSpec>, AppError> {
    let names: Vec<String> = rollout.map(str::to_string).into_iter().collect();
    select_all(specs, &names)
}

/// The specs a request acts on: all of them when `names` is empty, else those it names, in
/// spec order. A name no spec has is an error, so a chunk of a fan-out never quietly skips a
/// rollout it was given.
pub fn select_all(specs: Vec<RolloutSpec>, names: &[String]) -> Result<Vec<RolloutSpec>, AppError> {
    if let Some(name) = names.iter().find(|n| !specs.iter().any(|s| &s.name == *n)) {
        return Err(AppError::UnknownRollout {
            name: name.clone(),
            known: specs.into_iter().map(|s| s.name).collect(),
        });
    }
    if names.is_empty() {
        return Ok(specs);
    }
    Ok(specs.into_iter().filter(|s| names.contains(&s.name)).collect())
}

/// Where a rollout's report goes: its spec's `report.pull_request`, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportTo {
    /// A comment on this pull request (a number in the spec, or the one `auto` found).
    PullRequest(u64),
    /// No comment: `none`, or `auto` and no pull request ever changed the spec file.
    Nowhere,
    /// `auto`, not looked up: no way to ask GitHub, or the lookup failed.
    Unknown,
}

/// Where each spec's report goes, in order. `auto` means the pull request that last changed the
/// spec file on `branch`: every `auto` spec is looked up at once, in one GraphQL query
/// ([`GitHub::last_pull_requests_for`]), when `github` is given; without it they are
/// [`ReportTo::Unknown`]. A failed lookup leaves them `Unknown` too and is returned beside the
/// answer, so a caller can say so and still act on the specs that name their pull request.
pub async fn reports_to(
    specs: &[&RolloutSpec],
    github: Option<(&GitHub, &str)>,
) -> (Vec<ReportTo>, Option<GitHubError>) {
    let mut targets: Vec<ReportTo> = specs
        .iter()
        .map(|spec| match spec.report.pull_request {
            PullRequestRef::Number(n) => ReportTo::PullRequest(n),
            PullRequestRef::None => ReportTo::Nowhere,
            PullRequestRef::Auto => ReportTo::Unknown,
        })
        .collect();
    let auto: Vec<usize> = (0..specs.len())
        .filter(|&i| specs[i].report.pull_request == PullRequestRef::Auto)
        .collect();
    let Some((github, branch)) = github.filter(|_| !auto.is_empty()) else {
        return (targets, None);
    };
    let paths: Vec<String> = auto.iter().map(|&i| repository_path(&specs[i].file)).collect();
    match github.last_pull_requests_for(branch, &paths).await {
        Ok(found) => {
            for (&i, pr) in auto.iter().zip(found) {
                targets[i] = pr.map_or(ReportTo::Nowhere, ReportTo::PullRequest);
            }
            (targets, None)
        }
        Err(e) => (targets, Some(e)),
    }
}

/// Carries out `request` on `specs` (already selected).
pub async fn execute(request: &RunRequest, specs: &[RolloutSpec], secrets: &Secrets) -> Result<Outcome, AppError> {
    if matches!(request.operation, Operation::Validate | Operation::List) {
        return Ok(Outcome::Validated);
    }
    let runner = runner(request, secrets).await?;
    run_with(&runner, request, specs).await
}

/// Carries out `request` on `specs` with a runner built by [`runner`].
pub async fn run_with(runner: &Runner, request: &RunRequest, specs: &[RolloutSpec]) -> Result<Outcome, AppError> {
    match request.operation {
        Operation::Validate | Operation::List => Ok(Outcome::Validated),
        Operation::Status => Ok(Outcome::Statuses(runner.status(specs, request.include_orphans).await?)),
        _ => {
            let progress: &dyn Progress = request.progress.as_deref().unwrap_or(&NoProgress);
            let mut decided = runner.decide_all_with(specs, &request.mode(), progress).await;
            // After the last state batch: a notification is about a recorded decision.
            if request.writes() {
                crate::notify::notify_all(runner, specs, &mut decided, request.run_url.as_deref()).await;
            }
            Ok(Outcome::Decided(decided))
        }
    }
}

/// The runner for `request`: its state store opened (for writing only when the request
/// writes), its flag files, its actor and its clock.
pub async fn runner(request: &RunRequest, secrets: &Secrets) -> Result<Runner, AppError> {
    let writes = request.writes();
    let (store, flag_files): (Box<dyn StateStore>, FlagFiles) = match &request.place {
        Place::Local { state_dir, lock_wait } => {
            let store = if writes {
                match LocalStateStore::for_writing(state_dir, *lock_wait) {
                    Ok(store) => store,
                    // The person's command did not happen: a refusal, not a failure.
                    Err(StateError::Locked(why)) if matches!(request.operation, Operation::Manual(_)) => {
                        return Err(refused(request, why))
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                LocalStateStore::read_only(state_dir)
            };
            (Box::new(store), FlagFiles::Local(request.repo_root.clone()))
        }
        Place::GitHub {
            github,
            state_branch,
            default_branch,
        } => {
            let store = GitHubStateStore::open(github.clone(), state_branch, writes).await?;
            let files = FlagFiles::GitHub {
                github: github.clone(),
                default_branch: default_branch.clone(),
            };
            (Box::new(store), files)
        }
    };
    let actor = match request.operation {
        Operation::Manual(_) => request.actor.clone(),
        _ => AUTOMATIC_ACTOR.to_string(),
    };
    Ok(Runner {
        store,
        repo_root: request.repo_root.clone(),
        flag_files,
        now: request.now.unwrap_or_else(Utc::now),
        actor,
        secrets: secrets.clone(),
        budget: request.budget,
        concurrency: request.concurrency,
        pool: Arc::new(crate::metrics::SourcePool::new()),
        flag_reads: crate::provider::SharedReads::default(),
    })
}

fn refused(request: &RunRequest, why: String) -> AppError {
    let command = match request.operation {
        Operation::Manual(op) => op.command(),
        other => other.describe(),
    };
    AppError::Refused {
        command,
        rollout: request.rollout.clone().unwrap_or_default(),
        why,
    }
}

/// A spec file's path as the repository names it (forward slashes, no leading `./`).
pub fn repository_path(file: &Path) -> String {
    let path = file.to_string_lossy().replace('\\', "/");
    path.strip_prefix("./").unwrap_or(&path).to_string()
}
