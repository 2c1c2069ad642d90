//! Crash consistency: the real binary is SIGKILLed at each point of a transition (docs/rules.md §3 rule
//! 1: claim, change the flag, record) and the next run must find the truth from the flag, record
//! the transition exactly once, keep every earlier history entry and leave no temporary file.
//!
//! The debug binary stops at a point named by `FLAGRAMP_TEST_PAUSE_AT` (see src/crashpoint.rs),
//! so each kill lands exactly there. `FLAGRAMP_LONG=1` runs more trials.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::repo::{flagramp_in, json_of, TempRepo};

/// Stage 10% bakes 0s so the second run advances; 50% bakes 1h so the recovery run holds there.
const SPEC: &str = "version: 1\nname: demo\nflag: { provider: flagd, key: demo, flagd: { path: flags/flags.flagd.json } }\nstages: [{ percent: 10, bake: 0s }, { percent: 50, bake: 1h }, 100]\nchecks:\n  - { name: probe, command: [\"./ok.sh\"], pass: \">= 1\" }\n";

const FLAGS: &str = r#"{
  "flags": {
    "other": { "state": "ENABLED", "variants": { "on": 123456789012345678901234567890, "off": 0 }, "defaultVariant": "on" },
    "demo": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }
  }
}
"#;

const T0: &str = "2026-11-24T09:00:00Z";
const T1: &str = "2026-11-24T09:05:00Z";
/// Within the claim lease (10 minutes): the recovery run must know from the state lock that the
/// claim's run is dead, not wait for the lease to run out.
const T2: &str = "2026-11-24T09:06:00Z";

/// Where the crashing run is killed, and whether the flag file had been changed by then.
const POINTS: &[(&str, bool)] = &[
    ("before-rename:1", false), // writing the claim's temporary file
    ("after-claim", false),
    ("before-rename:2", false), // writing the flag file's temporary file
    ("after-flag-write", true),
    ("before-record", true),
    ("before-rename:3", true), // writing the record's temporary file
    ("during-report", true),
];

fn trials_per_point() -> usize {
    if std::env::var_os("FLAGRAMP_LONG").is_some() {
        60
    } else {
        15
    }
}

fn command(root: &Path, now: &str) -> Command {
    let mut cmd = flagramp_in(root);
    cmd.args(["run", "--now", now, "--output", "json"]);
    cmd
}

fn decisions(out: &std::process::Output) -> Value {
    json_of(out, &["run"], 0)
}

/// Runs the binary until it reports it paused at `point`, then SIGKILLs it.
fn run_and_kill_at(root: &Path, point: &str) {
    run_at_and_kill_at(root, T1, point)
}

/// Runs the binary at `now` until it reports it paused at `point`, then SIGKILLs it.
fn run_at_and_kill_at(root: &Path, now: &str, point: &str) {
    let mut child = command(root, now)
        .env("FLAGRAMP_TEST_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("paused at") => break,
            Ok(line) => seen.push(line),
            Err(why) => {
                let _ = child.kill();
                panic!("the run never paused at {point} ({why:?}); stderr: {seen:?}");
            }
        }
    }
    // `kill` is SIGKILL on Unix: no destructor, no cleanup runs.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn trial(point: &str, flag_was_written: bool) {
    let repo = TempRepo::new();
    let root = repo.root();
    repo.write(".github/rollouts/demo.yml", SPEC);
    repo.write("flags/flags.flagd.json", FLAGS);
    repo.script("ok.sh", "echo 1");

    let start = decisions(&command(root, T0).output().unwrap());
    assert_eq!(start[0]["decision"], "start", "{start}");
    let state_path = root.join(".flagramp/state/demo.json");
    let read_state = || -> Value { serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap() };
    let history_before = read_state()["history"].as_array().unwrap().clone();

    run_and_kill_at(root, point);
    if point.starts_with("before-rename") {
        let left: Vec<String> = [root.join("flags"), root.join(".flagramp/state")]
            .iter()
            .flat_map(|d| temp_files(d))
            .collect();
        assert_eq!(left.len(), 1, "the kill at {point} leaves its temporary file: {left:?}");
    }
    let flags: Value = serde_json::from_slice(&std::fs::read(root.join("flags/flags.flagd.json")).unwrap()).unwrap();
    let written = flags["flags"]["demo"]["targeting"]["fractional"][0] == serde_json::json!(["on", 50000]);
    assert_eq!(written, flag_was_written, "at {point} the flag file is {flags}");

    let recovery = decisions(&command(root, T2).output().unwrap());
    let expected = if flag_was_written { "hold" } else { "advance" };
    assert_eq!(recovery[0]["decision"], expected, "after a kill at {point}: {recovery}");

    let state = read_state();
    let text = std::fs::read_to_string(root.join("flags/flags.flagd.json")).unwrap();
    assert!(
        text.contains("123456789012345678901234567890"),
        "other flags survive: {text}"
    );
    let flags: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        flags["flags"]["demo"]["targeting"]["fractional"],
        serde_json::json!([["on", 50000], ["off", 50000]]),
        "after a kill at {point}"
    );
    assert_eq!(
        state["last_set"],
        serde_json::json!({ "enabled": true, "percent": 50 }),
        "{state}"
    );
    assert!(state["pending"].is_null(), "no claim is left: {state}");
    let history = state["history"].as_array().unwrap();
    assert_eq!(
        &history[..history_before.len()],
        &history_before[..],
        "no history entry is lost"
    );
    let advances = history
        .iter()
        .filter(|r| r["decision"] == "advance" && r["to_percent"] == 50)
        .count();
    assert_eq!(
        advances, 1,
        "the transition is recorded once after a kill at {point}: {history:#?}"
    );
    for dir in [root.join("flags"), root.join(".flagramp/state")] {
        assert_eq!(
            temp_files(&dir),
            Vec::<String>::new(),
            "temporary files in {}",
            dir.display()
        );
    }
}

#[test]
#[cfg_attr(not(debug_assertions), ignore = "the pause points exist only in debug builds")]
fn a_run_killed_at_any_point_of_a_transition_is_finished_or_redone_exactly_once() {
    let started = Instant::now();
    let per_point = trials_per_point();
    for (point, flag_was_written) in POINTS {
        for _ in 0..per_point {
            trial(point, *flag_was_written);
        }
    }
    eprintln!(
        "crash consistency: {} trials ({} points x {per_point}) in {:.1}s",
        POINTS.len() * per_point,
        POINTS.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A run's writes do not grow with its rollouts (docs/rules.md §3 rule 1): twelve rollouts that
/// all start, with flags in three flagd files in two directories, write in four passes, each seen
/// by stopping the run just before it: every claim at once, the files of each directory at once
/// (each file once, with all its flags), every record at once.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "the pause points exist only in debug builds")]
fn a_run_writes_its_claims_once_each_flag_file_once_and_its_records_once() {
    const ROLLOUTS: usize = 12;
    const FILES: [&str; 3] = ["flags/a.flagd.json", "flags/b.flagd.json", "other/c.flagd.json"];
    let repo = TempRepo::new();
    let root = repo.root();
    let file_of = |i: usize| match i {
        0..6 => FILES[0],
        6..9 => FILES[1],
        _ => FILES[2],
    };
    let in_file = |file: &str| (0..ROLLOUTS).filter(|&i| file_of(i) == file).count();
    for i in 0..ROLLOUTS {
        repo.write(
            &format!(".github/rollouts/r{i}.yml"),
            &format!(
                "version: 1\nname: r{i}\nflag: {{ provider: flagd, key: f{i}, flagd: {{ path: {} }} }}\nstages: [10, 100]\nchecks:\n  - {{ name: probe, command: [\"./ok.sh\"], pass: \">= 1\" }}\n",
                file_of(i)
            ),
        );
    }
    for file in FILES {
        let flags: Vec<String> = (0..ROLLOUTS)
            .filter(|&i| file_of(i) == file)
            .map(|i| format!("\"f{i}\": {{ \"state\": \"DISABLED\", \"variants\": {{ \"on\": true, \"off\": false }}, \"defaultVariant\": \"off\" }}"))
            .collect();
        repo.write(file, &format!("{{ \"flags\": {{ {} }} }}\n", flags.join(", ")));
    }
    repo.script("ok.sh", "echo 1");
    let pristine: Vec<(&str, Vec<u8>)> = FILES
        .iter()
        .map(|p| (*p, std::fs::read(root.join(p)).unwrap()))
        .collect();
    let reset = || {
        let _ = std::fs::remove_dir_all(root.join(".flagramp"));
        for (p, bytes) in &pristine {
            std::fs::write(root.join(p), bytes).unwrap();
        }
    };
    // How many flags of each file are on.
    let flags_on = || -> Vec<usize> {
        FILES
            .iter()
            .map(|file| {
                let flags: Value = serde_json::from_slice(&std::fs::read(root.join(file)).unwrap()).unwrap();
                flags["flags"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter(|f| f["state"] == "ENABLED")
                    .count()
            })
            .collect()
    };
    // How many state files hold a claim, and how many a record.
    let states = || -> (usize, usize) {
        let (mut claims, mut records) = (0, 0);
        for i in 0..ROLLOUTS {
            let Ok(bytes) = std::fs::read(root.join(format!(".flagramp/state/r{i}.json"))) else {
                continue;
            };
            let state: Value = serde_json::from_slice(&bytes).unwrap();
            if state["pending"].is_null() {
                records += 1;
            } else {
                claims += 1;
            }
        }
        (claims, records)
    };
    let all_on = vec![in_file(FILES[0]), in_file(FILES[1]), in_file(FILES[2])];

    // Stopped before the first pass renames anything: nothing is written.
    run_at_and_kill_at(root, T0, "before-rename:1");
    assert_eq!((flags_on(), states()), (vec![0, 0, 0], (0, 0)));

    // Before the second: every claim is there, no flag is set.
    reset();
    run_at_and_kill_at(root, T0, "before-rename:2");
    assert_eq!((flags_on(), states()), (vec![0, 0, 0], (ROLLOUTS, 0)));

    // Before the third: both files of `flags/` were written, with all their flags.
    reset();
    run_at_and_kill_at(root, T0, "before-rename:3");
    assert_eq!((flags_on(), states()), (vec![all_on[0], all_on[1], 0], (ROLLOUTS, 0)));

    // Before the fourth: `other/` too, and still only claims.
    reset();
    run_at_and_kill_at(root, T0, "before-rename:4");
    assert_eq!((flags_on(), states()), (all_on.clone(), (ROLLOUTS, 0)));

    // There is no fifth: the run finishes with every rollout recorded.
    reset();
    let out = command(root, T0)
        .env("FLAGRAMP_TEST_PAUSE_AT", "before-rename:5")
        .output()
        .unwrap();
    let records = decisions(&out);
    assert_eq!(records.as_array().unwrap().len(), ROLLOUTS);
    assert!(
        records.as_array().unwrap().iter().all(|r| r["decision"] == "start"),
        "{records}"
    );
    assert_eq!((flags_on(), states()), (all_on, (0, ROLLOUTS)));
}
