//! A `compare` check: the exposed cohort's rate against the control cohort's, from count
//! queries on one source (docs/rules.md §2, `compare`).

use std::collections::BTreeMap;

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;

use super::checks::{SINGLE_QUERY_NAME, WINDOW_PLACEHOLDER};
use super::{anchor, join, Hidden, Walker};
use crate::spec::{CohortQueries, CompareTest, CompareWindow, HttpMethod, Query, Reduce, SourceSpec};
use crate::stats::Margin;

/// The fields a threshold check has and a `compare` check has not, with what to do instead.
const THRESHOLD_ONLY: &[(&str, &str)] = &[
    (
        "pass",
        "a compare check passes unless the canary is worse than the control by more than `max_increase`; remove `pass`",
    ),
    (
        "query",
        "a compare check queries the counts under `compare.canary` and `compare.control`; remove `query`",
    ),
    ("queries", "each count under `compare` is one query; remove `queries`"),
    (
        "formula",
        "a compare check divides `events` by `total` itself; remove `formula`",
    ),
    (
        "control",
        "the control cohort's counts go under `compare.control`; remove `control`",
    ),
    (
        "command",
        "a compare check counts on a source; a command check compares with a constant",
    ),
    ("env", "`env:` belongs to command checks"),
];

/// The fields only a `compare` check has.
pub(super) const COMPARE_ONLY: &[&str] = &[
    "compare",
    "max_increase",
    "max_relative_increase",
    "alpha",
    "min_samples",
];

/// The false-alarm budget of a compare check that does not set `alpha`.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// The `total` each cohort needs before a compare check judges.
pub const DEFAULT_MIN_SAMPLES: f64 = 500.0;

impl Walker<'_> {
    /// A check with `compare:`; every problem is reported, none hides another.
    pub(super) fn compare_test(
        &mut self,
        map: &MarkedMappingNode,
        compare: &Node,
        path: &str,
        sources: &Option<BTreeMap<String, SourceSpec>>,
    ) -> Option<CompareTest> {
        let mut ok = true;
        for (field, hint) in THRESHOLD_ONLY {
            if let Some(n) = self.get(map, field) {
                self.report(
                    n.span(),
                    format!("`{path}` is a compare check and cannot have `{field}`"),
                    *hint,
                );
                ok = false;
            }
        }
        let window = self.compare_window(map, path);
        let margin = self.margin(map, path);
        let alpha = match self.get(map, "alpha") {
            None => Some(DEFAULT_ALPHA),
            Some(n) => self.number(
                n,
                &join(path, "alpha"),
                |a| a > 0.0 && a < 0.5,
                "a number between 0 and 0.5 (exclusive), e.g. alpha: 0.01",
            ),
        };
        let min_samples = match self.get(map, "min_samples") {
            None => Some(DEFAULT_MIN_SAMPLES),
            Some(n) => self.number(
                n,
                &join(path, "min_samples"),
                |m| m >= 1.0 && m.fract() == 0.0,
                "a whole number of at least 1, counted in each cohort's `total`, e.g. min_samples: 500",
            ),
        };
        let source = self.check_source(map, path, sources);
        let provider = source
            .as_ref()
            .and_then(|s| sources.as_ref()?.get(s))
            .map(|s| s.provider.name());
        let kind = match provider {
            Some(p) => self.count_kind(map, path, p),
            None => None,
        };
        let cpath = join(path, "compare");
        let cohorts = match (self.mapping(compare, &cpath, "compare"), &kind) {
            (Some(cmap), Some(kind)) => {
                let canary = self.cohort(cmap, "canary", &cpath, kind);
                let control = self.cohort(cmap, "control", &cpath, kind);
                match (canary, control) {
                    (Some(canary), Some(control)) => {
                        if canary.units.is_some() != control.units.is_some() {
                            let (which, other) = if canary.units.is_some() {
                                ("canary", "control")
                            } else {
                                ("control", "canary")
                            };
                            let units_key = self
                                .get(cmap, which)
                                .and_then(Node::as_mapping)
                                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == "units"))
                                .map_or_else(|| anchor(cmap), |(k, _)| *k.span());
                            self.report(
                                &units_key,
                                format!("`{cpath}.{which}` counts `units` but `{cpath}.{other}` does not"),
                                format!("add `units:` to `{other}` too (the same query for the other cohort), or remove it from `{which}`"),
                            );
                            None
                        } else {
                            Some((canary, control))
                        }
                    }
                    _ => None,
                }
            }
            (Some(cmap), None) => {
                // Read for their own problems even when the source is unusable.
                for cohort in ["canary", "control"] {
                    if let Some(n) = self.get(cmap, cohort) {
                        self.mapping(n, &join(&cpath, cohort), "cohort");
                    }
                }
                None
            }
            (None, _) => None,
        };
        let (canary, control) = cohorts?;
        ok.then_some(())?;
        Some(CompareTest {
            source: source?,
            canary,
            control,
            window: window?,
            margin: margin?,
            alpha: alpha?,
            min_samples: min_samples?,
        })
    }

    /// `window: stage` (the default) or a duration longer than zero.
    fn compare_window(&mut self, map: &MarkedMappingNode, path: &str) -> Option<CompareWindow> {
        let Some(n) = self.get(map, "window") else {
            return Some(CompareWindow::Stage);
        };
        let field = join(path, "window");
        if n.as_scalar().is_some_and(|s| s.as_str().trim() == "stage") {
            return Some(CompareWindow::Stage);
        }
        let text = self.scalar(n, &field, "window: stage")?.as_str().to_string();
        match crate::duration::SpecDuration::parse(&text) {
            Ok(d) if d.as_secs() > 0 => Some(CompareWindow::Last(d)),
            _ => {
                self.report(
                    n.span(),
                    format!("`{field}` must be `stage` or a duration longer than 0s, not `{}`", text.trim()),
                    "`stage` judges everything since the stage was entered (the default); a duration such as 30m judges the last 30 minutes at each evaluation",
                );
                None
            }
        }
    }

    /// `max_increase` (absolute, the default 0) or `max_relative_increase`, never both.
    fn margin(&mut self, map: &MarkedMappingNode, path: &str) -> Option<Margin> {
        match (self.get(map, "max_increase"), self.get(map, "max_relative_increase")) {
            (Some(_), Some(relative)) => {
                self.report(
                    relative.span(),
                    format!("`{path}` sets both `max_increase` and `max_relative_increase`"),
                    "choose one: `max_increase: 0.005` allows 0.5 points more than the control, `max_relative_increase: 0.1` allows 10% more",
                );
                None
            }
            (Some(n), None) => self
                .number(
                    n,
                    &join(path, "max_increase"),
                    |v| (0.0..1.0).contains(&v),
                    "a fraction from 0 up to (not including) 1, e.g. max_increase: 0.005 (0.5 points)",
                )
                .map(Margin::Absolute),
            (None, Some(n)) => self
                .number(
                    n,
                    &join(path, "max_relative_increase"),
                    |v| v >= 0.0,
                    "a fraction of at least 0, e.g. max_relative_increase: 0.1 (10% more)",
                )
                .map(Margin::Relative),
            (None, None) => Some(Margin::Absolute(0.0)),
        }
    }

    /// A finite number that `valid` accepts; the message names the field and says what it takes.
    pub(super) fn number(&mut self, node: &Node, field: &str, valid: impl Fn(f64) -> bool, what: &str) -> Option<f64> {
        let text = self.scalar(node, field, what)?.as_str().trim().to_string();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && valid(v) => Some(v),
            _ => {
                self.report(
                    node.span(),
                    format!("`{field}` cannot be `{text}`"),
                    format!("write {what}"),
                );
                None
            }
        }
    }

    /// One cohort's `events`, `total` and optional `units` queries.
    fn cohort(
        &mut self,
        compare: &MarkedMappingNode,
        cohort: &str,
        cpath: &str,
        kind: &CountKind,
    ) -> Option<CohortQueries> {
        let path = join(cpath, cohort);
        let node = self.required(compare, cohort, cpath, &format!("{cohort}: {{ events: …, total: … }}"))?;
        let map = self.mapping(node, &path, "cohort")?;
        let events = self.count(map, "events", &path, kind, true);
        let total = self.count(map, "total", &path, kind, true);
        let units = self.count(map, "units", &path, kind, false);
        Some(CohortQueries {
            events: events??,
            total: total??,
            units: units?,
        })
    }

    /// One count query: `Some(None)` when an optional one is absent, `None` when wrong.
    fn count(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        path: &str,
        kind: &CountKind,
        required: bool,
    ) -> Option<Option<Query>> {
        let example = match kind {
            CountKind::Prometheus => "sum(increase(http_requests_total{variant=\"on\"}[$window]))",
            CountKind::Datadog(_) => "sum:trace.http.request.hits{variant:on}.as_count()",
            CountKind::Http { .. } => "/counts?variant=on&window=$window",
        };
        let node = if required {
            self.required(map, key, path, &format!("{key}: {example}"))?
        } else {
            match self.get(map, key) {
                Some(n) => n,
                None => return Some(None),
            }
        };
        let field = join(path, key);
        let text = self.scalar(node, &field, example)?.as_str().to_string();
        let text = self.visible_node(node, &field, text, Hidden::Format)?;
        let query = match kind {
            CountKind::Prometheus => {
                if !text.contains(WINDOW_PLACEHOLDER) {
                    self.report(
                        node.span(),
                        format!("`{field}` does not use `{WINDOW_PLACEHOLDER}`"),
                        format!("count over the check's window, e.g. {example}: flagramp sets `{WINDOW_PLACEHOLDER}` to the data each evaluation judges"),
                    );
                    return None;
                }
                Query::Prometheus(text)
            }
            CountKind::Datadog(reduce) => Query::Datadog {
                queries: vec![(SINGLE_QUERY_NAME.to_string(), text)],
                formula: SINGLE_QUERY_NAME.to_string(),
                reduce: *reduce,
            },
            CountKind::Http { method, body, pointer } => {
                let text = text.trim().to_string();
                if !super::checks::is_http_path(&text) {
                    self.report(
                        node.span(),
                        format!("`{field}` must be a path appended to the source's URL, starting with `/` or `?`, without spaces"),
                        "e.g. /counts?variant=on&window=$window; the host and scheme go in the source's `url`",
                    );
                    return None;
                }
                Query::Http {
                    path: text,
                    method: *method,
                    body: body.clone(),
                    pointer: pointer.clone(),
                }
            }
        };
        Some(Some(query))
    }

    /// How the counts are asked for on a source of `provider`, from the check's own fields.
    fn count_kind(&mut self, map: &MarkedMappingNode, path: &str, provider: &str) -> Option<CountKind> {
        for (field, applies) in super::checks::QUERY_FIELDS {
            if !["reduce", "method", "body", "value"].contains(field) || applies.contains(&provider) {
                continue;
            }
            if let Some(n) = self.get(map, field) {
                self.report(
                    n.span(),
                    format!("`{path}.{field}` does not apply to a compare check on a {provider} source"),
                    format!("`{field}` applies to checks on {} sources", applies.join(" and ")),
                );
                return None;
            }
        }
        match provider {
            "datadog" => {
                let reduce = match self.get(map, "reduce") {
                    Some(n) => {
                        let names: Vec<&str> = Reduce::ALL.iter().map(|(n, _)| *n).collect();
                        let word = self.one_of(n, &join(path, "reduce"), &names)?;
                        Reduce::ALL.iter().find(|(n, _)| *n == word).map(|(_, r)| *r)?
                    }
                    // Counts add up over the window.
                    None => Reduce::Sum,
                };
                Some(CountKind::Datadog(reduce))
            }
            "http" => {
                let (method, body) = self.http_method_body(map, path)?;
                let pointer = self.json_pointer(map, path)?;
                Some(CountKind::Http { method, body, pointer })
            }
            _ => Some(CountKind::Prometheus),
        }
    }
}

/// How each count of a compare check is asked for.
enum CountKind {
    Prometheus,
    Datadog(Reduce),
    Http {
        method: HttpMethod,
        body: Option<serde_json::Value>,
        pointer: String,
    },
}
