//! The JSON outputs of docs/rules.md §4, driven through the real binary in a temporary repository:
//! snapshots of `status` and `plan`/`run` records, exit codes, and a structural check of each
//! output against the schema `flagramp schema --output decision|status` prints.

use std::os::unix::fs::PermissionsExt;

use std::process::Command;

use serde_json::Value;

use crate::support::repo::TempRepo;

const SPEC: &str = include_str!("fixtures/outputs/x.yml");
const FLAGS: &str = include_str!("fixtures/outputs/flags.flagd.json");
const CHECK: &str = include_str!("fixtures/outputs/success-rate.sh");

const FLAG_FILE: &str = "flags/flags.flagd.json";

/// A repository with `.github/rollouts/x.yml`, a flagd file and a command check whose value is
/// whatever the test last wrote to `metrics/success-rate`.
struct Repo(TempRepo);

impl std::ops::Deref for Repo {
    type Target = TempRepo;

    fn deref(&self) -> &TempRepo {
        &self.0
    }
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo(TempRepo::new());
        repo.write(".github/rollouts/x.yml", SPEC);
        repo.write(FLAG_FILE, FLAGS);
        let script = repo.write("scripts/success-rate.sh", CHECK);
        std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        repo.set_value("0.99");
        repo
    }

    fn set_value(&self, value: &str) {
        self.write("metrics/success-rate", &format!("{value}\n"));
    }

    fn flag(&self) -> Value {
        self.read_json(FLAG_FILE)["flags"]["new-checkout"].clone()
    }

    /// The binary in the repository, isolated from the caller's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.flagramp(args);
        cmd.env_remove("GITHUB_ACTOR").env("USER", "nobody");
        cmd
    }

    /// Runs `args --now NOW --actor tester`, expects `code`, and returns stdout as JSON with the
    /// temporary directory replaced by `<repo>`.
    fn json(&self, args: &[&str], now: &str, code: i32) -> Value {
        let output = self
            .command(args)
            .args(["--now", now, "--actor", "tester"])
            .output()
            .expect("runs");
        let stdout = String::from_utf8(output.stdout).expect("utf-8");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "flagramp {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        let stable = stdout.replace(&self.root().display().to_string(), "<repo>");
        serde_json::from_str(&stable).unwrap_or_else(|e| panic!("flagramp {args:?} printed no JSON ({e}):\n{stdout}"))
    }

    /// Runs and expects a usage or work error; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.command(args).output().expect("runs");
        assert_eq!(
            output.status.code(),
            Some(code),
            "flagramp {args:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stderr)
            .expect("utf-8")
            .replace(&self.root().display().to_string(), "<repo>")
    }

    /// `flagramp schema KIND`, which must print exactly what the older `--output KIND` prints.
    fn schema(&self, kind: &str) -> Value {
        let output = self.command(&["schema", kind]).output().expect("runs");
        assert_eq!(output.status.code(), Some(0));
        let alias = self.command(&["schema", "--output", kind]).output().expect("runs");
        assert_eq!(
            output.stdout, alias.stdout,
            "schema {kind} and schema --output {kind} differ"
        );
        serde_json::from_slice(&output.stdout).expect("schema is JSON")
    }
}

/// Problems of `value` against `schema` (a small structural subset of JSON Schema: `$ref`, `type`,
/// `const`, `enum`, `oneOf`/`anyOf`, `required`, `properties`, `items`, `minimum`/`maximum`,
/// `format: date-time`). Keys the schema does not declare are problems too: the schema must
/// describe everything the output carries.
fn conformance(value: &Value, schema: &Value, root: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{at}: unresolvable $ref {reference}"));
        conformance(value, target, root, at, problems);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: odd type {other}"),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => panic!("{at}: unknown type {other}"),
        });
        if !fits {
            problems.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(expected) = schema.get("const") {
        if value != expected {
            problems.push(format!("{at}: {value} is not {expected}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(branches) = schema.get(combinator).and_then(Value::as_array) {
            let matching = branches
                .iter()
                .filter(|branch| {
                    let mut p = Vec::new();
                    conformance(value, branch, root, at, &mut p);
                    p.is_empty()
                })
                .count();
            let ok = if combinator == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                problems.push(format!("{at}: {value} matches {matching} branches of {combinator}"));
            }
        }
    }
    if let (Some(number), Some(min)) = (value.as_f64(), schema.get("minimum").and_then(Value::as_f64)) {
        if number < min {
            problems.push(format!("{at}: {number} < minimum {min}"));
        }
    }
    if let (Some(number), Some(max)) = (value.as_f64(), schema.get("maximum").and_then(Value::as_f64)) {
        if number > max {
            problems.push(format!("{at}: {number} > maximum {max}"));
        }
    }
    if let (Some(text), Some("date-time")) = (value.as_str(), schema.get("format").and_then(Value::as_str)) {
        if chrono::DateTime::parse_from_rfc3339(text).is_err() {
            problems.push(format!("{at}: `{text}` is not an RFC 3339 date-time"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = required.as_str().expect("required names are strings");
            if !object.contains_key(key) {
                problems.push(format!("{at}: required `{key}` is missing"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (key, field) in object {
                match properties.get(key) {
                    Some(sub) => conformance(field, sub, root, &format!("{at}.{key}"), problems),
                    None => problems.push(format!("{at}: `{key}` is not declared in the schema")),
                }
            }
        }
    }
    if let (Some(items), Some(schema_items)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conformance(item, schema_items, root, &format!("{at}[{i}]"), problems);
        }
    }
}

fn assert_conforms(repo: &Repo, kind: &str, value: &Value) {
    let schema = repo.schema(kind);
    let mut problems = Vec::new();
    conformance(value, &schema, &schema, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "output does not fit `flagramp schema --output {kind}`:\n{}\n{}",
        problems.join("\n"),
        serde_json::to_string_pretty(value).expect("JSON")
    );
}

/// The fields docs/rules.md §4 lists, present in every record whatever the schema says.
fn assert_decision_fields(records: &Value) {
    for record in records.as_array().expect("an array of records") {
        for key in [
            "rollout",
            "flag",
            "decision",
            "at",
            "actor",
            "from_percent",
            "to_percent",
            "stage",
            "reason",
            "eligible_at",
            "checks",
        ] {
            assert!(record.get(key).is_some(), "decision record lacks `{key}`: {record}");
        }
        for check in record["checks"].as_array().expect("checks is an array") {
            for key in ["name", "query", "value", "condition", "verdict"] {
                assert!(check.get(key).is_some(), "check record lacks `{key}`: {check}");
            }
        }
    }
}

fn assert_status_fields(statuses: &Value) {
    for status in statuses.as_array().expect("an array of statuses") {
        for key in [
            "rollout",
            "flag",
            "stages",
            "current_stage",
            "current_percent",
            "enabled",
            "started_at",
            "last_advanced_at",
            "paused",
            "locked",
            "history",
        ] {
            assert!(status.get(key).is_some(), "status lacks `{key}`: {status}");
        }
        assert_decision_fields(&status["history"]);
    }
}

const T0900: &str = "2026-11-24T09:00:00Z";
const T1000: &str = "2026-11-24T10:00:00Z";
const T1010: &str = "2026-11-24T10:10:00Z";
const T1020: &str = "2026-11-24T10:20:00Z";

#[test]
fn status_of_a_rollout_never_started() {
    let repo = Repo::new();
    let status = repo.json(&["status", "--output", "json"], T0900, 0);
    assert_status_fields(&status);
    assert_conforms(&repo, "status", &status);
    insta::assert_json_snapshot!("status_never_started", status);
    assert!(!repo.root().join(".flagramp").exists(), "status writes no state");
}

#[test]
fn status_and_plan_after_a_rollback_to_off() {
    let repo = Repo::new();
    let start = repo.json(&["run", "--output", "json"], T0900, 0);
    assert_eq!(start[0]["decision"], "start", "{start}");
    let advance = repo.json(&["run", "--output", "json"], T1000, 0);
    assert_eq!(advance[0]["decision"], "advance", "{advance}");
    assert_eq!(repo.flag()["state"], "ENABLED");

    // The check fails; `policy.rollback: off` turns the flag straight off from 50%.
    repo.set_value("0.80");
    let rollback = repo.json(&["run", "--output", "json"], T1010, 0);
    assert_decision_fields(&rollback);
    assert_conforms(&repo, "decision", &rollback);
    insta::assert_json_snapshot!("run_rollback_to_off", rollback);
    assert_eq!(repo.flag()["state"], "DISABLED", "the flag file is off");

    let status = repo.json(&["status", "--output", "json"], T1020, 0);
    assert_status_fields(&status);
    assert_conforms(&repo, "status", &status);
    insta::assert_json_snapshot!("status_after_rollback_to_off", status);

    // The metric has recovered, but the rollback lock holds until a person advances.
    repo.set_value("0.99");
    let plan = repo.json(&["plan", "--output", "json"], T1020, 0);
    assert_decision_fields(&plan);
    assert_conforms(&repo, "decision", &plan);
    insta::assert_json_snapshot!("plan_after_rollback_to_off", plan);
    let again = repo.json(&["status", "--output", "json"], T1020, 0);
    assert_eq!(again, status, "plan changes nothing");
}

#[test]
fn manual_rollback_from_the_first_stage_turns_the_flag_off() {
    let repo = Repo::new();
    repo.json(&["run", "--output", "json"], T0900, 0);
    let rollback = repo.json(
        &[
            "rollback",
            "x",
            "--reason",
            "error spike in checkout",
            "--output",
            "json",
        ],
        T1000,
        0,
    );
    assert_decision_fields(&rollback);
    assert_conforms(&repo, "decision", &rollback);
    insta::assert_json_snapshot!("manual_rollback_to_off", rollback);
    assert_eq!(repo.flag()["state"], "DISABLED");

    let status = repo.json(&["status", "x", "--output", "json"], T1010, 0);
    assert_status_fields(&status);
    assert_conforms(&repo, "status", &status);
    insta::assert_json_snapshot!("status_after_manual_rollback", status);
    let plan = repo.json(&["plan", "x", "--output", "json"], T1010, 0);
    assert_conforms(&repo, "decision", &plan);
    insta::assert_json_snapshot!("plan_after_manual_rollback", plan);
}

#[test]
fn plan_holds_when_a_command_check_prints_nan() {
    let repo = Repo::new();
    repo.json(&["run", "--output", "json"], T0900, 0);
    let flag_before = repo.flag();
    let status_before = repo.json(&["status", "--output", "json"], T1000, 0);

    repo.set_value("NaN");
    let plan = repo.json(&["plan", "--output", "json"], T1000, 0);
    assert_decision_fields(&plan);
    assert_conforms(&repo, "decision", &plan);
    assert_eq!(plan[0]["decision"], "hold");
    assert_eq!(plan[0]["checks"][0]["verdict"], "no_data");
    assert_eq!(plan[0]["checks"][0]["value"], Value::Null);
    insta::assert_json_snapshot!("plan_hold_on_nan", plan);

    assert_eq!(repo.flag(), flag_before, "plan does not touch the flag");
    assert_eq!(
        repo.json(&["status", "--output", "json"], T1000, 0),
        status_before,
        "plan does not touch state"
    );
}

#[test]
fn a_rollout_that_ends_in_error_exits_1() {
    let repo = Repo::new();
    std::fs::remove_file(repo.root().join(FLAG_FILE)).expect("rm");
    let plan = repo.json(&["plan", "--output", "json"], T0900, 1);
    assert_decision_fields(&plan);
    assert_conforms(&repo, "decision", &plan);
    insta::assert_json_snapshot!("plan_error_missing_flag_file", plan);
    let run = repo.json(&["run", "--output", "json"], T0900, 1);
    assert_eq!(run[0]["decision"], "error");
    assert!(!repo.root().join(FLAG_FILE).exists(), "nothing created the flag file");
}

#[test]
fn an_invalid_spec_exits_1() {
    let repo = Repo::new();
    repo.write(
        ".github/rollouts/x.yml",
        &SPEC.replace("pass: \">= 0.95\"", "pass: 0.95"),
    );
    let stderr = repo.fails(&["plan", "--output", "json", "--now", T0900], 1);
    assert!(
        stderr.contains(".github/rollouts/x.yml:15:11: error: `checks[0].pass`"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let repo = Repo::new();
    let cases: [(&[&str], &str); 8] = [
        (
            &["plan", "nope", "--now", T0900],
            "unknown rollout `nope`; rollouts in these specs: x",
        ),
        (&["status", "nope", "--now", T0900], "unknown rollout `nope`"),
        (
            &["rollback", "nope", "--reason", "r", "--now", T0900, "--actor", "tester"],
            "unknown rollout `nope`",
        ),
        (
            &["plan", "--now", "yesterday"],
            "--now `yesterday` is not an RFC 3339 time",
        ),
        (&["run", "--now", "2026-11-24 09:00"], "is not an RFC 3339 time"),
        (
            &["status", "--output", "yaml", "--now", T0900],
            // clap checks the typed `--output` of each command (its message, exit 2).
            "[possible values: text, json]",
        ),
        (
            &["schema", "--output", "json"],
            "[possible values: spec, decision, status]",
        ),
        (&["schema", "json"], "[possible values: spec, decision, status]"),
    ];
    for (args, expected) in cases {
        let stderr = repo.fails(args, 2);
        assert!(
            stderr.contains(expected),
            "flagramp {args:?}: stderr lacks `{expected}`:\n{stderr}"
        );
    }
    assert!(!repo.root().join(".flagramp").exists(), "usage errors write no state");
    assert_eq!(repo.flag()["state"], "DISABLED");
    // Unknown command and unknown flag are clap's usage errors.
    repo.fails(&["frobnicate"], 2);
    repo.fails(&["plan", "--frobnicate"], 2);
}

/// State written by the released format (docs/rules.md §1, "State") still loads after the record
/// gains evidence fields: `status` reads it, in JSON and as text, and `plan` decides from it.
#[test]
fn state_written_by_the_released_format_still_loads() {
    let repo = Repo::new();
    repo.write(".flagramp/state/x.json", include_str!("fixtures/state/x.v1.json"));
    repo.write(FLAG_FILE, include_str!("fixtures/state/x.v1.flags.flagd.json"));
    let status = repo.json(&["status", "--output", "json"], "2026-11-24T12:30:00Z", 0);
    assert_conforms(&repo, "status", &status);
    assert_eq!(status[0]["current_percent"], 50);
    assert_eq!(status[0]["history"].as_array().map(Vec::len), Some(2));
    let output = repo
        .command(&["status", "--now", "2026-11-24T12:30:00Z"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    assert!(text.contains("50%"), "status text:\n{text}");
    let plan = repo.json(&["plan", "--output", "json"], "2026-11-24T12:30:00Z", 0);
    assert_conforms(&repo, "decision", &plan);
}
