//! What a release ships stays as issue 12 ("Install and release") asks: the notes of a release
//! are its section of CHANGELOG.md (`scripts/changelog-notes`, which the release workflow runs
//! before anything is published), every third-party action in every workflow is pinned by the
//! commit SHA of a tag with that tag beside it while flagramp's own action is referenced by tag,
//! and the Dockerfile's base images name a version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use marked_yaml::Node;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Release notes
// ---------------------------------------------------------------------------------------------

fn changelog_notes(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/changelog-notes"))
        .args(args)
        .output()
        .expect("bash runs scripts/changelog-notes")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A changelog with the traps of the format: a version that is a prefix of another, a
/// pre-release of the same version, an empty section and the link references at the end.
const CHANGELOG: &str = "# Changelog

## [Unreleased]

### Added

- next

## [1.2.10] - 2026-12-03

- not 1.2.1

## [1.2.1] - 2026-12-02

### Fixed

- the one fix


## [1.2.1-rc.1] - 2026-12-01

- not 1.2.1 either

## [1.2.0] - 2026-11-30

## [1.1.0] - 2026-11-01

- the oldest

[Unreleased]: https://github.com/flagramp/flagramp/compare/v1.2.10...HEAD
[1.1.0]: https://github.com/flagramp/flagramp/releases/tag/v1.1.0
";

fn with_changelog(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("CHANGELOG.md");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_string())
}

#[test]
fn a_version_s_notes_are_its_section_alone() {
    let (_dir, file) = with_changelog(CHANGELOG);
    for version in ["1.2.1", "v1.2.1"] {
        let out = changelog_notes(&[version, &file]);
        assert!(out.status.success(), "{version}: {}", stderr(&out));
        assert_eq!(stdout(&out), "### Fixed\n\n- the one fix\n", "{version}");
    }
    // The last section ends where the link references start.
    let out = changelog_notes(&["1.1.0", &file]);
    assert_eq!(stdout(&out), "- the oldest\n");
    let out = changelog_notes(&["Unreleased", &file]);
    assert_eq!(stdout(&out), "### Added\n\n- next\n");
}

#[test]
fn a_release_without_notes_is_refused_and_told_where() {
    let (_dir, file) = with_changelog(CHANGELOG);
    let out = changelog_notes(&["9.9.9", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains(&format!("{file} has no section '## [9.9.9]'")),
        "{}",
        stderr(&out)
    );

    let out = changelog_notes(&["1.2.0", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'## [1.2.0]' is empty"), "{}", stderr(&out));

    for bad in ["1.2", "latest", "v1.2.1.4"] {
        let out = changelog_notes(&[bad, &file]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(stderr(&out).contains("X.Y.Z or Unreleased"), "{bad}: {}", stderr(&out));
    }
}

/// The project's own CHANGELOG.md is in the format the script reads, and its next release's
/// notes say what that release ships.
#[test]
fn the_changelog_s_unreleased_section_reads_as_notes() {
    let out = changelog_notes(&["Unreleased"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let notes = stdout(&out);
    assert!(
        notes.starts_with("### "),
        "a Keep a Changelog subsection first: {notes}"
    );
    assert!(!notes.contains("## ["), "one section only: {notes}");
    assert!(!notes.contains("]: https://"), "no link references: {notes}");
    assert!(notes.contains("cargo install flagramp"), "{notes}");
    assert!(read("CHANGELOG.md").contains("keepachangelog.com"));
}

// ---------------------------------------------------------------------------------------------
// Pinned actions
// ---------------------------------------------------------------------------------------------

/// flagramp's own action: users and the examples follow its major tag (README "The GitHub Action").
const OWN_ACTION: &str = "flagramp/flagramp@";
const OWN_IMAGE: &str = "docker://ghcr.io/flagramp/flagramp:";

/// Every `uses:` value under `node`, with its line (1-based).
fn uses_of(node: &Node, found: &mut Vec<(String, usize)>) {
    if let Some(mapping) = node.as_mapping() {
        for (key, value) in mapping.iter() {
            match value.as_scalar() {
                Some(scalar) if key.as_str() == "uses" => {
                    let line = scalar.span().start().map_or(0, |m| m.line());
                    found.push((scalar.as_str().to_string(), line));
                }
                _ => uses_of(value, found),
            }
        }
    } else if let Some(sequence) = node.as_sequence() {
        for item in sequence.iter() {
            uses_of(item, found);
        }
    }
}

fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `vN.N.N`, the whole tag a pin's comment names.
fn is_release_tag(s: &str) -> bool {
    let Some(version) = s.strip_prefix('v') else {
        return false;
    };
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// One third-party action as a workflow pins it: `owner/repo[/path]` → (SHA, tag comment).
type Pins = BTreeMap<String, Vec<(String, String, String)>>;

/// What is wrong with the `uses:` of one workflow (`name` for the messages); pins found are added
/// to `pins`.
fn pin_problems(name: &str, text: &str, pins: &mut Pins) -> Vec<String> {
    let workflow = marked_yaml::parse_yaml(0, text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut uses = Vec::new();
    uses_of(&workflow, &mut uses);
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    for (value, line) in uses {
        let at = format!("{name}:{line}: uses: {value}");
        if value.starts_with("./") {
            continue;
        }
        if let Some(tag) = value.strip_prefix(OWN_ACTION) {
            if is_full_sha(tag) || !tag.starts_with('v') {
                problems.push(format!("{at}: flagramp's own action goes by its tag (vN)"));
            }
            continue;
        }
        if let Some(image) = value.strip_prefix("docker://") {
            if !value.starts_with(OWN_IMAGE) && !image.rsplit_once('@').is_some_and(|(_, d)| is_sha256_digest(d)) {
                problems.push(format!("{at}: a third-party image is pinned by @sha256: digest"));
            }
            continue;
        }
        let Some((action, reference)) = value.split_once('@') else {
            problems.push(format!("{at}: no @ref"));
            continue;
        };
        if !is_full_sha(reference) {
            problems.push(format!("{at}: pin by the tag's 40-hex commit SHA"));
            continue;
        }
        // The comment that names the tag sits on the same line, after the value.
        let rest = lines
            .get(line.wrapping_sub(1))
            .and_then(|l| l.split_once(reference))
            .map_or("", |(_, rest)| rest.trim());
        let Some(tag) = rest.strip_prefix('#').map(str::trim).filter(|t| is_release_tag(t)) else {
            problems.push(format!(
                "{at}: the tag goes beside the SHA as `# vN.N.N`, found `{rest}`"
            ));
            continue;
        };
        pins.entry(action.to_string()).or_default().push((
            reference.to_string(),
            tag.to_string(),
            format!("{name}:{line}"),
        ));
    }
    problems
}

/// Every workflow of the repository: YAML files under .github/ and examples/ with `jobs`.
fn workflow_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let is_workflow = marked_yaml::parse_yaml(0, &text)
                    .ok()
                    .and_then(|n| n.as_mapping().map(|m| m.get_node("jobs").is_some()))
                    .unwrap_or(false);
                if is_workflow {
                    found.push(path);
                }
            }
        }
    }
    let mut found = Vec::new();
    for dir in [".github", "examples"] {
        walk(&repo().join(dir), &mut found);
    }
    found.sort();
    found
}

#[test]
fn every_third_party_action_is_pinned_by_commit_sha_with_its_tag() {
    let files = workflow_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    for expected in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/workflows/rollout.yml",
        "examples/workflows/fan-out.yml",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} not found in {names:?}");
    }
    let mut pins = Pins::new();
    let mut problems = Vec::new();
    for (path, name) in files.iter().zip(&names) {
        problems.extend(pin_problems(name, &std::fs::read_to_string(path).unwrap(), &mut pins));
    }
    // One pin per action across the repository: Dependabot bumps .github/workflows only, and
    // this makes the examples follow.
    for (action, uses) in &pins {
        let (sha, tag, _) = &uses[0];
        for (other_sha, other_tag, at) in &uses[1..] {
            if (other_sha, other_tag) != (sha, tag) {
                problems.push(format!(
                    "{at}: {action} is pinned at {other_sha} # {other_tag}, elsewhere at {sha} # {tag}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(pins.contains_key("actions/checkout"), "the walk saw the pins: {pins:?}");
}

#[test]
fn the_pin_check_refuses_tags_short_shas_and_missing_tag_comments() {
    let workflow = "\
jobs:
  a:
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@3d3c42e
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7
      - uses: docker://alpine:3.23
      - uses: flagramp/flagramp@3d3c42e5aac5ba805825da76410c181273ba90b1
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
      - uses: ./
      - uses: flagramp/flagramp@v0
      - uses: docker://alpine:3.23@sha256:075c2c1a4068c1e251228ca2b0ea8b163f835ca5d66e758b93c7fc89b1995616
";
    let mut pins = Pins::new();
    let problems = pin_problems("w.yml", workflow, &mut pins);
    let lines: Vec<&str> = problems.iter().map(|p| p.split(": uses:").next().unwrap()).collect();
    assert_eq!(
        lines,
        ["w.yml:4", "w.yml:5", "w.yml:6", "w.yml:7", "w.yml:8", "w.yml:9"],
        "{problems:#?}"
    );
    assert_eq!(pins["actions/checkout"].len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Base images
// ---------------------------------------------------------------------------------------------

/// What is wrong with the `FROM` lines of a Dockerfile, and how many third-party bases it names.
/// The project pins a base by its version tag (docs: the Dockerfile's comments); a digest, where
/// one is written, is a full `@sha256:`.
fn base_image_problems(text: &str) -> (Vec<String>, usize) {
    let mut stages: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut third_party = 0;
    for (index, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let image = words.next().unwrap_or_default();
        let is_stage = image == "scratch" || stages.iter().any(|s| s == image);
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS")) {
            stages.extend(words.next().map(str::to_string));
        }
        if is_stage {
            continue;
        }
        let at = format!("Dockerfile:{}: FROM {image}", index + 1);
        third_party += 1;
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (image, None),
        };
        if digest.is_some_and(|d| !is_sha256_digest(d)) {
            problems.push(format!("{at}: a digest is @sha256: and 64 hex digits"));
        }
        let last = name.rsplit('/').next().unwrap_or(name);
        match last.split_once(':') {
            Some((_, tag)) if tag.starts_with(|c: char| c.is_ascii_digit()) => {}
            _ => problems.push(format!("{at}: name the base image's version (name:X.Y…)")),
        }
    }
    (problems, third_party)
}

#[test]
fn the_dockerfile_s_base_images_name_their_version() {
    let (problems, third_party) = base_image_problems(&read("Dockerfile"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(third_party >= 2, "the build and the runtime base: {third_party}");

    let (problems, third_party) = base_image_problems(
        "FROM rust AS build\nFROM alpine:latest\nFROM --platform=$BUILDPLATFORM ghcr.io/o/i@sha256:ab\n\
         FROM build AS again\nFROM alpine:3.23@sha256:075c2c1a4068c1e251228ca2b0ea8b163f835ca5d66e758b93c7fc89b1995616\n",
    );
    let lines: Vec<&str> = problems.iter().map(|p| p.split(": FROM").next().unwrap()).collect();
    assert_eq!(
        lines,
        ["Dockerfile:1", "Dockerfile:2", "Dockerfile:3", "Dockerfile:3"],
        "{problems:#?}"
    );
    assert_eq!(third_party, 4, "a stage is no base image");
}

// ---------------------------------------------------------------------------------------------
// The crate
// ---------------------------------------------------------------------------------------------

#[test]
fn the_licences_the_manifest_names_are_there() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("\nlicense = \"MIT OR Apache-2.0\"\n"));
    assert!(read("LICENSE-MIT").contains("Copyright (c) The flagramp contributors"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS"));
    for file in ["/LICENSE-MIT", "/LICENSE-APACHE", "/CHANGELOG.md", "/README.md"] {
        assert!(manifest.contains(&format!("\"{file}\"")), "the crate includes {file}");
    }
}

/// CI, the release and the Dockerfile's build stage compile with one Rust: a Dependabot bump of
/// the `rust:` base image fails here until the workflows' RUST_TOOLCHAIN follows.
#[test]
fn the_workflows_build_with_the_dockerfile_s_rust() {
    let dockerfile = read("Dockerfile");
    let rust = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|tag| tag.split('-').next())
        .expect("the build stage's FROM rust:X.Y.Z-…");
    for workflow in [".github/workflows/ci.yml", ".github/workflows/release.yml"] {
        assert!(
            read(workflow).contains(&format!("\n  RUST_TOOLCHAIN: \"{rust}\"\n")),
            "{workflow} sets RUST_TOOLCHAIN to the Dockerfile's {rust}"
        );
    }
}
