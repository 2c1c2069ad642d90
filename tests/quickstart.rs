//! The README's quick start works as written: `scripts/quickstart` runs its marked steps in an
//! empty git repository with the binary under test and checks their output and what they push
//! (CONTRIBUTING.md, "The README's quick start is a test"). The script's own checks are proven
//! on small READMEs here, so that a quick start that passes is not one the script never checked.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `scripts/quickstart` on this working tree with the test binary, steps from `readme`
/// (the repository's README.md when `None`).
fn quickstart(readme: Option<&Path>) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("bash");
    command
        .arg(format!("{root}/scripts/quickstart"))
        .args(["--here", "--flagramp", env!("CARGO_BIN_EXE_flagramp")]);
    if let Some(readme) = readme {
        command.arg("--readme").arg(readme);
    }
    command.output().expect("run scripts/quickstart")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    let output = quickstart(None);
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/quickstart: ok: "), "{}", text(&output));
    // The steps ran with the real binary: its own words are in the output.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("$ flagramp init"), "{}", text(&output));
    assert!(stdout.contains("would start 0% → 10%"), "{}", text(&output));
}

/// A quick start written without `init`: a spec, its flag file and a workflow by hand. The
/// tests below change one thing each, to see the script refuse it.
const HAND_WRITTEN: &str = r#"# A README

<!-- scripts/quickstart runs this block -->
```sh
mkdir -p .github/rollouts .github/workflows flags
printf '%s\n' 'version: 1' 'flag: { provider: flagd, key: demo, flagd: { path: flags/demo.json } }' \
  'policy: { time_only: true }' 'checks: []' > .github/rollouts/demo.yml
echo '{"flags":{"demo":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}}' > flags/demo.json
echo 'name: rollout' > .github/workflows/rollout.yml
flagramp plan
```

<!-- scripts/quickstart expects these lines in the output above -->
```text
demo (demo): would start 0% → 10%
```

<!-- scripts/quickstart runs this block -->
```sh
git add .github flags
git commit -q -m "Roll out demo"
git push -q
```
"#;

fn with_readme(readme: &str) -> Output {
    let dir = assert_fs::TempDir::new().unwrap();
    let path = dir.path().join("README.md");
    std::fs::write(&path, readme).unwrap();
    quickstart(Some(&path))
}

#[test]
fn a_hand_written_quick_start_that_holds_passes() {
    let output = with_readme(HAND_WRITTEN);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("ok: 2 steps of the README's quick start ran, 1 outputs matched"),
        "{}",
        text(&output)
    );
}

#[test]
fn an_output_the_readme_shows_but_the_binary_does_not_print_fails() {
    let readme = HAND_WRITTEN.replace("would start 0% → 10%", "would start 0% → 20%");
    let output = with_readme(&readme);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the README says the output has the line 'demo (demo): would start 0% → 20%'"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_failing_step_fails_and_is_named() {
    let readme = HAND_WRITTEN.replace("flagramp plan", "flagramp plan --no-such-flag");
    let output = with_readme(&readme);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("step 01 failed"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_file_the_steps_write_but_do_not_commit_fails() {
    let readme = HAND_WRITTEN.replace("git add .github flags", "git add .github");
    let output = with_readme(&readme);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("leaves files uncommitted") && stderr.contains("flags/"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_pushed_spec_that_does_not_validate_fails() {
    // A spec broken after the plan is what the steps commit and push.
    let readme = HAND_WRITTEN.replace(
        "flagramp plan\n",
        "flagramp plan\nsed -i 's/version: 1/version: 2/' .github/rollouts/demo.yml\n",
    );
    let output = with_readme(&readme);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("flagramp validate fails on what the quick start pushed"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_readme_without_marked_steps_or_with_a_broken_marker_fails() {
    let output = with_readme("# A README\n\n```sh\nflagramp init\n```\n");
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected at least 2 blocks"),
        "{}",
        text(&output)
    );

    let broken = HAND_WRITTEN.replacen("```sh", "```bash", 1);
    let output = with_readme(&broken);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the line after the run marker must be ```sh"),
        "{}",
        text(&output)
    );
}
