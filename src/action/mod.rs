//! The GitHub Action mode (`flagramp action`), given what the front end (`src/cli/action.rs`)
//! read from the runner: the inputs, the event and the repository.
//!
//! Order matters: secrets are masked before anything else is printed; specs are validated with
//! annotations on the right lines; state and flag files are read and written through the
//! contents API; the job summary, step outputs and pull request comments are rendered from the
//! decision records. The step log is written through the front end's sink, never directly.

pub mod commands;
pub mod comment;
pub mod glob;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::app::list::{ListRequest, Lookup};
use crate::app::{self, Operation, Outcome, Place, ReportTo, RunRequest};
use crate::duration::{DurationError, SpecDuration};
use crate::engine::ManualOp;
use crate::escape;
use crate::github::{GitHub, GitHubError};
use crate::http::Deadline;
use crate::record::{DecisionKind, DecisionRecord};
use crate::report::{self, RolloutReport, Target};
use crate::runner::Decided;
use crate::secrets::{Secrets, Withheld, WITHHELD_PROVIDER};
use crate::spec::{self, Diagnostic, ProviderSpec, RolloutSpec};

/// When to comment on pull requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentMode {
    /// On pull_request events always; otherwise only when a rollout's state changed.
    Auto,
    /// Every run.
    Always,
    /// Never.
    Never,
}

/// What fails the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Invalid specs and error decisions.
    Error,
    /// Those, and rollbacks and disables.
    Rollback,
    /// Nothing.
    Never,
}

/// The step's inputs, validated by flagramp (the runner does not enforce `required:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `auto` or an explicit command.
    pub command: String,
    /// Spec files, directories or globs.
    pub specs: String,
    /// A rollout name, if given.
    pub rollout: Option<String>,
    /// Rollout names (`rollouts`, a fan-out chunk): run, plan and status only these.
    pub rollouts: Vec<String>,
    /// At most this many chunks for `command: list`.
    pub max_jobs: usize,
    /// A reason for manual commands.
    pub reason: String,
    /// Only plan.
    pub dry_run: bool,
    /// `advance` even when a check does not pass.
    pub force: bool,
    /// The token.
    pub github_token: String,
    /// The state branch.
    pub state_branch: String,
    /// Comment mode.
    pub comment: CommentMode,
    /// Login of flagramp's comments.
    pub comment_author: String,
    /// What fails the step.
    pub fail_on: FailOn,
    /// The run's total time; rollouts whose turn comes after it hold.
    pub time_budget: SpecDuration,
}

/// Why the Action could not run: the one line the front end prints as the step's error.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// An input that is none of the values it may take.
    #[error("input `{name}` is `{value}`; use one of: {}", .allowed.join(", "))]
    NotOneOf {
        /// The input.
        name: String,
        /// Its value.
        value: String,
        /// What it may be.
        allowed: Vec<String>,
    },
    /// A boolean input (or dispatch input) that is not one.
    #[error("{}input `{name}` {source}", if *.dispatch { "dispatch " } else { "" })]
    NotABoolean {
        /// Whether it is a `workflow_dispatch` input rather than a step input.
        dispatch: bool,
        /// The input.
        name: String,
        /// What its value is.
        #[source]
        source: NotABoolean,
    },
    /// No token.
    #[error("input `github_token` is empty: keep its default `${{{{ github.token }}}}` or pass a token")]
    NoToken,
    /// A `state_branch` git would refuse (shown escaped).
    #[error("input `state_branch` is `{0}`, which is not a branch name git accepts")]
    StateBranch(String),
    /// A `specs` entry outside the repository (shown escaped).
    #[error("input `specs` names `{0}`, outside the repository: give paths relative to the repository root")]
    SpecsOutside(String),
    /// A `time_budget` that is not a duration.
    #[error("input `time_budget`: {0}")]
    TimeBudget(#[source] DurationError),
    /// `command: auto` on an event it has no meaning for.
    #[error("input `command: auto` does not know what to do on `{0}` events: set `command:` (run, plan, status, …)")]
    AutoOnEvent(String),
    /// A dispatched command that is not one.
    #[error("command `{command}` is not one of: {}", COMMANDS[1..].join(", "))]
    UnknownCommand {
        /// The command given.
        command: String,
    },
    /// A rollout input that is not a rollout name (shown escaped).
    #[error("the rollout `{0}` (input or dispatch input `rollout`) is not a rollout name: 1 to 64 letters, digits, `.`, `_` or `-`")]
    NotARolloutName(String),
    /// A manual command without a rollout.
    #[error("`{0}` needs a rollout: set the `rollout` input (or the dispatch input `rollout`)")]
    NeedsRollout(String),
    /// A `repository_dispatch` whose event type is not flagramp's (shown escaped).
    #[error("repository_dispatch event type {0} is not `{REPOSITORY_DISPATCH_TYPE}`: send event_type `{REPOSITORY_DISPATCH_TYPE}`, or limit the workflow to it with `repository_dispatch: types: [{REPOSITORY_DISPATCH_TYPE}]`")]
    DispatchType(String),
    /// A `repository_dispatch` whose `client_payload` is not what flagramp reads.
    #[error("repository_dispatch client_payload {0}; send {{\"command\": \"rollback\", \"rollout\": \"NAME\", \"reason\": \"…\"}} (command: {commands})", commands = DISPATCH_COMMANDS.join(", "))]
    DispatchPayload(String),
    /// `advance` by `repository_dispatch`, which would bypass the environment that gates it.
    #[error("`advance` cannot come by repository_dispatch: it exposes more users, so it runs only from workflow_dispatch, in the job whose environment asks for approval; repository_dispatch takes {}", DISPATCH_COMMANDS.join(", "))]
    DispatchAdvance,
    /// A `rollouts` entry that is not a rollout name (shown escaped).
    #[error("input `rollouts` names `{0}`, which is not a rollout name: 1 to 64 letters, digits, `.`, `_` or `-`, names separated by commas or newlines")]
    NotRolloutNames(String),
    /// `rollout` and `rollouts` both set.
    #[error("{} are both set: `rollout` names the one rollout a command acts on, `rollouts` limits run, plan and status to a list (a fan-out chunk); set only one", if *.dispatch { "the dispatch input `rollout` and the input `rollouts`" } else { "inputs `rollout` and `rollouts`" })]
    RolloutAndRollouts {
        /// Whether `rollout` came from the `workflow_dispatch` inputs rather than the step's.
        dispatch: bool,
    },
    /// `rollouts` with a command other than run, plan and status.
    #[error("input `rollouts` limits run, plan and status to a list of rollouts, and this run is `{0}`: unset it (a manual command takes `rollout`)")]
    RolloutsWith(String),
    /// A `max_jobs` that is not a number of jobs a matrix can have.
    #[error("input `max_jobs` is `{0}`; use a whole number from 1 to {max}", max = app::list::MAX_MATRIX_JOBS)]
    MaxJobs(String),
    /// `force` with a command other than `advance`.
    #[error("`force` applies to `advance` only, and this run is `{0}`: unset it, or choose `advance`")]
    ForceWithout(String),
    /// A `specs` glob that matches nothing.
    #[error(transparent)]
    Glob(#[from] glob::GlobError),
    /// A `specs` path that is not in the repository.
    #[error("{0} in the repository (input `specs`)")]
    SpecPath(#[source] app::AppError),
    /// Specs that could not be found, selected or run.
    #[error(transparent)]
    App(#[from] app::AppError),
    /// A GitHub call that failed.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The rollouts could not be listed.
    #[error(transparent)]
    List(#[from] app::list::ListError),
    /// The repository's default branch could not be read.
    #[error("cannot read the repository: {0}")]
    Repository(#[source] GitHubError),
    /// `GITHUB_OUTPUT` could not be written.
    #[error("cannot write GITHUB_OUTPUT: {0}")]
    Output(#[source] std::io::Error),
    /// `GITHUB_STEP_SUMMARY` could not be written.
    #[error("cannot write GITHUB_STEP_SUMMARY: {0}")]
    Summary(#[source] std::io::Error),
}

/// A boolean input's value that is not one (lower-cased, trimmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is `{0}`; use true or false")]
pub struct NotABoolean(pub String);

/// The `event_type` of the `repository_dispatch` events flagramp acts on.
pub const REPOSITORY_DISPATCH_TYPE: &str = "flagramp";

/// What a `repository_dispatch` may ask for: the manual commands that expose no more users.
/// `advance` is refused (not routed elsewhere): an alerting system or a token holder must not
/// reach around the approval the recommended workflow puts on it (its `advance` job's
/// environment), and the Action cannot tell which job it runs in.
pub const DISPATCH_COMMANDS: &[&str] = &["rollback", "pause", "resume"];

/// The keys of a `repository_dispatch` `client_payload`.
const DISPATCH_KEYS: &[&str] = &["command", "rollout", "reason"];

const COMMANDS: &[&str] = &[
    "auto", "run", "plan", "status", "validate", "list", "advance", "rollback", "pause", "resume",
];

impl Inputs {
    /// Reads `INPUT_*` through `get`, applying `action.yml`'s defaults when a value is empty.
    pub fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<Inputs, ActionError> {
        let input = |name: &str, default: &str| {
            get(&format!("INPUT_{}", name.to_ascii_uppercase()))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let one_of = |name: &str, value: String, allowed: &[&str]| -> Result<String, ActionError> {
            if allowed.contains(&value.as_str()) {
                Ok(value)
            } else {
                Err(ActionError::NotOneOf {
                    name: name.to_string(),
                    value,
                    allowed: allowed.iter().map(|a| a.to_string()).collect(),
                })
            }
        };
        let command = one_of("command", input("command", "auto").to_ascii_lowercase(), COMMANDS)?;
        let boolean = |name: &str| {
            parse_boolean(&input(name, "false")).map_err(|source| ActionError::NotABoolean {
                dispatch: false,
                name: name.to_string(),
                source,
            })
        };
        let dry_run = boolean("dry_run")?;
        let force = boolean("force")?;
        let comment = match one_of(
            "comment",
            input("comment", "auto").to_ascii_lowercase(),
            &["auto", "always", "never"],
        )?
        .as_str()
        {
            "always" => CommentMode::Always,
            "never" => CommentMode::Never,
            _ => CommentMode::Auto,
        };
        let fail_on = match one_of(
            "fail_on",
            input("fail_on", "error").to_ascii_lowercase(),
            &["error", "rollback", "never"],
        )?
        .as_str()
        {
            "rollback" => FailOn::Rollback,
            "never" => FailOn::Never,
            _ => FailOn::Error,
        };
        let github_token = input("github_token", "");
        if github_token.is_empty() {
            return Err(ActionError::NoToken);
        }
        let rollout = Some(input("rollout", "")).filter(|r| !r.is_empty());
        let rollouts = rollout_names(&input("rollouts", ""))?;
        let max_jobs_text = input("max_jobs", &app::list::DEFAULT_MAX_JOBS.to_string());
        let max_jobs = max_jobs_text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=app::list::MAX_MATRIX_JOBS).contains(n))
            .ok_or_else(|| ActionError::MaxJobs(spec::text::shown(&max_jobs_text).into_owned()))?;
        let state_branch = input("state_branch", "flagramp-state");
        if !spec::text::is_branch_name(&state_branch) {
            return Err(ActionError::StateBranch(spec::text::shown(&state_branch).into_owned()));
        }
        let specs = input("specs", spec::DEFAULT_SPEC_DIR);
        if let Some(outside) = entries_outside_repository(&specs) {
            return Err(ActionError::SpecsOutside(spec::text::shown(&outside).into_owned()));
        }
        let time_budget = SpecDuration::parse(&input("time_budget", "10m")).map_err(ActionError::TimeBudget)?;
        Ok(Inputs {
            command,
            specs,
            rollout,
            rollouts,
            max_jobs,
            reason: input("reason", ""),
            dry_run,
            force,
            github_token,
            state_branch,
            comment,
            comment_author: input("comment_author", "github-actions[bot]"),
            fail_on,
            time_budget,
        })
    }
}

/// The names in the `rollouts` input: separated by commas or newlines, blanks ignored, each
/// once, in the order given.
fn rollout_names(text: &str) -> Result<Vec<String>, ActionError> {
    let mut names: Vec<String> = Vec::new();
    for name in text.split([',', '\n', '\r']).map(str::trim).filter(|n| !n.is_empty()) {
        if !spec::text::is_name(name) {
            return Err(ActionError::NotRolloutNames(spec::text::shown(name).into_owned()));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// The first entry of the `specs` input that is absolute or climbs out with `..`.
fn entries_outside_repository(specs: &str) -> Option<String> {
    glob::entries(specs).into_iter().find(|entry| {
        let path = Path::new(entry);
        path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir)
    })
}

/// The largest event payload read; GitHub's stay far below it.
pub const MAX_EVENT_BYTES: u64 = 32 << 20;

/// A boolean input: `true`/`false` (also yes/no, 1/0), in any case. The error names the value.
fn parse_boolean(text: &str) -> Result<bool, NotABoolean> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(NotABoolean(other.to_string())),
    }
}

/// What this run was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The operation (`advance` carries `force`).
    pub op: Operation,
    /// The rollout it is limited to, if any.
    pub rollout: Option<String>,
    /// The rollouts it is limited to (`rollouts`), if any.
    pub rollouts: Vec<String>,
    /// The person's reason, for manual commands.
    pub reason: String,
    /// Decide only, change nothing.
    pub dry_run: bool,
}

/// The request for this event (explicit `command` input wins). With `command: auto` on
/// `workflow_dispatch`, the dispatch inputs `command`, `rollout`, `reason`, `force` and
/// `dry_run` are read from the event too; `force` and `dry_run` hold when either side sets them.
/// On `repository_dispatch`, the `client_payload`'s `command`, `rollout` and `reason` are read
/// instead, and checked (see `repository_dispatch`).
pub fn operation(inputs: &Inputs, event_name: &str, event: &Value) -> Result<Request, ActionError> {
    let dispatch = |key: &str| {
        event
            .pointer(&format!("/inputs/{key}"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    // A `type: boolean` dispatch input arrives as a string in the event, but may be a JSON bool.
    let dispatch_boolean = |key: &str| -> Result<bool, ActionError> {
        let not_a_boolean = |source| ActionError::NotABoolean {
            dispatch: true,
            name: key.to_string(),
            source,
        };
        match event.pointer(&format!("/inputs/{key}")) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(false),
            Some(Value::String(s)) => parse_boolean(s).map_err(not_a_boolean),
            Some(other) => Err(not_a_boolean(NotABoolean(other.to_string()))),
        }
    };
    let from_dispatch = inputs.command == "auto" && event_name == "workflow_dispatch";
    let (force, dry_run) = if from_dispatch {
        (
            inputs.force || dispatch_boolean("force")?,
            inputs.dry_run || dispatch_boolean("dry_run")?,
        )
    } else {
        (inputs.force, inputs.dry_run)
    };
    let (command, rollout, reason) = match (inputs.command.as_str(), event_name) {
        ("auto", "schedule") => ("run".to_string(), inputs.rollout.clone(), inputs.reason.clone()),
        ("auto", "workflow_dispatch") => (
            dispatch("command").unwrap_or_else(|| "run".into()).to_ascii_lowercase(),
            inputs.rollout.clone().or_else(|| dispatch("rollout")),
            if inputs.reason.is_empty() {
                dispatch("reason").unwrap_or_default()
            } else {
                inputs.reason.clone()
            },
        ),
        ("auto", "repository_dispatch") => {
            let (command, rollout, reason) = repository_dispatch(event)?;
            (
                command,
                inputs.rollout.clone().or(rollout),
                if inputs.reason.is_empty() {
                    reason
                } else {
                    inputs.reason.clone()
                },
            )
        }
        ("auto", "pull_request" | "pull_request_target") => ("plan".to_string(), inputs.rollout.clone(), String::new()),
        ("auto", other) => return Err(ActionError::AutoOnEvent(other.to_string())),
        (explicit, _) => (explicit.to_string(), inputs.rollout.clone(), inputs.reason.clone()),
    };
    let op = match command.as_str() {
        "run" => Operation::Run,
        "plan" => Operation::Plan,
        "status" => Operation::Status,
        "validate" => Operation::Validate,
        "list" => Operation::List,
        "advance" => Operation::Manual(ManualOp::Advance { force }),
        "rollback" => Operation::Manual(ManualOp::Rollback),
        "pause" => Operation::Manual(ManualOp::Pause),
        "resume" => Operation::Manual(ManualOp::Resume),
        other => {
            return Err(ActionError::UnknownCommand {
                command: other.to_string(),
            })
        }
    };
    // Whatever named it (the payload, or a step `command:` set from it or fixed), an advance on
    // a repository_dispatch event would run outside the job whose environment gates it.
    if event_name == "repository_dispatch" && matches!(op, Operation::Manual(ManualOp::Advance { .. })) {
        return Err(ActionError::DispatchAdvance);
    }
    if let Some(r) = rollout.as_deref().filter(|r| !spec::text::is_name(r)) {
        return Err(ActionError::NotARolloutName(spec::text::shown(r).into_owned()));
    }
    if !inputs.rollouts.is_empty() {
        if rollout.is_some() {
            return Err(ActionError::RolloutAndRollouts {
                dispatch: inputs.rollout.is_none(),
            });
        }
        if !matches!(op, Operation::Run | Operation::Plan | Operation::Status) {
            return Err(ActionError::RolloutsWith(command));
        }
    }
    if matches!(op, Operation::Manual(_)) && rollout.is_none() {
        return Err(ActionError::NeedsRollout(command));
    }
    if force && !matches!(op, Operation::Manual(ManualOp::Advance { .. })) {
        return Err(ActionError::ForceWithout(command));
    }
    Ok(Request {
        op,
        rollout,
        rollouts: inputs.rollouts.clone(),
        reason,
        dry_run,
    })
}

/// The command, rollout and reason of a `repository_dispatch` event, which anyone holding a
/// token with write access to the repository can send: its `action` (the event type) must be
/// [`REPOSITORY_DISPATCH_TYPE`] and its `client_payload` hold only `command` (one of
/// [`DISPATCH_COMMANDS`]), `rollout` and `reason`, all strings. The rollout is checked as a name
/// and the reason is capped and redacted as it enters the record, as for `workflow_dispatch`.
fn repository_dispatch(event: &Value) -> Result<(String, Option<String>, String), ActionError> {
    let shown = |text: &str| spec::text::shown(text).into_owned();
    match event.get("action") {
        Some(Value::String(t)) if t == REPOSITORY_DISPATCH_TYPE => {}
        Some(Value::String(t)) => return Err(ActionError::DispatchType(format!("`{}`", shown(t)))),
        _ => return Err(ActionError::DispatchType("(missing)".into())),
    }
    let payload = match event.get("client_payload") {
        Some(Value::Object(p)) => p,
        None | Some(Value::Null) => return Err(ActionError::DispatchPayload("is missing".into())),
        Some(_) => return Err(ActionError::DispatchPayload("is not an object".into())),
    };
    if let Some(key) = payload.keys().find(|k| !DISPATCH_KEYS.contains(&k.as_str())) {
        return Err(ActionError::DispatchPayload(format!(
            "has `{}`, which flagramp does not read (it reads {})",
            shown(key),
            DISPATCH_KEYS.join(", ")
        )));
    }
    let text = |key: &str| match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(_) => Err(ActionError::DispatchPayload(format!("`{key}` is not a string"))),
    };
    let command = text("command")?
        .ok_or_else(|| ActionError::DispatchPayload("has no `command`".into()))?
        .to_ascii_lowercase();
    if command == "advance" {
        return Err(ActionError::DispatchAdvance);
    }
    if !DISPATCH_COMMANDS.contains(&command.as_str()) {
        return Err(ActionError::DispatchPayload(format!(
            "`command` is `{}`",
            shown(&command)
        )));
    }
    let rollout = text("rollout")?;
    if rollout.is_none() {
        return Err(ActionError::DispatchPayload(format!(
            "has no `rollout` for `{command}`"
        )));
    }
    Ok((command, rollout, text("reason")?.unwrap_or_default()))
}

/// The environment variables a spec reads secrets from (a command check's `env:` included).
pub fn secret_variables(specs: &[RolloutSpec]) -> Vec<String> {
    let mut names = Vec::new();
    for s in specs {
        match &s.flag.provider {
            ProviderSpec::Unleash { token_env, .. } | ProviderSpec::LaunchDarkly { token_env, .. } => {
                names.push(token_env.clone())
            }
            ProviderSpec::Flagd { .. } => {}
        }
        for source in s.sources.values() {
            names.extend(source.http.secret_envs().into_iter().map(String::from));
        }
        for check in &s.checks {
            names.extend(check.command_env().iter().cloned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Everything the Action needs from the runner, read once by the front end.
#[derive(Debug, Clone)]
pub struct ActionEnv {
    /// `GITHUB_EVENT_NAME`.
    pub event_name: String,
    /// The event payload (`GITHUB_EVENT_PATH`), `null` when there is none.
    pub event: Value,
    /// `owner/name`.
    pub repository: String,
    /// The REST API's base URL.
    pub api_url: String,
    /// The GraphQL API's URL (`GITHUB_GRAPHQL_URL`), when the runner gives it.
    pub graphql_url: Option<String>,
    /// This workflow run's page.
    pub run_url: String,
    /// Who triggered the run.
    pub actor: String,
    /// `GITHUB_STEP_SUMMARY`.
    pub summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// When the run began: its time budget counts from here.
    pub started: tokio::time::Instant,
    /// The same moment on the clock: a scheduled run's lag behind its cron slot is counted to
    /// here (`crate::schedule`).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The checked-out repository (`GITHUB_WORKSPACE`, or the working directory).
    pub workspace: PathBuf,
}

/// The step log: the front end writes each piece at once, in order (masks before anything
/// that could carry a secret).
pub type StepLog<'a> = &'a (dyn Fn(&str) + Sync);

/// Prints flagramp's own workflow command lines (built by [`commands`], whose every untrusted
/// part is escaped), redacted once more as a whole; messages are redacted before they are
/// escaped, since escaping changes how a secret with `%` or a line break looks.
fn command(log: StepLog, secrets: &Secrets, line: &str) {
    log(&secrets.redact(line));
}

/// Prints plain text to the step log, redacted, with no line that could read as a workflow
/// command.
fn say(log: StepLog, secrets: &Secrets, text: &str) {
    log(&escape::log(&secrets.redact(text)));
}

/// Runs the Action; returns the process exit code (0, 1, or 3 for a refused manual command).
/// An error is the one line the front end prints as the step's error annotation.
///
/// `secrets` is the process's registry, made with [`Secrets::masking`], the token already in
/// it, so that the binary's stderr redacts what the Action learns.
pub async fn act(inputs: &Inputs, renv: &ActionEnv, secrets: &Secrets, log: StepLog<'_>) -> Result<u8, ActionError> {
    let request = operation(inputs, &renv.event_name, &renv.event)?;
    let op = request.op;
    let names: Vec<String> = request.rollout.iter().chain(&request.rollouts).cloned().collect();
    let root = &renv.workspace;
    let paths: Vec<PathBuf> = glob::resolve(&inputs.specs)?;
    let files = app::find_spec_files(&paths).map_err(|e| match e {
        app::AppError::NoSuchSpecPath(_) => ActionError::SpecPath(e),
        e => ActionError::App(e),
    })?;
    let (specs, problems) = match app::load_all_in(&files, root) {
        Ok(specs) => (specs, Vec::new()),
        Err(errors) => (Vec::new(), errors.diagnostics),
    };
    // Every secret a spec names, in every form, is masked before any decision or report is printed.
    for spec in &specs {
        secrets.learn(spec);
    }
    say(
        log,
        secrets,
        &format!(
            "flagramp {}: {} on `{}`, {} spec file(s)\n",
            env!("CARGO_PKG_VERSION"),
            op.describe(),
            renv.event_name,
            files.len()
        ),
    );
    if !problems.is_empty() {
        command(log, secrets, &commands::spec_annotations(&problems, root));
    }
    // With invalid specs there is nothing to pick from: the problems are the report.
    let specs = if specs.is_empty() {
        specs
    } else {
        app::select_all(specs, &names)?
    };

    let github = Arc::new(match &renv.graphql_url {
        Some(graphql_url) => GitHub::with_graphql(&renv.api_url, graphql_url, &inputs.github_token, &renv.repository)?,
        None => GitHub::new(&renv.api_url, &inputs.github_token, &renv.repository)?,
    });
    if op == Operation::List {
        return list(inputs, renv, &specs, &problems, &paths, github, secrets, log).await;
    }
    let pull_request = pull_request_number(&renv.event);
    let is_pr_event = matches!(renv.event_name.as_str(), "pull_request" | "pull_request_target");

    // Plans on a pull request cover the specs it changes, and those get no secrets where the
    // pull request could have redirected them.
    let specs = if is_pr_event && op == Operation::Plan {
        match pull_request {
            Some(pr) => {
                let changed = github.pull_request_files(pr).await?;
                specs
                    .into_iter()
                    .filter(|s| changed.iter().any(|c| Path::new(c) == s.file))
                    .collect()
            }
            None => specs,
        }
    } else {
        specs
    };
    if is_pr_event && op == Operation::Plan {
        let base = renv
            .event
            .pointer("/pull_request/base/ref")
            .and_then(Value::as_str)
            .map(str::to_string);
        for spec in &specs {
            let base_spec = match &base {
                Some(base) => base_version(&github, base, spec).await,
                None => None,
            };
            secrets.withhold(&spec.name, withheld(spec, base_spec.as_ref()));
        }
    }

    // Read once, for state, flag files and comment targets alike.
    let default_branch = if problems.is_empty() && op != Operation::Validate && !specs.is_empty() {
        Some(github.default_branch().await.map_err(ActionError::Repository)?)
    } else {
        None
    };
    let (reports, decided) = if problems.is_empty() && op != Operation::Validate {
        decide(
            inputs,
            renv,
            &request,
            &specs,
            github.clone(),
            default_branch.as_deref(),
            secrets,
        )
        .await?
    } else {
        (Vec::new(), Vec::new())
    };
    let records: Vec<DecisionRecord> = reports.iter().map(|r| r.record.clone()).collect();

    for r in &reports {
        command(
            log,
            secrets,
            &commands::group(&format!("{} ({})", r.record.rollout, r.record.decision.as_str())),
        );
        say(
            log,
            secrets,
            &report::text::decisions(std::slice::from_ref(&r.record), Target::GitHub),
        );
        command(log, secrets, "::endgroup::\n");
    }
    // Problems after the decisions were recorded (a notification not sent) change no decision.
    for r in &reports {
        for warning in &r.warnings {
            command(
                log,
                secrets,
                &commands::warning(&format!("flagramp: {}", r.record.rollout), &secrets.redact(warning)),
            );
        }
    }
    if op == Operation::Validate && problems.is_empty() {
        say(log, secrets, &format!("{} rollout spec(s) valid\n", specs.len()));
    }

    // Step outputs and summary.
    if let Some(path) = &renv.output {
        let outputs: Vec<(&str, String)> = step_outputs(&records)
            .into_iter()
            .map(|(k, v)| (k, secrets.redact(&v)))
            .collect();
        commands::write_outputs(path, &outputs).map_err(ActionError::Output)?;
    }
    // Pull request comments.
    if inputs.comment != CommentMode::Never {
        let (targets, unknown) = comment_targets(
            inputs,
            &op,
            is_pr_event,
            pull_request,
            &specs,
            &reports,
            &decided,
            &github,
            default_branch.as_deref(),
        )
        .await;
        if let Some(e) = unknown {
            command(log, secrets, &commands::warning(
                "flagramp: pull requests not looked up",
                &secrets.redact(&format!("could not ask GitHub which pull request last changed each spec ({e}), so rollouts with `report.pull_request: auto` get no comment this run")),
            ));
        }
        for (pr, (title, group)) in targets {
            let body = secrets.redact(&report::comment(
                comment::MARKER,
                &title,
                &group,
                if is_pr_event { &problems } else { &[] },
                &renv.run_url,
            ));
            match comment::upsert(&github, pr, &inputs.comment_author, &body).await {
                Ok(outcome) => say(log, secrets, &format!("pull request #{pr}: comment {outcome:?}\n")),
                Err(GitHubError::Forbidden(msg)) => command(log, secrets, &commands::warning(
                    "flagramp: cannot comment",
                    &secrets.redact(&format!("the token is read-only here (forks and Dependabot get read-only tokens), so no comment on #{pr}; the job summary has the report. ({msg})")),
                )),
                Err(e) => command(log, secrets, &commands::warning("flagramp: comment failed", &secrets.redact(&format!("#{pr}: {e}")))),
            }
        }
    }

    // A scheduled run says how late it started; the step log warns when that outlasts a bake.
    let schedule_note = if renv.event_name == "schedule" {
        let lag = crate::schedule::from_event(&renv.event, renv.started_at);
        let shortest_bake = shortest_bake(&specs);
        if let (Ok(lag), Some(bake)) = (&lag, shortest_bake) {
            if lag.exceeds(bake) {
                command(
                    log,
                    secrets,
                    &commands::warning(
                        "flagramp: scheduled run started late",
                        &report::summary::schedule_warning(lag, bake),
                    ),
                );
            }
        }
        report::summary::schedule_note(&lag, shortest_bake)
    } else {
        String::new()
    };
    // The summary comes after the comments, so the API use it ends with is the whole run's.
    let summary = if op == Operation::Validate && problems.is_empty() {
        format!("**flagramp** · {} rollout spec(s) valid\n", specs.len())
    } else {
        secrets.redact(&report::summary::summary_ending(
            &reports,
            &problems,
            &renv.run_url,
            &schedule_note,
            Some(&github.api_use()),
        ))
    };
    if let Some(path) = &renv.summary {
        commands::append(path, &summary).map_err(ActionError::Summary)?;
    }

    // Pull requests from forks (and Dependabot) get no secrets: a plan that cannot read a flag
    // for want of one is reported, with a warning, but does not fail the pull request's checks.
    let mut counted = records.clone();
    if is_pr_event {
        for spec in &specs {
            let missing: Vec<String> = secret_variables(std::slice::from_ref(spec))
                .into_iter()
                .filter(|v| !secrets.is_set(v))
                .collect();
            let warning = if !missing.is_empty() {
                commands::warning(
                    "flagramp: secrets unavailable",
                    &format!(
                        "`{}` could not be planned: {} not set for this pull request (forks and Dependabot get no secrets); the plan runs on the next scheduled run",
                        spec.name,
                        missing.join(", ")
                    ),
                )
            } else if secrets.withheld(&spec.name).is_some_and(|w| w.flag_provider) {
                commands::warning(
                    "flagramp: flag provider not read",
                    &format!(
                        "`{}`: {WITHHELD_PROVIDER}, so its token is not sent where the pull request could point it; the plan runs on the next scheduled run",
                        spec.name
                    ),
                )
            } else {
                continue;
            };
            counted.retain(|r| !(r.rollout == spec.name && r.decision == DecisionKind::Error));
            command(log, secrets, &warning);
        }
    }
    for refused in records.iter().filter(|r| r.refused) {
        command(
            log,
            secrets,
            &commands::error(
                &format!("flagramp: {} refused", op.describe()),
                &secrets.redact(&format!(
                    "{}: {} by {}: {}",
                    refused.rollout,
                    report::verb(refused),
                    refused.actor,
                    refused.reason
                )),
            ),
        );
    }
    Ok(exit_code(inputs.fail_on, &problems, &counted))
}

/// The shortest bake of any stage of `specs` that bakes at all: a run later than that lets such
/// a stage bake longer than its spec says. Stages with a zero bake move on whenever a run comes.
fn shortest_bake(specs: &[RolloutSpec]) -> Option<SpecDuration> {
    specs
        .iter()
        .flat_map(|s| &s.stages)
        .map(|stage| stage.bake)
        .filter(|bake| bake.as_secs() > 0)
        .min()
}

/// The step's outputs (action.yml `outputs:`). A plan or dry run did nothing, so it counts
/// nothing as done: `advanced`, `rolled_back`, `held` and `counts` are zero and `planned` is
/// `true`, and the `would_*` outputs say what the next run would do.
pub fn step_outputs(records: &[DecisionRecord]) -> Vec<(&'static str, String)> {
    let planned = records.iter().any(|r| r.planned);
    let (advanced, rolled_back, held) = report::tallies(records);
    let done = if planned {
        (0, 0, 0)
    } else {
        (advanced, rolled_back, held)
    };
    let would = if planned {
        (advanced, rolled_back, held)
    } else {
        (0, 0, 0)
    };
    let counted: &[DecisionRecord] = if planned { &[] } else { records };
    vec![
        (
            "decisions",
            serde_json::to_string(records).unwrap_or_else(|_| "[]".into()),
        ),
        (
            "counts",
            serde_json::to_string(&report::counts(counted)).unwrap_or_else(|_| "{}".into()),
        ),
        ("planned", planned.to_string()),
        ("advanced", done.0.to_string()),
        ("rolled_back", done.1.to_string()),
        ("held", done.2.to_string()),
        ("would_advance", would.0.to_string()),
        ("would_roll_back", would.1.to_string()),
        ("would_hold", would.2.to_string()),
    ]
}

/// The spec as the pull request's base branch has it; `None` when it is new there, or cannot
/// be read or parsed (then everything in it counts as changed: the safe direction).
async fn base_version(github: &GitHub, base: &str, spec: &RolloutSpec) -> Option<RolloutSpec> {
    let file = github
        .get_file(base, &app::repository_path(&spec.file))
        .await
        .ok()
        .flatten()?;
    let text = String::from_utf8(file.content).ok()?;
    spec::parse_spec(&spec.file, &text).0
}

/// What a pull request's plan of `spec` may not use, compared with the base branch's version:
/// sources whose URL, auth or headers differ (or are new), and a flag provider whose address
/// or token variable differs. Command checks never get their `env:` on such a plan.
pub fn withheld(spec: &RolloutSpec, base: Option<&RolloutSpec>) -> Withheld {
    let sources = spec
        .sources
        .iter()
        .filter(|(name, source)| {
            let before = base.and_then(|b| b.sources.get(*name));
            !matches!(before, Some(was)
                if was.provider == source.provider && was.http.url == source.http.url
                    && was.http.auth == source.http.auth && was.http.headers == source.http.headers)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let flag_provider = match &spec.flag.provider {
        ProviderSpec::Flagd { .. } => false,
        provider => base.map(|b| &b.flag.provider) != Some(provider),
    };
    Withheld { sources, flag_provider }
}

fn pull_request_number(event: &Value) -> Option<u64> {
    event
        .pointer("/pull_request/number")
        .and_then(Value::as_u64)
        .or_else(|| event.get("number").and_then(Value::as_u64))
}

/// The step's exit code. A refused manual command fails the step whatever `fail_on` says: the
/// person who dispatched it must not see green when nothing happened.
pub fn exit_code(fail_on: FailOn, problems: &[Diagnostic], records: &[DecisionRecord]) -> u8 {
    if records.iter().any(|r| r.refused) {
        return crate::exit::REFUSED;
    }
    let errors = !problems.is_empty() || records.iter().any(|r| r.decision == DecisionKind::Error);
    let rollbacks = records
        .iter()
        .any(|r| matches!(r.decision, DecisionKind::Rollback | DecisionKind::Disable));
    match fail_on {
        FailOn::Never => 0,
        FailOn::Error => u8::from(errors),
        FailOn::Rollback => u8::from(errors || rollbacks),
    }
}

/// Where the flag lives, as Markdown (every part from the spec escaped).
fn provider_text(spec: &RolloutSpec, default_branch: &str) -> String {
    let code = |text: &str| format!("<code>{}</code>", escape::markdown(text));
    match &spec.flag.provider {
        ProviderSpec::Flagd { path, branch } => format!(
            "flagd file {} on {}",
            code(&path.to_string_lossy()),
            code(branch.as_deref().unwrap_or(default_branch))
        ),
        ProviderSpec::Unleash {
            url,
            project,
            environment,
            ..
        } => format!("Unleash {}/{} at {}", code(project), code(environment), code(url)),
        ProviderSpec::LaunchDarkly {
            project, environment, ..
        } => format!("LaunchDarkly {}/{}", code(project), code(environment)),
    }
}

async fn decide(
    inputs: &Inputs,
    renv: &ActionEnv,
    request: &Request,
    specs: &[RolloutSpec],
    github: Arc<GitHub>,
    default_branch: Option<&str>,
    secrets: &Secrets,
) -> Result<(Vec<RolloutReport>, Vec<Decided>), ActionError> {
    let Some(default_branch) = default_branch.filter(|_| !specs.is_empty()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let run = RunRequest {
        operation: request.op,
        rollout: request.rollout.clone(),
        spec_paths: Vec::new(),
        now: None,
        actor: renv.actor.clone(),
        reason: request.reason.clone(),
        dry_run: request.dry_run,
        repo_root: renv.workspace.clone(),
        place: Place::GitHub {
            github,
            state_branch: inputs.state_branch.clone(),
            default_branch: default_branch.to_string(),
        },
        budget: Some(Deadline::since(renv.started, inputs.time_budget.to_std())),
        include_orphans: false,
        concurrency: crate::runner::DEFAULT_CONCURRENCY,
        run_url: Some(renv.run_url.clone()),
        // The step log is no terminal: a progress bar there is noise.
        progress: None,
    };
    let runner = app::runner(&run, secrets).await?;
    let provider = |spec: &RolloutSpec| provider_text(spec, default_branch);
    // Decisions carry the history they leave behind; only `status` reads state on its own.
    match app::run_with(&runner, &run, specs).await? {
        Outcome::Statuses(statuses) => {
            let reports = specs
                .iter()
                .zip(statuses)
                .map(|(spec, status)| {
                    let record = crate::engine::status_record(&status, runner.now, &runner.actor);
                    report(record, provider(spec), spec, status.history)
                })
                .collect();
            Ok((reports, Vec::new()))
        }
        Outcome::Decided(decided) => {
            let reports = specs
                .iter()
                .zip(&decided)
                .map(|(spec, d)| {
                    let mut report = report(d.record.clone(), provider(spec), spec, d.history.clone());
                    report.warnings = d.warnings.clone();
                    report
                })
                .collect();
            Ok((reports, decided))
        }
        Outcome::Validated => Ok((Vec::new(), Vec::new())),
    }
}

/// One rollout's report; this run's own record is shown once, not again as history.
fn report(
    record: DecisionRecord,
    provider: String,
    spec: &RolloutSpec,
    mut history: Vec<DecisionRecord>,
) -> RolloutReport {
    if history.last() == Some(&record) {
        history.pop();
    }
    RolloutReport {
        record,
        provider,
        stages: spec.stage_percents(),
        history,
        warnings: Vec::new(),
    }
}

/// Which pull request gets which rollouts, with the comment's title; beside it, why `auto`
/// pull requests could not be looked up, if they could not.
#[allow(clippy::too_many_arguments)]
async fn comment_targets(
    inputs: &Inputs,
    op: &Operation,
    is_pr_event: bool,
    pull_request: Option<u64>,
    specs: &[RolloutSpec],
    reports: &[RolloutReport],
    decided: &[Decided],
    github: &GitHub,
    default_branch: Option<&str>,
) -> (BTreeMap<u64, (String, Vec<RolloutReport>)>, Option<GitHubError>) {
    let mut targets: BTreeMap<u64, (String, Vec<RolloutReport>)> = BTreeMap::new();
    if is_pr_event {
        if let Some(pr) = pull_request {
            let title = if *op == Operation::Plan {
                "flagramp plan for this pull request"
            } else {
                "flagramp"
            };
            targets.insert(pr, (title.to_string(), reports.to_vec()));
        }
        return (targets, None);
    }
    let Some(default_branch) = default_branch.filter(|_| !reports.is_empty()) else {
        return (targets, None);
    };
    let due: Vec<(&RolloutSpec, &RolloutReport)> = specs
        .iter()
        .zip(reports)
        .enumerate()
        .filter(|(i, _)| inputs.comment != CommentMode::Auto || decided.get(*i).is_some_and(|d| d.changed_state))
        .map(|(_, pair)| pair)
        .collect();
    let due_specs: Vec<&RolloutSpec> = due.iter().map(|(spec, _)| *spec).collect();
    let (to, unknown) = app::reports_to(&due_specs, Some((github, default_branch))).await;
    for ((_, report), to) in due.into_iter().zip(to) {
        if let ReportTo::PullRequest(pr) = to {
            targets
                .entry(pr)
                .or_insert_with(|| ("flagramp rollout status".to_string(), Vec::new()))
                .1
                .push(report.clone());
        }
    }
    (targets, unknown)
}

/// `command: list`: the rollouts in chunks, the matrix in the `matrix` output, the listing in
/// the step log and the job summary. Invalid specs give no matrix and fail the step, whatever
/// `fail_on` says: a fan-out of nothing would report nothing.
#[allow(clippy::too_many_arguments)]
async fn list(
    inputs: &Inputs,
    renv: &ActionEnv,
    specs: &[RolloutSpec],
    problems: &[Diagnostic],
    paths: &[PathBuf],
    github: Arc<GitHub>,
    secrets: &Secrets,
    log: StepLog<'_>,
) -> Result<u8, ActionError> {
    if !problems.is_empty() {
        if let Some(path) = &renv.summary {
            let summary = secrets.redact(&report::summary(&[], problems, &renv.run_url));
            commands::append(path, &summary).map_err(ActionError::Summary)?;
        }
        return Ok(1);
    }
    if specs.is_empty() {
        return Err(ActionError::App(app::AppError::NoSpecs(paths.to_vec())));
    }
    let client = github.clone();
    let request = ListRequest {
        max_jobs: inputs.max_jobs,
        lookup: Lookup::GitHub { github, branch: None },
    };
    let listing = app::list::list(specs, &request).await?;
    say(log, secrets, &listing.text());
    if let Some(note) = &listing.note {
        command(
            log,
            secrets,
            &commands::warning("flagramp: pull requests not looked up", &secrets.redact(note)),
        );
    }
    if let Some(path) = &renv.output {
        let matrix = secrets.redact(&listing.matrix().to_string());
        commands::write_outputs(path, &[("matrix", matrix)]).map_err(ActionError::Output)?;
    }
    if let Some(path) = &renv.summary {
        let used = report::summary::api_use_line(&client.api_use());
        let text = format!("{}\n{used}\n", listing.markdown());
        commands::append(path, &secrets.redact(&text)).map_err(ActionError::Summary)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Inputs, ActionError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Inputs::read(&|name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn input_errors_read_as_before_and_keep_their_cause() {
        let err = read(&[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `github_token` is empty: keep its default `${{ github.token }}` or pass a token"
        );
        let err = read(&[("INPUT_GITHUB_TOKEN", "t"), ("INPUT_DRY_RUN", "Maybe")]).unwrap_err();
        assert_eq!(err.to_string(), "input `dry_run` is `maybe`; use true or false");
        assert!(std::error::Error::source(&err).is_some());
        let err = read(&[("INPUT_GITHUB_TOKEN", "t"), ("INPUT_COMMENT", "loud")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "input `comment` is `loud`; use one of: auto, always, never"
        );

        let inputs = read(&[("INPUT_GITHUB_TOKEN", "t")]).unwrap();
        let event = serde_json::json!({ "inputs": { "force": 3, "dry_run": "nope" } });
        let err = operation(&inputs, "workflow_dispatch", &event).unwrap_err();
        assert_eq!(err.to_string(), "dispatch input `force` is `3`; use true or false");
        let err = operation(&inputs, "push", &Value::Null).unwrap_err();
        assert!(matches!(err, ActionError::AutoOnEvent(ref e) if e == "push"), "{err:?}");
    }

    #[test]
    fn a_repository_dispatch_is_read_like_dispatch_inputs_and_the_steps_inputs_still_apply() {
        let event = serde_json::json!({
            "action": REPOSITORY_DISPATCH_TYPE,
            "client_payload": { "command": " Rollback ", "rollout": "checkout", "reason": "  5xx  " }
        });
        let inputs = read(&[("INPUT_GITHUB_TOKEN", "t")]).unwrap();
        let request = operation(&inputs, "repository_dispatch", &event).unwrap();
        assert_eq!(request.op, Operation::Manual(ManualOp::Rollback));
        assert_eq!(request.rollout.as_deref(), Some("checkout"));
        assert_eq!(request.reason, "5xx");
        assert!(!request.dry_run);
        // The step's own dry_run and reason apply; its force does not fit a rollback.
        let inputs = read(&[
            ("INPUT_GITHUB_TOKEN", "t"),
            ("INPUT_DRY_RUN", "true"),
            ("INPUT_REASON", "drill"),
        ])
        .unwrap();
        let request = operation(&inputs, "repository_dispatch", &event).unwrap();
        assert!(request.dry_run);
        assert_eq!(request.reason, "drill");
        let inputs = read(&[("INPUT_GITHUB_TOKEN", "t"), ("INPUT_FORCE", "true")]).unwrap();
        let err = operation(&inputs, "repository_dispatch", &event).unwrap_err();
        assert!(
            matches!(err, ActionError::ForceWithout(ref c) if c == "rollback"),
            "{err:?}"
        );
    }

    /// A step whose `command:` says advance (fixed, or taken from the payload by an expression)
    /// is refused on a repository_dispatch event like a payload that says it.
    #[test]
    fn an_advance_never_runs_on_a_repository_dispatch_whoever_names_it() {
        let event = serde_json::json!({
            "action": REPOSITORY_DISPATCH_TYPE,
            "client_payload": { "command": "rollback", "rollout": "checkout" }
        });
        let inputs = read(&[
            ("INPUT_GITHUB_TOKEN", "t"),
            ("INPUT_COMMAND", "advance"),
            ("INPUT_ROLLOUT", "checkout"),
        ])
        .unwrap();
        let err = operation(&inputs, "repository_dispatch", &event).unwrap_err();
        assert!(matches!(err, ActionError::DispatchAdvance), "{err:?}");
        // The same step on a workflow_dispatch event is the gated job's own advance.
        let request = operation(&inputs, "workflow_dispatch", &serde_json::json!({})).unwrap();
        assert!(matches!(request.op, Operation::Manual(ManualOp::Advance { .. })));
    }
}
