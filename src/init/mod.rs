//! `flagramp init`: the files a repository starts with. A commented starter spec for the chosen
//! flag provider and metric source, a flagd flag file with the flag off (flagd only, and only if
//! there is none), and the project's one recommended workflow (`workflow.yml` beside this file,
//! which `examples/workflows/rollout.yml` is a copy of for the default provider and source).
//!
//! Nothing is ever overwritten: every target is looked at first, and if one exists nothing is
//! written at all.

use std::path::{Path, PathBuf};

use crate::fsutil;

/// The workflow, with `__SECRETS__` where each job's step env lists the spec's secrets.
const WORKFLOW_TEMPLATE: &str = include_str!("workflow.yml");

/// Where the workflow goes.
pub const WORKFLOW_PATH: &str = ".github/workflows/rollout.yml";

/// The starter rollout's name, its flag's key and its spec file's stem.
pub const STARTER_NAME: &str = "new-feature";

/// Where the starter's flagd flag file goes.
pub const FLAGD_PATH: &str = "flags/flags.flagd.json";

/// The GitHub environment whose required reviewers approve a manual `advance`.
pub const APPROVAL_ENVIRONMENT: &str = "rollout-approval";

/// Which flag provider the starter spec uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StarterProvider {
    /// A flagd file in the repository.
    #[default]
    Flagd,
    /// Unleash's admin API.
    Unleash,
    /// LaunchDarkly's REST API.
    LaunchDarkly,
}

/// Which metric source the starter spec's check asks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StarterSource {
    /// A Prometheus server.
    #[default]
    Prometheus,
    /// Datadog's scalar query API.
    Datadog,
    /// Any HTTP endpoint answering JSON.
    Http,
}

/// What `init` writes for one provider and source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Starter {
    /// The flag provider.
    pub provider: StarterProvider,
    /// The metric source.
    pub source: StarterSource,
}

/// One file `init` writes, relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarterFile {
    /// Relative to the repository root.
    pub path: PathBuf,
    /// Its content.
    pub text: String,
    /// `true`: an existing file is kept as it is (the flagd flag file, which may hold other
    /// flags); `false`: an existing file stops `init`.
    pub keep_existing: bool,
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The files written, relative to the root.
    pub written: Vec<PathBuf>,
    /// Files that existed and were kept as they are (the flagd flag file).
    pub kept: Vec<PathBuf>,
}

/// Why `init` wrote nothing, or not everything.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Files `init` would write already exist; nothing was written.
    #[error(
        "{} already exist{}; flagramp init never overwrites a file, so it wrote nothing: move {} away, or edit what is there",
        list(.0),
        if .0.len() == 1 { "s" } else { "" },
        if .0.len() == 1 { "it" } else { "them" }
    )]
    Exists(Vec<PathBuf>),
    /// A file could not be written; the files before it were.
    #[error(
        "cannot write {}: {source}{}",
        .path.display(),
        if .written.is_empty() { String::new() } else { format!(" (written before it: {})", list(.written)) }
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The files written before it.
        written: Vec<PathBuf>,
        /// Why.
        #[source]
        source: fsutil::WriteError,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl StarterProvider {
    /// The environment variable of the provider's token, if it needs one.
    fn secret(self) -> Option<&'static str> {
        match self {
            StarterProvider::Flagd => None,
            StarterProvider::Unleash => Some("UNLEASH_TOKEN"),
            StarterProvider::LaunchDarkly => Some("LD_TOKEN"),
        }
    }

    /// The spec's `flag:` block.
    fn flag_block(self) -> String {
        match self {
            StarterProvider::Flagd => format!(
                "\
flag:
  provider: flagd
  key: {STARTER_NAME}                    # the flag's key, as the provider names it
  # A flagd file in this repository (on the default branch; `branch:` names another). flagramp
  # owns this flag's `state` and its fractional split of `on` and `off`, and keeps every other
  # flag and field of the file. A first run expects the flag off (\"state\": \"DISABLED\").
  flagd: {{ path: {FLAGD_PATH} }}
"
            ),
            StarterProvider::Unleash => format!(
                "\
flag:
  provider: unleash
  key: {STARTER_NAME}                    # the flag's name in Unleash
  # flagramp owns one flexibleRollout strategy titled `flagramp` on the flag in this environment.
  # Create the flag there first, turned off, with no other strategy that serves traffic.
  unleash:
    url: https://unleash.example.com  # Unleash's base URL
    project: default
    environment: production
    token_env: UNLEASH_TOKEN          # an admin API token, from this variable (a repository secret)
"
            ),
            StarterProvider::LaunchDarkly => format!(
                "\
flag:
  provider: launchdarkly
  key: {STARTER_NAME}                    # the flag's key in LaunchDarkly
  # flagramp owns the flag's fallthrough in this environment. Create the flag first, turned off.
  # A multivariate flag names the variation it rolls out: `on_variation: NAME`.
  launchdarkly:
    project: default
    environment: production
    token_env: LD_TOKEN               # an API access token with writer rights, from this variable
"
            ),
        }
    }
}

impl StarterSource {
    /// The environment variables of the source's credentials.
    fn secrets(self) -> &'static [&'static str] {
        match self {
            StarterSource::Prometheus => &["PROM_TOKEN"],
            StarterSource::Datadog => &["DD_API_KEY", "DD_APP_KEY"],
            StarterSource::Http => &["SLO_TOKEN"],
        }
    }

    /// The spec's `sources:` and `checks:` blocks.
    fn blocks(self) -> String {
        match self {
            StarterSource::Prometheus => format!(
                "\
sources:
  prom:
    provider: prometheus
    url: https://prometheus.example.com   # https, or http to loopback
    token_env: PROM_TOKEN             # sent as `Bearer …`; delete the line if Prometheus needs none
checks:
  # The share of the flag's requests that fail, over the last 10 minutes ($window), must stay
  # at or below 1%. Use the labels your services export.
  - name: error-rate
    source: prom
    window: 10m
    query: sum(rate(http_requests_total{{flag=\"{STARTER_NAME}\",code=~\"5..\"}}[$window])) / sum(rate(http_requests_total{{flag=\"{STARTER_NAME}\"}}[$window]))
    pass: \"<= 0.01\"                   # quote it: a bare < or > is YAML syntax
"
            ),
            StarterSource::Datadog => format!(
                "\
sources:
  dd:
    provider: datadog
    site: datadoghq.com               # datadoghq.eu, us3.datadoghq.com, …: where your account is
    api_key_env: DD_API_KEY           # the variables' names, not the keys (repository secrets)
    app_key_env: DD_APP_KEY
checks:
  # The share of the flag's requests that fail, over the last 10 minutes, must stay at or
  # below 1%. Use the metrics and tags your services report.
  - name: error-rate
    source: dd
    queries:
      errors: sum:trace.http.request.errors{{service:my-service,flag:{STARTER_NAME}}}.as_count()
      hits: sum:trace.http.request.hits{{service:my-service,flag:{STARTER_NAME}}}.as_count()
    formula: errors / hits
    window: 10m
    reduce: sum                       # sum for counts
    pass: \"<= 0.01\"                   # quote it: a bare < or > is YAML syntax
"
            ),
            StarterSource::Http => format!(
                "\
sources:
  slo:
    provider: http
    url: https://slo.example.com/api  # any endpoint that answers JSON
    headers: {{ Authorization: {{ env: SLO_TOKEN }} }}   # the whole value, e.g. `Bearer …`, from this variable
checks:
  # The number at `value` (a JSON Pointer into the answer) must stay at or below 1%.
  - name: error-rate
    source: slo
    query: /error-rate?flag={STARTER_NAME}&window=10m   # appended to the source's url
    value: /data/error_rate
    pass: \"<= 0.01\"                   # quote it: a bare < or > is YAML syntax
"
            ),
        }
    }
}

impl Starter {
    /// The environment variables the starter spec reads secrets from, in the order the
    /// workflow passes them.
    pub fn secrets(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.provider.secret().into_iter().collect();
        names.extend(self.source.secrets());
        names
    }

    /// The starter spec's path, relative to the repository root.
    pub fn spec_path() -> PathBuf {
        Path::new(crate::spec::DEFAULT_SPEC_DIR).join(format!("{STARTER_NAME}.yml"))
    }

    /// The starter spec: the schema line first, then every field with a word on why.
    pub fn spec_text(&self) -> String {
        let schema_line = crate::schema::spec_modeline();
        format!(
            "\
{schema_line}
# A starter rollout written by `flagramp init`: point the flag and the check at yours, then
# commit it. `flagramp validate` checks this file and names every problem as file:line:col; the
# README describes every field.
version: 1
name: {STARTER_NAME}                     # how commands name it: flagramp rollback {STARTER_NAME}
{flag}\
stages:                               # percentages that rise to 100, each held (baked) while healthy
  - {{ percent: 10, bake: 1h }}
  - {{ percent: 50, bake: 1h }}
  - {{ percent: 100, bake: 1h }}        # the final bake: then the rollout is complete
{blocks}\
policy:
  failures_to_rollback: 1             # roll back at the first failing evaluation
  rollback: previous                  # one stage back (from the first stage: off); or off
  # Advance only in working hours (rollbacks happen at any time):
  # window: {{ days: Mon-Fri, hours: \"09:00-17:00\", timezone: Europe/Berlin }}
report:
  pull_request: auto                  # comment on the pull request that last changed this file
",
            flag = self.provider.flag_block(),
            blocks = self.source.blocks(),
        )
    }

    /// The workflow: the template with the starter's secrets in every job's step env.
    pub fn workflow_text(&self) -> String {
        let env: String = self
            .secrets()
            .iter()
            .map(|name| format!("          {name}: ${{{{ secrets.{name} }}}}"))
            .collect::<Vec<_>>()
            .join("\n");
        WORKFLOW_TEMPLATE.replace("__SECRETS__", &env)
    }

    /// The flagd flag file: the starter's flag, off, with the variants flagramp needs.
    pub fn flagd_text() -> String {
        format!(
            "\
{{
  \"$schema\": \"https://flagd.dev/schema/v0/flags.json\",
  \"flags\": {{
    \"{STARTER_NAME}\": {{
      \"state\": \"DISABLED\",
      \"variants\": {{ \"on\": true, \"off\": false }},
      \"defaultVariant\": \"off\"
    }}
  }}
}}
"
        )
    }

    /// Every file `init` writes, in the order it writes them.
    pub fn files(&self) -> Vec<StarterFile> {
        let mut files = vec![StarterFile {
            path: Starter::spec_path(),
            text: self.spec_text(),
            keep_existing: false,
        }];
        if self.provider == StarterProvider::Flagd {
            files.push(StarterFile {
                path: PathBuf::from(FLAGD_PATH),
                text: Starter::flagd_text(),
                keep_existing: true,
            });
        }
        files.push(StarterFile {
            path: PathBuf::from(WORKFLOW_PATH),
            text: self.workflow_text(),
            keep_existing: false,
        });
        files
    }
}

/// Whether anything is at `path`: a file, a directory, or a link (even a dangling one).
fn taken(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Writes the starter's files under `root`. If any file it must not overwrite exists, it
/// writes nothing and names all of them; a flagd flag file that exists is kept as it is.
/// Each file is written atomically and never replaces one that appeared meanwhile.
pub fn write(root: &Path, starter: &Starter) -> Result<Written, InitError> {
    let files = starter.files();
    let existing: Vec<PathBuf> = files
        .iter()
        .filter(|f| !f.keep_existing && taken(&root.join(&f.path)))
        .map(|f| f.path.clone())
        .collect();
    if !existing.is_empty() {
        return Err(InitError::Exists(existing));
    }
    let mut done = Written {
        written: Vec::new(),
        kept: Vec::new(),
    };
    for file in files {
        let path = root.join(&file.path);
        if file.keep_existing && taken(&path) {
            done.kept.push(file.path);
            continue;
        }
        if let Err(source) = fsutil::create_atomically(&path, file.text.as_bytes()) {
            return Err(InitError::Write {
                path: file.path,
                written: done.written,
                source,
            });
        }
        done.written.push(file.path);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_of_the_workflow_gets_exactly_the_starters_secrets() {
        let starter = Starter {
            provider: StarterProvider::Unleash,
            source: StarterSource::Datadog,
        };
        let text = starter.workflow_text();
        assert!(!text.contains("__SECRETS__"), "{text}");
        for name in ["UNLEASH_TOKEN", "DD_API_KEY", "DD_APP_KEY"] {
            assert_eq!(
                text.matches(&format!("          {name}: ${{{{ secrets.{name} }}}}\n"))
                    .count(),
                3,
                "{name} in the plan, run and advance jobs"
            );
        }
        assert!(!text.contains("PROM_TOKEN"), "{text}");
    }
}
