//! Flag and state files under mistreatment: every other byte of a flag file survives a write,
//! links are written through inside the repository and refused out of it, read-only files and
//! oversized or endless files are refused, temporary files of killed runs are swept, a write that
//! certainly failed withdraws its claim, absurd weights and counters do not wrap, and a second
//! local run waits for the lock instead of failing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use flagramp::percent::Percent;
use flagramp::provider::{ChangeNote, FlagProvider, FlagdFile, ProviderError};
use flagramp::state::{FlagValue, LocalStateStore, RolloutState, StateStore};

use crate::support::repo::TempRepo;

/// The flag on for `p` % of users.
fn on_at(p: u32) -> FlagValue {
    FlagValue::on(crate::support::pct(p))
}

/// A repository root holding `flags/flags.flagd.json`.
struct Repo(TempRepo);

impl std::ops::Deref for Repo {
    type Target = TempRepo;

    fn deref(&self) -> &TempRepo {
        &self.0
    }
}

impl Repo {
    fn with_flags(text: &str) -> Repo {
        let repo = Repo(TempRepo::new());
        repo.write("flags/flags.flagd.json", text);
        repo
    }

    fn flags_path(&self) -> PathBuf {
        self.root().join("flags/flags.flagd.json")
    }

    fn flags_text(&self) -> String {
        std::fs::read_to_string(self.flags_path()).unwrap()
    }

    fn provider(&self, key: &str) -> FlagdFile {
        FlagdFile::new(self.root(), Path::new("flags/flags.flagd.json"), key.into())
    }

    fn state(&self) -> Value {
        self.read_json(".flagramp/state/demo.json")
    }
}

async fn set(p: &FlagdFile, to: FlagValue) -> Result<FlagValue, ProviderError> {
    let seen = p.read().await?;
    p.set(to, &seen, &ChangeNote::default()).await.map(|r| r.value)
}

/// Odd spacing, tabs, a 30-digit integer, an exponent, `-0.0`, unicode escapes and an escaped key.
const ODD: &str = "{\n   \"$schema\" : \"https://flagd.dev/schema/v0/flags.json\",\n\t\"flags\":{\n  \"big\":{\"state\":\"ENABLED\",\"variants\":{\"on\":123456789012345678901234567890,\"off\":0},\"defaultVariant\":\"on\", \"metadata\": {\"n\": 1.0e2, \"z\": -0.0, \"s\": \"caf\\u00e9 \\ud83d\\ude00 \\/\"}},\n  \"demo\" :  {\n        \"st\\u0061te\"  :   \"DISABLED\",\n        \"variants\": {\"on\": true, \"off\": false},\n        \"defaultVariant\": \"off\"\n  },\n  \"tail\": {\"state\": \"DISABLED\", \"variants\": {\"on\": 1.50, \"off\": 1E-7}, \"defaultVariant\": \"off\"}\n}\n}";

#[tokio::test]
async fn a_write_changes_only_the_owned_flags_state_and_weights_byte_for_byte() {
    let repo = Repo::with_flags(ODD);
    let p = repo.provider("demo");

    assert_eq!(set(&p, on_at(10)).await.unwrap(), on_at(10));
    let started = ODD.replace("\"DISABLED\",\n        \"variants\": {\"on\": true", "\"ENABLED\",\n        \"variants\": {\"on\": true").replace(
        "\"defaultVariant\": \"off\"\n  },",
        "\"defaultVariant\": \"off\",\n        \"targeting\"  :   {\"fractional\": [[\"on\", 10000], [\"off\", 90000]]}\n  },",
    );
    assert_eq!(
        repo.flags_text(),
        started,
        "a new rule is added in the flag's own layout"
    );

    assert_eq!(set(&p, on_at(50)).await.unwrap(), on_at(50));
    let advanced = started.replace(
        "[[\"on\", 10000], [\"off\", 90000]]",
        "[[\"on\", 50000], [\"off\", 50000]]",
    );
    assert_eq!(repo.flags_text(), advanced, "only the two weights change");

    assert_eq!(set(&p, FlagValue::OFF).await.unwrap(), FlagValue::OFF);
    let off = advanced.replace("\"st\\u0061te\"  :   \"ENABLED\"", "\"st\\u0061te\"  :   \"DISABLED\"");
    assert_ne!(off, advanced);
    assert_eq!(repo.flags_text(), off, "turning off changes only `state`");
    assert!(repo.flags_text().contains("123456789012345678901234567890"));
}

#[tokio::test]
async fn weights_are_replaced_in_place_keeping_a_bucketing_expression_and_compact_layout() {
    let text = r#"{"flags":{"demo":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"fractional":[ {"cat":[{"var":"$flagd.flagKey"},{"var":"email"}]} ,["on",25],[ "off" , 75 ]]}},"n":{"x":1e300,"y":-12345678901234567890123}}}"#;
    let repo = Repo::with_flags(text);
    let p = repo.provider("demo");
    assert_eq!(p.read().await.unwrap().value, on_at(25));
    set(&p, on_at(50)).await.unwrap();
    assert_eq!(
        repo.flags_text(),
        text.replace("[\"on\",25]", "[\"on\",50000]")
            .replace(" 75 ]", " 50000 ]")
    );
}

#[tokio::test]
async fn an_empty_or_null_targeting_is_replaced_where_it_stands() {
    for targeting in ["{}", "null", "{ }"] {
        let text = format!(
            "{{\"flags\":{{\"demo\":{{\"targeting\":{targeting},\"state\":\"DISABLED\",\"variants\":{{\"on\":true,\"off\":false}},\"defaultVariant\":\"off\"}}}}}}"
        );
        let repo = Repo::with_flags(&text);
        set(&repo.provider("demo"), on_at(10)).await.unwrap();
        assert_eq!(
            repo.flags_text(),
            text.replace(
                &format!("\"targeting\":{targeting}"),
                "\"targeting\":{\"fractional\":[[\"on\",10000],[\"off\",90000]]}"
            )
            .replace("DISABLED", "ENABLED")
        );
    }
}

fn fractional(on: &str, off: &str) -> String {
    format!(
        r#"{{"flags":{{"demo":{{"state":"ENABLED","variants":{{"on":true,"off":false}},"defaultVariant":"off","targeting":{{"fractional":[["on",{on}],["off",{off}]]}}}}}}}}"#
    )
}

#[tokio::test]
async fn absurd_weights_are_an_error_not_a_share() {
    let max = u64::MAX.to_string();
    for (on, off) in [(max.as_str(), "1"), (max.as_str(), max.as_str()), ("4294967296", "0")] {
        let repo = Repo::with_flags(&fractional(on, off));
        let err = repo.provider("demo").read().await.unwrap_err();
        assert!(matches!(err, ProviderError::CannotOwn(_)), "{err:?}");
        assert!(err.to_string().contains("fractional weight above 4294967295"), "{err}");
    }
    // The largest accepted weights are computed exactly.
    let repo = Repo::with_flags(&fractional("4294967295", "4294967295"));
    assert_eq!(repo.provider("demo").read().await.unwrap().value, on_at(50));
    let repo = Repo::with_flags(&fractional("4294967295", "0"));
    assert_eq!(repo.provider("demo").read().await.unwrap().value, on_at(100));
}

const PLAIN: &str =
    r#"{"flags":{"demo":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}}"#;

#[tokio::test]
async fn a_link_inside_the_repository_is_written_through() {
    let repo = Repo::with_flags("{}");
    let target = repo.write("config/real.flagd.json", PLAIN);
    std::fs::remove_file(repo.flags_path()).unwrap();
    std::os::unix::fs::symlink("../config/real.flagd.json", repo.flags_path()).unwrap();
    let p = repo.provider("demo");
    assert_eq!(p.read().await.unwrap().value, FlagValue::OFF);
    assert_eq!(set(&p, on_at(10)).await.unwrap(), on_at(10));
    assert!(
        std::fs::symlink_metadata(repo.flags_path())
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(doc["flags"]["demo"]["state"], "ENABLED", "the target holds the change");
}

#[tokio::test]
async fn a_link_out_of_the_repository_is_refused_for_reading_and_writing() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("flags.json");
    std::fs::write(&target, PLAIN).unwrap();
    for link_to in [target.clone(), PathBuf::from("/dev/zero")] {
        let repo = Repo::with_flags("{}");
        std::fs::remove_file(repo.flags_path()).unwrap();
        std::os::unix::fs::symlink(&link_to, repo.flags_path()).unwrap();
        let p = repo.provider("demo");
        let err = p.read().await.unwrap_err();
        assert!(matches!(err, ProviderError::CannotOwn(_)), "{err:?}");
        assert!(err.to_string().contains("outside the repository"), "{err}");
        let seen = flagramp::provider::FlagReading {
            value: FlagValue::OFF,
            version: String::new(),
        };
        assert!(p.set(on_at(10), &seen, &ChangeNote::default()).await.is_err());
        assert!(std::fs::symlink_metadata(repo.flags_path())
            .unwrap()
            .file_type()
            .is_symlink());
    }
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        PLAIN,
        "the outside file is untouched"
    );
}

#[tokio::test]
async fn oversized_and_endless_files_are_refused_without_reading_them_whole() {
    let repo = Repo::with_flags(PLAIN);
    let big = std::fs::File::create(repo.flags_path()).unwrap();
    big.set_len(8 * 1024 * 1024 + 1).unwrap();
    let err = repo.provider("demo").read().await.unwrap_err();
    assert!(err.to_string().contains("is larger than 8 MiB"), "{err}");

    let state_dir = repo.root().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let store = LocalStateStore::read_only(&state_dir);
    std::fs::File::create(state_dir.join("demo.json"))
        .unwrap()
        .set_len(1024 * 1024 + 1)
        .unwrap();
    let err = store.load("demo").await.unwrap_err();
    assert!(err.to_string().contains("is larger than 1 MiB"), "{err}");
    std::fs::remove_file(state_dir.join("demo.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", state_dir.join("demo.json")).unwrap();
    let started = Instant::now();
    let err = store.load("demo").await.unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn read_only_flag_and_state_files_are_refused_and_kept() {
    let repo = Repo::with_flags(PLAIN);
    std::fs::set_permissions(repo.flags_path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = set(&repo.provider("demo"), on_at(10)).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotWritten(_)), "{err:?}");
    assert!(
        err.to_string().contains("flags/flags.flagd.json is read-only: "),
        "{err}"
    );
    assert_eq!(repo.flags_text(), PLAIN);
    let mode = std::fs::metadata(repo.flags_path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444);

    let state_dir = repo.root().join("state");
    let store = LocalStateStore::for_writing(&state_dir, Duration::ZERO).unwrap();
    let state = RolloutState::new("demo", "demo", vec![Percent::FULL]);
    let version = store.save(&state, None).await.unwrap();
    let path = state_dir.join("demo.json");
    let before = std::fs::read(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut next = state.clone();
    next.paused = true;
    let err = store.save(&next, Some(&version)).await.unwrap_err();
    assert!(err.to_string().contains("demo.json is read-only: "), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn writes_sweep_temporary_files_that_killed_runs_left() {
    let repo = Repo::with_flags(PLAIN);
    let stale_flag_tmp = repo.write("flags/.flagramp-AbC123.tmp", "half a write");
    let unrelated = repo.write("flags/.flagramp-notes.txt", "not ours");
    set(&repo.provider("demo"), on_at(10)).await.unwrap();
    assert!(!stale_flag_tmp.exists(), "the flag directory's leftover is removed");
    assert!(unrelated.exists(), "only `.flagramp-*.tmp` files are removed");

    let state_dir = repo.root().join("state");
    let store = LocalStateStore::for_writing(&state_dir, Duration::ZERO).unwrap();
    let stale_state_tmp = repo.write("state/.flagramp-x9.tmp", "{");
    store
        .save(&RolloutState::new("demo", "demo", vec![Percent::FULL]), None)
        .await
        .unwrap();
    assert!(!stale_state_tmp.exists(), "the state directory's leftover is removed");
}

const SPEC: &str = "version: 1\nname: demo\nflag: { provider: flagd, key: demo, flagd: { path: flags/flags.flagd.json } }\nstages: [{ percent: 10, bake: 1h }, 50, 100]\nchecks:\n  - { name: probe, command: [\"./ok.sh\"], pass: \">= 1\" }\n";

fn cli_repo() -> Repo {
    let repo = Repo::with_flags(PLAIN);
    repo.write(".github/rollouts/demo.yml", SPEC);
    let script = repo.write("ok.sh", "#!/bin/sh\necho 1\n");
    std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo
}

#[test]
fn a_write_that_certainly_failed_withdraws_its_claim() {
    let repo = cli_repo();
    std::fs::set_permissions(repo.flags_path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = repo
        .flagramp(&["run", "--now", "2026-11-24T09:00:00Z", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = records[0]["reason"].as_str().unwrap();
    assert!(reason.contains("is read-only"), "{reason}");
    let state_file = repo.root().join(".flagramp/state/demo.json");
    if state_file.exists() {
        assert!(
            repo.state()["pending"].is_null(),
            "the claim was withdrawn: {}",
            repo.state()
        );
    }

    // A minute later, with the file writable again, the rollout starts: no claim blocks it.
    std::fs::set_permissions(repo.flags_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = repo
        .flagramp(&["run", "--now", "2026-11-24T09:01:00Z", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records[0]["decision"], "start", "{records}");
}

#[test]
fn a_second_local_run_waits_for_the_lock_then_decides_with_fresh_state() {
    let repo = cli_repo();
    let state_dir = repo.root().join(".flagramp/state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let lock = std::fs::File::create(state_dir.join(".lock")).unwrap();
    lock.lock().unwrap();
    let child = repo
        .flagramp(&[
            "run",
            "--now",
            "2026-11-24T09:00:00Z",
            "--lock-wait",
            "20s",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // The holder starts the rollout by hand before letting go.
    let store = LocalStateStore::read_only(&state_dir);
    let mut state = RolloutState::new(
        "demo",
        "demo",
        vec![on_at(10).percent, on_at(50).percent, Percent::FULL],
    );
    state.last_set = Some(on_at(10));
    state.started_at = Some("2026-11-24T08:59:00Z".parse().unwrap());
    state.stage_entered_at = state.started_at;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(store.save(&state, None)).unwrap();
    rt.block_on(async {
        let p = repo.provider("demo");
        set(&p, on_at(10)).await.unwrap();
    });
    drop(lock);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let records: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        records[0]["decision"], "hold",
        "decided with the winner's state: {records}"
    );
}

#[test]
fn a_lock_wait_that_expires_decides_nothing_and_says_so() {
    let repo = cli_repo();
    let state_dir = repo.root().join(".flagramp/state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let lock = std::fs::File::create(state_dir.join(".lock")).unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let out = repo.flagramp(&["run", "--lock-wait", "1s"]).output().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("still holds") && stderr.contains("after waiting 1s") && stderr.contains("nothing was decided"),
        "{stderr}"
    );
    assert_eq!(repo.flags_text(), PLAIN);
    let bad = repo.flagramp(&["run", "--lock-wait", "soon"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad duration is a usage error");
}

#[test]
fn a_failure_counter_at_its_maximum_does_not_wrap() {
    let text = "version: 1\nname: demo\nflag: { provider: flagd, key: demo, flagd: { path: f.json } }\nstages: [10, 50, 100]\npolicy: { failures_to_rollback: 3 }\nchecks:\n  - { name: probe, command: [\"./a\"], pass: \">= 1\" }\n";
    let (spec, _, diags) = flagramp::spec::parse_spec(Path::new("demo.yml"), text);
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    let mut state = RolloutState::new("demo", "demo", spec.stage_percents());
    state.last_set = Some(on_at(50));
    state.consecutive_failures = u32::MAX;
    let input = flagramp::engine::Input {
        spec: &spec,
        state: Some(&state),
        flag: Ok(on_at(50)),
        now: "2026-11-24T09:00:00Z".parse().unwrap(),
        actor: "flagramp",
    };
    let checks = flagramp::engine::check_records(
        &spec.checks,
        &crate::support::measured(&[flagramp::check::Measurement::Value(0.0)]),
        &flagramp::engine::Judging::default(),
    );
    let flagramp::engine::Step::Decided(e) = flagramp::engine::evaluate(input, Some(&checks)) else {
        panic!("decided with checks")
    };
    assert_eq!(
        e.record.decision,
        flagramp::record::DecisionKind::Rollback,
        "{:?}",
        e.record
    );
    assert!(
        e.record.reason.contains("failure 4294967295 of 3"),
        "the counter stays at its maximum: {}",
        e.record.reason
    );
}
