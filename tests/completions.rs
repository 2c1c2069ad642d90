//! `flagramp completions SHELL`: a script on stdout that names every command, and that the shell
//! itself parses (`bash -n`, `zsh -n`, `fish -n`; outside CI, zsh and fish only where installed).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Every subcommand a person types; each must be completed.
const SUBCOMMANDS: &[&str] = &[
    "init",
    "validate",
    "plan",
    "run",
    "status",
    "advance",
    "rollback",
    "pause",
    "resume",
    "simulate",
    "list",
    "schema",
    "action",
    "completions",
];

fn completions(shell: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flagramp"))
        .args(["completions", shell])
        .env_clear()
        .output()
        .expect("flagramp runs")
}

/// Long flags of several commands, without their dashes.
const FLAGS: &[&str] = &["output", "now", "state-dir", "force", "max-jobs", "dry-run"];

/// The script for `shell`, after checking the command succeeded quietly and the script names
/// every subcommand and (as `long_flag` writes them) a few flags.
fn script(shell: &str, long_flag: fn(&str) -> String) -> String {
    let output = completions(shell);
    assert!(output.status.success(), "completions {shell}: {output:?}");
    assert!(
        output.stderr.is_empty(),
        "completions {shell} wrote to stderr: {output:?}"
    );
    let script = String::from_utf8(output.stdout).expect("the script is UTF-8");
    for word in SUBCOMMANDS {
        assert!(script.contains(word), "the {shell} script does not complete `{word}`");
    }
    for flag in FLAGS {
        let flag = long_flag(flag);
        assert!(script.contains(&flag), "the {shell} script does not complete `{flag}`");
    }
    script
}

/// Whether `shell` can be started here. In CI (`CI` set) it must: scripts/test installs it
/// (scripts/services install), so a missing shell fails the test instead of skipping the check.
fn installed(shell: &str) -> bool {
    let found = Command::new(shell)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{shell} is not installed; `scripts/services install` installs it"
        );
        eprintln!("{shell} is not installed: its completion script is not parsed");
    }
    found
}

/// `shell -n` reads the script from stdin without running it; it must find no syntax error.
fn assert_parses(shell: &str, script: &str) {
    let mut child = Command::new(shell)
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shell}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    let output = child.wait_with_output().expect("wait for the shell");
    assert!(
        output.status.success(),
        "`{shell} -n` rejects the script: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bash_completions_name_every_command_and_parse() {
    let script = script("bash", |flag| format!("--{flag}"));
    assert!(
        script.contains("complete -F"),
        "a bash completion function is registered"
    );
    assert_parses("bash", &script);
}

#[test]
fn zsh_completions_name_every_command_and_parse() {
    let script = script("zsh", |flag| format!("--{flag}"));
    assert!(
        script.starts_with("#compdef flagramp"),
        "zsh loads it from $fpath by its first line"
    );
    if installed("zsh") {
        assert_parses("zsh", &script);
    }
}

#[test]
fn fish_completions_name_every_command_and_parse() {
    let script = script("fish", |flag| format!("-l {flag}"));
    assert!(
        script.contains("complete -c flagramp"),
        "fish completes the flagramp command"
    );
    if installed("fish") {
        assert_parses("fish", &script);
    }
}

/// A shell flagramp does not know is a usage error (exit 2) that lists the ones it does.
#[test]
fn an_unknown_shell_is_a_usage_error() {
    let output = completions("tcsh");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for shell in ["bash", "zsh", "fish"] {
        assert!(stderr.contains(shell), "the error lists `{shell}`: {stderr}");
    }
}
