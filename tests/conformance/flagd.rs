//! The flagd file provider under the conformance suite: flags in a file in the bench's repository.

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{json, Value};

use flagramp::state::FlagValue;

use super::Harness;

/// Flags live in one file shared by the scenarios, in a repository root of its own.
pub struct FlagdHarness {
    dir: tempfile::TempDir,
    lock: Mutex<()>,
}

impl FlagdHarness {
    pub fn new() -> FlagdHarness {
        let h = FlagdHarness {
            dir: tempfile::tempdir().unwrap(),
            lock: Mutex::new(()),
        };
        std::fs::write(
            h.file(),
            r#"{"flags":{"dark-mode":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}}}"#,
        )
        .unwrap();
        h
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("flags.flagd.json")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let _guard = self.lock.lock().unwrap();
        let mut doc: Value = serde_json::from_slice(&std::fs::read(self.file()).unwrap()).unwrap();
        f(&mut doc);
        std::fs::write(self.file(), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
}

#[async_trait::async_trait]
impl Harness for FlagdHarness {
    fn flag_block(&self, key: &str, _token_env: &str) -> String {
        format!("{{ provider: flagd, key: {key}, flagd: {{ path: flags.flagd.json }} }}")
    }

    fn files_root(&self) -> Option<PathBuf> {
        Some(self.dir.path().to_path_buf())
    }

    fn token(&self, _valid: bool) -> Option<String> {
        None
    }

    async fn create_flag(&self, key: &str) {
        self.edit(|doc| {
            doc["flags"][key] =
                json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" })
        });
    }

    async fn observe(&self, key: &str) -> FlagValue {
        let doc: Value = serde_json::from_slice(&std::fs::read(self.file()).unwrap()).unwrap();
        observed(&doc["flags"][key])
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        self.edit(|doc| set_by_hand(&mut doc["flags"][key], value));
    }

    async fn failing_server_block(&self, _key: &str, _token_env: &str) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn flagd_file_passes_the_conformance_suite() {
    super::run_all(&FlagdHarness::new()).await;
}

/// What a flagd flag serves, read as a person would from the file (independently of
/// flagramp's provider): off unless enabled, else the `on` share of its split.
pub fn observed(flag: &Value) -> FlagValue {
    let on = flag["targeting"]["fractional"][0][1].as_u64().unwrap_or(0) as u32;
    flagramp::provider::reading_of(
        flag["state"] == "ENABLED",
        flagramp::percent::Percent::from_millis(on).unwrap(),
    )
}

/// A person edits a flagd flag by hand: its state, and its split when on.
pub fn set_by_hand(flag: &mut Value, value: FlagValue) {
    if value.enabled {
        let on = value.percent.millis();
        flag["state"] = json!("ENABLED");
        flag["targeting"] = json!({ "fractional": [["on", on], ["off", 100_000 - on]] });
    } else {
        flag["state"] = json!("DISABLED");
    }
}
