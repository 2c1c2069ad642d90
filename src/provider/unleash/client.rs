//! The Unleash admin API client: the paths of a feature and its environment, one request under
//! the shared HTTP policy, and the mapping of each answer's status and error body to a
//! [`ProviderError`] that says what to do (a refused token, change requests, a missing flag).
//! Nothing here knows what a strategy means.

use reqwest::Method;
use serde_json::Value;

use super::UnleashFlag;
use crate::http::{self, encode_segment, Answer};
use crate::provider::ProviderError;

/// The permission Unleash's 403 names when change requests are required in an environment.
const SKIP_CHANGE_REQUEST: &str = "SKIP_CHANGE_REQUEST";

/// Longest piece of a server's error text quoted in a message.
const MAX_QUOTED: usize = 300;

impl UnleashFlag {
    pub(super) fn feature_path(&self) -> String {
        format!(
            "/api/admin/projects/{}/features/{}",
            encode_segment(&self.project),
            encode_segment(&self.key)
        )
    }

    pub(super) fn environment_path(&self) -> String {
        format!(
            "{}/environments/{}",
            self.feature_path(),
            encode_segment(&self.environment)
        )
    }

    pub(super) fn token_name(&self) -> String {
        match &self.token_env {
            Some(var) => format!("the Unleash token in ${var}"),
            None => "the Unleash token".into(),
        }
    }

    /// Removes the token from text that came from elsewhere (a server's error message).
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut text = text.trim().to_string();
        if self.token.len() >= 4 {
            text = text.replace(&self.token, "***");
        }
        if text.chars().count() > MAX_QUOTED {
            text = text.chars().take(MAX_QUOTED).collect::<String>() + "…";
        }
        text
    }

    /// One request; transport failures become [`ProviderError::Io`], any status is returned.
    pub(super) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ProviderError> {
        let url = format!("{}{path}", self.base_url);
        let mut headers = vec![
            ("authorization", self.token.clone()),
            ("accept", "application/json".into()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        // Reads, JSON-patch replaces and /on, /off are safe to repeat; creating a strategy is not.
        let idempotent = method != Method::POST || path.ends_with("/on") || path.ends_with("/off");
        http::send(
            method.clone(),
            &url,
            &headers,
            body,
            http::Deadline::after(self.timeout),
            idempotent,
        )
        .await
        .map_err(|e| {
            ProviderError::Io(format!(
                "Unleash {method} {path} failed: {}; nothing is known to have changed",
                self.scrub(&e.to_string())
            ))
        })
    }

    /// The error for a non-success answer to `method path` (`what` says what was being done).
    pub(super) fn failure(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> ProviderError {
        let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
        let server_message = body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .map(|m| self.scrub(m))
            .unwrap_or_else(|| self.scrub(&answer.text()));
        let said = if server_message.is_empty() {
            String::new()
        } else {
            format!(": {server_message}")
        };
        let status = answer.status;
        match status {
            401 => ProviderError::Auth(format!(
                "{} was refused by {} (HTTP 401{said}) while {what}: set it to a valid Unleash admin API token",
                self.token_name(),
                self.base_url
            )),
            403 if change_requests_required(body.as_ref()) => ProviderError::Refused(format!(
                "change requests block direct changes in {}: approve the change in Unleash or disable change requests for this environment ({} {path}: HTTP 403{said}); flagramp changed nothing",
                self.environment, method
            )),
            403 => ProviderError::Auth(format!(
                "{} may not do this ({} {path}: HTTP 403{said}) while {what}: use an admin API token (or a personal access token) with access to project `{}`; a backend or frontend token only reads the client API",
                self.token_name(),
                method,
                self.project
            )),
            404 => ProviderError::NotFound(format!(
                "{} was not found at {} (HTTP 404{said}) while {what}: create the flag in project `{}`, or fix `flag.key`, `flag.unleash.project` and `flag.unleash.environment`",
                self.flag_name(),
                self.base_url,
                self.project
            )),
            409 => ProviderError::Conflict(format!(
                "Unleash answered {method} {path} with HTTP 409{said} while {what}: the flag changed at the same time"
            )),
            429 => ProviderError::Io(format!(
                "Unleash kept answering {method} {path} with HTTP 429 (rate limited){said} while {what}; try again later"
            )),
            _ => ProviderError::Io(format!(
                "Unleash answered {method} {path} with HTTP {status}{said} while {what}"
            )),
        }
    }

    /// GETs the feature and returns its JSON.
    pub(super) async fn get_feature(&self) -> Result<Value, ProviderError> {
        let path = self.feature_path();
        let answer = self.request(Method::GET, &path, None).await?;
        if answer.status != 200 {
            return Err(self.failure(&Method::GET, &path, &answer, "reading the flag"));
        }
        let doc: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            ProviderError::Io(format!(
                "Unleash answered GET {path} with a body that is not JSON ({e}); nothing was changed"
            ))
        })?;
        if !doc.is_object() {
            return Err(ProviderError::Io(format!(
                "Unleash answered GET {path} with JSON that is not a feature object; nothing was changed"
            )));
        }
        Ok(doc)
    }

    /// Sends one write; any status but 200/201/204 is an error.
    pub(super) async fn write(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<(), ProviderError> {
        let answer = self.request(method.clone(), path, body).await?;
        if matches!(answer.status, 200 | 201 | 204) {
            Ok(())
        } else {
            Err(self.failure(&method, path, &answer, what))
        }
    }
}

/// True when a 403 body is Unleash's "change requests are required" refusal: a
/// `PermissionError` naming the `SKIP_CHANGE_REQUEST` permission (Unleash 8.2.0:
/// `{"name":"PermissionError","message":"… you need the \"SKIP_CHANGE_REQUEST\" permission.",
/// "details":[…]}`, with `permissions` when the error is serialized whole).
pub(super) fn change_requests_required(body: Option<&Value>) -> bool {
    let Some(body) = body else { return false };
    let in_permissions = body
        .get("permissions")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p.as_str() == Some(SKIP_CHANGE_REQUEST)));
    let in_message = body
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| m.contains(SKIP_CHANGE_REQUEST) || m.to_ascii_lowercase().contains("change request"));
    in_permissions || in_message
}
