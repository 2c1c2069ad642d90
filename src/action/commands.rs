//! GitHub Actions workflow commands and files: masks, annotations, groups, step outputs.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::escape::{workflow_data as escape_data, workflow_property as escape_property};
use crate::spec::Diagnostic;

/// GitHub shows at most this many error annotations per step.
pub const ANNOTATIONS_PER_STEP: usize = 10;

/// `::error file=…,line=…,col=…,title=…::` for each diagnostic (paths relative to the
/// repository root), folding everything past the per-step limit into one counting annotation.
pub fn spec_annotations(diagnostics: &[Diagnostic], repo_root: &Path) -> String {
    let mut out = String::new();
    let shown = if diagnostics.len() > ANNOTATIONS_PER_STEP {
        ANNOTATIONS_PER_STEP - 1
    } else {
        diagnostics.len()
    };
    for d in &diagnostics[..shown] {
        let file = d.file.strip_prefix(repo_root).unwrap_or(&d.file);
        let message = match &d.hint {
            Some(hint) => format!("{}\nhint: {hint}", d.message),
            None => d.message.clone(),
        };
        let _ = writeln!(
            out,
            "::error file={},line={},col={},title={}::{}",
            escape_property(&file.to_string_lossy()),
            d.line,
            d.column,
            escape_property("flagramp: invalid rollout spec"),
            escape_data(&message)
        );
    }
    let rest = diagnostics.len() - shown;
    if rest > 0 {
        let _ = writeln!(
            out,
            "::error title={}::{}",
            escape_property("flagramp: more spec problems"),
            escape_data(&format!(
                "{rest} more problems in rollout specs; the job summary lists them all"
            ))
        );
    }
    out
}

/// A `::group::` line; the title is untrusted text (a rollout name).
pub fn group(title: &str) -> String {
    format!("::group::{}\n", escape_data(title))
}

/// A `::warning::` line.
pub fn warning(title: &str, message: &str) -> String {
    format!("::warning title={}::{}\n", escape_property(title), escape_data(message))
}

/// A `::error::` line.
pub fn error(title: &str, message: &str) -> String {
    format!("::error title={}::{}\n", escape_property(title), escape_data(message))
}

/// Appends step outputs to `$GITHUB_OUTPUT`, each as a heredoc with a random delimiter that
/// cannot occur in the value.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        let delimiter = loop {
            let candidate = format!("ghadelimiter_{:032x}", rand::random::<u128>());
            if !value.contains(&candidate) {
                break candidate;
            }
        };
        let _ = write!(text, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
    }
    append(path, &text)
}

/// Appends text to a file the runner gave us (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`).
pub fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_annotations_past_the_limit() {
        let d = |i: usize| Diagnostic {
            file: Path::new("/repo/.github/rollouts/a.yml").to_path_buf(),
            line: i,
            column: 3,
            message: format!("problem {i}, with: punctuation"),
            hint: Some("fix it".into()),
        };
        let all: Vec<Diagnostic> = (1..=14).map(d).collect();
        let out = spec_annotations(&all, Path::new("/repo"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10);
        assert!(lines[0].starts_with("::error file=.github/rollouts/a.yml,line=1,col=3,title=flagramp%3A invalid rollout spec::problem 1, with: punctuation%0Ahint: fix it"), "{}", lines[0]);
        assert!(lines[9].contains("5 more problems"), "{}", lines[9]);
    }
}
