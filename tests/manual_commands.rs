//! A person's commands through the real binary: every advance queries and records the checks
//! (from off and with `--force` too), a refused command exits 3 with `refused: true` in its
//! record, and the process survives a panic, a closed stdout and an absurd `--now`.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::repo::{json_of, TempRepo};

const NOW: &str = "2026-11-24T09:00:00Z";
const LATER: &str = "2026-11-24T12:00:00Z";

/// A repository whose rollouts each have a flag in one flagd file and a command check printing
/// what `metrics/<name>` holds (1 unless a test writes something else), noting every query.
struct Repo(TempRepo);

impl std::ops::Deref for Repo {
    type Target = TempRepo;

    fn deref(&self) -> &TempRepo {
        &self.0
    }
}

impl Repo {
    fn new(names: &[&str]) -> Repo {
        let repo = Repo(TempRepo::new());
        let mut flags = serde_json::Map::new();
        for name in names {
            repo.write(
                &format!(".github/rollouts/{name}.yml"),
                &format!(
                    "version: 1\nname: {name}\nflag: {{ provider: flagd, key: {name}, flagd: {{ path: flags/flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 1h }}, {{ percent: 50, bake: 1h }}, {{ percent: 100, bake: 1h }}]\nchecks:\n  - {{ name: probe, command: [\"./check.sh\", \"{name}\"], pass: \">= 1\", timeout: 5s }}\n"
                ),
            );
            repo.set_value(name, "1");
            flags.insert(
                name.to_string(),
                serde_json::json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }),
            );
        }
        repo.write(
            "flags/flags.flagd.json",
            &serde_json::to_string_pretty(&serde_json::json!({ "flags": flags })).unwrap(),
        );
        repo.script("check.sh", "echo \"$1\" >> queried.txt\ncat \"metrics/$1\"");
        repo
    }

    fn set_value(&self, name: &str, value: &str) {
        self.write(&format!("metrics/{name}"), &format!("{value}\n"));
    }

    /// Which rollouts' checks were queried since the last call.
    fn queried(&self) -> Vec<String> {
        let path = self.root().join("queried.txt");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(path);
        text.lines().map(str::to_string).collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.flagramp(args);
        cmd.env("FLAGRAMP_ACTOR", "alice");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `--output json`, expects `code`, returns the records.
    fn json(&self, args: &[&str], code: i32) -> Vec<Value> {
        json_of(
            &self.command(args).args(["--output", "json"]).output().unwrap(),
            args,
            code,
        )
    }

    fn state(&self, name: &str) -> Option<Value> {
        let bytes = std::fs::read(self.state_dir().join(format!("{name}.json"))).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    fn flag(&self, name: &str) -> Value {
        self.read_json("flags/flags.flagd.json")["flags"][name].clone()
    }
}

#[test]
fn advance_from_off_queries_and_records_every_check_and_is_refused_by_a_failing_one() {
    let repo = Repo::new(&["demo"]);
    repo.set_value("demo", "0");
    let d = repo.json(&["advance", "demo", "--now", NOW, "--reason", "try"], 3);
    assert_eq!(repo.queried(), ["demo"], "the check was queried");
    assert_eq!(d[0]["decision"], "hold");
    assert_eq!(d[0]["refused"], true);
    assert_eq!(d[0]["checks"][0]["verdict"], "fail", "{d:?}");
    assert_eq!(repo.flag("demo")["state"], "DISABLED", "nothing started");
    let history = &repo.state("demo").unwrap()["history"];
    assert_eq!(history[0]["refused"], true, "the refusal is in the history");
    // The check passes: it starts, with the evidence, and exits 0.
    repo.set_value("demo", "1");
    let d = repo.json(&["advance", "demo", "--now", NOW], 0);
    assert_eq!(repo.queried(), ["demo"]);
    assert_eq!(d[0]["decision"], "start");
    assert_eq!(d[0]["checks"][0]["verdict"], "pass");
    assert!(
        d[0].get("refused").is_none(),
        "`refused` is left out when false: {}",
        d[0]
    );
    assert_eq!(repo.flag("demo")["state"], "ENABLED");
}

#[test]
fn force_queries_and_records_the_checks_it_overrides() {
    let repo = Repo::new(&["demo"]);
    repo.set_value("demo", "0");
    let d = repo.json(&["advance", "demo", "--force", "--now", NOW], 0);
    assert_eq!(repo.queried(), ["demo"]);
    assert_eq!(d[0]["decision"], "start");
    assert_eq!(d[0]["checks"][0]["verdict"], "fail", "{d:?}");
    assert!(
        d[0]["reason"].as_str().unwrap().contains("forced past: probe 0"),
        "{d:?}"
    );
    let d = repo.json(&["advance", "demo", "--force", "--now", LATER], 0);
    assert_eq!(repo.queried(), ["demo"]);
    assert_eq!(d[0]["decision"], "advance");
    assert_eq!(d[0]["to_percent"], 50.0);
    assert_eq!(d[0]["checks"][0]["value"], 0.0);
    let history = &repo.state("demo").unwrap()["history"];
    assert_eq!(
        history[1]["checks"][0]["verdict"], "fail",
        "the state keeps what was overridden"
    );
}

#[test]
fn refused_commands_exit_3_and_a_refusal_is_not_a_failure_of_the_run() {
    let repo = Repo::new(&["demo"]);
    // A rollback of a flag that is off.
    let d = repo.json(&["rollback", "demo", "--now", NOW], 3);
    assert_eq!(d[0]["refused"], true);
    assert!(
        d[0]["reason"].as_str().unwrap().contains("nothing to roll back"),
        "{d:?}"
    );
    // Text output too: the exit code does not depend on the format.
    let out = repo.run(&["rollback", "demo", "--now", NOW]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rollback refused at 0% by alice"), "{text}");
    // An advance refused by its checks.
    assert_eq!(repo.json(&["advance", "demo", "--now", NOW], 0)[0]["decision"], "start");
    repo.set_value("demo", "0");
    let d = repo.json(&["advance", "demo", "--now", LATER], 3);
    assert_eq!(
        (d[0]["decision"].as_str(), d[0]["refused"].as_bool()),
        (Some("hold"), Some(true))
    );
    assert_eq!(
        repo.flag("demo")["targeting"]["fractional"][0][1],
        10000,
        "flag unchanged"
    );
    // A dry run of the same refusal is refused too: it says what would happen.
    repo.json(&["advance", "demo", "--now", LATER, "--dry-run"], 3);
    // The scheduled run holding on the same failure is a decision, not a refusal.
    let d = repo.json(&["run", "--now", LATER], 0);
    assert!(d[0].get("refused").is_none(), "{d:?}");
}

#[test]
fn a_manual_command_that_finds_the_state_locked_exits_3() {
    let repo = Repo::new(&["demo"]);
    std::fs::create_dir_all(repo.root().join(".flagramp/state")).unwrap();
    let lock = std::fs::File::create(repo.root().join(".flagramp/state/.lock")).unwrap();
    lock.lock().unwrap();
    let out = repo.run(&["rollback", "demo", "--now", NOW, "--lock-wait", "1s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("`rollback demo` refused"), "{stderr}");
    assert_eq!(
        repo.run(&["run", "--now", NOW, "--lock-wait", "1s"]).status.code(),
        Some(1),
        "a scheduled run fails as before"
    );
}

#[test]
fn help_documents_exit_code_3() {
    let out = Repo::new(&["demo"]).run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("3 a manual command was refused"), "{help}");
}

#[test]
fn now_outside_the_years_0000_to_9999_is_a_usage_error() {
    let repo = Repo::new(&["demo"]);
    for now in ["9999-12-31T23:00:00-05:00", "0000-01-01T00:30:00+01:00"] {
        let out = repo.run(&["plan", "--now", now]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{now}: {stderr}");
        assert!(stderr.contains("years 0000–9999"), "{stderr}");
    }
    assert_eq!(
        repo.run(&["plan", "--now", "9999-12-31T23:59:59Z"]).status.code(),
        Some(0)
    );
}

/// The injection point exists in debug builds only.
#[cfg(debug_assertions)]
#[test]
fn a_panic_in_one_rollout_is_its_error_and_the_next_rollout_still_runs() {
    let repo = Repo::new(&["a-first", "b-second"]);
    let out = repo
        .command(&["run", "--now", NOW, "--output", "json"])
        .env(flagramp::runner::INJECT_PANIC_VAR, "a-first")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an error decision, not a crash (101)\n{stdout}\n{stderr}"
    );
    let d: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(d.len(), 2, "both rollouts are reported: {d:?}");
    assert_eq!(
        (d[0]["rollout"].as_str(), d[0]["decision"].as_str()),
        (Some("a-first"), Some("error"))
    );
    let reason = d[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("internal error") && reason.contains("injected"),
        "{reason}"
    );
    assert_eq!(
        (d[1]["rollout"].as_str(), d[1]["decision"].as_str()),
        (Some("b-second"), Some("start"))
    );
    assert_eq!(repo.flag("b-second")["state"], "ENABLED");
    assert_eq!(
        repo.state("b-second").unwrap()["history"][0]["decision"],
        "start",
        "its state is recorded"
    );
    assert_eq!(repo.flag("a-first")["state"], "DISABLED");
    assert!(repo.state("a-first").is_none());
    // No raw panic report: one log line that names the location.
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(
        stderr.contains("internal error") && stderr.contains("src/runner.rs"),
        "{stderr}"
    );
}

#[test]
fn every_profile_unwinds_so_the_panic_guard_works() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let settings: Vec<&str> = manifest
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| l.replace(' ', "").starts_with("panic="))
        .collect();
    assert!(!settings.is_empty(), "the release profile says `panic = \"unwind\"`");
    assert!(settings.iter().all(|l| l.contains("\"unwind\"")), "{settings:?}");
}

/// A child whose stdout is a pipe nobody reads any more.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    cmd.output().unwrap()
}

#[test]
fn a_closed_stdout_is_a_quiet_exit_and_the_work_is_still_done() {
    let repo = Repo::new(&["demo"]);
    for args in [
        &["run", "--now", NOW][..],
        &["status"],
        &["validate"],
        &["schema", "--output", "decision"],
        &["rollback", "demo", "--now", NOW],
    ] {
        let out = with_closed_stdout(repo.command(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("internal error"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.trim().is_empty(), "quiet: {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
    assert_eq!(
        repo.flag("demo")["state"],
        "DISABLED",
        "the run started it, the rollback turned it off"
    );
    assert_eq!(repo.state("demo").unwrap()["history"].as_array().unwrap().len(), 2);
}
