//! Rendered spec diagnostics (docs/rules.md §2): every bad spec names `path:line:col`, says what is
//! wrong and how to fix it, and every problem in a file is reported at once.
//!
//! Each snapshot shows the diagnostics followed by the source line they point at with a caret
//! under the column, so a position that drifts (or falls back to 1:1) is visible in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use flagramp::check::Comparison;
use flagramp::duration::SpecDuration;
use flagramp::percent::Percent;
use flagramp::spec::{
    load_all, parse_spec, Auth, Diagnostic, HeaderValue, NoDataPolicy, Probe, ProviderSpec, PullRequestRef, Query,
    RollbackPolicy, KNOWN_FIELDS,
};

/// A valid spec that cases change one thing in.
const BASE_FLAG: &str = "flag:
  provider: flagd
  key: new_checkout
  flagd: { path: flags/flags.flagd.json }
";

const BASE_CHECKS: &str = "checks:
  - name: smoke
    command: [\"./scripts/smoke.sh\"]
    pass: \"== 1\"
";

fn base_with(middle: &str) -> String {
    format!("version: 1\n{BASE_FLAG}{middle}{BASE_CHECKS}")
}

/// The diagnostics, each followed by the line it points at and a caret under the column.
fn render(text: &str, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for d in diagnostics {
        out += &d.to_string();
        out.push('\n');
        match lines.get(d.line.wrapping_sub(1)) {
            Some(line) => {
                out += &format!("{:>4} | {line}\n", d.line);
                out += &format!("     | {}^\n", " ".repeat(d.column.saturating_sub(1)));
            }
            None => out += &format!("     | (line {} is past the end of the file)\n", d.line),
        }
    }
    out
}

fn diagnose(case: &str, text: &str) -> String {
    let file = PathBuf::from(format!("rollouts/{case}.yml"));
    let (spec, _, diagnostics) = parse_spec(&file, text);
    assert!(
        spec.is_none(),
        "{case}: a spec with problems must not come back as valid"
    );
    assert!(!diagnostics.is_empty(), "{case}: expected at least one diagnostic");
    for d in &diagnostics {
        assert_eq!(d.file, file, "{case}: diagnostics name the file");
        assert!(
            d.hint.as_deref().is_some_and(|h| !h.is_empty()),
            "{case}: every diagnostic says how to fix it: {d}"
        );
        assert!(d.line >= 1 && d.column >= 1, "{case}: positions are 1-based: {d}");
    }
    render(text, &diagnostics)
}

/// The bad specs whose diagnostics this file pins: `tests/specs/errors/<case>.yml`, each with a
/// `<case>.expect` beside it that lists the `line:col` of every diagnostic in order (`6:18`, or
/// `8:17 8:24` for two). The positions are asserted as well as snapshotted, so accepting a changed
/// snapshot cannot hide a diagnostic that moved. The YAML files carry no header of their own: a
/// comment line would shift every position, and `empty_file.yml` has to stay empty.
///
/// Each case is parsed as `rollouts/<case>.yml`, the path its diagnostics name. (`tests/specs/bad/`
/// is a different catalogue: read through `load_all` from disk, see `spec_catalogue.rs`.)
fn error_cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/errors")
}

/// A bad spec: its name (the file stem), its text, and the `line:col` of every diagnostic in order.
type Case = (String, String, Vec<(usize, usize)>);

fn parse_positions(case: &str, expect: &str) -> Vec<(usize, usize)> {
    expect
        .split_whitespace()
        .map(|position| {
            let parsed = position
                .split_once(':')
                .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?)));
            parsed.unwrap_or_else(|| panic!("{case}.expect: `{position}` is not `line:col`"))
        })
        .collect()
}

/// Every case of [`error_cases_dir`], sorted by file name.
fn cases() -> Vec<Case> {
    let dir = error_cases_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/specs/errors")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.ends_with("README.md"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in &files {
        let stem = file.file_stem().expect("stem").to_string_lossy().into_owned();
        match file.extension().and_then(|e| e.to_str()) {
            Some("yml") => {
                let text = std::fs::read_to_string(file).expect("read case");
                let expect_file = file.with_extension("expect");
                let expect =
                    std::fs::read_to_string(&expect_file).unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()));
                let expected = parse_positions(&stem, &expect);
                assert!(!expected.is_empty(), "{stem}.expect lists no position");
                cases.push((stem, text, expected));
            }
            Some("expect") => assert!(
                file.with_extension("yml").is_file(),
                "{}: no case file beside it",
                file.display()
            ),
            _ => panic!("{}: only <case>.yml and <case>.expect belong here", file.display()),
        }
    }
    cases
}

fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|(c, _, _)| c == name)
        .unwrap_or_else(|| panic!("tests/specs/errors/{name}.yml exists"))
}

/// The spec with line numbers, then what was reported about it.
fn snapshot_body(case: &str, text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out += &format!("{:>4} | {line}\n", i + 1);
    }
    if text.is_empty() {
        out += "     | (empty file)\n";
    }
    out += "---\n";
    out += &diagnose(case, text);
    out
}

#[test]
fn each_bad_spec_is_reported_at_the_offending_node() {
    let cases = cases();
    assert!(cases.len() >= 45, "tests/specs/errors holds {} cases", cases.len());
    let mut wrong_positions = Vec::new();
    for (case, text, expected) in &cases {
        let case = case.as_str();
        let file = PathBuf::from(format!("rollouts/{case}.yml"));
        let (_, _, diagnostics) = parse_spec(&file, text);
        let positions: Vec<(usize, usize)> = diagnostics.iter().map(|d| (d.line, d.column)).collect();
        if positions != *expected {
            wrong_positions.push(format!(
                "{case}: expected {expected:?}, got {positions:?}\n{}",
                render(text, &diagnostics)
            ));
        }
        insta::assert_snapshot!(format!("spec_error__{case}"), snapshot_body(case, text));
    }
    assert!(
        wrong_positions.is_empty(),
        "diagnostics point at the wrong place:\n{}",
        wrong_positions.join("\n")
    );
}

#[test]
fn several_problems_are_all_reported_at_once() {
    let (_, text, _) = case("several_problems");
    let (spec, _, diagnostics) = parse_spec(Path::new("rollouts/several_problems.yml"), &text);
    assert!(spec.is_none());
    let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    // One diagnostic per planted problem, none of them hiding another.
    for needle in [
        "rollout name `new checkout`",
        "`flag.flagd.path` must stay inside the repository",
        "`stages[2].bake`",
        "stages must strictly increase",
        "unknown source `prom`",
        "`checks[0].pass`",
        "`checks[0].on_no_data` cannot be `skip`",
        "`checks[0].timeout` must be longer than 0s",
        "`policy.failures_to_rollback`",
        "`policy.window.hours`",
        "`policy.window.timezone`",
        "`report.pull_request` cannot be `latest`",
        "unknown field `comment` in `report`",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "missing `{needle}` in:\n{}",
            messages.join("\n")
        );
    }
    let positions: BTreeSet<(usize, usize)> = diagnostics.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(positions.len(), diagnostics.len(), "each problem has its own position");
}

/// Spec files in a temporary directory; rendered paths have the directory replaced by `<tmp>`.
struct TempSpecs {
    dir: tempfile::TempDir,
}

impl TempSpecs {
    fn new() -> TempSpecs {
        TempSpecs {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write spec");
        path
    }

    fn stable(&self, text: &str) -> String {
        text.replace(&self.dir.path().display().to_string(), "<tmp>")
    }
}

#[test]
fn duplicate_rollout_names_across_files() {
    let tmp = TempSpecs::new();
    let first = tmp.write(
        "rollouts/checkout.yml",
        &format!("version: 1\nname: new-checkout\n{BASE_FLAG}{BASE_CHECKS}"),
    );
    let second_text =
        format!("version: 1\ndescription: copied from checkout.yml\nname: new-checkout\n{BASE_FLAG}{BASE_CHECKS}");
    let second = tmp.write("rollouts/team-b/checkout-copy.yml", &second_text);
    let errors = load_all(&[first, second.clone()]).expect_err("names collide");
    assert_eq!(errors.diagnostics.len(), 1);
    let d = &errors.diagnostics[0];
    assert_eq!((d.file.clone(), d.line, d.column), (second, 3, 7));
    let rendered = format!("{}\n---\n{}", render(&second_text, &errors.diagnostics), errors);
    insta::assert_snapshot!("spec_error__duplicate_rollout_names", tmp.stable(&rendered));
}

#[test]
fn duplicate_default_names_from_file_stems() {
    // Two files with the same stem in different folders and no `name:`: the default collides.
    let tmp = TempSpecs::new();
    let text = format!("version: 1\n{BASE_FLAG}{BASE_CHECKS}");
    let first = tmp.write("rollouts/a/checkout.yml", &text);
    let second = tmp.write("rollouts/b/checkout.yaml", &text);
    let errors = load_all(&[first, second]).expect_err("default names collide");
    insta::assert_snapshot!("spec_error__duplicate_default_names", tmp.stable(&errors.to_string()));
}

#[test]
fn load_all_reports_every_file() {
    let tmp = TempSpecs::new();
    let good = tmp.write("rollouts/good.yml", &format!("version: 1\n{BASE_FLAG}{BASE_CHECKS}"));
    let bad_one = tmp.write("rollouts/bad-one.yml", &base_with("stages: [10, 50]\n"));
    let bad_two = tmp.write("rollouts/bad-two.yml", "version: 1\nflag: {}\n");
    let missing = tmp.dir.path().join("rollouts/missing.yml");
    let errors = load_all(&[good, bad_one, bad_two, missing]).expect_err("two bad files and a missing one");
    insta::assert_snapshot!(
        "spec_error__load_all_reports_every_file",
        tmp.stable(&errors.to_string())
    );
}

/// The docs/rules.md §2 example, with whole-number stages so that the Unleash provider accepts it.
const DESIGN_EXAMPLE: &str = r#"# .github/rollouts/new-checkout.yml   (specs are found recursively, *.yml and *.yaml)
version: 1
name: new-checkout                 # default: file stem; unique across specs
description: New checkout flow
flag:
  provider: unleash                # required: flagd | unleash | launchdarkly
  key: new_checkout
  unleash: { url: https://unleash.example.com, project: default, environment: production, token_env: UNLEASH_TOKEN }
  # flagd: { path: flags/flags.flagd.json }   paths are relative to the repository root
stages:                            # default: 10, 50, 100 with bake 1h each
  - { percent: 10, bake: 1h30m }   # percent: number in (0, 100], up to 3 decimals (Unleash: integers only)
  - 50                             # bare number = that percent with the default bake (1h)
  - { percent: 100, bake: 2d }     # strictly increasing, last is 100; its bake is the final bake
sources:
  prom:
    provider: prometheus
    url: https://prometheus.example.com/
    token_env: PROM_TOKEN          # optional bearer token; or basic_auth: {username_env, password_env}
    headers: { X-Scope-OrgID: { env: PROM_TENANT } }   # optional; values from env or literal
  thanos:
    provider: prometheus
    url: http://thanos.internal:9090
    allow_insecure_http: true      # plain http to a host that is not loopback must say so
    basic_auth: { username_env: THANOS_USER, password_env: THANOS_PASSWORD }
    headers: { X-Team: checkout }
    timeout: 90s
checks:                            # at least one; all must pass to advance
  - name: success-rate
    source: prom
    query: sum(rate(http_requests_total{flag="new_checkout",variant="on",code!~"5.."}[10m])) / sum(rate(http_requests_total{flag="new_checkout",variant="on"}[10m]))
    pass: ">= 0.95"                # (<|<=|>|>=|==|!=) number; quote it (a bare > starts a YAML block)
    on_no_data: hold               # hold (default) | fail
  - name: p99-latency
    source: thanos
    query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))
    pass: "< 0.5"
    on_no_data: fail
  - name: smoke
    command: ["./scripts/smoke.sh", "--fast"]   # inline argv, no shell; stdout = one number
    timeout: 30s
    pass: "== 1"
policy:
  failures_to_rollback: 1          # consecutive evaluations with a failing check before rollback
  rollback: previous               # previous (default): one stage back, and from the first stage off | off: straight to off
  window: { days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin }   # gates start and advance only
report:
  pull_request: auto               # auto: the PR that last changed this spec | a number | none
"#;

fn parsed(text: &str) -> Percent {
    Percent::parse_stage(text).expect("valid percent")
}

#[test]
fn design_example_parses_into_the_expected_values() {
    let file = Path::new(".github/rollouts/new-checkout.yml");
    let (spec, name_at, diagnostics) = parse_spec(file, DESIGN_EXAMPLE);
    assert!(diagnostics.is_empty(), "{}", render(DESIGN_EXAMPLE, &diagnostics));
    let spec = spec.expect("valid");
    assert_eq!(name_at, Some(("new-checkout".to_string(), 3, 7)));
    assert_eq!(spec.name, "new-checkout");
    assert_eq!(spec.description.as_deref(), Some("New checkout flow"));
    assert_eq!(spec.file, file);

    assert_eq!(spec.flag.key, "new_checkout");
    assert_eq!(
        spec.flag.provider,
        ProviderSpec::Unleash {
            url: "https://unleash.example.com".into(),
            project: "default".into(),
            environment: "production".into(),
            token_env: "UNLEASH_TOKEN".into(),
        }
    );

    let stages: Vec<(Percent, u64)> = spec.stages.iter().map(|s| (s.percent, s.bake.as_secs())).collect();
    assert_eq!(
        stages,
        vec![(parsed("10"), 5400), (parsed("50"), 3600), (parsed("100"), 2 * 86_400)]
    );
    assert_eq!(spec.stage_percents(), vec![parsed("10"), parsed("50"), parsed("100")]);

    assert_eq!(spec.sources.keys().collect::<Vec<_>>(), vec!["prom", "thanos"]);
    let prom = &spec.sources["prom"].http;
    assert_eq!(
        prom.url, "https://prometheus.example.com",
        "a trailing slash is dropped"
    );
    assert_eq!(
        prom.auth,
        Auth::Bearer {
            token_env: "PROM_TOKEN".into()
        }
    );
    assert_eq!(
        prom.headers,
        vec![("X-Scope-OrgID".to_string(), HeaderValue::Env("PROM_TENANT".into()))]
    );
    assert_eq!(prom.timeout, None);
    let thanos = &spec.sources["thanos"].http;
    assert_eq!(thanos.url, "http://thanos.internal:9090");
    assert_eq!(
        thanos.auth,
        Auth::Basic {
            username_env: "THANOS_USER".into(),
            password_env: "THANOS_PASSWORD".into()
        }
    );
    assert_eq!(
        thanos.headers,
        vec![("X-Team".to_string(), HeaderValue::Literal("checkout".into()))]
    );
    assert_eq!(thanos.timeout, Some(SpecDuration::from_secs(90)));

    assert_eq!(spec.checks.len(), 3);
    let rate = &spec.checks[0];
    assert_eq!(rate.name, "success-rate");
    match rate.probe().unwrap() {
        Probe::Query {
            source,
            query: Query::Prometheus(query),
        } => {
            assert_eq!(source, "prom");
            assert!(
                query.starts_with("sum(rate(http_requests_total{flag=\"new_checkout\""),
                "{query}"
            );
            assert!(query.ends_with("[10m]))"), "{query}");
        }
        other => panic!("expected a query, got {other:?}"),
    }
    assert_eq!(rate.threshold().unwrap().pass.comparison, Comparison::GreaterOrEqual);
    assert_eq!(rate.threshold().unwrap().pass.threshold, 0.95);
    assert_eq!(rate.on_no_data, NoDataPolicy::Hold);
    assert_eq!(rate.timeout.as_secs(), 30, "default check timeout");
    let latency = &spec.checks[1];
    assert_eq!(
        (
            latency.threshold().unwrap().pass.comparison,
            latency.threshold().unwrap().pass.threshold
        ),
        (Comparison::Less, 0.5)
    );
    assert_eq!(latency.on_no_data, NoDataPolicy::Fail);
    let smoke = &spec.checks[2];
    assert_eq!(
        *smoke.probe().unwrap(),
        Probe::Command {
            argv: vec!["./scripts/smoke.sh".into(), "--fast".into()],
            env: Vec::new(),
        }
    );
    assert_eq!(smoke.probe().unwrap().describe(), "./scripts/smoke.sh --fast");
    assert_eq!(
        (
            smoke.threshold().unwrap().pass.comparison,
            smoke.threshold().unwrap().pass.threshold
        ),
        (Comparison::Equal, 1.0)
    );
    assert_eq!(smoke.timeout.as_secs(), 30);

    assert_eq!(spec.policy.failures_to_rollback, 1);
    assert_eq!(spec.policy.rollback, RollbackPolicy::Previous);
    let window = spec.policy.window.as_ref().expect("window");
    assert_eq!(window.days, [true, true, true, true, true, false, false]);
    assert_eq!((window.open_minute, window.close_minute), (9 * 60, 17 * 60));
    assert_eq!(window.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(spec.report.pull_request, PullRequestRef::Auto);
}

#[test]
fn defaults_and_alternatives() {
    // No name, no stages, no policy, no report: file stem, 10/50/100 with 1h, previous, auto.
    let text = format!("version: 1\n{BASE_FLAG}{BASE_CHECKS}");
    let (spec, name_at, diagnostics) = parse_spec(Path::new(".github/rollouts/team/dark-mode.yaml"), &text);
    assert!(diagnostics.is_empty(), "{}", render(&text, &diagnostics));
    let spec = spec.expect("valid");
    assert_eq!(spec.name, "dark-mode");
    assert_eq!(name_at, Some(("dark-mode".to_string(), 1, 1)));
    assert_eq!(
        spec.flag.provider,
        ProviderSpec::Flagd {
            path: PathBuf::from("flags/flags.flagd.json"),
            branch: None
        }
    );
    let stages: Vec<(Percent, u64)> = spec.stages.iter().map(|s| (s.percent, s.bake.as_secs())).collect();
    assert_eq!(
        stages,
        vec![(parsed("10"), 3600), (parsed("50"), 3600), (parsed("100"), 3600)]
    );
    assert_eq!(spec.policy.failures_to_rollback, 1);
    assert_eq!(spec.policy.rollback, RollbackPolicy::Previous);
    assert_eq!(spec.policy.window, None);
    assert_eq!(spec.report.pull_request, PullRequestRef::Auto);

    // Fractional stages (flagd allows thousandths), bake 0s, rollback off, list of days,
    // overnight hours, and the other pull_request forms.
    for (pull_request, expected) in [
        ("42", PullRequestRef::Number(42)),
        ("none", PullRequestRef::None),
        ("auto", PullRequestRef::Auto),
    ] {
        let text = base_with(&format!(
            "stages:\n  - {{ percent: 0.5, bake: 0s }}\n  - {{ percent: 12.5, bake: 90s }}\n  - 100\npolicy:\n  failures_to_rollback: 3\n  rollback: off\n  window: {{ days: [Mon, wednesday], hours: \"22:00-06:00\", timezone: UTC }}\nreport:\n  pull_request: {pull_request}\n"
        ));
        let (spec, _, diagnostics) = parse_spec(Path::new("rollouts/x.yml"), &text);
        assert!(diagnostics.is_empty(), "{}", render(&text, &diagnostics));
        let spec = spec.expect("valid");
        let stages: Vec<(Percent, u64)> = spec.stages.iter().map(|s| (s.percent, s.bake.as_secs())).collect();
        assert_eq!(
            stages,
            vec![(parsed("0.5"), 0), (parsed("12.5"), 90), (parsed("100"), 3600)]
        );
        assert_eq!(spec.policy.failures_to_rollback, 3);
        assert_eq!(spec.policy.rollback, RollbackPolicy::Off);
        let window = spec.policy.window.expect("window");
        assert_eq!(window.days, [true, false, true, false, false, false, false]);
        assert_eq!((window.open_minute, window.close_minute), (22 * 60, 6 * 60));
        assert_eq!(spec.report.pull_request, expected);
    }
}

/// Where each part of [`KNOWN_FIELDS`] lives in the spec schema (JSON pointer to its object).
const SCHEMA_PARTS: &[(&str, &str)] = &[
    ("spec", ""),
    ("flag", "/properties/flag"),
    ("flagd", "/properties/flag/properties/flagd"),
    ("unleash", "/properties/flag/properties/unleash"),
    ("launchdarkly", "/properties/flag/properties/launchdarkly"),
    ("stage", "/properties/stages/items/oneOf/1"),
    ("source", "/properties/sources/additionalProperties"),
    (
        "basic_auth",
        "/properties/sources/additionalProperties/properties/basic_auth",
    ),
    (
        "header",
        "/properties/sources/additionalProperties/properties/headers/additionalProperties/oneOf/1",
    ),
    ("check", "/properties/checks/items"),
    ("compare", "/properties/checks/items/properties/compare"),
    ("cohort", "/$defs/cohort"),
    ("policy", "/properties/policy"),
    ("window", "/properties/policy/properties/window"),
    ("report", "/properties/report"),
    ("notify", "/$defs/notify"),
    ("notify_target", "/$defs/notify/properties/to/items"),
    ("slack", "/$defs/notify/properties/to/items/properties/slack"),
    ("webhook", "/$defs/notify/properties/to/items/properties/webhook"),
];

#[test]
fn known_fields_agree_with_the_spec_schema() {
    let schema: serde_json::Value = serde_json::from_str(flagramp::schema::SPEC_SCHEMA).expect("schema is JSON");
    let known_parts: BTreeSet<&str> = KNOWN_FIELDS.iter().map(|(p, _)| *p).collect();
    let schema_parts: BTreeSet<&str> = SCHEMA_PARTS.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        known_parts, schema_parts,
        "every part of KNOWN_FIELDS is mapped to the schema, and back"
    );
    assert_eq!(
        known_parts.len(),
        KNOWN_FIELDS.len(),
        "no part is listed twice in KNOWN_FIELDS"
    );

    for (part, pointer) in SCHEMA_PARTS {
        let object = schema
            .pointer(pointer)
            .unwrap_or_else(|| panic!("schema has no {pointer} for `{part}`"));
        assert_eq!(
            object.get("type").and_then(|t| t.as_str()),
            Some("object"),
            "`{part}` is an object in the schema"
        );
        assert_eq!(
            object.get("additionalProperties"),
            Some(&serde_json::Value::Bool(false)),
            "`{part}` rejects unknown fields in the schema, as the reader does"
        );
        let in_schema: Vec<&str> = object["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        let known = KNOWN_FIELDS.iter().find(|(p, _)| p == part).expect("part").1;
        let mut known_sorted = known.to_vec();
        known_sorted.sort_unstable();
        known_sorted.dedup();
        assert_eq!(known_sorted.len(), known.len(), "`{part}`: no field is listed twice");
        let mut schema_sorted = in_schema.clone();
        schema_sorted.sort_unstable();
        assert_eq!(
            schema_sorted, known_sorted,
            "`{part}`: the schema's properties and KNOWN_FIELDS differ"
        );
        // Every `required` field is a known one.
        for required in object.get("required").and_then(|r| r.as_array()).into_iter().flatten() {
            let required = required.as_str().expect("required names are strings");
            assert!(
                known.contains(&required),
                "`{part}`: required `{required}` is not a known field"
            );
        }
    }
}
