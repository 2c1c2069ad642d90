//! The flagd file that flagramp writes, evaluated by the real flagd evaluator
//! (`@openfeature/flagd-core`, through `tests/node/evaluate.js`): the share of users that get
//! `on` is what the stage says, a raise only adds users, and a flag turned off serves nobody.
//!
//! Needs Node and `tests/node/node_modules` (`scripts/services install`); run with `scripts/test`,
//! or `eval "$(scripts/services start)"` and
//! `cargo test --test tests flagd_core -- --include-ignored`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::support::repo::{single_record, TempRepo};
use crate::support::FLAGD_FILE;
use serde_json::{json, Value};

const FLAG_KEY: &str = "new-checkout";
const ROLLOUT: &str = "checkout-ramp";
/// Targeting keys evaluated per check: `user-0` .. `user-9999`.
const KEYS: usize = 10_000;
/// How far (in percentage points) the evaluated share may be from the stage's percent.
const TOLERANCE: f64 = 1.5;

fn node_modules() -> PathBuf {
    match std::env::var_os("FLAGRAMP_TEST_FLAGD_NODE_MODULES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!(
            "FLAGRAMP_TEST_FLAGD_NODE_MODULES is not set: run these tests with scripts/test \
             (or `eval \"$(scripts/services start)\"` first, after `scripts/services install`)"
        ),
    }
}

fn spec(stages: &str) -> String {
    format!(
        r#"version: 1
name: {ROLLOUT}
flag:
  provider: flagd
  key: {FLAG_KEY}
  flagd: {{ path: flags/flags.flagd.json }}
stages:
{stages}
checks:
  - name: always-healthy
    command: ["echo", "1"]
    pass: "== 1"
policy:
  failures_to_rollback: 1
"#
    )
}

/// A temporary repository with one rollout spec and the flag file.
struct Repo(TempRepo);

impl Repo {
    fn new(stages: &str) -> Repo {
        let repo = TempRepo::new();
        repo.write(&format!(".github/rollouts/{ROLLOUT}.yml"), &spec(stages));
        repo.write("flags/flags.flagd.json", FLAGD_FILE);
        Repo(repo)
    }

    fn flag_file(&self) -> PathBuf {
        self.0.root().join("flags/flags.flagd.json")
    }

    fn flags(&self) -> Value {
        self.0.read_json("flags/flags.flagd.json")
    }

    /// Runs flagramp with `args`, `--output json` and the state inside the repository, and
    /// returns the single decision record it printed (exit code 0 required).
    fn decide(&self, args: &[&str]) -> Value {
        single_record(&self.0.flagramp_json(args).output().expect("flagramp runs"), args)
    }

    fn run(&self, now: &str) -> Value {
        self.decide(&["run", "--now", now])
    }
}

/// What the real flagd evaluator made of a flag for `user-0` .. `user-(KEYS-1)`.
struct Evaluation {
    on: BTreeSet<u64>,
    reasons: serde_json::Map<String, Value>,
}

impl Evaluation {
    fn share(&self) -> f64 {
        self.on.len() as f64 * 100.0 / KEYS as f64
    }

    fn reason_count(&self, reason: &str) -> u64 {
        self.reasons.get(reason).and_then(Value::as_u64).unwrap_or(0)
    }
}

fn evaluate(file: &Path, key: &str) -> Evaluation {
    let modules = node_modules();
    assert!(
        modules.join("@openfeature/flagd-core/package.json").is_file(),
        "{} has no @openfeature/flagd-core: run scripts/services install",
        modules.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/evaluate.js");
    // evaluate.js resolves the package from its own directory (tests/node/node_modules); NODE_PATH
    // points at the installation the services script announced, for a relocated one.
    let output = StdCommand::new("node")
        .arg(&script)
        .arg(file)
        .arg(key)
        .arg(KEYS.to_string())
        .env("NODE_PATH", &modules)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (install it with scripts/services install): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "evaluate.js failed ({}):\n{stderr}",
        output.status
    );
    // flagd-core reports schema and targeting problems through its logger: a file flagramp
    // wrote must produce none.
    assert!(
        stderr.trim().is_empty(),
        "flagd-core complained about the file flagramp wrote:\n{stderr}"
    );
    let answer: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("evaluate.js printed no JSON ({e}): {stdout}"));
    assert_eq!(answer["count"], json!(KEYS));
    let on = answer["on"]
        .as_array()
        .expect("on is an array")
        .iter()
        .map(|i| i.as_u64().expect("an index"))
        .collect();
    let reasons = answer["reasons"].as_object().expect("reasons is an object").clone();
    Evaluation { on, reasons }
}

/// Asserts the evaluated share is within [`TOLERANCE`] points of `percent`, with every key
/// decided by the fractional rule.
fn assert_share(eval: &Evaluation, percent: f64) {
    let share = eval.share();
    assert!(
        (share - percent).abs() <= TOLERANCE,
        "flagd-core serves `on` to {share:.2}% of {KEYS} keys, expected {percent}% ± {TOLERANCE}"
    );
    assert_eq!(
        eval.reason_count("TARGETING_MATCH"),
        KEYS as u64,
        "every key is decided by the fractional rule: {:?}",
        eval.reasons
    );
}

fn assert_flag(repo: &Repo, state: &str, fractional: Option<Value>) {
    let flags = repo.flags();
    let flag = &flags["flags"][FLAG_KEY];
    assert_eq!(flag["state"], json!(state), "{flag:#}");
    if let Some(fractional) = fractional {
        assert_eq!(flag["targeting"], json!({ "fractional": fractional }), "{flag:#}");
    }
    // flagramp owns `state` and `targeting` of its flag; the rest of the flag stays as it was.
    let original: Value = serde_json::from_str(FLAGD_FILE).unwrap();
    for field in ["variants", "defaultVariant", "metadata"] {
        assert_eq!(
            flag[field], original["flags"][FLAG_KEY][field],
            "field `{field}` of {FLAG_KEY} changed"
        );
    }
    assert_others_untouched(&flags);
}

/// Every other flag, and every top-level field, is equal (as a JSON value) to the original.
fn assert_others_untouched(flags: &Value) {
    let original: Value = serde_json::from_str(FLAGD_FILE).unwrap();
    let (orig, now) = (original.as_object().unwrap(), flags.as_object().expect("an object"));
    assert_eq!(
        orig.keys().collect::<Vec<_>>(),
        now.keys().collect::<Vec<_>>(),
        "top-level fields changed"
    );
    for (field, value) in orig {
        if field != "flags" {
            assert_eq!(&now[field], value, "top-level `{field}` changed");
        }
    }
    let (orig_flags, now_flags) = (
        orig["flags"].as_object().unwrap(),
        now["flags"].as_object().expect("flags"),
    );
    assert_eq!(
        orig_flags.keys().collect::<Vec<_>>(),
        now_flags.keys().collect::<Vec<_>>(),
        "the set or order of flags changed"
    );
    for (key, value) in orig_flags {
        if key != FLAG_KEY {
            assert_eq!(&now_flags[key], value, "flag `{key}` changed");
        }
    }
}

fn assert_decision(record: &Value, decision: &str, from: f64, to: f64) {
    assert_eq!(record["decision"], json!(decision), "{record:#}");
    assert_eq!(record["rollout"], json!(ROLLOUT));
    assert_eq!(record["flag"], json!(FLAG_KEY));
    assert_eq!(record["from_percent"].as_f64(), Some(from), "{record:#}");
    assert_eq!(record["to_percent"].as_f64(), Some(to), "{record:#}");
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn flagd_core_serves_each_stage_and_a_raise_keeps_everyone_on() {
    let repo =
        Repo::new("  - { percent: 10, bake: 0s }\n  - { percent: 50, bake: 0s }\n  - { percent: 100, bake: 0s }\n");

    // Before flagramp touches it, the flag is off for everyone.
    let before = evaluate(&repo.flag_file(), FLAG_KEY);
    assert!(before.on.is_empty());
    assert_eq!(before.reason_count("DISABLED"), KEYS as u64, "{:?}", before.reasons);

    let start = repo.run("2026-11-24T09:00:00Z");
    assert_decision(&start, "start", 0.0, 10.0);
    assert_eq!(start["stage"], json!(0));
    assert_flag(&repo, "ENABLED", Some(json!([["on", 10_000], ["off", 90_000]])));
    let at10 = evaluate(&repo.flag_file(), FLAG_KEY);
    assert_share(&at10, 10.0);

    let advance = repo.run("2026-11-24T09:10:00Z");
    assert_decision(&advance, "advance", 10.0, 50.0);
    assert_eq!(advance["stage"], json!(1));
    assert_eq!(advance["checks"][0]["verdict"], json!("pass"), "{advance:#}");
    assert_eq!(advance["checks"][0]["value"].as_f64(), Some(1.0));
    assert_flag(&repo, "ENABLED", Some(json!([["on", 50_000], ["off", 50_000]])));
    let at50 = evaluate(&repo.flag_file(), FLAG_KEY);
    assert_share(&at50, 50.0);
    let lost: Vec<_> = at10.on.difference(&at50.on).take(10).collect();
    assert!(
        lost.is_empty(),
        "raising 10% → 50% turned users off (first few: {lost:?}): the split was reshuffled"
    );

    let full = repo.run("2026-11-24T09:20:00Z");
    assert_decision(&full, "advance", 50.0, 100.0);
    assert_flag(&repo, "ENABLED", Some(json!([["on", 100_000], ["off", 0]])));
    let at100 = evaluate(&repo.flag_file(), FLAG_KEY);
    assert_eq!(at100.on.len(), KEYS, "at 100% everyone is on");
    assert_eq!(
        at100.reason_count("TARGETING_MATCH"),
        KEYS as u64,
        "{:?}",
        at100.reasons
    );

    let complete = repo.run("2026-11-24T09:30:00Z");
    assert_decision(&complete, "complete", 100.0, 100.0);
    assert_flag(&repo, "ENABLED", Some(json!([["on", 100_000], ["off", 0]])));

    // A flag flagramp does not own still evaluates as before.
    let dark = evaluate(&repo.flag_file(), "dark-mode");
    assert_eq!(dark.on.len(), KEYS);
    assert_eq!(dark.reason_count("STATIC"), KEYS as u64, "{:?}", dark.reasons);
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn flagd_core_serves_a_fractional_stage_and_nothing_after_a_rollback_to_off() {
    node_modules();
    let repo =
        Repo::new("  - { percent: 12.5, bake: 0s }\n  - { percent: 50, bake: 0s }\n  - { percent: 100, bake: 0s }\n");

    let start = repo.run("2026-11-24T09:00:00Z");
    assert_decision(&start, "start", 0.0, 12.5);
    assert_flag(&repo, "ENABLED", Some(json!([["on", 12_500], ["off", 87_500]])));
    let at12 = evaluate(&repo.flag_file(), FLAG_KEY);
    assert_share(&at12, 12.5);

    let rollback = repo.decide(&[
        "rollback",
        ROLLOUT,
        "--reason",
        "x",
        "--actor",
        "alice",
        "--now",
        "2026-11-24T09:05:00Z",
    ]);
    assert_decision(&rollback, "disable", 12.5, 0.0);
    assert_eq!(rollback["stage"], Value::Null);
    assert_eq!(rollback["actor"], json!("alice"));
    assert!(rollback["reason"].as_str().unwrap().contains("“x”"), "{rollback:#}");
    assert_flag(&repo, "DISABLED", None);

    let off = evaluate(&repo.flag_file(), FLAG_KEY);
    assert!(
        off.on.is_empty(),
        "a disabled flag serves `on` to {} keys",
        off.on.len()
    );
    assert_eq!(off.reason_count("DISABLED"), KEYS as u64, "{:?}", off.reasons);
}
