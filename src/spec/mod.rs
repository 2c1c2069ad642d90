//! Rollout specs, version 1 (docs/rules.md §2): the typed form and how files are found and read.

mod diag;
mod parse;
mod shape;
pub mod text;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, SpecErrors};
pub use parse::{parse_repo_config, parse_spec, NameAt, KNOWN_FIELDS, MAX_FAILURES_TO_ROLLBACK, WINDOW_PLACEHOLDER};

use crate::check::Condition;
use crate::duration::SpecDuration;
use crate::percent::Percent;
use crate::window::Window;

/// Where specs live when no path is given.
pub const DEFAULT_SPEC_DIR: &str = ".github/rollouts";

/// The largest spec file read: a spec is a few kilobytes, and reading is capped so that a huge
/// file, or a link to `/dev/zero`, cannot exhaust memory.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// The bake of a bare-number stage and of the default stages.
pub const DEFAULT_BAKE: SpecDuration = SpecDuration::from_secs(3600);

/// How long a check may take when its spec does not say.
pub const DEFAULT_CHECK_TIMEOUT: SpecDuration = SpecDuration::from_secs(30);

/// One validated rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// Unique across specs; names the state file.
    pub name: String,
    /// Free text for reports.
    pub description: Option<String>,
    /// The file it was read from.
    pub file: PathBuf,
    /// The flag being ramped.
    pub flag: FlagSpec,
    /// Strictly increasing, ending at 100%.
    pub stages: Vec<Stage>,
    /// Named metric sources that checks refer to.
    pub sources: BTreeMap<String, SourceSpec>,
    /// All must pass to advance.
    pub checks: Vec<CheckSpec>,
    /// Failure counting, rollback mode and window.
    pub policy: Policy,
    /// Where reports go.
    pub report: ReportSpec,
    /// Who is told about which decisions: the spec's own `notify:`, else the repository's
    /// default (`.github/flagramp.yml`); `None`: nobody.
    pub notify: Option<NotifySpec>,
}

/// The flag and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagSpec {
    /// The key, exactly as the provider names it.
    pub key: String,
    /// The flag system.
    pub provider: ProviderSpec,
}

/// A flag system and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderSpec {
    /// A flagd JSON file in the repository.
    Flagd {
        /// Relative to the repository root.
        path: PathBuf,
        /// The branch holding the file (used by the Action); `None` is the default branch.
        branch: Option<String>,
    },
    /// An Unleash server.
    Unleash {
        /// Base URL of the server.
        url: String,
        /// Project id.
        project: String,
        /// Environment name.
        environment: String,
        /// Environment variable holding an admin token.
        token_env: String,
    },
    /// LaunchDarkly.
    LaunchDarkly {
        /// Project key.
        project: String,
        /// Environment key.
        environment: String,
        /// Environment variable holding an API access token.
        token_env: String,
        /// API base URL; the public one when absent.
        base_url: Option<String>,
        /// For a multivariate flag: the variation (by name or value) that the rollout serves;
        /// every other user gets the flag's off variation. Boolean flags need none.
        on_variation: Option<String>,
    },
}

impl ProviderSpec {
    /// The provider's name as the spec writes it.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderSpec::Flagd { .. } => "flagd",
            ProviderSpec::Unleash { .. } => "unleash",
            ProviderSpec::LaunchDarkly { .. } => "launchdarkly",
        }
    }
}

/// A percentage of users and how long it must stay healthy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Share of users.
    pub percent: Percent,
    /// Minimum healthy time at this stage before advancing (at 100%: before completing).
    pub bake: SpecDuration,
}

/// A named metric source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Which API it speaks.
    pub provider: SourceProvider,
    /// How to reach it. For Datadog, `url` is the API host (`https://api.<site>` or the spec's
    /// `url`), and its two keys are headers read from the environment.
    pub http: HttpSourceSpec,
    /// How far behind the decision time queries are evaluated, so that a bucket still filling
    /// is never judged (docs/rules.md §2, closed windows).
    pub lag: SpecDuration,
    /// At most this many of its requests in flight at once in one run, over all rollouts, so
    /// that a metrics server is never flooded.
    pub max_concurrency: u32,
}

/// A source's `max_concurrency` when the spec sets none.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;

/// The most requests in flight to one source a spec may allow.
pub const MAX_MAX_CONCURRENCY: u32 = 256;

/// The API a metric source speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceProvider {
    /// A Prometheus-compatible HTTP API (instant queries).
    Prometheus,
    /// Datadog's scalar query API (`POST /api/v2/query/scalar`).
    Datadog {
        /// Variable holding the API key (`DD-API-KEY`).
        api_key_env: String,
        /// Variable holding the application key (`DD-APPLICATION-KEY`).
        app_key_env: String,
    },
    /// Any HTTP endpoint answering JSON; a JSON Pointer picks the number.
    Http,
}

impl SourceProvider {
    /// The provider's name as the spec writes it.
    pub fn name(&self) -> &'static str {
        match self {
            SourceProvider::Prometheus => "prometheus",
            SourceProvider::Datadog { .. } => "datadog",
            SourceProvider::Http => "http",
        }
    }
}

/// The lag of a source whose spec does not set one.
pub const DEFAULT_LAG: SpecDuration = SpecDuration::from_secs(60);

/// The window of a Datadog check whose spec does not set one.
pub const DEFAULT_DATADOG_WINDOW: SpecDuration = SpecDuration::from_secs(600);

/// Connection settings shared by HTTP metric sources.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSourceSpec {
    /// Base URL.
    pub url: String,
    /// How to authenticate.
    pub auth: Auth,
    /// Extra request headers.
    pub headers: Vec<(String, HeaderValue)>,
    /// Per-request timeout.
    pub timeout: Option<SpecDuration>,
}

impl HttpSourceSpec {
    /// Every environment variable this connection reads; their values are secrets.
    pub fn secret_envs(&self) -> Vec<&str> {
        let mut names = match &self.auth {
            Auth::None => Vec::new(),
            Auth::Bearer { token_env } => vec![token_env.as_str()],
            Auth::Basic {
                username_env,
                password_env,
            } => vec![username_env.as_str(), password_env.as_str()],
        };
        names.extend(self.headers.iter().filter_map(|(_, v)| match v {
            HeaderValue::Env(var) => Some(var.as_str()),
            HeaderValue::Literal(_) => None,
        }));
        names
    }
}

/// Authentication for an HTTP source; secrets are named by environment variable only.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// No credentials.
    None,
    /// `Authorization: Bearer $token_env`.
    Bearer {
        /// Variable holding the token.
        token_env: String,
    },
    /// HTTP basic auth.
    Basic {
        /// Variable holding the user name.
        username_env: String,
        /// Variable holding the password.
        password_env: String,
    },
}

/// A header value: literal text, or read from the environment (and then treated as a secret).
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// Written in the spec.
    Literal(String),
    /// Read from this environment variable.
    Env(String),
}

/// One check: what it measures, how that is judged, and what trouble with it means.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Unique within the rollout.
    pub name: String,
    /// What is measured and how it is judged.
    pub test: CheckTest,
    /// What an empty answer means.
    pub on_no_data: NoDataPolicy,
    /// How long the query or command may take (for a `compare` check: each of its queries).
    pub timeout: SpecDuration,
    /// `false` for a shadow check: measured, recorded and reported, but it never holds, blocks
    /// or rolls back (docs/rules.md §3, rule 5).
    pub gate: bool,
}

/// How a check is judged.
#[derive(Debug, Clone, PartialEq)]
// A spec holds a handful of checks, read once per run: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum CheckTest {
    /// One value against a `pass` condition.
    Threshold(ThresholdTest),
    /// The exposed cohort's rate against the control cohort's, with a sequential test
    /// (docs/statistics.md).
    Compare(CompareTest),
}

/// One value against a `pass` condition: a constant, or a control query's value.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdTest {
    /// Where the value comes from.
    pub probe: Probe,
    /// The condition.
    pub pass: Condition,
    /// The span a query covers, ending at the evaluation time: Prometheus queries get it as
    /// `$window`, Datadog queries as their `from`/`to`. `None`: the query sets its own.
    pub window: Option<SpecDuration>,
    /// A query on the same source that the condition compares with (`pass: "<= control * 1.1"`).
    pub control: Option<Query>,
}

/// A canary-versus-control test from counts (docs/rules.md §2, `compare`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareTest {
    /// The source every count is queried on.
    pub source: String,
    /// The cohort that gets the flag.
    pub canary: CohortQueries,
    /// The cohort that does not.
    pub control: CohortQueries,
    /// The data each evaluation judges.
    pub window: CompareWindow,
    /// How much worse than the control the canary may be.
    pub margin: crate::stats::Margin,
    /// The false-alarm budget of the check for a whole stage, every look included.
    pub alpha: f64,
    /// Fewer `total` than this in either cohort is `insufficient`.
    pub min_samples: f64,
}

/// The count queries of one cohort.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortQueries {
    /// Events, such as failed requests.
    pub events: Query,
    /// What the events are counted out of, such as requests.
    pub total: Query,
    /// Distinct users or sessions, for the sample ratio check; without it, `total` stands in.
    pub units: Option<Query>,
}

/// The data a `compare` check judges at each evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompareWindow {
    /// Everything since the stage was entered, every suffix tested (the default).
    Stage,
    /// The last span of this length.
    Last(SpecDuration),
}

impl CheckSpec {
    /// The threshold test, for a check that has one.
    pub fn threshold(&self) -> Option<&ThresholdTest> {
        match &self.test {
            CheckTest::Threshold(t) => Some(t),
            CheckTest::Compare(_) => None,
        }
    }

    /// The check's one probe, for a threshold check.
    pub fn probe(&self) -> Option<&Probe> {
        match &self.test {
            CheckTest::Threshold(t) => Some(&t.probe),
            CheckTest::Compare(_) => None,
        }
    }

    /// The source the check asks; `None` for a command.
    pub fn source(&self) -> Option<&str> {
        match &self.test {
            CheckTest::Threshold(t) => t.probe.source(),
            CheckTest::Compare(c) => Some(&c.source),
        }
    }

    /// The query, command line or comparison, as reports show it.
    pub fn describe(&self) -> String {
        match &self.test {
            CheckTest::Threshold(t) => t.probe.describe(),
            CheckTest::Compare(c) => format!(
                "canary {} / {} vs control {} / {}",
                c.canary.events.describe(),
                c.canary.total.describe(),
                c.control.events.describe(),
                c.control.total.describe()
            ),
        }
    }

    /// The condition as records show it: `>= 0.95`, or what a comparison needs.
    pub fn condition(&self) -> String {
        match &self.test {
            CheckTest::Threshold(t) => t.pass.to_string(),
            CheckTest::Compare(c) => {
                let allowed = match c.margin {
                    crate::stats::Margin::Absolute(m) => format!("{} pt", crate::check::sig4(m * 100.0)),
                    crate::stats::Margin::Relative(m) => format!("{}%", crate::check::sig4(m * 100.0)),
                };
                format!(
                    "canary rate at most {allowed} above control (alpha {})",
                    crate::check::sig4(c.alpha)
                )
            }
        }
    }

    /// The environment variables a command check passes on (their values are secrets).
    pub fn command_env(&self) -> &[String] {
        match self.probe() {
            Some(Probe::Command { env, .. }) => env,
            _ => &[],
        }
    }
}

/// How a check gets its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A query against a named source.
    Query {
        /// Name in `sources`.
        source: String,
        /// What to ask, in the source's own terms.
        query: Query,
    },
    /// A program run without a shell; stdout is one number.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Environment variables passed to it besides `PATH`, `HOME`, `LANG` and `FLAGRAMP_*`;
        /// their values are secrets.
        env: Vec<String>,
    },
}

impl Probe {
    /// The query, or the command line, as reports show it.
    pub fn describe(&self) -> String {
        match self {
            Probe::Query { query, .. } => query.describe(),
            Probe::Command { argv, .. } => argv.join(" "),
        }
    }

    /// The source a query check asks; `None` for a command.
    pub fn source(&self) -> Option<&str> {
        match self {
            Probe::Query { source, .. } => Some(source),
            Probe::Command { .. } => None,
        }
    }
}

/// A query, in the terms of the source it is sent to.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// A PromQL expression; `$window` stands for the check's window.
    Prometheus(String),
    /// Named Datadog metric queries and a formula over them.
    Datadog {
        /// Name and query text, in spec order. A single `query:` is named `query`.
        queries: Vec<(String, String)>,
        /// The formula; for a single `query:`, its name.
        formula: String,
        /// How each series becomes one number.
        reduce: Reduce,
    },
    /// A request to an HTTP JSON endpoint.
    Http {
        /// Appended to the source's URL (path and query string).
        path: String,
        /// The method.
        method: HttpMethod,
        /// The JSON body of a POST.
        body: Option<serde_json::Value>,
        /// RFC 6901 JSON Pointer to the number in the answer.
        pointer: String,
    },
}

impl Query {
    /// The query as reports show it.
    pub fn describe(&self) -> String {
        match self {
            Query::Prometheus(expr) => expr.clone(),
            Query::Datadog { queries, formula, .. } => match queries.as_slice() {
                [(name, one)] if name == formula => one.clone(),
                _ => {
                    let named: Vec<String> = queries.iter().map(|(n, q)| format!("{n} = {q}")).collect();
                    format!("{formula} where {}", named.join(", "))
                }
            },
            Query::Http {
                path, method, pointer, ..
            } => format!("{} {path} {pointer}", method.as_str()),
        }
    }
}

/// How a Datadog series becomes one number (the query's `aggregator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The mean (the default).
    Avg,
    /// The sum: use it for counts.
    Sum,
    /// The smallest point.
    Min,
    /// The largest point.
    Max,
    /// The last point.
    Last,
}

impl Reduce {
    /// Every value, as the spec and Datadog write it.
    pub const ALL: [(&'static str, Reduce); 5] = [
        ("avg", Reduce::Avg),
        ("sum", Reduce::Sum),
        ("min", Reduce::Min),
        ("max", Reduce::Max),
        ("last", Reduce::Last),
    ];

    /// The word the spec and Datadog use.
    pub fn as_str(self) -> &'static str {
        Reduce::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(name, _)| *name)
            .unwrap_or("avg")
    }
}

/// The method of an HTTP source's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET (the default).
    Get,
    /// POST, with the check's `body` as JSON.
    Post,
}

impl HttpMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// What a check with no data means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDataPolicy {
    /// Hold (the default): no data is never a pass.
    Hold,
    /// Count as a failure.
    Fail,
}

/// How a rollout reacts to failures, and when it may move forward.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Consecutive failing evaluations before a rollback.
    pub failures_to_rollback: u32,
    /// Where a rollback goes.
    pub rollback: RollbackPolicy,
    /// When starting and advancing are allowed; always when absent.
    pub window: Option<Window>,
    /// The rollout gates on bake time alone: `checks: []` is allowed only with this set, and
    /// every report says "no metric gate".
    pub time_only: bool,
}

/// Where a rollback goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackPolicy {
    /// One stage back; from the first stage, off.
    Previous,
    /// Straight to off.
    Off,
}

/// Where reports go.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    /// Which pull request gets the status comment.
    pub pull_request: PullRequestRef,
}

/// Which pull request gets a rollout's status comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestRef {
    /// The pull request that last changed the spec file.
    Auto,
    /// This pull request.
    Number(u64),
    /// No comment.
    None,
}

/// Who is told about which decisions (docs/rules.md §5).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySpec {
    /// The decisions that notify.
    pub events: std::collections::BTreeSet<crate::record::DecisionKind>,
    /// Where notifications go.
    pub to: Vec<NotifyTarget>,
}

/// The decisions that notify when `events` is not given.
pub const DEFAULT_NOTIFY_EVENTS: &[crate::record::DecisionKind] = &[
    crate::record::DecisionKind::Rollback,
    crate::record::DecisionKind::Disable,
    crate::record::DecisionKind::Complete,
    crate::record::DecisionKind::Drift,
    crate::record::DecisionKind::Error,
];

/// The decisions `events` may name: those that change a rollout, and drift and error.
pub const NOTIFY_EVENTS: &[crate::record::DecisionKind] = &[
    crate::record::DecisionKind::Start,
    crate::record::DecisionKind::Advance,
    crate::record::DecisionKind::Rollback,
    crate::record::DecisionKind::Disable,
    crate::record::DecisionKind::Complete,
    crate::record::DecisionKind::Drift,
    crate::record::DecisionKind::Error,
];

/// One place notifications go.
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyTarget {
    /// A Slack incoming webhook; its URL is a secret, read from the variable.
    Slack {
        /// The variable holding the webhook URL.
        webhook_env: String,
    },
    /// Any HTTPS endpoint: the decision record as JSON, signed.
    Webhook {
        /// Where to POST (https, or http to loopback).
        url: String,
        /// The variable holding the HMAC-SHA256 key.
        secret_env: String,
    },
}

/// The repository's settings for every spec (`.github/flagramp.yml`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RepoConfig {
    /// The `notify:` of specs that have none of their own.
    pub notify: Option<NotifySpec>,
}

/// Where the repository's settings live, relative to its root: outside the spec directory, so
/// that it is never read as a spec.
pub const REPO_CONFIG_FILE: &str = ".github/flagramp.yml";

/// Reads the repository's settings at `path`: `Ok(None)` when there is no such file, every
/// problem with its position when it is invalid.
pub fn load_repo_config(path: &Path) -> Result<Option<RepoConfig>, SpecErrors> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_spec(path).map_err(|d| SpecErrors { diagnostics: vec![*d] })?;
    let (config, diagnostics) = parse::parse_repo_config(path, &text);
    match config {
        Some(config) if diagnostics.is_empty() => Ok(Some(config)),
        _ => Err(SpecErrors { diagnostics }),
    }
}

impl RolloutSpec {
    /// Gives the repository's `notify:` to a spec that has none of its own: a spec's own
    /// `notify:` replaces the default whole.
    pub fn apply_defaults(&mut self, config: &RepoConfig) {
        if self.notify.is_none() {
            self.notify = config.notify.clone();
        }
    }
}

impl RolloutSpec {
    /// The stage percentages, as state stores them.
    pub fn stage_percents(&self) -> Vec<Percent> {
        self.stages.iter().map(|s| s.percent).collect()
    }
}

/// Finds spec files: each path is a file, or a directory searched recursively for `*.yml`/`*.yaml`.
///
/// Files come back sorted so that runs and reports are in a stable order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read spec path {}: {e}", path.display())))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), std::io::Error> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // A linked directory is not followed: two links to `..` would make the walk endless.
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and validates every spec in `files`, including checks across files (unique names).
///
/// Returns every problem at once; a broken spec never means "no rollout".
pub fn load_all(files: &[PathBuf]) -> Result<Vec<RolloutSpec>, SpecErrors> {
    let mut diagnostics = Vec::new();
    let mut specs = Vec::new();
    let mut names: BTreeMap<String, (PathBuf, usize, usize)> = BTreeMap::new();
    for file in files {
        let text = match read_spec(file) {
            Ok(text) => text,
            Err(d) => {
                diagnostics.push(*d);
                continue;
            }
        };
        let (spec, name_at, mut diags) = parse_spec(file, &text);
        if let Some((name, line, column)) = name_at {
            if let Some((other, oline, ocol)) = names.get(&name) {
                diags.push(Diagnostic::new(
                    file.clone(),
                    line,
                    column,
                    &format!(
                        "rollout name `{name}` is already used by {}:{oline}:{ocol}",
                        other.display()
                    ),
                    Some("give each rollout its own `name:` (state is kept per name)"),
                ));
            } else {
                names.insert(name, (file.clone(), line, column));
            }
        }
        if diags.is_empty() {
            specs.extend(spec);
        }
        diagnostics.extend(diags);
    }
    if diagnostics.is_empty() {
        Ok(specs)
    } else {
        Err(SpecErrors { diagnostics })
    }
}

/// A spec file's text, read with the [`MAX_SPEC_BYTES`] cap; UTF-8 only.
fn read_spec(file: &Path) -> Result<String, Box<Diagnostic>> {
    let bytes = match crate::fsutil::read_capped(file, MAX_SPEC_BYTES) {
        Ok(Some(bytes)) => bytes,
        Err(crate::fsutil::ReadError::TooLarge(_)) => return Err(Box::new(parse::too_large(file))),
        Ok(None) => {
            return Err(Box::new(Diagnostic::new(
                file.to_path_buf(),
                1,
                1,
                "cannot read the spec: the file does not exist",
                Some("check the path"),
            )))
        }
        Err(e) => {
            return Err(Box::new(Diagnostic::new(
                file.to_path_buf(),
                1,
                1,
                &format!("the spec {e}"),
                Some("check the path and the file's permissions"),
            )))
        }
    };
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The bytes up to `valid_up_to` are UTF-8, so this never falls back to "".
        let before = std::str::from_utf8(valid).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        Box::new(Diagnostic::new(
            file.to_path_buf(),
            line,
            column,
            "the spec is not UTF-8 text",
            Some("save the file as UTF-8 (a UTF-8 byte-order mark is fine)"),
        ))
    })
}
