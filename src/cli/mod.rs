//! The front ends: the command line and the GitHub Action. Only this folder (and `main.rs`)
//! reads the process environment, changes directory, prints and chooses the exit code; the
//! library gets everything as a request (`flagramp::app::RunRequest`) and returns data.

mod action;
mod args;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser};

use flagramp::app::list::{ListRequest, Lookup};
use flagramp::app::{self, AppError, Operation, Outcome, Place, RunRequest};
use flagramp::duration::SpecDuration;
use flagramp::engine::{self, ManualOp};
use flagramp::escape::plain;
use flagramp::exit;
use flagramp::github::GitHub;
use flagramp::http::Deadline;
use flagramp::percent::Percent;
use flagramp::record::DecisionRecord;
use flagramp::report::{self, Target};
use flagramp::runner::Decided;
use flagramp::schema::{self, SchemaKind};
use flagramp::secrets::Secrets;
use flagramp::simulate::SimulateRequest;
use flagramp::spec::{RolloutSpec, SpecErrors, DEFAULT_SPEC_DIR};

use args::{Cli, Command, Format, Global, ListFormat, Named, Targets};

/// A usage error (exit 2), as opposed to a failure of the work itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The log filter: `FLAGRAMP_LOG`, else `RUST_LOG`, else `warn` (`debug` in an Action step
/// re-run with debug logging, which sets `RUNNER_DEBUG=1`).
fn log_filter(action: bool) -> tracing_subscriber::EnvFilter {
    let configured = ["FLAGRAMP_LOG", "RUST_LOG"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .and_then(|text| tracing_subscriber::EnvFilter::try_new(text).ok());
    configured.unwrap_or_else(|| {
        let debug = action && std::env::var("RUNNER_DEBUG").is_ok_and(|v| v == "1");
        tracing_subscriber::EnvFilter::new(if debug { "debug" } else { "warn" })
    })
}

/// Arms the debug builds' test hooks from their variables (see `flagramp::crashpoint`).
fn arm_test_hooks() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    flagramp::crashpoint::arm(flagramp::crashpoint::Hooks {
        pause_at: var("FLAGRAMP_TEST_PAUSE_AT"),
        announce: Some(|line| {
            let mut stderr = std::io::stderr();
            let _ = writeln!(stderr, "{line}");
            let _ = stderr.flush();
        }),
        panic_in_rollout: var(flagramp::runner::INJECT_PANIC_VAR),
    });
}

/// Writes to stdout at once; a closed pipe loses the text but never panics.
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush())
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::DECIDED });
        }
    };
    let is_action = matches!(cli.command, Command::Action);
    // One registry of secrets for the whole process, so that every line on stderr (log events,
    // the final error) passes the same redaction as stdout, state and reports. In Action mode it
    // also masks each secret in the step log as it is registered.
    let secrets = if is_action {
        Secrets::masking(std::sync::Arc::new(|masks: &str| {
            let _ = write_stdout(masks);
        }))
    } else {
        Secrets::new()
    };
    let log_secrets = secrets.clone();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(is_action))
        .with_writer(move || RedactedStderr(log_secrets.clone()))
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    arm_test_hooks();
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
            let app_error = err.downcast_ref::<AppError>();
            if let Some(AppError::Spec(spec_errors)) = app_error {
                say_error(&secrets, &spec_errors.to_string());
                return ExitCode::from(exit::INVALID);
            }
            say_error(&secrets, &format!("flagramp: {err:#}"));
            let usage_error = err.downcast_ref::<UsageError>().is_some()
                || matches!(
                    app_error,
                    Some(AppError::NoSuchSpecPath(_) | AppError::NoSpecs(_) | AppError::UnknownRollout { .. })
                );
            if usage_error {
                ExitCode::from(exit::USAGE)
            } else if matches!(app_error, Some(AppError::Refused { .. })) {
                ExitCode::from(exit::REFUSED)
            } else {
                ExitCode::from(exit::INVALID)
            }
        }
    }
}

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

fn parse_now(text: &str) -> anyhow::Result<DateTime<Utc>> {
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

/// The spec paths given, or the default directory.
fn spec_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_SPEC_DIR)]
    } else {
        paths
    }
}

/// Loads and selects specs; a missing path gets the CLI's own hint.
fn load_specs(paths: &[PathBuf], rollout: Option<&str>) -> anyhow::Result<Vec<RolloutSpec>> {
    let root = std::env::current_dir().context("cannot read the current directory")?;
    let specs = app::load_specs_in(paths, &root).map_err(|e| match e {
        AppError::NoSuchSpecPath(_) => anyhow::Error::new(e).context(format!(
            "pass spec files or directories (the default is {DEFAULT_SPEC_DIR})"
        )),
        e => e.into(),
    })?;
    Ok(app::select(specs, rollout)?)
}

/// The workflow run, when the CLI runs in a GitHub Actions job: notifications link to it.
fn actions_run_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL")?,
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

fn print(text: &str) -> anyhow::Result<()> {
    match write_stdout(text) {
        // A closed pipe (`flagramp status | head`) is not a failure of the work.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints decisions; the text passes the runner's secrets once more on its way out.
fn print_decisions(decided: Vec<Decided>, format: Format, secrets: &Secrets) -> anyhow::Result<ExitCode> {
    flagramp::crashpoint::pause_at("during-report");
    // Problems after the decisions were recorded (a notification not sent) change no decision
    // and no exit code: they go to stderr, beside the output.
    for d in &decided {
        for warning in &d.warnings {
            say_error(
                secrets,
                &format!("flagramp: warning: {}: {}", plain(&d.record.rollout), plain(warning)),
            );
        }
    }
    let records: Vec<DecisionRecord> = decided.into_iter().map(|d| d.record).collect();
    let records = records.as_slice();
    match format {
        Format::Json => print(&secrets.redact(&(serde_json::to_string_pretty(records)? + "\n")))?,
        Format::Text => print(&secrets.redact(&report::text::decisions(records, Target::Cli)))?,
    }
    Ok(exit::for_decisions(records))
}

fn default_actor() -> String {
    ["GITHUB_ACTOR", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// The request every CLI command but `validate`, `schema` and `action` makes.
struct Request {
    run: RunRequest,
    format: Format,
}

fn request(global: &Global, operation: Operation, targets: Targets) -> anyhow::Result<Request> {
    let (rollout, paths) = split_targets(&targets.args);
    let mut request = base_request(global, operation, rollout, paths)?;
    request.include_orphans = request.rollout.is_none();
    Ok(Request {
        run: request,
        format: targets.output.output,
    })
}

fn manual_request(global: &Global, op: ManualOp, named: Named) -> anyhow::Result<Request> {
    if named.name.trim().is_empty() {
        return Err(usage("a rollout name is required"));
    }
    let mut request = base_request(global, Operation::Manual(op), Some(named.name), named.paths)?;
    request.reason = named.reason;
    request.dry_run = named.dry_run;
    request.actor = global.actor.clone().unwrap_or_else(default_actor);
    Ok(Request {
        run: request,
        format: named.output.output,
    })
}

fn base_request(
    global: &Global,
    operation: Operation,
    rollout: Option<String>,
    paths: Vec<PathBuf>,
) -> anyhow::Result<RunRequest> {
    let now = global.now.as_deref().map(parse_now).transpose()?;
    let budget = SpecDuration::parse(&global.time_budget).map_err(|e| usage(format!("--time-budget: {e}")))?;
    Ok(RunRequest {
        operation,
        rollout,
        spec_paths: spec_paths(paths),
        now,
        actor: app::AUTOMATIC_ACTOR.to_string(),
        reason: String::new(),
        dry_run: false,
        repo_root: std::env::current_dir().context("cannot read the current directory")?,
        place: Place::Local {
            state_dir: global.state_dir.clone(),
            lock_wait: global.lock_wait.to_std(),
        },
        budget: Some(Deadline::after(budget.to_std())),
        include_orphans: false,
        concurrency: global.concurrency,
        run_url: actions_run_url(),
        progress: None,
    })
}

/// A progress bar on stderr as a run decides its rollouts (`report::text::should_show_progress`
/// says when).
#[derive(Debug)]
struct TerminalProgress(indicatif::ProgressBar);

impl TerminalProgress {
    fn new() -> TerminalProgress {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
            // Gone when dropped, however the run ends (an error before `finish` included).
            .with_finish(indicatif::ProgressFinish::AndClear);
        let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rollouts decided ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        TerminalProgress(bar)
    }
}

impl flagramp::runner::Progress for TerminalProgress {
    fn start(&self, rollouts: usize) {
        self.0.set_length(rollouts as u64);
    }
    fn decided(&self) {
        self.0.inc(1);
    }
    /// Gone before the report is printed.
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

async fn run(cli: Cli, secrets: Secrets) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    let request = match cli.command {
        Command::Action => return Ok(ExitCode::from(action::run(secrets).await)),
        Command::Schema { kind, output } => {
            let kind = kind.or(output).map_or(SchemaKind::Spec, SchemaKind::from);
            print(&(schema::render(kind) + "\n"))?;
            return Ok(ExitCode::from(exit::DECIDED));
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "flagramp", &mut script);
            print(&String::from_utf8_lossy(&script))?;
            return Ok(ExitCode::from(exit::DECIDED));
        }
        Command::Init(args) => return init(&args),
        Command::Validate(targets) => return validate(targets, &secrets),
        Command::Simulate(args) => return simulate(args, &secrets).await,
        Command::List(args) => return list(args, &secrets).await,
        Command::Plan(targets) => request(&global, Operation::Plan, targets)?,
        Command::Run(targets) => request(&global, Operation::Run, targets)?,
        Command::Status(targets) => request(&global, Operation::Status, targets)?,
        Command::Advance { named, force } => manual_request(&global, ManualOp::Advance { force }, named)?,
        Command::Rollback(named) => manual_request(&global, ManualOp::Rollback, named)?,
        Command::Pause(named) => manual_request(&global, ManualOp::Pause, named)?,
        Command::Resume(named) => manual_request(&global, ManualOp::Resume, named)?,
    };
    let Request { mut run, format } = request;
    let specs = load_specs(&run.spec_paths, run.rollout.as_deref())?;
    let ci = std::env::var("CI").ok();
    // Only what decides rollouts ticks the bar: a bar made for `status` would be drawn, empty,
    // when it is dropped.
    let decides = !matches!(run.operation, Operation::Status | Operation::Validate | Operation::List);
    if decides
        && report::text::should_show_progress(
            std::io::stderr().is_terminal(),
            ci.as_deref(),
            format == Format::Json,
            specs.len(),
        )
    {
        run.progress = Some(std::sync::Arc::new(TerminalProgress::new()));
    }
    match app::execute(&run, &specs, &secrets).await? {
        Outcome::Decided(decided) => print_decisions(decided, format, &secrets),
        Outcome::Statuses(statuses) => {
            match format {
                Format::Json => print(&secrets.redact(&(serde_json::to_string_pretty(&statuses)? + "\n")))?,
                // A terminal gets each rollout's progress as a bar; pipes and files keep the
                // plain stages line, for scripts that read it.
                Format::Text if std::io::stdout().is_terminal() && !report::text::in_ci(ci.as_deref()) => {
                    let bakes = |name: &str| {
                        let spec = specs.iter().find(|s| s.name == name)?;
                        Some(spec.stages.iter().map(|stage| stage.bake).collect())
                    };
                    let now = run.now.unwrap_or_else(Utc::now);
                    print(&secrets.redact(&report::text::statuses_on_terminal(&statuses, &bakes, now)))?
                }
                Format::Text => print(&secrets.redact(&report::text::statuses(&statuses)))?,
            }
            Ok(ExitCode::from(exit::DECIDED))
        }
        Outcome::Validated => Ok(ExitCode::from(exit::DECIDED)),
    }
}

async fn simulate(args: args::Simulate, secrets: &Secrets) -> anyhow::Result<ExitCode> {
    let (name, paths) = split_targets(&args.targets.args);
    let time = |flag: &str, text: &str| {
        parse_now(text).map_err(|_| {
            usage(format!(
                "--{flag} `{text}` is not an RFC 3339 time in the years 0000–9999; write e.g. 2026-11-24T10:00:00Z"
            ))
        })
    };
    let exposure = args
        .exposure
        .as_deref()
        .map(|text| {
            Percent::parse_stage(text.trim_end_matches('%')).map_err(|e| usage(format!("--exposure `{text}`: {e}")))
        })
        .transpose()?;
    let request = SimulateRequest {
        from: time("from", &args.from)?,
        to: time("to", &args.to)?,
        every: args.every,
        exposure,
        repo_root: std::env::current_dir().context("cannot read the current directory")?,
    };
    request.ticks().map_err(|e| usage(e.to_string()))?;
    let specs = load_specs(&spec_paths(paths), name.as_deref())?;
    let timelines = flagramp::simulate(&specs, &request, secrets)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let records: Vec<DecisionRecord> = timelines.iter().flat_map(|t| t.records.iter().cloned()).collect();
    match args.targets.output.output {
        Format::Json => print(&secrets.redact(&(serde_json::to_string_pretty(&records)? + "\n")))?,
        Format::Text => print(&secrets.redact(&report::text::timelines(&timelines, &request)))?,
    }
    Ok(exit::for_decisions(&records))
}

async fn list(args: args::List, secrets: &Secrets) -> anyhow::Result<ExitCode> {
    let specs = load_specs(&spec_paths(args.paths), None)?;
    let request = ListRequest {
        max_jobs: usize::from(args.max_jobs),
        lookup: github_lookup(secrets)?,
    };
    let listing = app::list::list(&specs, &request)
        .await
        .map_err(|e| usage(format!("--max-jobs: {e}")))?;
    if let Some(note) = &listing.note {
        say_error(secrets, &format!("flagramp: {}", plain(note)));
    }
    let text = match args.output {
        ListFormat::Text => listing.text(),
        ListFormat::Json => serde_json::to_string_pretty(&listing)? + "\n",
        ListFormat::Matrix => listing.matrix().to_string() + "\n",
    };
    print(&secrets.redact(&text))?;
    Ok(ExitCode::from(exit::DECIDED))
}

/// How `list` finds `auto` pull requests: GitHub, when GITHUB_TOKEN and GITHUB_REPOSITORY are
/// set (at GITHUB_API_URL, GraphQL at GITHUB_GRAPHQL_URL or beside it), else not at all, and why.
/// The token is registered as a secret before anything could print it.
fn github_lookup(secrets: &Secrets) -> anyhow::Result<Lookup> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let Some(token) = var("GITHUB_TOKEN") else {
        return Ok(Lookup::Unavailable("GITHUB_TOKEN is not set".into()));
    };
    secrets.remember_github_token(&token);
    let Some(repository) = var("GITHUB_REPOSITORY") else {
        return Ok(Lookup::Unavailable("GITHUB_REPOSITORY (owner/name) is not set".into()));
    };
    let api_url = var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
    let github = match var("GITHUB_GRAPHQL_URL") {
        Some(graphql_url) => GitHub::with_graphql(&api_url, &graphql_url, &token, &repository),
        None => GitHub::new(&api_url, &token, &repository),
    }
    .map_err(|e| usage(e.to_string()))?;
    Ok(Lookup::GitHub {
        github: std::sync::Arc::new(github),
        branch: None,
    })
}

/// The repository `init` writes into: `--dir`, else the nearest directory at or above the
/// current one that holds `.git`, else the current directory.
fn init_root(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = dir {
        if !dir.is_dir() {
            return Err(usage(format!(
                "--dir {} is not a directory: create it (and `git init` it) first",
                plain(&dir.display().to_string())
            )));
        }
        return Ok(dir.to_path_buf());
    }
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let root = here.ancestors().find(|d| d.join(".git").exists()).unwrap_or(&here);
    Ok(root.to_path_buf())
}

fn init(args: &args::Init) -> anyhow::Result<ExitCode> {
    use flagramp::init::{self, InitError, Starter};
    let root = init_root(args.dir.as_deref())?;
    let starter = Starter::from(args);
    let shown_root = plain(&root.display().to_string());
    let done = match init::write(&root, &starter) {
        Ok(done) => done,
        Err(e @ InitError::Exists(_)) => {
            // Nothing was written: say so, and which files are in the way.
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "flagramp: in {shown_root}: {}", plain(&e.to_string()));
            return Ok(ExitCode::from(exit::INVALID));
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("in {shown_root}"))),
    };
    let mut text = String::new();
    for path in &done.written {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    for path in &done.kept {
        text.push_str(&format!(
            "kept {} as it is: it must hold the flag `{}` with variants {{\"on\": true, \"off\": false}} and \"state\": \"DISABLED\"\n",
            path.display(),
            init::STARTER_NAME
        ));
    }
    let spec = Starter::spec_path();
    let secrets = starter.secrets().join(", ");
    text.push_str(&format!(
        "\nNext:
  1. Point the flag and the check in {spec} at yours; `flagramp validate` checks it.
  2. Add the repository secrets {secrets} (Settings → Secrets and variables → Actions).
  3. Give the environment `{env}` required reviewers (Settings → Environments), so that a manual
     advance waits for an approval (required reviewers need a public repository or a paid plan).
  4. Commit and push. The schedule runs every 30 minutes; `gh workflow run rollout.yml -f command=plan`
     plans now, and an alert can roll back at once:
     gh api repos/OWNER/REPO/dispatches -f event_type=flagramp -f 'client_payload[command]=rollback' -f 'client_payload[rollout]={name}'
",
        spec = spec.display(),
        env = init::APPROVAL_ENVIRONMENT,
        name = init::STARTER_NAME,
    ));
    print(&text)?;
    Ok(ExitCode::from(exit::DECIDED))
}

fn validate(targets: Targets, secrets: &Secrets) -> anyhow::Result<ExitCode> {
    let format = targets.output.output;
    let (name, paths) = split_targets(&targets.args);
    match load_specs(&spec_paths(paths), name.as_deref()) {
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
                Format::Text => print(&specs.iter().map(validated).collect::<String>())?,
            }
            Ok(ExitCode::from(exit::DECIDED))
        }
        Err(err) => match (format, err.downcast_ref::<AppError>()) {
            (Format::Json, Some(AppError::Spec(spec_errors))) => {
                print_invalid(spec_errors)?;
                say_error(secrets, &spec_errors.to_string());
                Ok(ExitCode::from(exit::INVALID))
            }
            _ => Err(err),
        },
    }
}

fn print_invalid(spec_errors: &SpecErrors) -> anyhow::Result<()> {
    print(
        &(serde_json::to_string_pretty(
            &serde_json::json!({ "valid": false, "rollouts": [], "problems": spec_errors.diagnostics }),
        )? + "\n"),
    )
}

/// One `validate` line for a valid spec.
fn validated(spec: &RolloutSpec) -> String {
    let stages: Vec<String> = spec
        .stages
        .iter()
        .map(|st| format!("{} ({})", st.percent, st.bake))
        .collect();
    format!(
        "ok {} ({}): flag {} via {}, stages {}, {} check{}\n",
        plain(&spec.name),
        plain(&spec.file.display().to_string()),
        plain(&spec.flag.key),
        spec.flag.provider.name(),
        stages.join(" → "),
        spec.checks.len(),
        if spec.checks.len() == 1 { "" } else { "s" }
    )
}
