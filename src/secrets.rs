//! Secrets come only from environment variables and never appear in any output.
//!
//! [`Secrets`] is the one place where secrets are read and registered: every value read, and
//! every form it can take on the wire (the basic-auth credential `base64(user:pass)`,
//! `Bearer <token>`, percent-encoded and JSON-escaped forms), is remembered so that any text can
//! be scrubbed with [`Secrets::redact`]. In Action mode each form is also masked
//! (`::add-mask::`) the moment it is registered, before anything could print it.
//!
//! This module is also the library's one door to the process environment: secrets, whether a
//! secret's variable is set, and the few variables a command check inherits. Everything else a
//! run needs from its environment is read by a front end (`src/cli/`) and handed over as data.
//!
//! Text from outside (metric answers, provider errors, command output, a person's reason)
//! enters a record only through [`Secrets::admit`]: redacted, then capped at
//! [`OUTSIDE_TEXT_LIMIT`], before anything can store or print it.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use crate::spec::{Auth, HeaderValue, ProviderSpec, RolloutSpec};

/// How long a text from outside may be in a record (bytes).
pub const OUTSIDE_TEXT_LIMIT: usize = 2048;

/// What ends a text that was cut to [`OUTSIDE_TEXT_LIMIT`].
pub const CUT_MARK: &str = "… (cut)";

/// Values shorter than this are not secrets worth masking: they would mask ordinary words and
/// numbers all over the output.
const SHORTEST_SECRET: usize = 4;

/// RFC 3986 unreserved characters stay; everything else is encoded (as URL query builders do).
const QUERY_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What a pull request's plan of a spec it changed may not use (README "The GitHub Action").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Withheld {
    /// Sources whose `url`, auth or headers the pull request changed: they are not queried.
    pub sources: BTreeSet<String>,
    /// The flag provider's URL or token variable changed: the flag is not read.
    pub flag_provider: bool,
}

/// The message for a check whose source a pull request changed.
pub const WITHHELD_SOURCE: &str = "not run on a pull-request plan: this PR changes the source";

/// The message for a flag provider a pull request changed.
pub const WITHHELD_PROVIDER: &str = "not run on a pull-request plan: this PR changes the flag provider";

/// Where `::add-mask::` lines go (the step log, written by the front end).
pub type MaskSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The variables a command check inherits from flagramp's own environment: enough to find
/// programs and run a shell, nothing that could carry a secret (README "Command checks").
const INHERITED_BY_COMMANDS: &[&str] = &["PATH", "HOME", "LANG"];

#[derive(Default)]
struct Registry {
    /// Every registered form, longest first (so a longer form is replaced before its parts).
    values: Vec<String>,
    /// Where each new form is masked (Action mode).
    mask: Option<MaskSink>,
    /// Rollouts whose spec a pull request changed, and what they may not use.
    withheld: BTreeMap<String, Withheld>,
}

impl std::fmt::Debug for Registry {
    // Never the values themselves: a debug print of a runner must not show a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("values", &self.values.len())
            .field("masking", &self.mask.is_some())
            .field("withheld", &self.withheld)
            .finish()
    }
}

/// Why a secret could not be read; the message names the variable, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set.
    #[error(
        "environment variable {0} is not set: set it to the secret (in GitHub, pass it as a step `env:` from a secret)"
    )]
    Unset(String),
    /// The variable is set to nothing.
    #[error("environment variable {0} is empty: set it to the secret")]
    Empty(String),
}

/// The secret values read so far in this process, with every derived form.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    registry: Arc<Mutex<Registry>>,
}

impl Secrets {
    /// An empty registry.
    pub fn new() -> Secrets {
        Secrets::default()
    }

    /// An empty registry that masks every form as it is registered, by handing its
    /// `::add-mask::` line to `sink` (the front end writes it to the step log at once).
    pub fn masking(sink: MaskSink) -> Secrets {
        let secrets = Secrets::default();
        secrets.lock().mask = Some(sink);
        secrets
    }

    /// Whether the variable `var` holds a value (a pull request's plan warns about those that
    /// do not).
    pub fn is_set(&self, var: &str) -> bool {
        std::env::var_os(var).is_some_and(|v| !v.is_empty())
    }

    /// The variables a command check inherits (`PATH`, `HOME`, `LANG`) that are set.
    pub fn inherited_by_commands(&self) -> Vec<(&'static str, OsString)> {
        INHERITED_BY_COMMANDS
            .iter()
            .filter_map(|var| std::env::var_os(var).map(|value| (*var, value)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves the list intact: keep using it.
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads a secret from the environment and remembers it for redaction.
    pub fn read(&self, var: &str) -> Result<String, SecretError> {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => {
                self.remember(&value);
                Ok(value)
            }
            Ok(_) => Err(SecretError::Empty(var.to_string())),
            Err(_) => Err(SecretError::Unset(var.to_string())),
        }
    }

    /// Remembers a value that must never be printed, with its percent-encoded and JSON-escaped
    /// forms (how it looks in a URL query or inside JSON that echoes it) and the forms each
    /// output sink escapes it to.
    pub fn remember(&self, value: &str) {
        if value.len() < SHORTEST_SECRET {
            return;
        }
        let mut forms = vec![value.to_string()];
        forms.push(percent_encoding::utf8_percent_encode(value, NON_ALPHANUMERIC).to_string());
        forms.push(percent_encoding::utf8_percent_encode(value, QUERY_UNRESERVED).to_string());
        // The form encoding of URL queries: like the above, but a space becomes `+`.
        forms.push(
            value
                .split(' ')
                .map(|part| percent_encoding::utf8_percent_encode(part, QUERY_UNRESERVED).to_string())
                .collect::<Vec<_>>()
                .join("+"),
        );
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json.trim_matches('"').to_string());
        }
        // As each sink escapes it, so that the last redaction on the way out still matches.
        forms.push(crate::escape::markdown(value));
        forms.push(crate::escape::plain(value));
        forms.push(crate::escape::workflow_data(value));
        self.register(value, forms);
    }

    /// Remembers a bearer token and the `Authorization` value made from it.
    pub fn remember_bearer(&self, token: &str) {
        self.remember(token);
        self.register(token, vec![format!("Bearer {token}")]);
    }

    /// Remembers a GitHub token: as a bearer token, and as the `token …` header value GitHub
    /// also accepts (and may echo).
    pub fn remember_github_token(&self, token: &str) {
        self.remember_bearer(token);
        self.remember(&format!("token {token}"));
    }

    /// Remembers a basic-auth user and password, and the credential sent on the wire,
    /// `base64(user:password)`, in every base64 alphabet and with and without `Basic `.
    pub fn remember_basic(&self, user: &str, password: &str) {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        self.remember(user);
        self.remember(password);
        let pair = format!("{user}:{password}");
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&pair);
            self.remember(&encoded);
            self.register(&encoded, vec![format!("Basic {encoded}")]);
        }
    }

    /// Registers (and, when masking, masks) every form of the secret `base` not registered yet.
    fn register(&self, base: &str, forms: Vec<String>) {
        let mut registry = self.lock();
        let mut masks = String::new();
        let base_known = registry.values.iter().any(|v| v == base);
        for form in forms {
            // A form that wraps the registered secret itself (`Bearer <token>`) is redacted and
            // masked through it already; only the secret's own forms are skipped like this, since
            // a longer, different secret that merely contains a registered one must be replaced
            // whole.
            let wraps_base = base_known && form != base && form.contains(base);
            if form.len() < SHORTEST_SECRET || wraps_base || registry.values.contains(&form) {
                continue;
            }
            if registry.mask.is_some() {
                masks.push_str(&crate::escape::mask_command(&form));
            }
            registry.values.push(form);
        }
        registry.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        if let Some(sink) = registry.mask.as_ref().filter(|_| !masks.is_empty()) {
            // The mask must reach the log before any line that could carry the value, so the
            // sink writes it while the registry is still locked.
            sink(&masks);
        }
    }

    /// Registers every secret `spec` names whose variable is set, so that text can be scrubbed
    /// of it even when this run never sends it (`status`, reports of earlier decisions).
    pub fn learn(&self, spec: &RolloutSpec) {
        let set = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
        match &spec.flag.provider {
            ProviderSpec::Unleash { token_env, .. } | ProviderSpec::LaunchDarkly { token_env, .. } => {
                if let Some(token) = set(token_env) {
                    self.remember(&token);
                }
            }
            ProviderSpec::Flagd { .. } => {}
        }
        for source in spec.sources.values() {
            let http = &source.http;
            match &http.auth {
                Auth::None => {}
                Auth::Bearer { token_env } => {
                    if let Some(token) = set(token_env) {
                        self.remember_bearer(&token);
                    }
                }
                Auth::Basic {
                    username_env,
                    password_env,
                } => match (set(username_env), set(password_env)) {
                    (Some(user), Some(password)) => self.remember_basic(&user, &password),
                    (user, password) => {
                        for value in user.iter().chain(password.iter()) {
                            self.remember(value);
                        }
                    }
                },
            }
            for (_, value) in &http.headers {
                if let HeaderValue::Env(var) = value {
                    if let Some(value) = set(var) {
                        self.remember(&value);
                    }
                }
            }
        }
        // A Slack webhook's URL is its credential; a webhook's key signs every body.
        for target in spec.notify.iter().flat_map(|n| &n.to) {
            match target {
                crate::spec::NotifyTarget::Slack { webhook_env } => {
                    if let Some(value) = set(webhook_env) {
                        // Its path (`/services/T…/B…/…`) is the credential too: a proxy's error
                        // page may echo the path alone.
                        if let Ok(url) = reqwest::Url::parse(value.trim()) {
                            self.remember(url.path());
                        }
                        self.remember(&value);
                    }
                }
                crate::spec::NotifyTarget::Webhook { secret_env, .. } => {
                    if let Some(value) = set(secret_env) {
                        self.remember(&value);
                    }
                }
            }
        }
        for check in &spec.checks {
            for var in check.command_env() {
                if let Some(value) = set(var) {
                    self.remember(&value);
                }
            }
        }
    }

    /// Every registered form, for `::add-mask::`.
    pub fn values(&self) -> Vec<String> {
        self.lock().values.clone()
    }

    /// `text` with every registered form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let registry = self.lock();
        let mut out = text.to_string();
        for v in registry.values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Text from outside, as it may enter a record: redacted first (so no fragment of a secret
    /// survives the cut), then capped at [`OUTSIDE_TEXT_LIMIT`].
    pub fn admit(&self, text: &str) -> String {
        cap(&self.redact(text), OUTSIDE_TEXT_LIMIT)
    }

    /// Marks `rollout` as planned for a pull request that changed its spec.
    pub fn withhold(&self, rollout: &str, withheld: Withheld) {
        self.lock().withheld.insert(rollout.to_string(), withheld);
    }

    /// What `rollout` may not use, when a pull request changed its spec.
    pub fn withheld(&self, rollout: &str) -> Option<Withheld> {
        self.lock().withheld.get(rollout).cloned()
    }
}

/// `text` cut to at most `limit` bytes on a character boundary, ending in [`CUT_MARK`] when cut.
pub fn cap(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &text[..end])
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

    #[test]
    fn redacts_every_derived_form() {
        let s = Secrets::new();
        s.remember_basic("alice-user", "p@ss w/rd+1");
        s.remember_bearer("tok:en/1+2");
        let b64 = base64::engine::general_purpose::STANDARD.encode("alice-user:p@ss w/rd+1");
        for form in [
            b64.clone(),
            format!("Basic {b64}"),
            b64.trim_end_matches('=').to_string(),
            "p%40ss%20w%2Frd%2B1".into(),
            "p%40ss+w%2Frd%2B1".into(),
            "tok%3Aen%2F1%2B2".into(),
            "Bearer tok:en/1+2".into(),
            "p@\u{200D}ss w/rd+1".into(),
        ] {
            let redacted = s.redact(&format!("echo [{form}]"));
            let wrapper = ["Basic ", "Bearer "]
                .into_iter()
                .find(|w| form.starts_with(w))
                .unwrap_or("");
            assert_eq!(redacted, format!("echo [{wrapper}***]"), "{form}");
        }
    }

    #[test]
    fn short_values_are_not_secrets() {
        let s = Secrets::new();
        s.remember("abc");
        assert_eq!(s.redact("abc"), "abc");
    }

    #[test]
    fn admits_redacted_and_capped_on_a_char_boundary() {
        let s = Secrets::new();
        s.remember("s3cr3t-value");
        let long = format!("{}s3cr3t-value{}", "é".repeat(500), "x".repeat(3001));
        let admitted = s.admit(&long);
        assert!(admitted.len() <= OUTSIDE_TEXT_LIMIT, "{}", admitted.len());
        assert!(admitted.ends_with(CUT_MARK));
        let accents = cap(&"é".repeat(2000), OUTSIDE_TEXT_LIMIT);
        assert!(
            accents.len() <= OUTSIDE_TEXT_LIMIT && accents.len() >= OUTSIDE_TEXT_LIMIT - 1,
            "{}",
            accents.len()
        );
        assert!(!admitted.contains("s3cr3t"));
        assert!(admitted.contains("***"));
        assert_eq!(s.admit("short"), "short");
    }
}
