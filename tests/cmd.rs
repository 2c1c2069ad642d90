//! The CLI's commands as data: each `tests/cmd/*.toml` is one invocation of `flagramp` with its
//! expected exit code, stdout and stderr (see `tests/cmd/README.md`).

use std::path::Path;

/// The only variable a case's command sees: every case clears the caller's environment
/// (`env.inherit = false`), so no FLAGRAMP_* or GITHUB_* variable of whoever runs the tests, nor
/// USER or COLUMNS, changes what a case prints; check scripts still find `sh` and `cat`.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The exit code a case's name promises (`TRYCMD=overwrite` rewrites `status.code` to whatever
/// the binary returned, so a wrong code could slip in unnoticed): a refusal is 3, a usage error
/// (unknown, bad or missing input) 2, an invalid spec or an error 1.
fn promised_code(name: &str) -> Option<i32> {
    let words: Vec<&str> = name.split('-').collect();
    let has = |any: &[&str]| words.iter().any(|word| any.contains(word));
    if has(&["refused"]) {
        Some(3)
    } else if has(&["unknown", "bad", "missing"]) {
        Some(2)
    } else if has(&["invalid", "error"]) {
        Some(1)
    } else {
        None
    }
}

/// Checks what `trycmd` itself cannot: every case isolates its environment, keeps the exit code
/// its name promises, and a plan or dry run in text says so first.
fn check_case(path: &Path) {
    let text = std::fs::read_to_string(path).expect("case");
    let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
    let line = |key: &str| text.lines().find_map(|l| l.trim().strip_prefix(key).map(str::trim));
    assert!(
        text.lines().any(|l| l.trim() == "env.inherit = false"),
        "{name}: a case must say `env.inherit = false`, so the caller's environment cannot change it"
    );
    if let Some(code) = promised_code(name) {
        assert_eq!(
            line("status.code = "),
            Some(code.to_string().as_str()),
            "{name}: its name promises exit {code}"
        );
    }
    let note = match name {
        "plan" | "plan-advance" => Some(flagramp::report::text::PLAN_NOTE),
        _ if name.contains("dry-run") => Some(flagramp::report::text::DRY_RUN_NOTE),
        _ => None,
    };
    if let Some(note) = note {
        let stdout = std::fs::read_to_string(path.with_extension("stdout")).expect("stdout");
        assert!(
            stdout.starts_with(note),
            "{name}: a plan or dry run says first that nothing changed:\n{stdout}"
        );
    }
}

#[test]
fn cmd() {
    let cases: Vec<std::path::PathBuf> = std::fs::read_dir("tests/cmd")
        .expect("tests/cmd")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    assert!(cases.len() >= 25, "only {} cases in tests/cmd", cases.len());
    trycmd::TestCases::new()
        .register_bin("flagramp", Path::new(env!("CARGO_BIN_EXE_flagramp")))
        .env("PATH", PATH)
        .case("tests/cmd/*.toml")
        .run();
    // After the run, so that what `TRYCMD=overwrite` wrote is held to the case names too.
    for case in &cases {
        check_case(case);
    }
}
