//! Command-line parsing (clap stays in this module) and wiring to the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use flagramp::duration::SpecDuration;
use flagramp::engine::{self, ManualOp};
use flagramp::escape::plain;
use flagramp::exit;
use flagramp::http::Deadline;
use flagramp::provider::FlagFiles;
use flagramp::record::DecisionRecord;
use flagramp::render;
use flagramp::runner::{Decided, Mode, Runner};
use flagramp::schema::{self, SchemaKind};
use flagramp::secrets::Secrets;
use flagramp::spec::{self, RolloutSpec, SpecErrors, DEFAULT_SPEC_DIR};
use flagramp::state::{LocalStateStore, StateError, StateStore};

/// Roll a feature flag out in stages (10% → 50% → 100%), only while its metrics stay healthy.
///
/// Specs are YAML files (default: every *.yml/*.yaml under .github/rollouts). Exit codes: 0 every
/// rollout decided (hold, drift and rollback included); 1 an invalid spec or a rollout that ended
/// in error; 2 a usage error; 3 a manual command was refused and changed nothing (an advance its
/// checks refused, a rollback of a flag that is off, another run holding the state lock).
#[derive(Debug, Parser)]
#[command(name = "flagramp", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Debug, Args)]
struct Global {
    /// Directory of local state files (one JSON file per rollout).
    #[arg(
        long,
        global = true,
        env = "FLAGRAMP_STATE_DIR",
        default_value = ".flagramp/state",
        value_name = "DIR"
    )]
    state_dir: PathBuf,
    /// Evaluate as if it were this time (RFC 3339, e.g. 2026-11-24T10:00:00Z) instead of now.
    #[arg(long, global = true, value_name = "RFC3339")]
    now: Option<String>,
    /// Output format: text or json (for `schema`: spec, decision or status).
    #[arg(long, global = true, default_value = "text", value_name = "FORMAT")]
    output: String,
    /// Who is acting, recorded with manual commands [default: $GITHUB_ACTOR, $USER].
    #[arg(long, global = true, env = "FLAGRAMP_ACTOR", value_name = "NAME")]
    actor: Option<String>,
    /// How long a run waits for another local run to release the state lock, then decides with
    /// the state that run left (e.g. 0s, 90s, 5m).
    #[arg(long, global = true, default_value = "60s", value_name = "DURATION", value_parser = SpecDuration::parse)]
    lock_wait: SpecDuration,
    /// The run's total time (e.g. 90s, 10m): rollouts whose turn comes after it is spent hold
    /// with "time budget exhausted", unread and unchanged.
    #[arg(long, global = true, default_value = "10m", value_name = "DURATION")]
    time_budget: String,
}

/// `[NAME] [PATH]…`: NAME picks one rollout; PATHs are spec files or directories.
#[derive(Debug, Args)]
struct Targets {
    /// A rollout name, then spec files or directories (default: .github/rollouts).
    #[arg(value_name = "NAME|PATH")]
    args: Vec<String>,
}

/// `NAME [PATH]…` for commands that act on one rollout.
#[derive(Debug, Args)]
struct Named {
    /// The rollout to act on.
    name: String,
    /// Spec files or directories (default: .github/rollouts).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Why, recorded in the rollout's history.
    #[arg(long, default_value = "")]
    reason: String,
    /// Decide and print, but change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check specs and report every problem as file:line:col.
    Validate(Targets),
    /// Decide what the next run would do; change nothing.
    Plan(Targets),
    /// Decide and act: start, advance, hold, roll back or complete each rollout.
    Run(Targets),
    /// Show each rollout's stages, position and recent history.
    Status(Targets),
    /// Move one stage up now (from off: start), ignoring bake and window; checks must pass unless --force.
    Advance {
        #[command(flatten)]
        named: Named,
        /// Advance even when a check does not pass; the checks are still queried and recorded.
        #[arg(long)]
        force: bool,
    },
    /// Move one stage down now (from the first stage: off) and lock against advancing.
    Rollback(Named),
    /// Stop advancing (rollbacks stay armed).
    Pause(Named),
    /// Restart advancing; adopts a value a person set on the flag.
    Resume(Named),
    /// Print a JSON Schema: --output spec, decision or status.
    Schema,
    /// Run as the GitHub Action: read inputs, event and repository from the runner's environment.
    Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// A usage error (exit 2), as opposed to a failure of the work itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::DECIDED });
        }
    };
    // One registry of secrets for the whole process, so that every line on stderr (log events,
    // the final error) passes the same redaction as stdout, state and reports. In Action mode it
    // also masks each secret as it is registered.
    let secrets = if matches!(cli.command, Command::Action) {
        Secrets::masking()
    } else {
        Secrets::new()
    };
    let log_secrets = secrets.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FLAGRAMP_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(move || RedactedStderr(log_secrets.clone()))
        .without_time()
        .init();
    // A panic is a bug. It is reported as one log line, not as Rust's panic report: its message
    // reaches the person through the rollout's `error` decision (redacted like every reason),
    // or through the catch below when it happened outside a rollout.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        tracing::error!(%location, "internal error (a bug in flagramp, please report it)");
    }));
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            say_error(&secrets, &format!("flagramp: cannot start the async runtime: {e}"));
            return ExitCode::from(exit::INVALID);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(run(cli, secrets.clone()))
    }));
    let result = match outcome {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            say_error(
                &secrets,
                &format!("flagramp: internal error (a bug in flagramp, please report it): {message}"),
            );
            return ExitCode::from(exit::INVALID);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(spec_errors) = err.downcast_ref::<SpecErrors>() {
                say_error(&secrets, &spec_errors.to_string());
                return ExitCode::from(exit::INVALID);
            }
            say_error(&secrets, &format!("flagramp: {err:#}"));
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(exit::USAGE)
            } else if err.downcast_ref::<Refused>().is_some() {
                ExitCode::from(exit::REFUSED)
            } else {
                ExitCode::from(exit::INVALID)
            }
        }
    }
}

/// A manual command that could not even be decided (another run holds the state): exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Writes a line to stderr; a closed stderr loses the line but never panics.
fn say_error(secrets: &Secrets, text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", secrets.redact(text));
}

/// Stderr for log events, redacted: an event may carry text from outside (a provider's error).
struct RedactedStderr(Secrets);

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes one whole event per call, so a secret is never split across calls.
        let text = self.0.redact(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn parse_now(now: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    let Some(text) = now else { return Ok(Utc::now()) };
    let at = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            usage(format!(
                "--now `{text}` is not an RFC 3339 time ({e}); write e.g. 2026-11-24T10:00:00Z"
            ))
        })?;
    // `9999-12-31T23:00:00-05:00` parses, but lies in the year 10000 (and its records could
    // not be written in RFC 3339).
    if !engine::in_time_range(at) {
        return Err(usage(format!(
            "--now `{text}` lies outside the years 0000–9999 (in UTC), which is all flagramp works with"
        )));
    }
    Ok(at)
}

fn looks_like_path(arg: &str) -> bool {
    arg.contains('/') || arg.ends_with(".yml") || arg.ends_with(".yaml") || Path::new(arg).exists()
}

/// Splits `[NAME] [PATH]…`.
fn split_targets(args: &[String]) -> (Option<String>, Vec<PathBuf>) {
    match args.split_first() {
        Some((first, rest)) if !looks_like_path(first) => {
            (Some(first.clone()), rest.iter().map(PathBuf::from).collect())
        }
        _ => (None, args.iter().map(PathBuf::from).collect()),
    }
}

fn load_specs(paths: Vec<PathBuf>) -> anyhow::Result<Vec<RolloutSpec>> {
    let paths = if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_SPEC_DIR)]
    } else {
        paths
    };
    for p in &paths {
        if !p.exists() {
            return Err(usage(format!(
                "spec path {} does not exist: pass spec files or directories (the default is {DEFAULT_SPEC_DIR})",
                p.display()
            )));
        }
    }
    let files = spec::discover(&paths)?;
    if files.is_empty() {
        return Err(usage(format!(
            "no rollout specs (*.yml, *.yaml) found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(spec::load_all(&files)?)
}

fn select(specs: Vec<RolloutSpec>, name: Option<&str>) -> anyhow::Result<Vec<RolloutSpec>> {
    let Some(name) = name else { return Ok(specs) };
    if specs.iter().any(|s| s.name == name) {
        return Ok(specs.into_iter().filter(|s| s.name == name).collect());
    }
    let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    Err(usage(format!(
        "unknown rollout `{name}`; rollouts in these specs: {}",
        known.join(", ")
    )))
}

fn format_of(output: &str) -> anyhow::Result<Format> {
    match output {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        other => Err(usage(format!("--output `{other}` is not a format: use text or json"))),
    }
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        // A closed pipe (`flagramp status | head`) is not a failure of the work.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints decisions; the text passes the runner's secrets once more on its way out.
fn print_decisions(decided: Vec<Decided>, format: Format, secrets: &Secrets) -> anyhow::Result<ExitCode> {
    flagramp::crashpoint::pause_at("during-report");
    let records: Vec<DecisionRecord> = decided.into_iter().map(|d| d.record).collect();
    let records = records.as_slice();
    match format {
        Format::Json => print(&secrets.redact(&(serde_json::to_string_pretty(records)? + "\n")))?,
        Format::Text => print(&secrets.redact(&render::decisions(records)))?,
    }
    Ok(exit::for_decisions(records))
}

/// The output format, the rollout name if one was given, and the selected specs.
fn targeted(global: &Global, targets: &Targets) -> anyhow::Result<(Format, Option<String>, Vec<RolloutSpec>)> {
    let format = format_of(&global.output)?;
    let (name, paths) = split_targets(&targets.args);
    let specs = select(load_specs(paths)?, name.as_deref())?;
    Ok((format, name, specs))
}

fn default_actor() -> String {
    ["GITHUB_ACTOR", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

async fn run(cli: Cli, secrets: Secrets) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    let fixed_now = global.now.as_deref().map(|t| parse_now(Some(t))).transpose()?;
    let budget = SpecDuration::parse(&global.time_budget).map_err(|e| usage(format!("--time-budget: {e}")))?;
    let budget = Deadline::after(budget.to_std());
    let repo_root = std::env::current_dir().context("cannot read the current directory")?;
    // The clock is read when the runner is built, after any wait for the state lock.
    let runner = |store: Box<dyn StateStore>, actor: String| Runner {
        store,
        repo_root: repo_root.clone(),
        flag_files: FlagFiles::Local(repo_root.clone()),
        now: fixed_now.unwrap_or_else(Utc::now),
        actor,
        secrets: secrets.clone(),
        budget: Some(budget),
    };

    match cli.command {
        Command::Action => Ok(ExitCode::from(flagramp::action::run(secrets.clone()).await)),
        Command::Schema => {
            let kind = match global.output.as_str() {
                "spec" | "text" => SchemaKind::Spec,
                "decision" => SchemaKind::Decision,
                "status" => SchemaKind::Status,
                other => {
                    return Err(usage(format!(
                        "schema --output `{other}`: use spec, decision or status"
                    )))
                }
            };
            print(&(schema::render(kind) + "\n"))?;
            Ok(ExitCode::from(exit::DECIDED))
        }
        Command::Validate(targets) => {
            let format = format_of(&global.output)?;
            let (name, paths) = split_targets(&targets.args);
            match load_specs(paths).and_then(|s| select(s, name.as_deref())) {
                Ok(specs) => {
                    match format {
                        Format::Json => {
                            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                            print(
                                &(serde_json::to_string_pretty(
                                    &serde_json::json!({ "valid": true, "rollouts": names, "problems": [] }),
                                )? + "\n"),
                            )?
                        }
                        Format::Text => {
                            let mut out = String::new();
                            for s in &specs {
                                let stages: Vec<String> = s
                                    .stages
                                    .iter()
                                    .map(|st| format!("{} ({})", st.percent, st.bake))
                                    .collect();
                                out += &format!(
                                    "ok {} ({}): flag {} via {}, stages {}, {} check{}\n",
                                    plain(&s.name),
                                    plain(&s.file.display().to_string()),
                                    plain(&s.flag.key),
                                    s.flag.provider.name(),
                                    stages.join(" → "),
                                    s.checks.len(),
                                    if s.checks.len() == 1 { "" } else { "s" }
                                );
                            }
                            print(&out)?
                        }
                    }
                    Ok(ExitCode::from(exit::DECIDED))
                }
                Err(err) => match (format, err.downcast_ref::<SpecErrors>()) {
                    (Format::Json, Some(spec_errors)) => {
                        print(
                            &(serde_json::to_string_pretty(
                                &serde_json::json!({ "valid": false, "rollouts": [], "problems": spec_errors.diagnostics }),
                            )? + "\n"),
                        )?;
                        say_error(&secrets, &spec_errors.to_string());
                        Ok(ExitCode::from(exit::INVALID))
                    }
                    _ => Err(err),
                },
            }
        }
        Command::Plan(targets) => {
            let (format, _, specs) = targeted(&global, &targets)?;
            let r = runner(
                Box::new(LocalStateStore::read_only(&global.state_dir)),
                "flagramp".into(),
            );
            print_decisions(r.decide_all(&specs, &Mode::Plan).await, format, &r.secrets)
        }
        Command::Run(targets) => {
            let (format, _, specs) = targeted(&global, &targets)?;
            let r = runner(
                Box::new(LocalStateStore::for_writing(
                    &global.state_dir,
                    global.lock_wait.to_std(),
                )?),
                "flagramp".into(),
            );
            print_decisions(r.decide_all(&specs, &Mode::Run).await, format, &r.secrets)
        }
        Command::Status(targets) => {
            let (format, name, specs) = targeted(&global, &targets)?;
            let r = runner(
                Box::new(LocalStateStore::read_only(&global.state_dir)),
                "flagramp".into(),
            );
            let statuses = r.status(&specs, name.is_none()).await?;
            match format {
                Format::Json => print(&r.secrets.redact(&(serde_json::to_string_pretty(&statuses)? + "\n")))?,
                Format::Text => print(&r.secrets.redact(&render::statuses(&statuses)))?,
            }
            Ok(ExitCode::from(exit::DECIDED))
        }
        Command::Advance { named, force } => manual(&global, named, ManualOp::Advance { force }, &runner).await,
        Command::Rollback(named) => manual(&global, named, ManualOp::Rollback, &runner).await,
        Command::Pause(named) => manual(&global, named, ManualOp::Pause, &runner).await,
        Command::Resume(named) => manual(&global, named, ManualOp::Resume, &runner).await,
    }
}

async fn manual(
    global: &Global,
    named: Named,
    op: ManualOp,
    runner: &impl Fn(Box<dyn StateStore>, String) -> Runner,
) -> anyhow::Result<ExitCode> {
    let format = format_of(&global.output)?;
    let specs = select(load_specs(named.paths)?, Some(&named.name))?;
    if named.name.trim().is_empty() {
        bail!(usage("a rollout name is required"));
    }
    let actor = global.actor.clone().unwrap_or_else(default_actor);
    let store: Box<dyn StateStore> = if named.dry_run {
        Box::new(LocalStateStore::read_only(&global.state_dir))
    } else {
        match LocalStateStore::for_writing(&global.state_dir, global.lock_wait.to_std()) {
            Ok(store) => Box::new(store),
            // The person's command did not happen: exit 3 like any refusal, not 1 (a failure).
            Err(StateError::Locked(why)) => {
                return Err(Refused(format!("`{} {}` refused: {why}", op.command(), named.name)).into())
            }
            Err(e) => return Err(e.into()),
        }
    };
    let r = runner(store, actor);
    let mode = Mode::Manual {
        op,
        reason: named.reason,
        dry_run: named.dry_run,
    };
    print_decisions(r.decide_all(&specs, &mode).await, format, &r.secrets)
}
