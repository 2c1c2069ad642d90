//! The CLI's commands as data: each `tests/cmd/*.toml` is one invocation of `flagramp` with its
//! expected exit code, stdout and stderr (see `tests/cmd/README.md`).

use std::path::Path;

/// The only variable a case's command sees: every case clears the caller's environment
/// (`env.inherit = false`), so no FLAGRAMP_* or GITHUB_* variable of whoever runs the tests, nor
/// USER or COLUMNS, changes what a case prints; check scripts still find `sh` and `cat`.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[test]
fn cmd() {
    let dir = Path::new("tests/cmd");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("tests/cmd") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let text = std::fs::read_to_string(&path).expect("case");
            assert!(
                text.lines().any(|line| line.trim() == "env.inherit = false"),
                "{}: a case must say `env.inherit = false`, so the caller's environment cannot change it",
                path.display()
            );
            count += 1;
        }
    }
    assert!(count >= 25, "only {count} cases in tests/cmd");
    trycmd::TestCases::new()
        .register_bin("flagramp", Path::new(env!("CARGO_BIN_EXE_flagramp")))
        .env("PATH", PATH)
        .case("tests/cmd/*.toml");
}
