//! Spec problems that point at `file:line:col`, say what is wrong and how to fix it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// One problem found in a spec file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The spec file, as it was named on the command line or found in a directory.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at `line:column` of `file`. Spec text quoted in the message or hint is shown with
    /// hidden characters escaped and cut when very long (see [`super::text::shown`]), so that a
    /// diagnostic cannot itself carry a bidi override, a terminal escape or a megabyte of text.
    pub fn new(file: PathBuf, line: usize, column: usize, message: &str, hint: Option<&str>) -> Diagnostic {
        Diagnostic {
            file,
            line,
            column,
            message: super::text::shown(message).into_owned(),
            hint: hint.map(|h| super::text::shown(h).into_owned()),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            // A file name can hide characters too.
            super::text::shown(&self.file.display().to_string()),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in a set of spec files; a run acts on none of them while any remain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors {
    /// The problems, in file order then position.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        let n = self.diagnostics.len();
        write!(f, "\n{n} problem{} in rollout specs", if n == 1 { "" } else { "s" })
    }
}
