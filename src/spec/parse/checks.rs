//! The `sources:` and `checks:` parts of a spec: which API each source speaks, and the fields a
//! check may have for the source it asks (docs/rules.md §2).

use std::collections::{BTreeMap, BTreeSet};

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::Node;

use super::{anchor, is_env_name, join, Hidden, Walker, NAME_RULE, NAME_WHY};
use crate::check::Condition;
use crate::duration::SpecDuration;
use crate::spec::{
    text, Auth, CheckSpec, CheckTest, HeaderValue, HttpMethod, HttpSourceSpec, NoDataPolicy, Probe, Query, Reduce,
    SourceProvider, SourceSpec, ThresholdTest, DEFAULT_CHECK_TIMEOUT, DEFAULT_DATADOG_WINDOW, DEFAULT_LAG,
    DEFAULT_MAX_CONCURRENCY, MAX_MAX_CONCURRENCY,
};

/// The fields only a query check has, each with the source providers it applies to.
pub(super) const QUERY_FIELDS: &[(&str, &[&str])] = &[
    ("source", &["prometheus", "datadog", "http"]),
    ("queries", &["datadog"]),
    ("formula", &["datadog"]),
    ("reduce", &["datadog"]),
    ("method", &["http"]),
    ("body", &["http"]),
    ("value", &["http"]),
    ("control", &["prometheus", "datadog", "http"]),
    ("window", &["prometheus", "datadog"]),
];

/// The fields only one source provider has.
const SOURCE_FIELDS: &[(&str, &[&str])] = &[
    ("site", &["datadog"]),
    ("api_key_env", &["datadog"]),
    ("app_key_env", &["datadog"]),
    ("token_env", &["prometheus", "http"]),
    ("basic_auth", &["prometheus", "http"]),
];

/// The Datadog site whose API is used when a source names neither `site` nor `url`.
const DEFAULT_DATADOG_SITE: &str = "datadoghq.com";

/// The text standing for the check's window in a Prometheus query.
pub const WINDOW_PLACEHOLDER: &str = "$window";

/// The name a single Datadog `query:` gets in the request, and its formula.
pub(super) const SINGLE_QUERY_NAME: &str = "query";

impl Walker<'_> {
    pub(super) fn sources(&mut self, node: Option<&Node>) -> Option<BTreeMap<String, SourceSpec>> {
        let mut sources = BTreeMap::new();
        let Some(node) = node else { return Some(sources) };
        let Some(map) = node.as_mapping() else {
            self.report(
                node.span(),
                "`sources` must be a mapping of source names",
                "write e.g. `sources: { prom: { provider: prometheus, url: https://prometheus.example.com } }`",
            );
            return None;
        };
        let mut ok = true;
        for (key, value) in map.iter() {
            let path = format!("sources.{}", key.as_str());
            if !text::is_name(key.as_str()) {
                self.report(
                    key.span(),
                    format!("source name `{}` is not allowed: {NAME_RULE}", key.as_str()),
                    format!("write e.g. `prom:` under `sources:`; {NAME_WHY}"),
                );
                ok = false;
            }
            match self.source(value, &path) {
                Some(src) => {
                    sources.insert(key.as_str().to_string(), src);
                }
                None => ok = false,
            }
        }
        ok.then_some(sources)
    }

    fn source_provider_name(&mut self, map: &MarkedMappingNode, path: &str) -> Option<&'static str> {
        let node = self.required(map, "provider", path, "provider: prometheus")?;
        let text = self
            .scalar(node, &join(path, "provider"), "provider: prometheus")?
            .as_str()
            .to_string();
        if let Some(known) = ["prometheus", "datadog", "http"].into_iter().find(|p| *p == text) {
            return Some(known);
        }
        let hint = match text.as_str() {
            "command" => {
                "command checks need no source: write `command: [\"./check.sh\"]` on the check itself".to_string()
            }
            _ => match super::closest(&text, &["prometheus", "datadog", "http"]) {
                Some(near) => format!("did you mean `{near}`? use prometheus, datadog or http, or a `command:` check"),
                None => "use prometheus, datadog or http, or a `command:` check".to_string(),
            },
        };
        self.report(node.span(), format!("`{path}.provider` cannot be `{text}`"), hint);
        None
    }

    fn source(&mut self, node: &Node, path: &str) -> Option<SourceSpec> {
        let map = self.mapping(node, path, "source")?;
        let provider = self.source_provider_name(map, path);
        if let Some(provider) = provider {
            for (field, applies) in SOURCE_FIELDS {
                if let Some(n) = self.get(map, field).filter(|_| !applies.contains(&provider)) {
                    let hint = match provider {
                        "datadog" => "a datadog source authenticates with `api_key_env` and `app_key_env`".to_string(),
                        _ => format!("`{field}` applies to {} sources", applies.join(" and ")),
                    };
                    self.report(
                        n.span(),
                        format!("`{path}.{field}` does not apply to a {provider} source"),
                        hint,
                    );
                }
            }
        }
        let (url, datadog) = if provider == Some("datadog") {
            let url = self.datadog_url(map, path);
            let api = self.env_name(map, "api_key_env", path, true);
            let app = self.env_name(map, "app_key_env", path, true);
            (url, api.zip(app))
        } else {
            (self.url(map, path), None)
        };
        let token_env = self.env_name(map, "token_env", path, false);
        // Problems here must not hide the headers' and the timeout's: no early return.
        let mut auth_ok = true;
        let basic = match self.get(map, "basic_auth") {
            None => None,
            Some(n) => {
                let bpath = join(path, "basic_auth");
                let pair = self.mapping(n, &bpath, "basic_auth").and_then(|b| {
                    let user = self.env_name(b, "username_env", &bpath, true);
                    let pass = self.env_name(b, "password_env", &bpath, true);
                    Some((user?, pass?))
                });
                auth_ok &= pair.is_some();
                pair
            }
        };
        let auth = match (token_env, basic) {
            (Some(_), Some(_)) => {
                let n = self.get(map, "basic_auth").expect("present");
                self.report(
                    n.span(),
                    format!("`{path}` sets both `token_env` and `basic_auth`"),
                    "choose one way to authenticate",
                );
                auth_ok = false;
                Auth::None
            }
            (Some(token_env), None) => Auth::Bearer { token_env },
            (None, Some((username_env, password_env))) => Auth::Basic {
                username_env,
                password_env,
            },
            (None, None) => Auth::None,
        };
        let headers = self.headers(map, path);
        let timeout = match self.get(map, "timeout") {
            Some(n) => self.duration(n, &join(path, "timeout")).map(Some),
            None => Some(None),
        };
        let lag = match self.get(map, "lag") {
            Some(n) => self.duration(n, &join(path, "lag")),
            None => Some(DEFAULT_LAG),
        };
        let max_concurrency = match self.get(map, "max_concurrency") {
            Some(n) => self
                .number(
                    n,
                    &join(path, "max_concurrency"),
                    |v| v >= 1.0 && v <= f64::from(MAX_MAX_CONCURRENCY) && v.fract() == 0.0,
                    &format!("a whole number from 1 to {MAX_MAX_CONCURRENCY}, e.g. max_concurrency: {DEFAULT_MAX_CONCURRENCY}"),
                )
                .map(|v| v as u32),
            None => Some(DEFAULT_MAX_CONCURRENCY),
        };
        let provider = match provider? {
            "datadog" => {
                let (api_key_env, app_key_env) = datadog?;
                SourceProvider::Datadog {
                    api_key_env,
                    app_key_env,
                }
            }
            "http" => SourceProvider::Http,
            _ => SourceProvider::Prometheus,
        };
        let mut headers = headers?;
        if let SourceProvider::Datadog {
            api_key_env,
            app_key_env,
        } = &provider
        {
            // The keys travel as headers: one path for every secret a source sends.
            headers.push(("DD-API-KEY".into(), HeaderValue::Env(api_key_env.clone())));
            headers.push(("DD-APPLICATION-KEY".into(), HeaderValue::Env(app_key_env.clone())));
        }
        let (timeout, lag, max_concurrency) = (timeout?, lag?, max_concurrency?);
        auth_ok.then_some(())?;
        Some(SourceSpec {
            provider,
            http: HttpSourceSpec {
                url: url?,
                auth,
                headers,
                timeout,
            },
            lag,
            max_concurrency,
        })
    }

    /// A Datadog source's API base: `url` (proxies, tests), or `https://api.<site>`.
    fn datadog_url(&mut self, map: &MarkedMappingNode, path: &str) -> Option<String> {
        match (self.get(map, "site"), self.get(map, "url")) {
            (Some(_), Some(url)) => {
                self.report(
                    url.span(),
                    format!("`{path}` sets both `site` and `url`"),
                    "keep `site` (e.g. datadoghq.eu) for Datadog itself, or `url` for a proxy",
                );
                None
            }
            (None, Some(_)) => self.url_at(map, "url", path),
            (Some(site), None) => {
                let field = join(path, "site");
                let text = self
                    .scalar(site, &field, "site: datadoghq.eu")?
                    .as_str()
                    .trim()
                    .to_string();
                let host_like = !text.is_empty()
                    && text.contains('.')
                    && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                    && !text.starts_with(['.', '-'])
                    && !text.starts_with("api.");
                if !host_like {
                    self.report(
                        site.span(),
                        format!("`{field}` must be a Datadog site such as datadoghq.com, datadoghq.eu or us3.datadoghq.com"),
                        "write the site as Datadog names it, without `https://` or `api.`; for a proxy use `url:` instead",
                    );
                    return None;
                }
                Some(format!("https://api.{text}"))
            }
            (None, None) => Some(format!("https://api.{DEFAULT_DATADOG_SITE}")),
        }
    }

    fn headers(&mut self, map: &MarkedMappingNode, path: &str) -> Option<Vec<(String, HeaderValue)>> {
        let mut headers = Vec::new();
        let Some(h) = self.get(map, "headers") else {
            return Some(headers);
        };
        let hpath = join(path, "headers");
        let Some(hmap) = h.as_mapping() else {
            self.report(
                h.span(),
                format!("`{hpath}` must be a mapping of header names"),
                "write e.g. `headers: { X-Scope-OrgID: { env: PROM_TENANT } }`",
            );
            return None;
        };
        let mut ok = true;
        for (name, value) in hmap.iter() {
            let vpath = join(&hpath, name.as_str());
            // Checked as the HTTP client will: a CR or LF here would start another header.
            if reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()).is_err() {
                self.report(
                    name.span(),
                    format!("`{vpath}`: `{}` is not an HTTP header name", name.as_str()),
                    "header names are ASCII letters, digits and `-`, e.g. X-Scope-OrgID",
                );
                ok = false;
            }
            let value = match value {
                Node::Scalar(s) if reqwest::header::HeaderValue::from_str(s.as_str()).is_ok() => {
                    Some(HeaderValue::Literal(s.as_str().to_string()))
                }
                Node::Scalar(s) => {
                    self.report(
                        s.span(),
                        format!("`{vpath}` is not a valid HTTP header value"),
                        "a literal header value is printable ASCII on one line; read anything else from the environment with `{ env: NAME }`",
                    );
                    None
                }
                _ => self
                    .mapping(value, &vpath, "header")
                    .and_then(|m| self.env_name(m, "env", &vpath, true))
                    .map(HeaderValue::Env),
            };
            match value {
                Some(value) => headers.push((name.as_str().to_string(), value)),
                None => ok = false,
            }
        }
        ok.then_some(headers)
    }

    /// The `checks:` list. It may be empty (or absent) only for a rollout that says it gates on
    /// time alone (`policy.time_only: true`), and then it must be.
    pub(super) fn checks(
        &mut self,
        top: &MarkedMappingNode,
        sources: &Option<BTreeMap<String, SourceSpec>>,
        time_only: Option<bool>,
    ) -> Option<Vec<CheckSpec>> {
        let node = self.get(top, "checks");
        let seq = match node {
            None => None,
            Some(node) => match node.as_sequence() {
                Some(seq) => Some(seq),
                None => {
                    self.report(
                        node.span(),
                        "`checks` must be a list",
                        "write each check as a `- name: …` item",
                    );
                    return None;
                }
            },
        };
        let empty = seq.is_none_or(|s| s.is_empty());
        match (time_only, empty) {
            (Some(true), true) => return Some(Vec::new()),
            (Some(true), false) => {
                let node = node.expect("a non-empty list is present");
                self.report(
                    node.span(),
                    "`policy.time_only: true` says this rollout gates on time alone, but it lists checks",
                    "remove `time_only: true` to gate on these checks, or remove the checks",
                );
                return None;
            }
            (_, true) => {
                let (span, message) = match node {
                    Some(n) => (*n.span(), "`checks` is empty: a rollout needs at least one check"),
                    None => (anchor(top), "`checks` is missing: a rollout needs at least one check"),
                };
                self.report(
                    &span,
                    message,
                    "add a check, e.g. `checks: [{ name: smoke, command: [\"./smoke.sh\"], pass: \"== 1\" }]`; to ramp on bake time alone, say so with `policy: { time_only: true }` and `checks: []`",
                );
                return None;
            }
            (_, false) => {}
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut checks = Vec::new();
        let mut ok = true;
        for (i, item) in seq.into_iter().flat_map(|s| s.iter()).enumerate() {
            match self.check(item, &format!("checks[{i}]"), sources, &mut names) {
                Some(c) => checks.push(c),
                None => ok = false,
            }
        }
        // Shadow checks alone gate nothing: that is a time-only ramp that does not say so.
        if ok && checks.iter().all(|c: &CheckSpec| !c.gate) {
            let node = node.expect("a non-empty list is present");
            self.report(
                node.span(),
                "every check is a shadow check (`gate: false`): nothing would gate this rollout",
                "let at least one check gate (remove `gate: false`), or say `policy: { time_only: true }` and move the shadow checks to a rollout that gates",
            );
            return None;
        }
        ok.then_some(checks)
    }

    fn check(
        &mut self,
        node: &Node,
        path: &str,
        sources: &Option<BTreeMap<String, SourceSpec>>,
        names: &mut BTreeSet<String>,
    ) -> Option<CheckSpec> {
        let map = self.mapping(node, path, "check")?;
        let name = self
            .required_str(map, "name", path, "name: success-rate")
            .and_then(|n| {
                if text::is_name(&n) {
                    return Some(n);
                }
                let span = *self.get(map, "name").expect("just read").span();
                self.report(
                    &span,
                    format!("check name `{n}` is not allowed: {NAME_RULE}"),
                    format!("write e.g. `name: success-rate`; {NAME_WHY}"),
                );
                None
            });
        if let Some(n) = &name {
            if !names.insert(n.clone()) {
                let span = *self.get(map, "name").expect("present").span();
                self.report(
                    &span,
                    format!("check name `{n}` is used twice"),
                    "give each check its own name",
                );
            }
        }
        // Problems here must not hide the test's: no early return before it is read.
        let on_no_data = match self.get(map, "on_no_data") {
            Some(n) => self
                .one_of(n, &join(path, "on_no_data"), &["hold", "fail"])
                .map(|v| match v {
                    "fail" => NoDataPolicy::Fail,
                    _ => NoDataPolicy::Hold,
                }),
            None => Some(NoDataPolicy::Hold),
        };
        let timeout = self
            .positive_duration(map, "timeout", path)
            .map(|t| t.unwrap_or(DEFAULT_CHECK_TIMEOUT));
        let gate = match self.get(map, "gate") {
            Some(n) => self
                .one_of(n, &join(path, "gate"), &["true", "false"])
                .map(|v| v == "true"),
            None => Some(true),
        };
        let test = match self.get(map, "compare") {
            Some(compare) => self.compare_test(map, compare, path, sources).map(CheckTest::Compare),
            None => self.threshold_test(map, path, sources).map(CheckTest::Threshold),
        };
        Some(CheckSpec {
            name: name?,
            test: test?,
            on_no_data: on_no_data?,
            timeout: timeout?,
            gate: gate?,
        })
    }

    /// A check with a `pass` condition: its probe, window and control query.
    fn threshold_test(
        &mut self,
        map: &MarkedMappingNode,
        path: &str,
        sources: &Option<BTreeMap<String, SourceSpec>>,
    ) -> Option<ThresholdTest> {
        for field in super::compare::COMPARE_ONLY {
            if let Some(n) = self.get(map, field) {
                self.report(
                    n.span(),
                    format!("`{path}.{field}` belongs to a compare check, and `{path}` has no `compare`"),
                    "compare the exposed cohort with the control under `compare: { canary: { events, total }, control: { events, total } }`, or remove the field",
                );
            }
        }
        let pass = self.pass(map, path);
        let window = self.positive_duration(map, "window", path);
        let (probe, control) = match (self.get(map, "command"), self.query_present(map)) {
            (Some(c), false) => (self.command_probe(map, c, path), Some(None)),
            (None, true) => match self.query_probe(map, path, sources, window.flatten()) {
                Some((probe, control)) => (Some(probe), Some(control)),
                None => (None, None),
            },
            (Some(c), true) => {
                self.report(
                    c.span(),
                    format!("`{path}` has both `query` and `command`"),
                    "a check gets its value one way: keep `query` (with `source`) or `command`",
                );
                (None, None)
            }
            (None, false) => {
                self.report(
                    &anchor(map),
                    format!("`{path}` has neither `query` nor `command`"),
                    "add `query:` with `source:`, or `command: [\"./check.sh\"]`",
                );
                (None, None)
            }
        };
        let window = match (&probe, window) {
            (
                Some(Probe::Query {
                    query: Query::Datadog { .. },
                    ..
                }),
                Some(None),
            ) => Some(Some(DEFAULT_DATADOG_WINDOW)),
            (_, window) => window,
        };
        // A condition on `control` and a `control` query come together.
        if let (Some(pass), Some(control)) = (&pass, &control) {
            match (pass.control_factor.is_some(), control.is_some()) {
                (true, false) => {
                    let n = self.get(map, "pass").expect("parsed");
                    self.report(
                        n.span(),
                        format!("`{path}.pass` compares with `control`, but the check has no `control` query"),
                        "add `control:` with the query for the cohort without the flag, on the same source",
                    );
                    return None;
                }
                (false, true) => {
                    let n = self.get(map, "control").expect("parsed");
                    self.report(
                        n.span(),
                        format!("`{path}` has a `control` query, but `pass` does not compare with it"),
                        "compare with it, e.g. pass: \"<= control * 1.1\" (or `control + 0.5`)",
                    );
                    return None;
                }
                _ => {}
            }
        }
        Some(ThresholdTest {
            probe: probe?,
            pass: pass?,
            window: window?,
            control: control?,
        })
    }

    fn pass(&mut self, map: &MarkedMappingNode, path: &str) -> Option<Condition> {
        let Some(n) = self.get(map, "pass") else {
            self.report(
                &anchor(map),
                format!("`{path}.pass` is missing"),
                "add the condition the value must meet, quoted: pass: \">= 0.95\"",
            );
            return None;
        };
        let s = self.scalar(n, &join(path, "pass"), "pass: \">= 0.95\"")?;
        match Condition::parse(s.as_str()) {
            Ok(c) => Some(c),
            Err(msg) => {
                let span = *n.span();
                self.report(
                    &span,
                    format!("`{path}.pass`: {msg}"),
                    "write (<|<=|>|>=|==|!=) and a number, quoted: pass: \">= 0.95\"; against a control query: pass: \"<= control * 1.1\"",
                );
                None
            }
        }
    }

    /// An optional duration longer than zero: `Some(None)` when absent, `None` when wrong.
    fn positive_duration(&mut self, map: &MarkedMappingNode, key: &str, path: &str) -> Option<Option<SpecDuration>> {
        let Some(n) = self.get(map, key) else {
            return Some(None);
        };
        let field = join(path, key);
        let d = self.duration(n, &field)?;
        if d.as_secs() == 0 {
            self.report(
                n.span(),
                format!("`{field}` must be longer than 0s"),
                format!("e.g. {key}: {}", if key == "timeout" { "30s" } else { "10m" }),
            );
            return None;
        }
        Some(Some(d))
    }

    fn query_present(&self, map: &MarkedMappingNode) -> bool {
        self.get(map, "query").is_some() || self.get(map, "queries").is_some()
    }

    fn command_probe(&mut self, map: &MarkedMappingNode, c: &Node, path: &str) -> Option<Probe> {
        for (field, _) in QUERY_FIELDS {
            if let Some(n) = self.get(map, field) {
                let hint = match *field {
                    "source" => "remove `source`, or use `query:` instead of `command:`".to_string(),
                    "control" => {
                        "a command check compares with a constant; compare cohorts with a query check on a source"
                            .to_string()
                    }
                    "window" => {
                        "a command decides its own window; it gets the evaluation time as FLAGRAMP_NOW".to_string()
                    }
                    _ => format!("remove `{field}`, or use `query:` with a source instead of `command:`"),
                };
                self.report(
                    n.span(),
                    format!("`{path}` is a command check and cannot have `{field}`"),
                    hint,
                );
            }
        }
        let env = self.command_env(map, path);
        match c.as_sequence() {
            Some(seq) if !seq.is_empty() => {
                let mut argv = Vec::new();
                let mut ok = true;
                for (j, arg) in seq.iter().enumerate() {
                    let field = format!("{path}.command[{j}]");
                    let value = self.scalar(arg, &field, "\"--fast\"").map(|s| s.as_str().to_string());
                    match value.and_then(|v| self.visible_node(arg, &field, v, Hidden::Format)) {
                        Some(v) => argv.push(v),
                        None => ok = false,
                    }
                }
                match (ok, env) {
                    (true, Some(env)) => Some(Probe::Command { argv, env }),
                    _ => None,
                }
            }
            Some(_) => {
                self.report(
                    c.span(),
                    format!("`{path}.command` is empty"),
                    "name the program to run, e.g. command: [\"./scripts/smoke.sh\"]",
                );
                None
            }
            None => {
                self.report(
                    c.span(),
                    format!("`{path}.command` must be a list (it runs without a shell)"),
                    "write the program and its arguments as a list, e.g. command: [\"./scripts/smoke.sh\", \"--fast\"]",
                );
                None
            }
        }
    }

    /// A query check's probe and control query, with the fields its source's provider accepts.
    fn query_probe(
        &mut self,
        map: &MarkedMappingNode,
        path: &str,
        sources: &Option<BTreeMap<String, SourceSpec>>,
        window: Option<SpecDuration>,
    ) -> Option<(Probe, Option<Query>)> {
        if let Some(e) = self.get(map, "env") {
            self.report(
                e.span(),
                format!("`{path}` is a query check and cannot have `env`"),
                "`env:` passes variables to a `command:` check; a source's secrets go in its `token_env`, `basic_auth`, `headers` or keys",
            );
        }
        let source = self.check_source(map, path, sources)?;
        // A source that did not parse is reported where it is declared; its checks cannot be
        // judged field by field.
        let provider = sources.as_ref()?.get(&source)?.provider.name();
        self.provider_fields(map, path, provider, &source)?;
        let control_text = match self.get(map, "control") {
            Some(n) => {
                let field = join(path, "control");
                let text = self.scalar(n, &field, "control: <the same query for the cohort without the flag>")?;
                let text = text.as_str().to_string();
                Some(self.visible_node(n, &field, text, Hidden::Format)?)
            }
            None => None,
        };
        let (query, control) = match provider {
            "datadog" => {
                let (queries, formula) = self.datadog_queries(map, path)?;
                let reduce = match self.get(map, "reduce") {
                    Some(n) => {
                        let names: Vec<&str> = Reduce::ALL.iter().map(|(n, _)| *n).collect();
                        let word = self.one_of(n, &join(path, "reduce"), &names)?;
                        Reduce::ALL.iter().find(|(n, _)| *n == word).map(|(_, r)| *r)?
                    }
                    None => Reduce::Avg,
                };
                let control = control_text.map(|text| Query::Datadog {
                    queries: vec![(SINGLE_QUERY_NAME.to_string(), text)],
                    formula: SINGLE_QUERY_NAME.to_string(),
                    reduce,
                });
                (
                    Query::Datadog {
                        queries,
                        formula,
                        reduce,
                    },
                    control,
                )
            }
            "http" => {
                let path_text = self.http_path(map, path)?;
                let (method, body) = self.http_method_body(map, path)?;
                let pointer = self.json_pointer(map, path)?;
                let control = control_text.map(|text| Query::Http {
                    path: text,
                    method,
                    body: body.clone(),
                    pointer: pointer.clone(),
                });
                (
                    Query::Http {
                        path: path_text,
                        method,
                        body,
                        pointer,
                    },
                    control,
                )
            }
            _ => {
                let expr = self.required_str(map, "query", path, "query: up")?;
                let expr = self.visible(map, "query", path, Some(expr), Hidden::Format)?;
                self.window_placeholder(map, "query", path, &expr, window)?;
                if let Some(text) = &control_text {
                    self.window_placeholder(map, "control", path, text, window)?;
                }
                (Query::Prometheus(expr), control_text.map(Query::Prometheus))
            }
        };
        Some((Probe::Query { source, query }, control))
    }

    /// The check's `source`, reported when it is missing or not declared.
    pub(super) fn check_source(
        &mut self,
        map: &MarkedMappingNode,
        path: &str,
        sources: &Option<BTreeMap<String, SourceSpec>>,
    ) -> Option<String> {
        match self.get(map, "source") {
            None => {
                self.report(
                    &anchor(map),
                    format!("`{path}` has a query but no `source`"),
                    "name the source to query, e.g. `source: prom` (declared under `sources:`)",
                );
                None
            }
            Some(sn) => {
                let s = self
                    .scalar(sn, &join(path, "source"), "source: prom")
                    .map(|s| s.as_str().to_string());
                if let (Some(s), Some(declared)) = (&s, sources) {
                    if !declared.contains_key(s) {
                        let names: Vec<&str> = declared.keys().map(String::as_str).collect();
                        let hint = if names.is_empty() {
                            format!("declare it under `sources:`, e.g. `sources: {{ {s}: {{ provider: prometheus, url: https://prometheus.example.com }} }}`")
                        } else {
                            format!("declared sources: {}", names.join(", "))
                        };
                        self.report(sn.span(), format!("unknown source `{s}` in `{path}.source`"), hint);
                    }
                }
                s
            }
        }
    }

    /// Reports the first field of `map` that does not apply to checks on a `provider` source.
    fn provider_fields(&mut self, map: &MarkedMappingNode, path: &str, provider: &str, source: &str) -> Option<()> {
        for (field, applies) in QUERY_FIELDS {
            if let Some(n) = self.get(map, field).filter(|_| !applies.contains(&provider)) {
                let others: Vec<&str> = applies.to_vec();
                self.report(
                    n.span(),
                    format!("`{path}.{field}` does not apply to a check on the {provider} source `{source}`"),
                    format!("`{field}` applies to checks on {} sources", others.join(" and ")),
                );
                return None;
            }
        }
        Some(())
    }

    /// `$window` may stand in a Prometheus query only when the check sets `window`.
    fn window_placeholder(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        path: &str,
        text: &str,
        window: Option<SpecDuration>,
    ) -> Option<()> {
        if window.is_some() || !text.contains(WINDOW_PLACEHOLDER) {
            return Some(());
        }
        let n = self.get(map, key).expect("read above");
        self.report(
            n.span(),
            format!("`{path}.{key}` uses `{WINDOW_PLACEHOLDER}`, but the check has no `window`"),
            "add `window:` to the check (e.g. window: 10m), or write the range itself, e.g. [10m]",
        );
        None
    }

    /// A Datadog check's named queries and formula: `query:` alone (its own formula), or
    /// `queries:` with a `formula:` over their names.
    fn datadog_queries(&mut self, map: &MarkedMappingNode, path: &str) -> Option<(Vec<(String, String)>, String)> {
        match (self.get(map, "query"), self.get(map, "queries")) {
            (Some(_), Some(q)) => {
                self.report(
                    q.span(),
                    format!("`{path}` has both `query` and `queries`"),
                    "one query: keep `query`; several: name them under `queries` and combine them with `formula`",
                );
                None
            }
            (Some(_), None) => {
                if let Some(f) = self.get(map, "formula") {
                    self.report(
                        f.span(),
                        format!("`{path}.formula` needs named `queries`"),
                        "a single `query:` is its own formula: remove `formula`, or name the queries under `queries:`",
                    );
                    return None;
                }
                let q = self.required_str(map, "query", path, "query: avg:system.cpu.user{*}")?;
                let q = self.visible(map, "query", path, Some(q), Hidden::Format)?;
                Some((vec![(SINGLE_QUERY_NAME.to_string(), q)], SINGLE_QUERY_NAME.to_string()))
            }
            (None, Some(qnode)) => {
                let qpath = join(path, "queries");
                let Some(qmap) = qnode.as_mapping().filter(|m| !m.is_empty()) else {
                    self.report(
                        qnode.span(),
                        format!("`{qpath}` must be a mapping of query names to queries"),
                        "e.g. queries: { errors: \"sum:trace.http.request.errors{service:checkout}.as_count()\", hits: \"sum:trace.http.request.hits{service:checkout}.as_count()\" }",
                    );
                    return None;
                };
                let mut queries = Vec::new();
                let mut ok = true;
                for (key, value) in qmap.iter() {
                    let field = join(&qpath, key.as_str());
                    if !is_formula_name(key.as_str()) {
                        self.report(
                            key.span(),
                            format!("query name `{}` cannot be used in a formula", key.as_str()),
                            "a query name is a letter followed by letters, digits or `_`, e.g. errors",
                        );
                        ok = false;
                        continue;
                    }
                    let text = self
                        .scalar(value, &field, "errors: sum:trace.http.request.errors{*}.as_count()")
                        .map(|s| s.as_str().to_string());
                    match text.and_then(|t| self.visible_node(value, &field, t, Hidden::Format)) {
                        Some(t) => queries.push((key.as_str().to_string(), t)),
                        None => ok = false,
                    }
                }
                let formula = match self.get(map, "formula") {
                    None => {
                        self.report(
                            &anchor(map),
                            format!("`{path}.formula` is missing"),
                            "combine the named queries, e.g. formula: errors / hits",
                        );
                        None
                    }
                    Some(f) => {
                        let field = join(path, "formula");
                        let text = self
                            .scalar(f, &field, "formula: errors / hits")
                            .map(|s| s.as_str().to_string());
                        let text = text.and_then(|t| self.visible_node(f, &field, t, Hidden::Any))?;
                        let known: Vec<&str> = queries.iter().map(|(n, _)| n.as_str()).collect();
                        let unknown: Vec<&str> = formula_names(&text)
                            .into_iter()
                            .filter(|n| !known.contains(n))
                            .collect();
                        if let Some(first) = unknown.first() {
                            let hint = match super::closest(first, &known) {
                                Some(near) => format!("did you mean `{near}`? the queries are: {}", known.join(", ")),
                                None => format!("the queries are: {}", known.join(", ")),
                            };
                            self.report(
                                f.span(),
                                format!("`{field}` names `{first}`, which is not one of the check's `queries`"),
                                hint,
                            );
                            None
                        } else {
                            Some(text.trim().to_string())
                        }
                    }
                };
                let formula = formula?;
                ok.then_some((queries, formula))
            }
            (None, None) => None,
        }
    }

    /// An HTTP check's `method` and the `body` a POST sends.
    pub(super) fn http_method_body(
        &mut self,
        map: &MarkedMappingNode,
        path: &str,
    ) -> Option<(HttpMethod, Option<serde_json::Value>)> {
        let method = match self.get(map, "method") {
            Some(n) => match self.one_of(n, &join(path, "method"), &["GET", "POST"])? {
                "POST" => HttpMethod::Post,
                _ => HttpMethod::Get,
            },
            None => HttpMethod::Get,
        };
        let body = match (self.get(map, "body"), method) {
            (Some(b), HttpMethod::Post) => Some(yaml_to_json(b)),
            (Some(b), HttpMethod::Get) => {
                self.report(
                    b.span(),
                    format!("`{path}.body` is sent only with `method: POST`"),
                    "add `method: POST`, or remove `body`",
                );
                return None;
            }
            (None, _) => None,
        };
        Some((method, body))
    }

    /// An HTTP check's `query`: the path and query string appended to the source's URL.
    fn http_path(&mut self, map: &MarkedMappingNode, path: &str) -> Option<String> {
        let text = self.required_str(map, "query", path, "query: /burn?service=checkout")?;
        let text = self.visible(map, "query", path, Some(text), Hidden::Any)?;
        let text = text.trim().to_string();
        if !is_http_path(&text) {
            let n = self.get(map, "query").expect("read above");
            self.report(
                n.span(),
                format!("`{path}.query` must be a path appended to the source's URL, starting with `/` or `?`, without spaces"),
                "e.g. query: /burn?service=checkout&window=1h; the host and scheme go in the source's `url`",
            );
            return None;
        }
        Some(text)
    }

    /// An HTTP check's `value`: an RFC 6901 JSON Pointer (`""`, or `/`-separated tokens where
    /// `~` is only ever `~0` or `~1`).
    pub(super) fn json_pointer(&mut self, map: &MarkedMappingNode, path: &str) -> Option<String> {
        let n = self.required(map, "value", path, "value: /data/burn_rate")?;
        let field = join(path, "value");
        let text = match n.as_scalar() {
            Some(s) => s.as_str().to_string(),
            None => {
                self.report(
                    n.span(),
                    format!("`{field}` must be a JSON Pointer"),
                    "e.g. value: /data/burn_rate",
                );
                return None;
            }
        };
        let text = self.visible_node(n, &field, text, Hidden::Any)?;
        if let Some(problem) = pointer_problem(&text) {
            self.report(
                n.span(),
                format!("`{field}` is not a JSON Pointer: {problem}"),
                "a JSON Pointer (RFC 6901) starts with `/` and names each step, e.g. /data/burn_rate or /results/0/value; write `~` as ~0 and `/` inside a name as ~1",
            );
            return None;
        }
        Some(text)
    }

    /// A command check's `env:`: the names of the variables it gets besides `PATH`, `HOME`,
    /// `LANG` and `FLAGRAMP_*` (their values are secrets, so names only).
    fn command_env(&mut self, map: &MarkedMappingNode, path: &str) -> Option<Vec<String>> {
        let Some(node) = self.get(map, "env") else {
            return Some(Vec::new());
        };
        let field = join(path, "env");
        let Some(seq) = node.as_sequence() else {
            self.report(
                node.span(),
                format!("`{field}` must be a list of environment variable names"),
                "e.g. env: [SMOKE_TOKEN]; set the values in the workflow step's `env:`",
            );
            return None;
        };
        let mut names: Vec<String> = Vec::new();
        let mut ok = true;
        for (j, item) in seq.iter().enumerate() {
            let Some(name) = self.scalar(item, &format!("{field}[{j}]"), "SMOKE_TOKEN") else {
                ok = false;
                continue;
            };
            let name = name.as_str().to_string();
            if !is_env_name(&name) {
                // The value is not echoed: it may be the secret itself, pasted by mistake.
                self.report(
                    item.span(),
                    format!("`{field}[{j}]` must name an environment variable (letters, digits and `_`, not starting with a digit)"),
                    "list names only, e.g. env: [SMOKE_TOKEN]; if this was the secret itself, rotate it",
                );
                ok = false;
            } else if names.contains(&name) {
                self.report(
                    item.span(),
                    format!("`{field}` lists `{name}` twice"),
                    "list each variable once",
                );
                ok = false;
            } else {
                names.push(name);
            }
        }
        ok.then_some(names)
    }
}

/// Whether `text` can be appended to an HTTP source's URL: a path or query string, one token.
pub(super) fn is_http_path(text: &str) -> bool {
    text.starts_with(['/', '?']) && !text.contains(char::is_whitespace) && !text.contains('#')
}

/// Whether `name` can stand in a Datadog formula: a letter, then letters, digits or `_`.
fn is_formula_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic()) && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The query names a Datadog formula uses: every identifier not called as a function
/// (`abs(a)`, `clamp_min(a, 0)`) and not part of a number (`1e3`).
fn formula_names(formula: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let bytes = formula.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || c == b'.' {
            // A number, exponent included.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let called = formula[i..].trim_start().starts_with('(');
            if !called {
                names.push(&formula[start..i]);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Why `text` is not an RFC 6901 JSON Pointer, if it is not.
fn pointer_problem(text: &str) -> Option<&'static str> {
    if !text.is_empty() && !text.starts_with('/') {
        return Some("it must start with `/`");
    }
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Some("`~` must be followed by 0 or 1");
        }
    }
    None
}

/// A YAML value as JSON: plain scalars are typed as YAML's core schema reads them (null,
/// booleans, numbers), quoted ones stay strings.
fn yaml_to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "" | "~" | "null" | "Null" | "NULL" => Value::Null,
                "true" | "True" | "TRUE" => Value::Bool(true),
                "false" | "False" | "FALSE" => Value::Bool(false),
                _ => {
                    if let Ok(i) = text.parse::<i64>() {
                        Value::from(i)
                    } else if let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        Value::Number(n)
                    } else {
                        Value::String(text.to_string())
                    }
                }
            }
        }
        Node::Sequence(seq) => Value::Array(seq.iter().map(yaml_to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), yaml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_names_skip_functions_and_numbers() {
        assert_eq!(formula_names("errors / hits"), vec!["errors", "hits"]);
        assert_eq!(formula_names("abs(a) * 1e3 + clamp_min(b, 0.5)"), vec!["a", "b"]);
        assert_eq!(formula_names("100 * (a - b_2) / a"), vec!["a", "b_2", "a"]);
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        for good in ["", "/", "/data/burn_rate", "/a~1b/~0c", "/results/0/value"] {
            assert_eq!(pointer_problem(good), None, "{good}");
        }
        assert!(pointer_problem("data/x").is_some());
        assert!(pointer_problem("/a~2").is_some());
        assert!(pointer_problem("/a~").is_some());
    }
}
