//! A scratch repository root in a temporary directory, removed when dropped, and the flagramp
//! binary run in it with none of the caller's settings.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Variables of the caller's environment that would change what the binary does: where state
/// lives, who acts, logging, and the debug binary's crash points and injected panics.
pub const CALLER_ENV: &[&str] = &[
    "FLAGRAMP_STATE_DIR",
    "FLAGRAMP_ACTOR",
    "FLAGRAMP_LOG",
    "FLAGRAMP_TEST_PAUSE_AT",
    flagramp::runner::INJECT_PANIC_VAR,
];

/// The flagramp binary, to run in `root` with none of [`CALLER_ENV`].
pub fn flagramp_in(root: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flagramp"));
    cmd.current_dir(root);
    for var in CALLER_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// What a finished run of `flagramp ARGS` printed on stdout, as JSON, after asserting that it
/// exited with `code` (both outputs are in the messages).
pub fn json_of<T: DeserializeOwned>(out: &Output, args: &[&str], code: i32) -> T {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "flagramp {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("flagramp {args:?} printed no JSON ({e}):\n{stdout}\nstderr:\n{stderr}"))
}

/// The one decision record of a run over one rollout that exited 0.
pub fn single_record(out: &Output, args: &[&str]) -> Value {
    let records: Vec<Value> = json_of(out, args, 0);
    assert_eq!(records.len(), 1, "one rollout, one record: {records:#?}");
    records.into_iter().next().unwrap()
}

pub struct TempRepo {
    dir: tempfile::TempDir,
}

impl TempRepo {
    pub fn new() -> TempRepo {
        TempRepo {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` under the root, creating its directories; returns the full path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.write_bytes(rel, text.as_bytes())
    }

    /// Writes `bytes` to `rel` under the root, creating its directories; returns the full path.
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// An executable `/bin/sh` script at `rel` running `body`.
    pub fn script(&self, rel: &str, body: &str) {
        let path = self.write(rel, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// The JSON file at `rel` under the root.
    pub fn read_json(&self, rel: &str) -> Value {
        let bytes = std::fs::read(self.root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
    }

    /// The local state directory, `.flagramp/state` (the binary's default).
    pub fn state_dir(&self) -> PathBuf {
        self.root().join(".flagramp/state")
    }

    /// `flagramp ARGS` in the root (see [`flagramp_in`]).
    pub fn flagramp(&self, args: &[&str]) -> Command {
        let mut cmd = flagramp_in(self.root());
        cmd.args(args);
        cmd
    }

    /// `flagramp ARGS --output json --state-dir <state_dir>`.
    pub fn flagramp_json(&self, args: &[&str]) -> Command {
        let mut cmd = self.flagramp(args);
        cmd.args(["--output", "json", "--state-dir"]).arg(self.state_dir());
        cmd
    }
}

impl Default for TempRepo {
    fn default() -> Self {
        TempRepo::new()
    }
}
