//! The command line, as clap parses it. Only this module knows clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use flagramp::duration::SpecDuration;
use flagramp::schema::SchemaKind;

/// Roll a feature flag out in stages (10% → 50% → 100%), only while its metrics stay healthy.
///
/// Specs are YAML files (default: every *.yml/*.yaml under .github/rollouts). Exit codes: 0 every
/// rollout decided (hold, drift and rollback included); 1 an invalid spec, a rollout that ended
/// in error, or a file in init's way; 2 a usage error; 3 a manual command was refused and changed nothing (an advance its
/// checks refused, a rollback of a flag that is off, another run holding the state lock).
///
/// Logs go to stderr at `warn`; FLAGRAMP_LOG (or RUST_LOG) sets the filter, e.g. `debug` or
/// `flagramp=trace`.
#[derive(Debug, Parser)]
#[command(name = "flagramp", version, max_term_width = HELP_WIDTH, after_help = ROOT_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Directory of local state files (one JSON file per rollout).
    #[arg(
        long,
        global = true,
        env = "FLAGRAMP_STATE_DIR",
        default_value = ".flagramp/state",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// Evaluate as if it were this time (RFC 3339, e.g. 2026-11-24T10:00:00Z) instead of now.
    #[arg(long, global = true, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Who is acting, recorded with manual commands [default: $GITHUB_ACTOR, $USER].
    #[arg(long, global = true, env = "FLAGRAMP_ACTOR", value_name = "NAME")]
    pub actor: Option<String>,
    /// How long a run waits for another local run to release the state lock, then decides with
    /// the state that run left (e.g. 0s, 90s, 5m).
    #[arg(long, global = true, default_value = "60s", value_name = "DURATION", value_parser = SpecDuration::parse)]
    pub lock_wait: SpecDuration,
    /// The run's total time (e.g. 90s, 10m): rollouts whose turn comes after it is spent hold
    /// with "time budget exhausted", unread and unchanged.
    #[arg(long, global = true, default_value = "10m", value_name = "DURATION")]
    pub time_budget: String,
    /// How many rollouts are decided at once. Each source keeps its own limit of requests in
    /// flight (`max_concurrency` in the spec, default 16).
    #[arg(long, global = true, default_value_t = flagramp::runner::DEFAULT_CONCURRENCY, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub concurrency: usize,
}

/// The widest the help gets, however wide the terminal.
const HELP_WIDTH: usize = 100;

// The examples under each command's help (`after_help`). Every line that runs flagramp is
// parsed by the tests below, so an example cannot name a command or flag that does not exist.

const ROOT_EXAMPLES: &str = "\
Examples:
  flagramp validate
  flagramp plan --now 2026-11-24T10:00:00Z
  flagramp advance checkout --reason \"error rate is back to normal\"";

const INIT_EXAMPLES: &str = "\
Examples:
  flagramp init
  flagramp init --provider unleash --source datadog
  flagramp init --provider launchdarkly --source http --dir ../service";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  flagramp validate
  flagramp validate .github/rollouts/checkout.yml
  flagramp validate --output json";

const PLAN_EXAMPLES: &str = "\
Examples:
  flagramp plan
  flagramp plan checkout --now 2026-11-24T10:00:00Z
  flagramp plan --output json";

const RUN_EXAMPLES: &str = "\
Examples:
  flagramp run
  flagramp run checkout
  flagramp run --time-budget 5m --concurrency 8 --output json";

const STATUS_EXAMPLES: &str = "\
Examples:
  flagramp status
  flagramp status checkout
  flagramp status --output json";

const ADVANCE_EXAMPLES: &str = "\
Examples:
  flagramp advance checkout --reason \"error rate is back to normal\"
  flagramp advance checkout --dry-run
  flagramp advance checkout --force --reason \"latency alert is a known false alarm\"";

const ROLLBACK_EXAMPLES: &str = "\
Examples:
  flagramp rollback checkout --reason \"p99 latency doubled\"
  flagramp rollback checkout --dry-run --output json";

const PAUSE_EXAMPLES: &str = "\
Examples:
  flagramp pause checkout --reason \"holiday change freeze\"
  flagramp pause checkout --actor alice --dry-run";

const RESUME_EXAMPLES: &str = "\
Examples:
  flagramp resume checkout --reason \"change freeze is over\"
  flagramp resume checkout --dry-run";

const SIMULATE_EXAMPLES: &str = "\
Examples:
  flagramp simulate new-checkout --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z --every 15m
  flagramp simulate --from 2026-11-01T00:00:00Z --to 2026-11-02T00:00:00Z --exposure 10";

const LIST_EXAMPLES: &str = "\
Examples:
  flagramp list
  flagramp list --output json
  # A fan-out workflow's first job:
  echo \"matrix=$(flagramp list --output matrix --max-jobs 4)\" >> \"$GITHUB_OUTPUT\"";

const SCHEMA_EXAMPLES: &str = "\
Examples:
  flagramp schema spec > rollout.schema.json
  flagramp schema decision
  flagramp schema status";

const ACTION_EXAMPLES: &str = "\
Examples:
  # What the container does under action.yml, by hand: `validate` reads no API.
  INPUT_COMMAND=validate INPUT_GITHUB_TOKEN=unused GITHUB_EVENT_NAME=push \\
    GITHUB_REPOSITORY=octo-org/octo-repo GITHUB_WORKSPACE=\"$PWD\" \\
    GITHUB_OUTPUT=outputs.txt GITHUB_STEP_SUMMARY=summary.md flagramp action";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  source <(flagramp completions bash)
  flagramp completions zsh > ~/.zfunc/_flagramp   # with fpath+=(~/.zfunc) in ~/.zshrc
  flagramp completions fish > ~/.config/fish/completions/flagramp.fish";

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs: the documented JSON (`flagramp schema decision|status`).
    Json,
}

/// `--output` of the commands that print decisions or status.
#[derive(Debug, Args)]
pub struct Output {
    /// Output format.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub output: Format,
}

/// `[NAME] [PATH]…`: NAME picks one rollout; PATHs are spec files or directories.
#[derive(Debug, Args)]
pub struct Targets {
    /// A rollout name, then spec files or directories (default: .github/rollouts).
    #[arg(value_name = "NAME|PATH")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub output: Output,
}

/// `NAME [PATH]…` for commands that act on one rollout.
#[derive(Debug, Args)]
pub struct Named {
    /// The rollout to act on.
    pub name: String,
    /// Spec files or directories (default: .github/rollouts).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Why, recorded in the rollout's history.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Decide and print what would happen, but change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub output: Output,
}

/// `flagramp simulate`'s arguments.
#[derive(Debug, Args)]
pub struct Simulate {
    #[command(flatten)]
    pub targets: Targets,
    /// The first evaluation (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub from: String,
    /// The last evaluation is at or before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub to: String,
    /// The time between evaluations, as a schedule would run them.
    #[arg(long, default_value = "15m", value_name = "DURATION", value_parser = SpecDuration::parse)]
    pub every: SpecDuration,
    /// The exposure the data were gathered at, in percent (e.g. 10); the sample ratio test
    /// expects it [default: the exposure the data show].
    #[arg(long, value_name = "PERCENT")]
    pub exposure: Option<String>,
}

/// How `flagramp list` prints the rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// For people: each chunk, its rollouts, their spec files and pull requests.
    Text,
    /// For programs: every rollout with its spec file, pull request and chunk, and the chunks.
    Json,
    /// One line of JSON for `strategy.matrix` through `fromJSON`: {"include":[{"chunk":1,"rollouts":"a,b"},…]}.
    Matrix,
}

/// `flagramp list`'s arguments.
#[derive(Debug, Args)]
pub struct List {
    /// Spec files or directories (default: .github/rollouts).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub output: ListFormat,
    /// At most this many chunks, one job each (GitHub runs at most 256 jobs per matrix).
    #[arg(
        long,
        default_value_t = flagramp::app::list::DEFAULT_MAX_JOBS as u16,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=flagramp::app::list::MAX_MATRIX_JOBS as i64)
    )]
    pub max_jobs: u16,
}

/// `flagramp init --provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitProvider {
    /// A flagd file in the repository (init writes one with the flag off, if there is none).
    Flagd,
    /// Unleash's admin API (token in UNLEASH_TOKEN).
    Unleash,
    /// LaunchDarkly's REST API (token in LD_TOKEN).
    Launchdarkly,
}

/// `flagramp init --source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitSource {
    /// Prometheus (token in PROM_TOKEN).
    Prometheus,
    /// Datadog (keys in DD_API_KEY and DD_APP_KEY).
    Datadog,
    /// Any HTTP endpoint answering JSON (Authorization header in SLO_TOKEN).
    Http,
}

/// `flagramp init`'s arguments.
#[derive(Debug, Args)]
pub struct Init {
    /// Where the flag lives.
    #[arg(long, value_enum, default_value = "flagd", value_name = "PROVIDER")]
    pub provider: InitProvider,
    /// Where the starter check's metric comes from.
    #[arg(long, value_enum, default_value = "prometheus", value_name = "SOURCE")]
    pub source: InitSource,
    /// The repository to write into [default: the root of the git repository around the
    /// current directory, else the current directory].
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

impl From<&Init> for flagramp::init::Starter {
    fn from(args: &Init) -> flagramp::init::Starter {
        use flagramp::init::{StarterProvider, StarterSource};
        flagramp::init::Starter {
            provider: match args.provider {
                InitProvider::Flagd => StarterProvider::Flagd,
                InitProvider::Unleash => StarterProvider::Unleash,
                InitProvider::Launchdarkly => StarterProvider::LaunchDarkly,
            },
            source: match args.source {
                InitSource::Prometheus => StarterSource::Prometheus,
                InitSource::Datadog => StarterSource::Datadog,
                InitSource::Http => StarterSource::Http,
            },
        }
    }
}

/// Which schema `flagramp schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaArg {
    /// A rollout spec file.
    #[value(alias = "text")]
    Spec,
    /// The array `plan`, `run` and the manual commands print with `--output json`.
    Decision,
    /// The array `status --output json` prints.
    Status,
}

impl From<SchemaArg> for SchemaKind {
    fn from(kind: SchemaArg) -> SchemaKind {
        match kind {
            SchemaArg::Spec => SchemaKind::Spec,
            SchemaArg::Decision => SchemaKind::Decision,
            SchemaArg::Status => SchemaKind::Status,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a repository: a commented starter spec, a flagd flag file (flagd only, if none
    /// exists) and the workflow .github/workflows/rollout.yml.
    ///
    /// Writes .github/rollouts/new-feature.yml for the chosen provider and source (its first line
    /// names the spec's JSON Schema for editors), flags/flags.flagd.json with the flag off, and the
    /// workflow: scheduled runs, manual commands (workflow_dispatch), a repository_dispatch fast
    /// path for rollback, pause and resume, pull request plans; permissions per job, and manual `advance`
    /// in a job of the GitHub environment `rollout-approval`, so that required reviewers can gate
    /// it. It never overwrites a file: if one exists it names every one and exits 1, writing
    /// nothing. `flagramp validate` passes on what it wrote.
    #[command(after_help = INIT_EXAMPLES)]
    Init(Init),
    /// Check specs and report every problem as file:line:col.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(Targets),
    /// Say what the next run would do; change nothing.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(Targets),
    /// Decide and act: start, advance, hold, roll back or complete each rollout.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Targets),
    /// Show each rollout's stages, position and recent history.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(Targets),
    /// Move one stage up now (from off: start), ignoring bake and window; checks must pass unless --force.
    #[command(after_help = ADVANCE_EXAMPLES)]
    Advance {
        #[command(flatten)]
        named: Named,
        /// Advance even when a check does not pass; the checks are still queried and recorded.
        #[arg(long)]
        force: bool,
    },
    /// Move one stage down now (from the first stage: off) and lock against advancing.
    #[command(after_help = ROLLBACK_EXAMPLES)]
    Rollback(Named),
    /// Stop advancing (rollbacks stay armed).
    #[command(after_help = PAUSE_EXAMPLES)]
    Pause(Named),
    /// Restart advancing; adopts a value a person set on the flag.
    #[command(after_help = RESUME_EXAMPLES)]
    Resume(Named),
    /// Backtest: replay specs over past metric data, one evaluation per tick, with the flag and
    /// state in memory; only the metric queries reach anything real.
    ///
    /// Each tick queries the checks at that time (minus the source's lag); command checks get it
    /// as FLAGRAMP_NOW. The data show the split they were gathered at, not the simulated one:
    /// the sample ratio test expects the exposure the data show (or --exposure), and ticks
    /// judged at another percentage are marked `diverged`.
    #[command(after_help = SIMULATE_EXAMPLES)]
    Simulate(Simulate),
    /// List the rollouts in chunks for a GitHub Actions matrix (fan-out); rollouts that report to
    /// one pull request share a chunk.
    ///
    /// `report.pull_request: auto` is looked up on GitHub, every spec in one GraphQL query, with
    /// GITHUB_TOKEN for GITHUB_REPOSITORY (owner/name) at GITHUB_API_URL (GraphQL at
    /// GITHUB_GRAPHQL_URL, default: beside it). Without a token, `auto` rollouts are grouped by
    /// spec file alone, and stderr says so. Chunks are balanced (the largest group first, into
    /// the chunk with the fewest rollouts), deterministic, and keep spec order.
    #[command(after_help = LIST_EXAMPLES)]
    List(List),
    /// Print a JSON Schema: of a spec, of the decisions JSON, or of the status JSON.
    ///
    /// Editors fetch the spec schema from
    /// https://raw.githubusercontent.com/flagramp/flagramp/main/schema/rollout-v1.json: a spec
    /// whose first line is `# yaml-language-server: $schema=` followed by that URL gets completion
    /// and checks as it is typed (VS Code's YAML extension, Neovim's yamlls).
    #[command(after_help = SCHEMA_EXAMPLES)]
    Schema {
        /// Which schema.
        #[arg(value_enum, value_name = "KIND")]
        kind: Option<SchemaArg>,
        /// The kind, as earlier releases took it.
        #[arg(long = "output", value_enum, hide = true, conflicts_with = "kind")]
        output: Option<SchemaArg>,
    },
    /// Run as the GitHub Action: read inputs, event and repository from the runner's environment.
    ///
    /// A job re-run with debug logging (RUNNER_DEBUG=1) logs at `debug`.
    #[command(after_help = ACTION_EXAMPLES)]
    Action,
    /// Print a shell completion script for flagramp's commands and flags to stdout.
    ///
    /// bash: source it from ~/.bashrc, or save it as
    /// ~/.local/share/bash-completion/completions/flagramp. zsh: save it as `_flagramp` in a
    /// folder of $fpath, before `compinit` runs. fish: save it as
    /// ~/.config/fish/completions/flagramp.fish.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// The command lines among a help's examples: each line (a trailing `\` joins the next) from
    /// its `flagramp` on, up to a redirection, a pipe, a closing `)` or a comment. Comment lines
    /// are skipped.
    fn example_command_lines(after_help: &str) -> Vec<String> {
        let joined = after_help.replace("\\\n", " ");
        joined
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let start = line.find("flagramp ")?;
                let command = &line[start..];
                let end = [" > ", " >> ", " | ", ")", " #"]
                    .iter()
                    .filter_map(|stop| command.find(stop))
                    .min()
                    .unwrap_or(command.len());
                Some(command[..end].trim().to_string())
            })
            .collect()
    }

    /// Splits a command line as a shell would these examples: at spaces, keeping "double quoted"
    /// words whole.
    fn words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        assert!(!quoted, "unbalanced quotes in `{line}`");
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    /// Every command's help ends in one to three examples, and each parses as the command it
    /// stands under: an example cannot name a flag or value that does not exist. Each line fits
    /// the help's width (`max_term_width`), so clap never breaks an example in two.
    #[test]
    fn every_command_shows_examples_that_parse() {
        let root = Cli::command();
        let mut commands = vec![(None, root.clone())];
        commands.extend(
            root.get_subcommands()
                .map(|c| (Some(c.get_name().to_string()), c.clone())),
        );
        assert!(commands.len() > 10, "the commands are all there");
        for (name, command) in commands {
            let shown = name.as_deref().unwrap_or("");
            let help = command.get_after_help().map(ToString::to_string).unwrap_or_default();
            let width = super::HELP_WIDTH;
            for line in help.lines() {
                assert!(
                    line.chars().count() < width,
                    "`flagramp {shown} --help`: `{line}` is wider than the help ({width} columns)"
                );
            }
            let lines = example_command_lines(&help);
            assert!(
                (1..=3).contains(&lines.len()),
                "`flagramp {shown} --help` shows {} examples: {lines:?}",
                lines.len()
            );
            for line in lines {
                let words = words(&line);
                if let Some(name) = &name {
                    assert_eq!(
                        words.get(1),
                        Some(name),
                        "an example of `{name}` runs `{name}`: `{line}`"
                    );
                }
                if let Err(e) = Cli::try_parse_from(&words) {
                    panic!("`{line}` (under `flagramp {shown}`) does not parse:\n{e}");
                }
            }
        }
    }

    #[test]
    fn example_lines_are_read_as_a_shell_would() {
        let help = "Examples:\n  # not this flagramp run\n  echo \"m=$(flagramp list --output matrix)\" >> x\n  A=1 \\\n    flagramp run --reason \"two words\" > out.json";
        let lines = example_command_lines(help);
        assert_eq!(
            lines,
            ["flagramp list --output matrix", "flagramp run --reason \"two words\""]
        );
        assert_eq!(words(&lines[1]), ["flagramp", "run", "--reason", "two words"]);
    }
}
