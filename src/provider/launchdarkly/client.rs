//! The LaunchDarkly REST client: the flag's URL, the headers every request carries
//! (`LD-API-Version`, the token as LaunchDarkly wants it), one request under the shared HTTP
//! policy, and each answer's status and error body mapped to a [`ProviderError`] that says what
//! to do. Nothing here knows what a variation or rollout means.

use reqwest::Method;
use serde_json::Value;

use super::{LaunchDarklyFlag, API_VERSION, SEMANTIC_PATCH};
use crate::http::{self, encode_segment, Answer};
use crate::provider::ProviderError;

impl LaunchDarklyFlag {
    pub(super) fn flag_url(&self) -> String {
        format!(
            "{}/api/v2/flags/{}/{}",
            self.base_url,
            encode_segment(&self.project),
            encode_segment(&self.key)
        )
    }

    pub(super) fn headers(&self, semantic_patch: bool) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Authorization", self.token.clone()),
            ("LD-API-Version", API_VERSION.to_string()),
            ("Accept", "application/json".to_string()),
        ];
        if semantic_patch {
            headers.push(("Content-Type", SEMANTIC_PATCH.to_string()));
        }
        headers
    }

    /// Text from LaunchDarkly (or the network) made safe to show: never the token, never long.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut text = text.trim().to_string();
        if self.token.len() >= 4 && text.contains(&self.token) {
            text = text.replace(&self.token, "***");
        }
        if text.chars().count() > 300 {
            text = format!("{}…", text.chars().take(300).collect::<String>());
        }
        text
    }

    /// `HTTP 404: Unknown flag (not_found)` from an error answer.
    pub(super) fn status_detail(&self, answer: &Answer) -> String {
        let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let message = body.as_ref().and_then(|b| b.get("message")).and_then(Value::as_str);
        let code = body.as_ref().and_then(|b| b.get("code")).and_then(Value::as_str);
        let text = match (message, code) {
            (Some(m), Some(c)) => format!("{m} ({c})"),
            (Some(m), None) => m.to_string(),
            (None, _) => {
                let text = answer.text();
                if text.trim().is_empty() {
                    "no message".to_string()
                } else {
                    text
                }
            }
        };
        format!("HTTP {}: {}", answer.status, self.scrub(&text))
    }

    /// The error for an answer that is not a success. `writing`: the answer is to the PATCH.
    pub(super) fn failure(&self, answer: &Answer, writing: bool) -> ProviderError {
        let detail = self.status_detail(answer);
        let (key, project, env) = (&self.key, &self.project, &self.environment);
        match answer.status {
            401 => ProviderError::Auth(format!(
                "LaunchDarkly rejected the API access token ({detail}): the variable named by `flag.launchdarkly.token_env` must hold a valid access token, as is (without \"Bearer\")"
            )),
            403 => {
                let (verb, grant) = if writing {
                    ("change", format!("updateOn and updateFallthrough on proj/{project}:env/{env}:flag/{key}"))
                } else {
                    ("read", format!("viewProject on proj/{project}"))
                };
                ProviderError::Auth(format!(
                    "the LaunchDarkly access token may not {verb} {} ({detail}): give the token a role that allows {grant}",
                    self.named()
                ))
            }
            404 => ProviderError::NotFound(format!(
                "LaunchDarkly has no flag `{key}` in project `{project}` (environment `{env}`; {detail}): check `flag.key` and `flag.launchdarkly.project`"
            )),
            405 => ProviderError::Refused(format!(
                "approval required in {env}: LaunchDarkly requires an approval request to change flag `{key}` there ({detail}); flagramp does not create approval requests, so nothing was changed. Change the flag through an approval request, or let changes to it in {env} go without one"
            )),
            409 => ProviderError::Conflict(format!(
                "LaunchDarkly reported a conflicting change to {} ({detail}); nothing was written",
                self.named()
            )),
            400 if writing && mentions_pending_change(&detail) => ProviderError::Refused(format!(
                "LaunchDarkly refused the change to {} because it conflicts with a pending scheduled change or approval request ({detail}); nothing was changed: apply, edit or cancel that pending change first",
                self.named()
            )),
            400 => ProviderError::Io(format!(
                "LaunchDarkly rejected the {} of {} ({detail})",
                if writing { "change" } else { "request" },
                self.named()
            )),
            429 => ProviderError::Io(format!(
                "LaunchDarkly kept rate-limiting requests for {} ({detail}); it is tried again on the next run",
                self.named()
            )),
            status if status >= 500 => ProviderError::Io(format!(
                "LaunchDarkly failed to answer for {} ({detail}); it is tried again on the next run",
                self.named()
            )),
            _ => ProviderError::Io(format!(
                "LaunchDarkly answered unexpectedly for {} ({detail})",
                self.named()
            )),
        }
    }

    pub(super) async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ProviderError> {
        let writing = method == Method::PATCH;
        http::send(
            method,
            url,
            &self.headers(writing),
            body,
            http::Deadline::after(self.timeout),
            !writing,
        )
        .await
        .map_err(|e| {
            let e = self.scrub(&e.to_string());
            if writing {
                ProviderError::Io(format!(
                    "the change to {} got no answer from LaunchDarkly: {e}; it may or may not have been applied, and the next run reads the flag to find out",
                    self.named()
                ))
            } else {
                ProviderError::Io(format!("cannot read {} from {}: {e}", self.named(), self.base_url))
            }
        })
    }

    pub(super) async fn fetch(&self) -> Result<Value, ProviderError> {
        let url = format!("{}?env={}", self.flag_url(), encode_segment(&self.environment));
        let answer = self.exchange(Method::GET, &url, None).await?;
        if answer.status != 200 {
            return Err(self.failure(&answer, false));
        }
        serde_json::from_slice(&answer.body).map_err(|e| {
            ProviderError::Io(format!(
                "LaunchDarkly answered with a body that is not JSON for {}: {e}",
                self.named()
            ))
        })
    }
}

/// Whether a 400's message is LaunchDarkly's "this would break a pending scheduled change or
/// approval request" (the `ignoreConflicts` case).
pub(super) fn mentions_pending_change(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["scheduled", "approval", "pending", "ignoreconflicts"]
        .iter()
        .any(|word| m.contains(word))
}
