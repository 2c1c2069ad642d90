//! A scratch repository root in a temporary directory, removed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// An executable `/bin/sh` script at `rel` running `body`.
    pub fn script(&self, rel: &str, body: &str) {
        let path = self.write(rel, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

impl Default for TempRepo {
    fn default() -> Self {
        TempRepo::new()
    }
}
