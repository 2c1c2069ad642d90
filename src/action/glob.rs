//! The `specs` input: files, directories or globs, comma or newline separated.

use std::path::{Path, PathBuf};

/// Splits the input into entries at newlines and at commas outside braces, so that a glob's
/// `{a,b}` stays one entry.
pub fn entries(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut current) = (0usize, String::new());
    for c in input.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == '\n' || (c == ',' && depth == 0) {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn is_glob(entry: &str) -> bool {
    entry.contains(['*', '?', '[', '{'])
}

/// The matcher for one glob, by globset: `*`, `?` and `[..]` stay within a path segment, `**`
/// spans segments, `{a,b}` is either.
fn matcher(pattern: &str) -> Result<globset::GlobMatcher, GlobError> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|source| GlobError::Invalid {
            pattern: pattern.to_string(),
            source,
        })
}

/// Whether `path` (with `/` separators) matches `pattern`; an invalid pattern matches nothing.
pub fn matches(pattern: &str, path: &str) -> bool {
    matcher(pattern).is_ok_and(|m| m.is_match(path))
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
    /// Not a glob globset can read (an unclosed `[` or `{`, say).
    #[error("the specs glob `{pattern}` is not a glob: {source}")]
    Invalid {
        /// The entry.
        pattern: String,
        /// What globset says.
        #[source]
        source: globset::Error,
    },
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
        let glob = matcher(&entry)?;
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
                glob.is_match(&rel).then(|| PathBuf::from(rel))
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

    #[test]
    fn classes_and_alternatives_are_globs() {
        assert!(matches("rollouts/[ab].yml", "rollouts/a.yml"));
        assert!(!matches("rollouts/[ab].yml", "rollouts/c.yml"));
        assert!(matches("rollouts/{checkout,search}.yml", "rollouts/search.yml"));
        assert!(!matches("rollouts/{checkout,search}.yml", "rollouts/other.yml"));
        assert_eq!(
            entries("rollouts/{checkout,search}.yml, other.yml"),
            vec!["rollouts/{checkout,search}.yml", "other.yml"]
        );
        assert!(matches!(resolve("rollouts/[ab.yml"), Err(GlobError::Invalid { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_directory_loop_ends() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rollouts");
        std::fs::create_dir_all(root.join("team")).unwrap();
        std::fs::write(root.join("team/a.yml"), "").unwrap();
        std::os::unix::fs::symlink(&root, root.join("team/loop")).unwrap();
        let pattern = format!("{}/**/*.yml", root.display());
        let found = resolve(&pattern).expect("the walk ends");
        assert_eq!(found, vec![root.join("team/a.yml")]);
    }
}
