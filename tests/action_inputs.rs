//! The catalogue of bad Action inputs and event payloads (`tests/specs/bad-inputs/`): each one
//! ends the step with exit code 1 and an `::error` line that says what to fix, never a panic,
//! and each output is snapshotted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flagramp::spec::text::shown;

use crate::support::github::FakeGitHub;

const TOKEN: &str = "ghs_fakeTokenForTests0123456789";

fn catalogue_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs/bad-inputs")
}

/// `action.yml`'s input defaults as `INPUT_*` variables, as the runner passes them.
fn input_defaults() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let root = marked_yaml::parse_yaml(0, &text).unwrap();
    let inputs = root.as_mapping().unwrap().get_mapping("inputs").unwrap();
    inputs
        .iter()
        .map(|(name, def)| {
            let default = def
                .as_mapping()
                .and_then(|m| m.get_scalar("default"))
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let value = if default == "${{ github.token }}" {
                TOKEN.to_string()
            } else {
                default
            };
            (format!("INPUT_{}", name.as_str().to_ascii_uppercase()), value)
        })
        .collect()
}

/// A case file's `NAME=VALUE` lines; `\n` in a value is a newline.
fn overrides(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.split_once('=').expect("NAME=VALUE");
            (name.to_string(), value.replace("\\n", "\n"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_fails_the_step_with_a_clear_error() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(catalogue_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "{} cases", cases.len());

    let job = tempfile::tempdir().unwrap();
    let repo = job.path().join("repo");
    std::fs::create_dir_all(repo.join(".github/rollouts")).unwrap();
    std::fs::write(
        repo.join(".github/rollouts/new-checkout.yml"),
        "version: 1\nname: new-checkout\nflag: { provider: flagd, key: new-checkout, flagd: { path: flags/flags.flagd.json } }\nchecks:\n  - { name: smoke, command: [\"./check.sh\"], pass: \"== 1\" }\n",
    )
    .unwrap();
    let schedule = job.path().join("schedule.json");
    std::fs::write(&schedule, "{\"schedule\": \"*/15 * * * *\"}\n").unwrap();

    let mut problems = Vec::new();
    for case in &cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        let mut env = input_defaults();
        for (k, v) in [
            ("GITHUB_EVENT_NAME", "schedule".to_string()),
            ("GITHUB_EVENT_PATH", schedule.display().to_string()),
            ("GITHUB_REPOSITORY", "octo-org/octo-repo".into()),
            ("GITHUB_API_URL", fake.uri()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_WORKSPACE", repo.display().to_string()),
            (
                "GITHUB_STEP_SUMMARY",
                job.path().join("summary.md").display().to_string(),
            ),
            ("GITHUB_OUTPUT", job.path().join("output.txt").display().to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        for (k, v) in overrides(case) {
            let v = match v.strip_prefix('@') {
                Some(file) => catalogue_dir().join("events").join(file).display().to_string(),
                None => v,
            };
            if v.is_empty() {
                env.remove(&k);
            } else {
                env.insert(k, v);
            }
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"));
        cmd.arg("action")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .envs(&env)
            .current_dir(job.path());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(1) {
            problems.push(format!("{name}: exit {:?}", out.status.code()));
        }
        if !stdout.contains("::error title=") {
            problems.push(format!("{name}: no ::error line"));
        }
        if stderr.contains("panicked") {
            problems.push(format!("{name}: panicked: {stderr}"));
        }
        // Every line the runner reads is a whole workflow command: nothing injected at column 0.
        for line in stdout.lines() {
            if line.starts_with("::") && !(line.starts_with("::add-mask::") || line.starts_with("::error title=")) {
                problems.push(format!("{name}: unexpected workflow command `{line}`"));
            }
        }
        let stable = |text: &str| {
            text.replace(&catalogue_dir().display().to_string(), "<bad-inputs>")
                .replace(&job.path().display().to_string(), "<job>")
        };
        insta::assert_snapshot!(
            format!("bad_input__{name}"),
            format!(
                "{}---\nexit: {:?}\nstdout:\n{}stderr:\n{}",
                stable(&shown(&std::fs::read_to_string(case).unwrap()).replace("\\u{a}", "\n")),
                out.status.code(),
                stable(&stdout),
                stable(&stderr)
            )
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        fake.requests().is_empty(),
        "a bad input is refused before any GitHub request: {:?}",
        fake.requests()
    );
}
