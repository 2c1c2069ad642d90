//! Secrets come only from environment variables and never appear in any output.
//!
//! Every value read through [`Secrets::read`] is remembered so that text bound for a person
//! (errors, command output, reports) can be scrubbed with [`Secrets::redact`].

use std::sync::{Arc, Mutex};

/// The secret values read so far in this process.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Arc<Mutex<Vec<String>>>,
}

impl Secrets {
    /// An empty registry.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// Reads a secret from the environment and remembers it for redaction.
    pub fn read(&self, var: &str) -> Result<String, String> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => {
                self.remember(&value);
                Ok(value)
            }
            Ok(_) => Err(format!("environment variable {var} is empty: set it to the secret")),
            Err(_) => Err(format!("environment variable {var} is not set: set it to the secret (in GitHub, pass it as a step `env:` from a secret)")),
        }
    }

    /// Remembers a value that must never be printed.
    pub fn remember(&self, value: &str) {
        // Very short values would mask ordinary words and numbers all over the output.
        if value.len() >= 4 {
            let mut values = self.values.lock().expect("secrets lock");
            if !values.iter().any(|v| v == value) {
                values.push(value.to_string());
                values.sort_by_key(|v| std::cmp::Reverse(v.len()));
            }
        }
    }

    /// Every remembered value, for `::add-mask::`.
    pub fn values(&self) -> Vec<String> {
        self.values.lock().expect("secrets lock").clone()
    }

    /// `text` with every remembered secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let values = self.values.lock().expect("secrets lock");
        let mut out = text.to_string();
        for v in values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let s = Secrets::new();
        s.remember("abcd");
        s.remember("abcdefgh");
        assert_eq!(s.redact("token abcdefgh and abcd"), "token *** and ***");
    }
}
