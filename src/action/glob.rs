//! The `specs` input: files, directories or globs, comma or newline separated.

use std::path::{Path, PathBuf};

/// Splits the input into entries.
pub fn entries(input: &str) -> Vec<String> {
    input
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_glob(entry: &str) -> bool {
    entry.contains(['*', '?', '['])
}

/// Whether `path` (with `/` separators) matches `pattern`: `*` and `?` stay within a path
/// segment, `**` spans segments.
pub fn matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', b'/', rest @ ..] => go(rest, s) || (!s.is_empty() && go(p, &s[1..])),
            [b'*', b'*', rest @ ..] => go(rest, s) || (!s.is_empty() && go(p, &s[1..])),
            [b'*', rest @ ..] => go(rest, s) || (!s.is_empty() && s[0] != b'/' && go(p, &s[1..])),
            [b'?', rest @ ..] => !s.is_empty() && s[0] != b'/' && go(rest, &s[1..]),
            [c, rest @ ..] => !s.is_empty() && s[0] == *c && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        // A linked directory is not followed: two links to `..` would make the walk endless.
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Why the `specs` input resolves to no files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// A glob that matches no file.
    #[error("the specs glob `{0}` matches no file")]
    NoMatch(String),
}

/// Resolves entries against the repository root (the working directory): plain entries pass
/// through as paths; globs expand to matching files (a glob matching nothing is an error).
pub fn resolve(input: &str) -> Result<Vec<PathBuf>, GlobError> {
    let mut out = Vec::new();
    for entry in entries(input) {
        if !is_glob(&entry) {
            out.push(PathBuf::from(entry));
            continue;
        }
        let literal: Vec<&str> = entry.split('/').take_while(|part| !is_glob(part)).collect();
        let base = if literal.is_empty() {
            PathBuf::from(".")
        } else {
            PathBuf::from(literal.join("/"))
        };
        let mut files = Vec::new();
        walk(&base, &mut files);
        let mut matched: Vec<PathBuf> = files
            .into_iter()
            .filter_map(|f| {
                let rel = f.strip_prefix("./").unwrap_or(&f).to_string_lossy().replace('\\', "/");
                matches(&entry, &rel).then(|| PathBuf::from(rel))
            })
            .collect();
        if matched.is_empty() {
            return Err(GlobError::NoMatch(entry));
        }
        matched.sort();
        out.extend(matched);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_actions_paths() {
        assert!(matches(".github/rollouts/*.yml", ".github/rollouts/a.yml"));
        assert!(!matches(".github/rollouts/*.yml", ".github/rollouts/team/a.yml"));
        assert!(matches(".github/rollouts/**/*.yml", ".github/rollouts/team/a.yml"));
        assert!(matches(".github/rollouts/**/*.yml", ".github/rollouts/a.yml"));
        assert!(matches("rollouts/?.yaml", "rollouts/b.yaml"));
        assert_eq!(
            entries(" a.yml,\n b/ ,,c/**/*.yml\n"),
            vec!["a.yml", "b/", "c/**/*.yml"]
        );
    }
}
