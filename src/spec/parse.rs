//! Reads one spec file into a [`RolloutSpec`], collecting every problem with its position.
//!
//! The YAML is first loaded into a tree that keeps line and column on every node (marked-yaml),
//! then walked by hand: a serde derive stops at the first error, and users fixing a spec in CI
//! want the whole list at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoadError, Node, Span};

mod checks;
mod compare;

pub use checks::WINDOW_PLACEHOLDER;

use super::shape::{self, Problem};
use super::text;
use super::{
    Diagnostic, FlagSpec, NotifySpec, NotifyTarget, Policy, ProviderSpec, PullRequestRef, RepoConfig, ReportSpec,
    RollbackPolicy, RolloutSpec, Stage, DEFAULT_BAKE, DEFAULT_NOTIFY_EVENTS, MAX_SPEC_BYTES, NOTIFY_EVENTS,
};
use crate::duration::SpecDuration;
use crate::percent::Percent;
use crate::record::DecisionKind;
use crate::window::{self, Window};

/// The fields each part of a spec accepts; the JSON Schema is tested against this list.
pub const KNOWN_FIELDS: &[(&str, &[&str])] = &[
    (
        "spec",
        &[
            "version",
            "name",
            "description",
            "flag",
            "stages",
            "sources",
            "checks",
            "policy",
            "report",
            "notify",
        ],
    ),
    ("flag", &["provider", "key", "flagd", "unleash", "launchdarkly"]),
    ("flagd", &["path", "branch"]),
    (
        "unleash",
        &["url", "project", "environment", "token_env", "allow_insecure_http"],
    ),
    (
        "launchdarkly",
        &[
            "project",
            "environment",
            "token_env",
            "base_url",
            "on_variation",
            "allow_insecure_http",
        ],
    ),
    ("stage", &["percent", "bake"]),
    (
        "source",
        &[
            "provider",
            "url",
            "token_env",
            "basic_auth",
            "headers",
            "timeout",
            "allow_insecure_http",
            "site",
            "api_key_env",
            "app_key_env",
            "lag",
            "max_concurrency",
        ],
    ),
    ("basic_auth", &["username_env", "password_env"]),
    ("header", &["env"]),
    (
        "check",
        &[
            "name",
            "source",
            "query",
            "command",
            "env",
            "pass",
            "on_no_data",
            "timeout",
            "queries",
            "formula",
            "reduce",
            "window",
            "method",
            "body",
            "value",
            "control",
            "gate",
            "compare",
            "max_increase",
            "max_relative_increase",
            "alpha",
            "min_samples",
        ],
    ),
    ("compare", &["canary", "control"]),
    ("cohort", &["events", "total", "units"]),
    ("policy", &["failures_to_rollback", "rollback", "window", "time_only"]),
    ("window", &["days", "hours", "timezone"]),
    ("report", &["pull_request"]),
    ("notify", &["events", "to"]),
    ("notify_target", &["slack", "webhook"]),
    ("slack", &["webhook_env"]),
    ("webhook", &["url", "secret_env"]),
];

/// The fields of the repository's settings file (`.github/flagramp.yml`).
pub const REPO_CONFIG_FIELDS: &[&str] = &["notify"];

/// A rollout name with the line and column where it is set (1:1 when it comes from the file name).
pub type NameAt = (String, usize, usize);

/// What [`text::is_name`] allows, for messages.
const NAME_RULE: &str = "a name is 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit";

/// Why names are plain, for hints.
const NAME_WHY: &str = "names become file names, report headings and log lines";

fn fields(part: &str) -> &'static [&'static str] {
    if part == "config" {
        return REPO_CONFIG_FIELDS;
    }
    KNOWN_FIELDS
        .iter()
        .find(|(name, _)| *name == part)
        .map(|(_, f)| *f)
        .unwrap_or(&[])
}

/// The most failing evaluations in a row a policy may wait for before rolling back.
pub const MAX_FAILURES_TO_ROLLBACK: u32 = 100;

/// Parses and validates one spec file's text (a leading UTF-8 byte-order mark is ignored).
///
/// Returns the spec when it has no problem, the rollout name with where it is set (for the
/// cross-file uniqueness check), and every problem found.
pub fn parse_spec(file: &Path, text: &str) -> (Option<RolloutSpec>, Option<NameAt>, Vec<Diagnostic>) {
    // Editors on Windows save one; it is not part of the YAML, and columns are counted without it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut walker = Walker {
        file,
        diags: Vec::new(),
    };
    let Some(root) = walker.load(text) else {
        return (None, None, walker.diags);
    };
    if root.as_mapping().is_some_and(|m| m.is_empty()) {
        // An empty file (or one with only comments) loads as an empty mapping: say so once
        // rather than listing every required field.
        let blank = text
            .lines()
            .all(|l| matches!(l.trim(), "" | "---") || l.trim_start().starts_with('#'));
        let ((line, column), message) = if blank {
            ((1, 1), "the spec file is empty")
        } else {
            (position(root.span()), "the spec has no fields")
        };
        walker.diags.push(Diagnostic::new(
            file.to_path_buf(),
            line,
            column,
            message,
            Some("start from `version: 1`, `flag:` and `checks:` (see `flagramp schema spec`)"),
        ));
        return (None, None, walker.diags);
    }
    let (spec, name_at) = walker.spec(&root);
    let spec = if walker.diags.is_empty() { spec } else { None };
    // Reported in the order they appear in the file (SpecErrors promises file order then position).
    walker.diags.sort_by_key(|d| (d.line, d.column));
    (spec, name_at, walker.diags)
}

/// Parses the repository's settings file (`.github/flagramp.yml`, docs/rules.md §5): the same
/// limits, positions and unknown-field errors as a spec.
pub fn parse_repo_config(file: &Path, text: &str) -> (Option<RepoConfig>, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut walker = Walker {
        file,
        diags: Vec::new(),
    };
    let Some(root) = walker.load(text) else {
        return (None, walker.diags);
    };
    if root.as_mapping().is_some_and(|m| m.is_empty()) {
        return (Some(RepoConfig::default()), walker.diags);
    }
    let config = walker
        .mapping(&root, super::REPO_CONFIG_FILE, "config")
        .and_then(|top| {
            let notify = walker.notify(walker.get(top, "notify"));
            Some(RepoConfig { notify: notify? })
        });
    walker.diags.sort_by_key(|d| (d.line, d.column));
    let config = if walker.diags.is_empty() { config } else { None };
    (config, walker.diags)
}

const TOO_DEEP_HINT: &str =
    "a rollout spec is a few levels deep: check the indentation, and the `-`, `[` and `{` that open lists and mappings";

/// Whether YAML 1.2 allows `c` in a stream: tab, line breaks and printable characters (§5.1).
fn allowed_in_yaml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{85}') || !(c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
}

/// The diagnostic for a spec file over [`MAX_SPEC_BYTES`].
pub(super) fn too_large(file: &Path) -> Diagnostic {
    Diagnostic::new(
        file.to_path_buf(),
        1,
        1,
        &format!(
            "the spec file is larger than {}, the most a spec may be",
            crate::fsutil::size_text(MAX_SPEC_BYTES)
        ),
        Some("a rollout spec is a few kilobytes: check that this is the file you meant"),
    )
}

struct Walker<'a> {
    file: &'a Path,
    diags: Vec<Diagnostic>,
}

fn position(span: &Span) -> (usize, usize) {
    span.start()
        .map(|m| (m.line().max(1), m.column().max(1)))
        .unwrap_or((1, 1))
}

/// Where a problem with a mapping as a whole (a missing field) is reported: its first key, since
/// a block mapping's own span starts at its first `:`; the mapping itself when it is empty.
fn anchor(map: &MarkedMappingNode) -> Span {
    map.iter().next().map(|(key, _)| *key.span()).unwrap_or(*map.span())
}

/// Which hidden characters a value may not carry (see [`text::is_hidden`]).
#[derive(Clone, Copy)]
enum Hidden {
    /// None at all: identifiers such as the flag key, which are compared and shown on one line.
    Any,
    /// None but tabs and line breaks: queries and command arguments, which may span lines, and
    /// where a bidi override would make a reviewed line run as something else.
    Format,
}

impl Hidden {
    fn forbids(self, c: char) -> bool {
        match self {
            Hidden::Any => text::is_hidden(c),
            Hidden::Format => text::is_hidden(c) && !matches!(c, '\t' | '\n' | '\r'),
        }
    }
}

/// Whether a URL's host is this machine: 127.0.0.0/8, ::1 or `localhost`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The `&` that starts the anchor on the node at `node`: the loader marks the node itself, which
/// for a block mapping is its first key, possibly lines below the anchor.
fn anchor_sigil(text: &str, node: &marked_yaml::Marker) -> Option<marked_yaml::Marker> {
    let before: String = text.chars().take(node.character()).collect();
    let amp = before.rfind('&')?;
    let rest = &before[amp + 1..];
    let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    // Between the anchor's name and the node: blanks, and for a block mapping its first key.
    if rest[name_end..].trim_start().contains('\n') {
        return None;
    }
    let head = &before[..amp];
    let line = head.matches('\n').count() + 1;
    let column = head.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    Some(marked_yaml::Marker::new(0, head.chars().count(), line, column))
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Closest known word, for "did you mean" hints.
fn closest<'f>(word: &str, candidates: &[&'f str]) -> Option<&'f str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

fn is_null(node: &Node) -> bool {
    node.as_scalar()
        .is_some_and(|s| s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

impl Walker<'_> {
    /// The text loaded as YAML, once it passed the size, character and shape limits; `None`
    /// (with the problems reported) when it cannot be loaded.
    fn load(&mut self, text: &str) -> Option<Node> {
        if text.len() as u64 > MAX_SPEC_BYTES {
            self.diags.push(too_large(self.file));
            return None;
        }
        if let Some((index, c)) = text.char_indices().find(|(_, c)| !allowed_in_yaml(*c)) {
            // The YAML scanner takes a NUL for the end of the file and would read only what is before it.
            let head = &text[..index];
            self.report_at(
                head.matches('\n').count() + 1,
                head.rsplit('\n').next().unwrap_or_default().chars().count() + 1,
                &format!(
                    "the spec contains {}, a control character YAML does not allow",
                    text::code_point(c)
                ),
                "remove it (most editors do not show it); to put one in a value, write it as an escape in double quotes, e.g. \"\\t\"",
            );
            return None;
        }
        if let Some(problem) = shape::check(text) {
            let stops = problem.stops_loading();
            self.shape_problem(problem, text);
            if stops {
                return None;
            }
        }
        match marked_yaml::parse_yaml_with_options(
            0,
            text,
            marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true),
        ) {
            Ok(root) => Some(root),
            Err(err) => {
                self.load_error(&err, text);
                self.diags.sort_by_key(|d| (d.line, d.column));
                None
            }
        }
    }

    fn report(&mut self, span: &Span, message: impl Into<String>, hint: impl Into<String>) {
        let (line, column) = position(span);
        self.report_at(line, column, &message.into(), &hint.into());
    }

    fn report_at(&mut self, line: usize, column: usize, message: &str, hint: &str) {
        self.diags.push(Diagnostic::new(
            self.file.to_path_buf(),
            line,
            column,
            message,
            (!hint.is_empty()).then_some(hint),
        ));
    }

    fn shape_problem(&mut self, problem: Problem, text: &str) {
        // yaml-rust2 markers: 1-based line, 0-based column.
        let at = |m: &yaml_rust2::scanner::Marker| (m.line().max(1), m.col() + 1);
        let ((line, column), message, hint) = match &problem {
            Problem::TooDeep(m) => (
                at(m),
                format!("the spec nests deeper than {} levels", shape::MAX_DEPTH),
                TOO_DEEP_HINT,
            ),
            Problem::TooManyNodes(m) => (
                at(m),
                format!("the spec has more than {} values", shape::MAX_NODES),
                "a rollout spec holds one rollout: check that this is the file you meant",
            ),
            Problem::SecondDocument(m) => (
                at(m),
                "a second YAML document starts here; a spec file holds one rollout".to_string(),
                "remove this `---` and what follows, or move the second rollout into its own file",
            ),
            Problem::SyntaxAfterFirstDocument(e) => {
                let m = e.marker();
                let marker = marked_yaml::Marker::new(0, m.index(), m.line(), m.col() + 1);
                self.load_error(&LoadError::ScanError(marker, e.clone()), text);
                return;
            }
        };
        self.report_at(line, column, &message, hint);
    }

    fn load_error(&mut self, err: &LoadError, text: &str) {
        let (marker, message, hint) = match err {
            LoadError::TopLevelMustBeMapping(m) => (
                Some(*m),
                "a rollout spec must be a YAML mapping".to_string(),
                "start from `version: 1` and `flag:` (see `flagramp schema spec`)",
            ),
            LoadError::DuplicateKey(inner) => (
                inner.key.span().start().copied(),
                format!(
                    "duplicate key `{}` (first set at line {})",
                    inner.key.as_str(),
                    inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0)
                ),
                "keep one of them",
            ),
            LoadError::ScanError(m, e) => {
                // The position is in the diagnostic already; Display repeats it with a byte offset.
                let text_msg = e.info().to_string();
                let hint = if text_msg.contains("recursion limit") {
                    TOO_DEEP_HINT
                } else if text_msg.contains("unknown anchor") {
                    "specs do not use YAML aliases (`*name`): write the value out in full"
                } else if text_msg.contains("tab") {
                    "YAML indents with spaces only: replace the tab with spaces"
                } else if text_msg.contains("block") || text_msg.contains("indicator") {
                    "quote conditions such as pass: \">= 0.95\" (a bare > starts a YAML block)"
                } else if text_msg.contains("flow") {
                    "a `[` or `{` before this point is not closed, or its contents are indented less than its key"
                } else {
                    "check indentation and quoting near this position"
                };
                (Some(*m), format!("YAML syntax error: {text_msg}"), hint)
            }
            LoadError::UnexpectedAnchor(m) => (
                Some(anchor_sigil(text, m).unwrap_or(*m)),
                "YAML anchors (`&name`) are not supported in specs".into(),
                "write the value out in full; specs do not reuse parts with `&name` and `*name`",
            ),
            LoadError::MappingKeyMustBeScalar(m) => (
                Some(*m),
                "mapping keys must be plain words".into(),
                "write the key as text",
            ),
            LoadError::UnexpectedTag(m) => (
                Some(*m),
                "YAML tags (`!name`) are not supported in specs".into(),
                "quote conditions such as pass: \"!= 0\" (a bare ! starts a YAML tag); otherwise remove the tag",
            ),
            other => (None, format!("cannot read YAML: {other}"), "check the file's syntax"),
        };
        let (line, mut column) = match marker {
            Some(m) => (m.line().max(1), m.column().max(1)),
            // An empty file has no node to point at.
            None => (1, 1),
        };
        if let LoadError::UnexpectedTag(_) = err {
            // The marker is on the tagged value; point at the `!` that starts the tag instead.
            let before: String = text
                .lines()
                .nth(line - 1)
                .unwrap_or("")
                .chars()
                .take(column - 1)
                .collect();
            if let Some(bang) = before.rfind('!') {
                column = before[..bang].chars().count() + 1;
            }
        }
        let message = if text.trim().is_empty() {
            "the spec file is empty".to_string()
        } else {
            message
        };
        self.report_at(line, column, &message, hint);
    }

    /// The node as a mapping, with unknown keys reported.
    fn mapping<'n>(&mut self, node: &'n Node, path: &str, part: &str) -> Option<&'n MarkedMappingNode> {
        let Some(map) = node.as_mapping() else {
            self.report(
                node.span(),
                format!("`{path}` must be a mapping"),
                format!("write it as `key: value` lines under `{path}`"),
            );
            return None;
        };
        let known = fields(part);
        for (key, _) in map.iter() {
            if !known.contains(&key.as_str()) {
                let hint = match closest(key.as_str(), known) {
                    Some(near) => format!("did you mean `{near}`? {} accepts: {}", path, known.join(", ")),
                    None => format!("{} accepts: {}", path, known.join(", ")),
                };
                self.report(
                    key.span(),
                    format!("unknown field `{}` in `{path}`", key.as_str()),
                    hint,
                );
            }
        }
        Some(map)
    }

    fn get<'n>(&self, map: &'n MarkedMappingNode, key: &str) -> Option<&'n Node> {
        map.get_node(key).filter(|n| !is_null(n))
    }

    fn scalar<'n>(&mut self, node: &'n Node, path: &str, example: &str) -> Option<&'n MarkedScalarNode> {
        match node.as_scalar() {
            Some(s) if !s.as_str().trim().is_empty() => Some(s),
            Some(_) => {
                self.report(
                    node.span(),
                    format!("`{path}` is empty"),
                    format!("set it, e.g. `{example}`"),
                );
                None
            }
            None => {
                self.report(
                    node.span(),
                    format!("`{path}` must be a single value"),
                    format!("write it as e.g. `{example}`"),
                );
                None
            }
        }
    }

    fn required<'n>(&mut self, map: &'n MarkedMappingNode, key: &str, path: &str, example: &str) -> Option<&'n Node> {
        let node = self.get(map, key);
        if node.is_none() {
            let full = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            self.report(&anchor(map), format!("`{full}` is missing"), format!("add `{example}`"));
        }
        node
    }

    fn required_str(&mut self, map: &MarkedMappingNode, key: &str, path: &str, example: &str) -> Option<String> {
        let node = self.required(map, key, path, example)?;
        self.scalar(node, &join(path, key), example)
            .map(|s| s.as_str().to_string())
    }

    fn optional_str(&mut self, map: &MarkedMappingNode, key: &str, path: &str, example: &str) -> Option<String> {
        let node = self.get(map, key)?;
        self.scalar(node, &join(path, key), example)
            .map(|s| s.as_str().to_string())
    }

    fn env_name(&mut self, map: &MarkedMappingNode, key: &str, path: &str, required: bool) -> Option<String> {
        let example = format!("{key}: MY_SECRET_VAR");
        let name = if required {
            self.required_str(map, key, path, &example)?
        } else {
            self.optional_str(map, key, path, &example)?
        };
        if !is_env_name(&name) {
            let node = self.get(map, key).expect("just read");
            let field = join(path, key);
            // `${{ secrets.X }}`, `$X` and `${X}` are not expanded in spec files: suggest the name.
            let inner = name
                .trim()
                .trim_start_matches('$')
                .trim_start_matches('{')
                .trim_end_matches('}')
                .trim();
            let referenced = inner.rsplit('.').next().unwrap_or(inner).trim();
            let (message, hint) = if name.trim_start().starts_with('$') && is_env_name(referenced) {
                (
                    format!("`{field}` names an environment variable; `{name}` is not expanded in spec files"),
                    format!("write `{key}: {referenced}` and set {referenced} in the workflow step's `env:` (e.g. `{referenced}: ${{{{ secrets.{referenced} }}}}`)"),
                )
            } else {
                // The value is not echoed: it may be the secret itself, pasted by mistake.
                (
                    format!("`{field}` must name an environment variable (letters, digits and `_`, not starting with a digit)"),
                    "secrets are read from the environment only: put the value in a variable (e.g. a GitHub secret) and name it here; if this was the secret itself, rotate it".to_string(),
                )
            };
            self.report(node.span(), message, hint);
            return None;
        }
        Some(name)
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<SpecDuration> {
        let text = self.scalar(node, path, "1h30m")?.as_str().to_string();
        match SpecDuration::parse(&text) {
            Ok(d) => Some(d),
            Err(msg) => {
                self.report(
                    node.span(),
                    format!("`{path}`: {msg}"),
                    "durations are <number><unit> parts with units s, m, h, d, at most 365d: 0s, 90s, 10m, 1h30m, 2d",
                );
                None
            }
        }
    }

    fn one_of<'v>(&mut self, node: &Node, path: &str, values: &[&'v str]) -> Option<&'v str> {
        let text = self.scalar(node, path, values[0])?.as_str().to_string();
        match values.iter().find(|v| **v == text) {
            Some(v) => Some(v),
            None => {
                let hint = match closest(&text, values) {
                    Some(near) => format!("did you mean `{near}`? use one of: {}", values.join(", ")),
                    None => format!("use one of: {}", values.join(", ")),
                };
                self.report(node.span(), format!("`{path}` cannot be `{text}`"), hint);
                None
            }
        }
    }

    fn spec(&mut self, root: &Node) -> (Option<RolloutSpec>, Option<NameAt>) {
        let Some(top) = self.mapping(root, "spec", "spec") else {
            return (None, None);
        };

        match self.get(top, "version") {
            None => self.report(
                &anchor(top),
                "`version` is missing",
                "add `version: 1` at the top of the spec",
            ),
            Some(node) => {
                if let Some(v) = self.scalar(node, "version", "version: 1") {
                    if v.as_str().trim() != "1" {
                        let msg = format!("unsupported spec version `{}`", v.as_str());
                        self.report(node.span(), msg, "this flagramp reads `version: 1`");
                    }
                }
            }
        }

        let stem = self
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name_at = match self.get(top, "name") {
            Some(node) => self
                .scalar(node, "name", "name: new-checkout")
                .map(|s| (s.as_str().trim().to_string(), position(node.span()))),
            None => Some((stem, (1, 1))),
        };
        if let Some((name, (line, column))) = &name_at {
            if !text::is_name(name) {
                let (message, hint) = match self.get(top, "name") {
                    Some(_) => (
                        format!("rollout name `{name}` is not allowed: {NAME_RULE}"),
                        format!("write e.g. `name: new-checkout`; {NAME_WHY}"),
                    ),
                    None => (
                        format!("the file name gives the rollout name `{name}`, which is not allowed: {NAME_RULE}"),
                        format!("set `name:` (e.g. `name: new-checkout`) or rename the file; {NAME_WHY}"),
                    ),
                };
                self.report_at(*line, *column, &message, &hint);
            }
        }
        let description = self.optional_str(top, "description", "", "description: New checkout flow");

        let flag = self
            .required(
                top,
                "flag",
                "",
                "flag: { provider: flagd, key: my_flag, flagd: { path: flags.flagd.json } }",
            )
            .and_then(|node| self.flag(node));
        let stages = self.stages(top.get_node("stages"), flag.as_ref());
        let sources = self.sources(self.get(top, "sources"));
        let policy = self.policy(self.get(top, "policy"));
        let time_only = match self.get(top, "policy") {
            None => Some(false),
            Some(_) => policy.as_ref().map(|p| p.time_only),
        };
        let checks = self.checks(top, &sources, time_only);
        let report = self.report_spec(self.get(top, "report"));
        let notify = self.notify(self.get(top, "notify"));

        let name_out = name_at.as_ref().map(|(n, (l, c))| (n.clone(), *l, *c));
        let spec = (|| {
            Some(RolloutSpec {
                name: name_at?.0,
                description,
                file: self.file.to_path_buf(),
                flag: flag?,
                stages: stages?,
                sources: sources?,
                checks: checks?,
                policy: policy?,
                report: report?,
                notify: notify?,
            })
        })();
        (spec, name_out)
    }

    fn flag(&mut self, node: &Node) -> Option<FlagSpec> {
        let map = self.mapping(node, "flag", "flag")?;
        let key = self.required_str(map, "key", "flag", "key: new_checkout");
        let key = self.visible(map, "key", "flag", key, Hidden::Any);
        let provider_node = self.required(map, "provider", "flag", "provider: flagd")?;
        let provider = self.one_of(provider_node, "flag.provider", &["flagd", "unleash", "launchdarkly"])?;
        for other in ["flagd", "unleash", "launchdarkly"] {
            if other != provider {
                if let Some(n) = self.get(map, other) {
                    self.report(
                        n.span(),
                        format!("`flag.{other}` is set but `flag.provider` is `{provider}`"),
                        format!("remove `flag.{other}`, or set `provider: {other}`"),
                    );
                }
            }
        }
        let block_example = match provider {
            "flagd" => "flagd: { path: flags/flags.flagd.json }",
            "unleash" => "unleash: { url: https://unleash.example.com, project: default, environment: production, token_env: UNLEASH_TOKEN }",
            _ => "launchdarkly: { project: default, environment: production, token_env: LD_TOKEN }",
        };
        let block_node = self.required(map, provider, "flag", block_example)?;
        let path = format!("flag.{provider}");
        let block = self.mapping(block_node, &path, provider)?;
        let provider = match provider {
            "flagd" => {
                let file = self.required_str(block, "path", &path, "path: flags/flags.flagd.json");
                let file = self.visible(block, "path", &path, file, Hidden::Any);
                let branch = self.optional_str(block, "branch", &path, "branch: main");
                if let Some(b) = branch.as_deref().filter(|b| !text::is_branch_name(b)) {
                    let n = self.get(block, "branch").expect("just read");
                    self.report(
                        n.span(),
                        format!("`{path}.branch`: `{b}` is not a branch name git accepts"),
                        "write the branch as git names it, e.g. branch: main (no spaces, `..`, `~^:?*[\\`, or a part starting with `.`)",
                    );
                }
                if let Some(f) = &file {
                    if Path::new(f).is_absolute() || f.split(['/', '\\']).any(|part| part == "..") {
                        let n = self.get(block, "path").expect("just read");
                        self.report(
                            n.span(),
                            format!("`{path}.path` must stay inside the repository, not `{f}`"),
                            "write it relative to the repository root, e.g. flags/flags.flagd.json",
                        );
                    }
                }
                ProviderSpec::Flagd {
                    path: PathBuf::from(file?),
                    branch,
                }
            }
            "unleash" => {
                let url = self.url(block, &path);
                let project = self.required_str(block, "project", &path, "project: default");
                let project = self.visible(block, "project", &path, project, Hidden::Any);
                let environment = self.required_str(block, "environment", &path, "environment: production");
                let environment = self.visible(block, "environment", &path, environment, Hidden::Any);
                let token_env = self.env_name(block, "token_env", &path, true);
                ProviderSpec::Unleash {
                    url: url?,
                    project: project?,
                    environment: environment?,
                    token_env: token_env?,
                }
            }
            _ => {
                let project = self.required_str(block, "project", &path, "project: default");
                let project = self.visible(block, "project", &path, project, Hidden::Any);
                let environment = self.required_str(block, "environment", &path, "environment: production");
                let environment = self.visible(block, "environment", &path, environment, Hidden::Any);
                let token_env = self.env_name(block, "token_env", &path, true);
                let base_url = match self.get(block, "base_url") {
                    Some(_) => self.url_at(block, "base_url", &path).map(Some),
                    None => self.insecure_allowed(block, &path).map(|_| None),
                };
                let on_variation = self.optional_str(block, "on_variation", &path, "on_variation: enabled");
                let on_variation = match on_variation {
                    Some(v) => self
                        .visible(block, "on_variation", &path, Some(v), Hidden::Any)
                        .map(Some),
                    None => Some(None),
                };
                ProviderSpec::LaunchDarkly {
                    project: project?,
                    environment: environment?,
                    token_env: token_env?,
                    base_url: base_url?,
                    on_variation: on_variation?,
                }
            }
        };
        Some(FlagSpec { key: key?, provider })
    }

    fn url(&mut self, map: &MarkedMappingNode, path: &str) -> Option<String> {
        self.required(map, "url", path, "url: https://example.com")?;
        self.url_at(map, "url", path)
    }

    /// A base URL that tokens, secret headers or flag writes are sent to: https, unless it is
    /// loopback or its block sets `allow_insecure_http: true`, and never with credentials in it.
    ///
    /// The URL is not echoed in messages: a mistaken one may carry a password.
    fn url_at(&mut self, map: &MarkedMappingNode, key: &str, path: &str) -> Option<String> {
        let insecure_allowed = self.insecure_allowed(map, path);
        let node = self.get(map, key)?;
        let field = join(path, key);
        let text = self
            .scalar(node, &field, "https://example.com")?
            .as_str()
            .trim()
            .to_string();
        let example = "write the full base URL, e.g. https://prometheus.example.com";
        if text.contains(char::is_whitespace) {
            self.report(node.span(), format!("`{field}` has a space in it"), example);
            return None;
        }
        let url = match url::Url::parse(&text) {
            Ok(url) => url,
            Err(e) => {
                self.report(node.span(), format!("`{field}` is not a URL: {e}"), example);
                return None;
            }
        };
        let scheme = url.scheme().to_string();
        let written_with_slashes = text
            .get(..scheme.len() + 3)
            .is_some_and(|start| start.eq_ignore_ascii_case(&format!("{scheme}://")));
        if !matches!(scheme.as_str(), "http" | "https") || !written_with_slashes || url.host().is_none() {
            self.report(node.span(), format!("`{field}` is not an http(s) URL"), example);
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            let instead = if path.starts_with("sources.") {
                "`basic_auth: { username_env: …, password_env: … }` or `token_env`"
            } else {
                "`token_env`"
            };
            self.report(
                node.span(),
                format!("`{field}` has credentials in it (`user:password@`); they would be stored in the repository and sent in plain sight"),
                format!("remove them from the URL and use {instead}, which name environment variables; if they were real, rotate them"),
            );
            return None;
        }
        if scheme == "http" && !is_loopback(&url) && insecure_allowed == Some(false) {
            self.report(
                node.span(),
                format!(
                    "`{field}` uses plain http to {}: tokens, answers and flag changes would cross the network unencrypted",
                    url.host_str().unwrap_or_default()
                ),
                if !path.starts_with("notify.") {
                    format!("use https; if this network is trusted (e.g. a cluster-internal address), set `allow_insecure_http: true` in `{path}`")
                } else {
                    "use https (plain http only to loopback, for tests)".to_string()
                },
            );
            return None;
        }
        insecure_allowed?;
        Some(text.trim_end_matches('/').to_string())
    }

    /// `value` (read from `map[key]`) unless it carries a hidden character; see [`Hidden`].
    fn visible(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        path: &str,
        value: Option<String>,
        hidden: Hidden,
    ) -> Option<String> {
        let node = self.get(map, key)?;
        self.visible_node(node, &join(path, key), value?, hidden)
    }

    fn visible_node(&mut self, node: &Node, field: &str, value: String, hidden: Hidden) -> Option<String> {
        let Some(c) = value.chars().find(|c| hidden.forbids(*c)) else {
            return Some(value);
        };
        let (what, hint) = match hidden {
            Hidden::Any => (
                "a control or format character",
                "such characters make a value look like another one (bidi overrides, zero-width spaces) or break report lines: write it with visible characters only",
            ),
            Hidden::Format => (
                "a control or format character",
                "bidi overrides and zero-width characters make the text read differently from what runs: remove it",
            ),
        };
        self.report(
            node.span(),
            format!("`{field}` contains {}, {what}", text::code_point(c)),
            hint,
        );
        None
    }

    /// The block's `allow_insecure_http`: `Some(false)` when absent, `None` when not a boolean.
    fn insecure_allowed(&mut self, map: &MarkedMappingNode, path: &str) -> Option<bool> {
        let Some(node) = self.get(map, "allow_insecure_http") else {
            return Some(false);
        };
        let field = join(path, "allow_insecure_http");
        self.one_of(node, &field, &["true", "false"]).map(|v| v == "true")
    }

    fn stages(&mut self, node: Option<&Node>, flag: Option<&FlagSpec>) -> Option<Vec<Stage>> {
        let Some(node) = node.filter(|n| !is_null(n)) else {
            return Some(
                [10, 50, 100]
                    .map(|p| Stage {
                        percent: Percent::from_millis(p * 1000).expect("in range"),
                        bake: DEFAULT_BAKE,
                    })
                    .to_vec(),
            );
        };
        let Some(seq) = node.as_sequence() else {
            self.report(
                node.span(),
                "`stages` must be a list",
                "write e.g. `stages: [10, 50, 100]` or a list of `{ percent: 10, bake: 1h }`",
            );
            return None;
        };
        if seq.is_empty() {
            self.report(
                node.span(),
                "`stages` is empty",
                "list at least one stage ending at 100, or leave `stages` out for 10, 50, 100",
            );
            return None;
        }
        let whole_only = matches!(flag.map(|f| &f.provider), Some(ProviderSpec::Unleash { .. }));
        let mut stages: Vec<Stage> = Vec::new();
        // Every percent that parsed, with its item's index: order and the final 100 are checked on
        // these even when some other part of a stage is wrong, so that no problem hides another.
        let mut percents: Vec<(usize, Percent, Span)> = Vec::new();
        let mut ok = true;
        for (i, item) in seq.iter().enumerate() {
            let path = format!("stages[{i}]");
            let (percent_node, bake) = match item {
                Node::Scalar(_) => (Some(item), Some(DEFAULT_BAKE)),
                Node::Mapping(_) => {
                    let Some(map) = self.mapping(item, &path, "stage") else {
                        ok = false;
                        continue;
                    };
                    let percent = self.required(map, "percent", &path, "percent: 10");
                    let bake = match self.get(map, "bake") {
                        Some(b) => self.duration(b, &format!("{path}.bake")),
                        None => Some(DEFAULT_BAKE),
                    };
                    (percent, bake)
                }
                Node::Sequence(_) => {
                    self.report(
                        item.span(),
                        format!("`{path}` must be a number or a mapping"),
                        "write `- 10` or `- { percent: 10, bake: 1h }`",
                    );
                    (None, None)
                }
            };
            let percent = percent_node.and_then(|pn| {
                let text = self
                    .scalar(pn, &format!("{path}.percent"), "percent: 10")?
                    .as_str()
                    .to_string();
                match Percent::parse_stage(&text) {
                    Ok(p) if whole_only && !p.is_whole() => {
                        self.report(
                            pn.span(),
                            format!("`{path}`: Unleash stores whole percents, not {p}"),
                            "use a whole number for Unleash flags, e.g. 10",
                        );
                        None
                    }
                    Ok(p) => Some(p),
                    Err(msg) => {
                        self.report(
                            pn.span(),
                            format!("`{path}`: {msg}"),
                            "stage percents are numbers in (0, 100] with at most 3 decimals, e.g. 0.5, 10, 100",
                        );
                        None
                    }
                }
            });
            if let (Some(percent), Some(node)) = (percent, percent_node) {
                percents.push((i, percent, *node.span()));
            }
            match (percent, bake) {
                (Some(percent), Some(bake)) => stages.push(Stage { percent, bake }),
                _ => ok = false,
            }
        }
        for pair in percents.windows(2) {
            let ((_, prev, _), (_, cur, span)) = (&pair[0], &pair[1]);
            if cur <= prev {
                self.report(
                    span,
                    format!("stages must strictly increase: {cur} comes after {prev}"),
                    "list each percentage once, lowest first, ending at 100",
                );
                ok = false;
            }
        }
        match percents.last() {
            Some((i, last, span)) if *i + 1 == seq.len() && *last != Percent::FULL => {
                self.report(
                    span,
                    format!("the last stage must be 100, not {}", last.as_f64()),
                    "end the list with `100` so the rollout can complete",
                );
                ok = false;
            }
            _ => {}
        }
        ok.then_some(stages)
    }

    fn policy(&mut self, node: Option<&Node>) -> Option<Policy> {
        let default = Policy {
            failures_to_rollback: 1,
            rollback: RollbackPolicy::Previous,
            window: None,
            time_only: false,
        };
        let Some(node) = node else { return Some(default) };
        let map = self.mapping(node, "policy", "policy")?;
        let failures = match self.get(map, "failures_to_rollback") {
            None => Some(1),
            Some(n) => {
                let text = self
                    .scalar(n, "policy.failures_to_rollback", "failures_to_rollback: 1")
                    .map(|s| s.as_str().to_string());
                match text.as_deref().map(str::parse::<u32>) {
                    Some(Ok(v)) if (1..=MAX_FAILURES_TO_ROLLBACK).contains(&v) => Some(v),
                    Some(_) => {
                        self.report(
                            n.span(),
                            format!(
                                "`policy.failures_to_rollback` must be a whole number from 1 to {MAX_FAILURES_TO_ROLLBACK}, not `{}`",
                                text.unwrap_or_default()
                            ),
                            "e.g. failures_to_rollback: 2 rolls back after two failing runs in a row",
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        let rollback = match self.get(map, "rollback") {
            None => Some(RollbackPolicy::Previous),
            Some(n) => self.one_of(n, "policy.rollback", &["previous", "off"]).map(|v| {
                if v == "off" {
                    RollbackPolicy::Off
                } else {
                    RollbackPolicy::Previous
                }
            }),
        };
        let window = match self.get(map, "window") {
            None => Some(None),
            Some(n) => self.window(n).map(Some),
        };
        let time_only = match self.get(map, "time_only") {
            None => Some(false),
            Some(n) => self
                .one_of(n, "policy.time_only", &["true", "false"])
                .map(|v| v == "true"),
        };
        Some(Policy {
            failures_to_rollback: failures?,
            rollback: rollback?,
            window: window?,
            time_only: time_only?,
        })
    }

    fn window(&mut self, node: &Node) -> Option<Window> {
        let map = self.mapping(node, "policy.window", "window")?;
        let days = match self.get(map, "days") {
            None => Some([true; 7]),
            Some(n) => match n {
                Node::Scalar(s) => match window::parse_day_range(s.as_str()) {
                    Ok(d) => Some(d),
                    Err(msg) => {
                        self.report(
                            n.span(),
                            format!("`policy.window.days`: {msg}"),
                            "write a range such as Mon-Fri, or a list such as [Mon, Wed]",
                        );
                        None
                    }
                },
                Node::Sequence(seq) => {
                    let mut days = [false; 7];
                    let mut ok = !seq.is_empty();
                    if seq.is_empty() {
                        self.report(
                            n.span(),
                            "`policy.window.days` is empty: the window would never open",
                            "list at least one day, e.g. [Mon, Wed]",
                        );
                    }
                    for (i, d) in seq.iter().enumerate() {
                        let msg = match d.as_scalar().map(|s| window::parse_day(s.as_str())) {
                            Some(Ok(idx)) => {
                                days[idx] = true;
                                continue;
                            }
                            Some(Err(e)) => e.to_string(),
                            None => "a day must be a name".to_string(),
                        };
                        self.report(
                            d.span(),
                            format!("`policy.window.days[{i}]`: {msg}"),
                            "use Mon, Tue, Wed, Thu, Fri, Sat or Sun",
                        );
                        ok = false;
                    }
                    ok.then_some(days)
                }
                Node::Mapping(_) => {
                    self.report(
                        n.span(),
                        "`policy.window.days` must be a range or a list",
                        "write Mon-Fri or [Mon, Wed]",
                    );
                    None
                }
            },
        };
        let hours = match self.get(map, "hours") {
            None => Some((0, 0)),
            Some(n) => {
                let text = self
                    .scalar(n, "policy.window.hours", "hours: \"09:00-17:00\"")
                    .map(|s| s.as_str().to_string());
                match text.as_deref().map(window::parse_hours) {
                    Some(Ok(h)) => Some(h),
                    Some(Err(msg)) => {
                        self.report(n.span(), format!("`policy.window.hours`: {msg}"), "hours are a half-open local range HH:MM-HH:MM; overnight ranges such as 22:00-06:00 are allowed");
                        None
                    }
                    None => None,
                }
            }
        };
        let timezone = match self.get(map, "timezone") {
            None => {
                self.report(
                    &anchor(map),
                    "`policy.window.timezone` is missing",
                    "name the IANA timezone the hours are in, e.g. timezone: Europe/Berlin (or UTC)",
                );
                None
            }
            Some(n) => {
                let text = self
                    .scalar(n, "policy.window.timezone", "timezone: Europe/Berlin")
                    .map(|s| s.as_str().to_string());
                match text.as_deref().map(window::parse_timezone) {
                    Some(Ok(tz)) => Some(tz),
                    Some(Err(msg)) => {
                        self.report(
                            n.span(),
                            format!("`policy.window.timezone`: {msg}"),
                            "see the tz database names, e.g. Europe/Berlin, America/New_York, Asia/Tokyo, UTC",
                        );
                        None
                    }
                    None => None,
                }
            }
        };
        let (open_minute, close_minute) = hours?;
        Some(Window {
            days: days?,
            open_minute,
            close_minute,
            timezone: timezone?,
        })
    }

    fn report_spec(&mut self, node: Option<&Node>) -> Option<ReportSpec> {
        let Some(node) = node else {
            return Some(ReportSpec {
                pull_request: PullRequestRef::Auto,
            });
        };
        let map = self.mapping(node, "report", "report")?;
        let pull_request = match self.get(map, "pull_request") {
            None => PullRequestRef::Auto,
            Some(n) => {
                let text = self
                    .scalar(n, "report.pull_request", "pull_request: auto")?
                    .as_str()
                    .trim()
                    .to_string();
                match text.as_str() {
                    "auto" => PullRequestRef::Auto,
                    "none" => PullRequestRef::None,
                    number => match number.parse::<u64>() {
                        Ok(n) if n > 0 => PullRequestRef::Number(n),
                        _ => {
                            self.report(
                                n.span(),
                                format!("`report.pull_request` cannot be `{text}`"),
                                "use auto, none, or a pull request number such as 42",
                            );
                            return None;
                        }
                    },
                }
            }
        };
        Some(ReportSpec { pull_request })
    }
}

impl Walker<'_> {
    /// `notify:` (docs/rules.md §5): `Some(None)` when absent, `None` when invalid.
    fn notify(&mut self, node: Option<&Node>) -> Option<Option<NotifySpec>> {
        let Some(node) = node else {
            return Some(None);
        };
        let map = self.mapping(node, "notify", "notify")?;
        let events = match self.get(map, "events") {
            None => Some(DEFAULT_NOTIFY_EVENTS.iter().copied().collect()),
            Some(n) => self.notify_events(n),
        };
        let to = self
            .required(
                map,
                "to",
                "notify",
                "to: [{ slack: { webhook_env: SLACK_ROLLOUTS_WEBHOOK } }]",
            )
            .and_then(|n| self.notify_targets(n));
        Some(Some(NotifySpec {
            events: events?,
            to: to?,
        }))
    }

    fn notify_events(&mut self, node: &Node) -> Option<BTreeSet<DecisionKind>> {
        let names: Vec<&'static str> = NOTIFY_EVENTS.iter().map(|k| k.as_str()).collect();
        let Some(seq) = node.as_sequence() else {
            self.report(
                node.span(),
                "`notify.events` must be a list",
                format!(
                    "write e.g. `events: [rollback, disable, complete, drift, error]`; events are {}",
                    names.join(", ")
                ),
            );
            return None;
        };
        let mut events = BTreeSet::new();
        let mut ok = true;
        for item in seq.iter() {
            match self.one_of(item, "notify.events", &names) {
                Some(name) => events.extend(NOTIFY_EVENTS.iter().copied().filter(|k| k.as_str() == name)),
                None => ok = false,
            }
        }
        ok.then_some(events)
    }

    fn notify_targets(&mut self, node: &Node) -> Option<Vec<NotifyTarget>> {
        let Some(seq) = node.as_sequence() else {
            self.report(
                node.span(),
                "`notify.to` must be a list",
                "write e.g. `to: [{ slack: { webhook_env: SLACK_ROLLOUTS_WEBHOOK } }]`",
            );
            return None;
        };
        let mut targets = Vec::new();
        let mut ok = true;
        for item in seq.iter() {
            match self.notify_target(item) {
                Some(target) => targets.push(target),
                None => ok = false,
            }
        }
        ok.then_some(targets)
    }

    fn notify_target(&mut self, node: &Node) -> Option<NotifyTarget> {
        let map = self.mapping(node, "notify.to[]", "notify_target")?;
        let (slack, webhook) = (self.get(map, "slack"), self.get(map, "webhook"));
        match (slack, webhook) {
            (Some(slack), None) => {
                let map = self.mapping(slack, "notify.to[].slack", "slack")?;
                // The URL of an incoming webhook is itself the credential: it is read from the
                // environment only, like every secret.
                let webhook_env = self.env_name(map, "webhook_env", "notify.to[].slack", true)?;
                Some(NotifyTarget::Slack { webhook_env })
            }
            (None, Some(webhook)) => {
                let path = "notify.to[].webhook";
                let map = self.mapping(webhook, path, "webhook")?;
                let url = self.required(map, "url", path, "url: https://hooks.example.com/rollouts");
                // Checked as every URL is, and then kept as written: a base URL loses its
                // trailing `/`, a hook's path must not.
                let url = url
                    .and_then(|node| Some((self.url_at(map, "url", path)?, node)))
                    .and_then(|(_, node)| node.as_scalar().map(|s| s.as_str().trim().to_string()));
                let secret_env = self.env_name(map, "secret_env", path, true);
                Some(NotifyTarget::Webhook {
                    url: url?,
                    secret_env: secret_env?,
                })
            }
            // Neither, with a field of its own: that field was reported as unknown already.
            (None, None) if !map.is_empty() => None,
            _ => {
                self.report(
                    node.span(),
                    "each entry of `notify.to` is one `slack:` or one `webhook:`",
                    "write e.g. `- slack: { webhook_env: SLACK_ROLLOUTS_WEBHOOK }` or `- webhook: { url: https://hooks.example.com/rollouts, secret_env: ROLLOUT_HOOK_SECRET }`",
                );
                None
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
