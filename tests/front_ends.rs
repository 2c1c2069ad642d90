//! Only the front ends (`src/main.rs`, `src/cli/`) read the environment, change directory or
//! print (ARCHITECTURE.md "Layers"); the library takes a request and returns data. The one
//! exception is `src/secrets.rs`, the door through which secrets (and the few variables a
//! command check inherits) are read. A source scan keeps it that way.

use std::path::Path;

/// What only a front end may do, as it appears in source.
const FRONT_END_ONLY: &[(&str, &str)] = &[
    ("env::var", "reads an environment variable"),
    ("env::vars", "reads the environment"),
    ("env::set_var", "changes the environment"),
    ("env::remove_var", "changes the environment"),
    ("env::current_dir", "reads the working directory"),
    ("env::set_current_dir", "changes the working directory"),
    ("println!", "prints to stdout"),
    ("print!(", "prints to stdout"),
    ("eprintln!", "prints to stderr"),
    ("eprint!(", "prints to stderr"),
    ("dbg!(", "prints to stderr"),
    ("io::stdout", "writes to stdout"),
    ("io::stderr", "writes to stderr"),
];

/// Where the secrets module may read the environment, and nothing else.
const SECRETS_MAY: &[&str] = &["env::var"];

use crate::support::rust_files;

/// The offences in one file's text: `(line, what, why)`. Comments are not code.
fn offences(text: &str, allowed: &[&str]) -> Vec<(usize, &'static str, &'static str)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (pattern, why) in FRONT_END_ONLY {
            if code.contains(pattern) && !allowed.iter().any(|a| pattern.starts_with(a)) {
                found.push((i + 1, *pattern, *why));
            }
        }
    }
    found
}

#[test]
fn the_scan_sees_each_kind_of_offence() {
    let sample = "let a = std::env::var(\"X\");\nprintln!(\"hi\");\n// println!(\"in a comment\")\nstd::env::set_current_dir(d);\nlet _ = std::io::stderr();\n";
    let lines: Vec<usize> = offences(sample, &[]).iter().map(|o| o.0).collect();
    assert_eq!(lines, vec![1, 2, 4, 5]);
    assert_eq!(offences("std::env::var_os(\"PATH\")", SECRETS_MAY), vec![]);
    assert_eq!(offences("std::env::set_current_dir(d)", SECRETS_MAY).len(), 1);
}

#[test]
fn only_the_front_ends_touch_the_environment_the_directory_or_the_terminal() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "the scan found only {} files", files.len());
    let mut report = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("main.rs") || relative.starts_with("cli") {
            continue;
        }
        let allowed = if relative == Path::new("secrets.rs") {
            SECRETS_MAY
        } else {
            &[]
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, pattern, why) in offences(&text, allowed) {
            report.push(format!("src/{}:{line}: `{pattern}` {why}", relative.display()));
        }
    }
    assert!(
        report.is_empty(),
        "only src/main.rs and src/cli/ may do this; hand it to the library as data instead:\n{}",
        report.join("\n")
    );
}
