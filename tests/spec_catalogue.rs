//! The catalogue of hostile and careless specs: every file under `tests/specs/bad/` is rejected
//! with positioned diagnostics (each snapshotted), every file under `tests/specs/good/` loads.
//!
//! Files are read through `load_all`, the path `validate`, `plan` and `run` take, so the read
//! cap, the byte-order mark and the UTF-8 check are part of what is tested.

use std::path::{Path, PathBuf};

use flagramp::spec::text::{first_hidden, shown};
use flagramp::spec::{load_all, Diagnostic};

fn specs_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specs").join(kind)
}

/// The `*.yml` files of a catalogue directory, sorted.
fn catalogue(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(specs_dir(kind))
        .expect("catalogue directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

/// Repository-relative, so snapshots do not depend on where the checkout is.
fn relative(text: &str) -> String {
    text.replace(&format!("{}/", env!("CARGO_MANIFEST_DIR")), "")
}

/// The file with line numbers (hidden characters escaped, long lines cut), then each diagnostic
/// with the line it points at and a caret under its column.
fn render(bytes: &[u8], diagnostics: &[Diagnostic]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        out += &format!("{:>4} | {}\n", i + 1, shown(line));
    }
    out += "---\n";
    for d in diagnostics {
        out += &relative(&d.to_string());
        out.push('\n');
        match lines.get(d.line.wrapping_sub(1)) {
            Some(line) => {
                let before: String = line.chars().take(d.column.saturating_sub(1)).collect();
                out += &format!("{:>4} | {}\n", d.line, shown(line));
                out += &format!("     | {}^\n", " ".repeat(shown(&before).chars().count()));
            }
            None => out += &format!("     | (line {} is past the end of the file)\n", d.line),
        }
    }
    out
}

/// Snapshot names are file stems with anything unusual replaced.
fn snapshot_name(path: &Path) -> String {
    let stem = path.file_stem().expect("stem").to_string_lossy();
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

#[test]
fn every_bad_spec_is_rejected_with_positioned_diagnostics() {
    let files = catalogue("bad");
    assert!(
        files.len() >= 40,
        "the catalogue holds at least 40 bad specs, not {}",
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).expect("read catalogue file");
        let line_count = String::from_utf8_lossy(&bytes).lines().count().max(1);
        let errors = match load_all(std::slice::from_ref(file)) {
            Ok(specs) => {
                problems.push(format!("{}: accepted as {} spec(s)", file.display(), specs.len()));
                continue;
            }
            Err(errors) => errors,
        };
        assert!(!errors.diagnostics.is_empty());
        for d in &errors.diagnostics {
            let where_ = format!("{}: {d}", file.display());
            if &d.file != file {
                problems.push(format!("{where_}: names another file"));
            }
            if d.line < 1 || d.column < 1 || d.line > line_count + 1 {
                problems.push(format!("{where_}: position outside the file"));
            }
            if d.hint.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{where_}: no hint"));
            }
            // Diagnostics go to terminals and logs: what the file hides, they show escaped.
            for text in [Some(d.message.as_str()), d.hint.as_deref()].into_iter().flatten() {
                if let Some(c) = first_hidden(text) {
                    problems.push(format!("{where_}: carries U+{:04X} raw", u32::from(c)));
                }
                if text.chars().count() > 600 {
                    problems.push(format!("{where_}: {} characters long", text.chars().count()));
                }
            }
        }
        insta::assert_snapshot!(
            format!("bad__{}", snapshot_name(file)),
            render(&bytes, &errors.diagnostics)
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_good_spec_loads() {
    let files = catalogue("good");
    assert!(!files.is_empty());
    let specs = load_all(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(specs.len(), files.len());
    let bom = specs
        .iter()
        .find(|s| s.file.ends_with("byte-order-mark.yml"))
        .expect("the byte-order-mark spec");
    assert!(
        std::fs::read(&bom.file).unwrap().starts_with(b"\xef\xbb\xbf"),
        "the file really starts with a byte-order mark"
    );
    assert_eq!(bom.name, "bom-checkout");
    assert_eq!(bom.stages.len(), 3);
}

#[test]
fn validate_rejects_the_whole_bad_catalogue_and_accepts_the_good_one() {
    let files = catalogue("bad");
    let expected = load_all(&files).expect_err("bad specs").diagnostics.len();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"))
        .arg("validate")
        .arg(specs_dir("bad"))
        .output()
        .expect("run flagramp");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains(&format!("{expected} problems in rollout specs")), "{all}");
    assert!(!all.contains("panicked"), "{all}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"))
        .arg("validate")
        .arg(specs_dir("good"))
        .output()
        .expect("run flagramp");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// Every example in the README's "Metric sources and checks" is a valid spec once it has a flag.
#[test]
fn the_readme_source_examples_are_valid_specs() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("## Metric sources and checks").expect("the section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(
        blocks.len() >= 5,
        "one example per source and one for gates: {}",
        blocks.len()
    );
    for block in blocks {
        let sources = if block.contains("sources:") {
            ""
        } else {
            "sources:\n  prom: { provider: prometheus, url: https://prometheus.example.com }\n  dd: { provider: datadog, api_key_env: DD_API_KEY, app_key_env: DD_APP_KEY }\n"
        };
        let text = format!(
            "version: 1\nname: readme\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags.json }} }}\n{sources}{block}"
        );
        let (spec, _, diags) = flagramp::spec::parse_spec(Path::new("readme.yml"), &text);
        assert!(spec.is_some() && diags.is_empty(), "{block}\n{diags:?}");
    }
}
