//! Concurrency: ten real `flagramp run` processes at once, in two groups with their own state
//! directories, advancing two rollouts whose flags share one flagd file. Each eligible rollout
//! makes exactly one transition, no write to the shared file is lost, and every other byte of it
//! survives. `FLAGRAMP_LONG=1` runs more trials.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use serde_json::{json, Value};

use crate::support::repo::{flagramp_in, TempRepo};

const FLAGS: &str = r#"{
  "flags": {
    "big": { "state": "ENABLED", "variants": { "on": 123456789012345678901234567890, "off": 0 }, "defaultVariant": "on" },
    "a": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" },
    "b": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }
  }
}
"#;

const RUNS_PER_ROLLOUT: usize = 5;

fn trials() -> usize {
    if std::env::var_os("FLAGRAMP_LONG").is_some() {
        1000
    } else {
        200
    }
}

fn spec(name: &str) -> String {
    format!(
        "version: 1\nname: {name}\nflag: {{ provider: flagd, key: {name}, flagd: {{ path: flags/flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 1h }}, 50, 100]\nchecks:\n  - {{ name: probe, command: [\"./ok.sh\"], pass: \">= 1\" }}\n"
    )
}

fn repo() -> TempRepo {
    let repo = TempRepo::new();
    for name in ["a", "b"] {
        repo.write(&format!(".github/rollouts/{name}.yml"), &spec(name));
    }
    repo.write("flags/flags.flagd.json", FLAGS);
    repo.script("ok.sh", "echo 1");
    repo
}

fn trial(root: &Path) {
    let mut children = Vec::new();
    for i in 0..RUNS_PER_ROLLOUT * 2 {
        let name = if i % 2 == 0 { "a" } else { "b" };
        // Output to files, not pipes: reading ten children's pipes at once (`wait_with_output`)
        // failed once with EAGAIN inside the standard library on a loaded machine.
        let (out_path, err_path) = (root.join(format!("run-{i}.out")), root.join(format!("run-{i}.err")));
        let child = flagramp_in(root)
            .args(["run", name, "--now", "2026-11-24T09:00:00Z", "--output", "json"])
            .args(["--state-dir", &format!("state-{name}")])
            .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
            .spawn()
            .unwrap();
        children.push((name, child, out_path, err_path));
    }
    let mut starts = std::collections::BTreeMap::<&str, usize>::new();
    for (name, mut child, out_path, err_path) in children {
        let status = child.wait().unwrap();
        let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
        assert_eq!(status.code(), Some(0), "{name}: {stderr}");
        let records: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
        let decision = records[0]["decision"].as_str().unwrap().to_string();
        match decision.as_str() {
            "start" => *starts.entry(name).or_default() += 1,
            "hold" => {}
            other => panic!("{name}: a run decided {other}: {records}"),
        }
    }
    let text = std::fs::read_to_string(root.join("flags/flags.flagd.json")).unwrap();
    let flags: Value = serde_json::from_str(&text).unwrap();
    assert!(text.contains("123456789012345678901234567890"), "{text}");
    for name in ["a", "b"] {
        assert_eq!(starts.get(name), Some(&1), "exactly one run starts {name}: {starts:?}");
        assert_eq!(
            flags["flags"][name]["state"], "ENABLED",
            "no write to {name} was lost: {text}"
        );
        assert_eq!(
            flags["flags"][name]["targeting"]["fractional"],
            json!([["on", 10000], ["off", 90000]])
        );
        let state: Value =
            serde_json::from_slice(&std::fs::read(root.join(format!("state-{name}/{name}.json"))).unwrap()).unwrap();
        assert!(state["pending"].is_null(), "{state}");
        let history = state["history"].as_array().unwrap();
        assert_eq!(
            history.iter().filter(|r| r["decision"] == "start").count(),
            1,
            "{history:#?}"
        );
        assert_eq!(history[0]["decision"], "start", "{history:#?}");
    }
}

#[test]
fn ten_concurrent_runs_make_one_transition_per_rollout_and_lose_no_write() {
    let started = Instant::now();
    let trials = trials();
    for _ in 0..trials {
        let dir = repo();
        trial(dir.root());
    }
    eprintln!(
        "concurrency (local state, shared flagd file): {trials} trials x {} runs in {:.1}s",
        RUNS_PER_ROLLOUT * 2,
        started.elapsed().as_secs_f64()
    );
}

/// The Action against the stateful GitHub fake: ten workflow runs at once, each in its own
/// workspace, evaluating the same two rollouts whose flags share one file on the default branch.
/// State and flag writes are compare-and-swap on the blob sha.
mod action {
    use std::time::Instant;

    use serde_json::{json, Value};

    use super::trials;
    use crate::action::{fixture, Job};
    use crate::support::github::FakeGitHub;

    const FLAGS_PATH: &str = "flags/flags.flagd.json";
    const ROLLOUTS: [&str; 2] = ["new-checkout", "second"];
    const CONCURRENT_RUNS: usize = 10;

    fn spec(name: &str) -> String {
        format!(
            "version: 1\nname: {name}\nflag: {{ provider: flagd, key: {name}, flagd: {{ path: {FLAGS_PATH} }} }}\nstages: [{{ percent: 10, bake: 1h }}, 50, 100]\nchecks:\n  - {{ name: smoke, command: [\"./check.sh\"], pass: \"== 1\" }}\nreport: {{ pull_request: none }}\n"
        )
    }

    const FLAGS: &str = r#"{
  "flags": {
    "big": { "state": "ENABLED", "variants": { "on": 123456789012345678901234567890, "off": 0 }, "defaultVariant": "on" },
    "new-checkout": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" },
    "second": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }
  }
}
"#;

    async fn trial() {
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        fake.put_file("main", FLAGS_PATH, FLAGS.as_bytes());
        let jobs: Vec<Job> = (0..CONCURRENT_RUNS)
            .map(|_| {
                let job = Job::new(&spec(ROLLOUTS[0]));
                job.write(
                    &format!("repo/.github/rollouts/{}.yml", ROLLOUTS[1]),
                    &spec(ROLLOUTS[1]),
                );
                job
            })
            .collect();
        let event = fixture("schedule.synthetic.json");
        let outs = futures::future::join_all(
            jobs.iter()
                .map(|job| job.run(&fake, "octo-org/octo-repo", "schedule", &event, &[], &[])),
        )
        .await;
        let mut starts = std::collections::BTreeMap::<String, usize>::new();
        for (job, out) in jobs.iter().zip(&outs) {
            let log = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{log}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
            for d in decisions.as_array().unwrap() {
                match d["decision"].as_str().unwrap() {
                    "start" => *starts.entry(d["rollout"].as_str().unwrap().to_string()).or_default() += 1,
                    "hold" => {}
                    other => panic!("a run decided {other}: {d}"),
                }
            }
        }
        let text = String::from_utf8(fake.file("main", FLAGS_PATH).unwrap()).unwrap();
        assert!(text.contains("123456789012345678901234567890"), "{text}");
        let flags: Value = serde_json::from_str(&text).unwrap();
        for name in ROLLOUTS {
            assert_eq!(starts.get(name), Some(&1), "exactly one run starts {name}: {starts:?}");
            assert_eq!(
                flags["flags"][name]["targeting"]["fractional"],
                json!([["on", 10000], ["off", 90000]]),
                "no write to {name} was lost: {text}"
            );
            assert_eq!(flags["flags"][name]["state"], "ENABLED");
            let state: Value =
                serde_json::from_slice(&fake.file("flagramp-state", &format!("rollouts/{name}.json")).unwrap())
                    .unwrap();
            assert!(state["pending"].is_null(), "{state}");
            let history = state["history"].as_array().unwrap();
            assert_eq!(
                history.iter().filter(|r| r["decision"] == "start").count(),
                1,
                "{history:#?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_concurrent_action_runs_make_one_transition_per_rollout_and_lose_no_write() {
        let started = Instant::now();
        let trials = trials();
        for _ in 0..trials {
            trial().await;
        }
        eprintln!(
            "concurrency (Action, GitHub fake): {trials} trials x {CONCURRENT_RUNS} runs in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// A state store where another run always got there first: every write is a conflict.
#[derive(Debug)]
struct AlwaysBeaten(flagramp::state::MemoryStateStore);

#[async_trait::async_trait]
impl flagramp::state::StateStore for AlwaysBeaten {
    async fn load(&self, rollout: &str) -> Result<Option<flagramp::state::StoredState>, flagramp::state::StateError> {
        self.0.load(rollout).await
    }

    async fn save(
        &self,
        state: &flagramp::state::RolloutState,
        _expected: Option<&flagramp::state::StateVersion>,
    ) -> Result<flagramp::state::StateVersion, flagramp::state::StateError> {
        Err(flagramp::state::StateError::Conflict {
            rollout: state.rollout.clone(),
        })
    }

    async fn list(&self) -> Result<Vec<String>, flagramp::state::StateError> {
        self.0.list().await
    }
}

/// A scheduled run that keeps losing the rollout's state to other runs holds (`busy`) and exits
/// 0, leaving the rollout to them; a person's command that never got through is an error.
#[tokio::test]
async fn a_run_that_keeps_losing_the_state_to_other_runs_holds_and_a_command_errors() {
    use flagramp::engine::ManualOp;
    use flagramp::record::{DecisionKind, Rule};
    use flagramp::runner::Mode;

    let repo = repo();
    let spec = crate::support::bench::check_spec(
        "a",
        "{ provider: flagd, key: a, flagd: { path: flags/flags.flagd.json } }",
        "[{ percent: 10, bake: 1h }, 50, 100]",
    );
    let store = Box::new(AlwaysBeaten(flagramp::state::MemoryStateStore::new()));
    let now = crate::support::bench::at_minute(0);
    let runner = crate::support::bench::runner(repo.root(), repo.root(), now, store);
    let decided = runner.decide(&spec, &Mode::Run).await;
    let r = &decided.record;
    assert_eq!(
        (r.decision, r.rule),
        (DecisionKind::Hold, Some(Rule::Busy)),
        "{}",
        r.reason
    );
    assert!(
        r.reason.starts_with("other runs kept changing this rollout's state"),
        "{}",
        r.reason
    );
    assert_eq!(r.to_percent, flagramp::percent::Percent::ZERO, "the flag as read: off");
    let manual = Mode::Manual {
        op: ManualOp::Advance { force: false },
        reason: String::new(),
        dry_run: false,
    };
    let r = runner.decide(&spec, &manual).await.record;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    let flags: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.root().join("flags/flags.flagd.json")).unwrap()).unwrap();
    assert_eq!(flags["flags"]["a"]["state"], "DISABLED", "nothing was written");
}
