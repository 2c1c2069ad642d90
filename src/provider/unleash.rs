//! Unleash (admin API): flagramp owns one `flexibleRollout` strategy on the flag in one
//! environment, marked by its title.
//!
//! Reading looks at the environment's `enabled` and at that strategy's `rollout` parameter (a
//! string of a whole percent). flagramp refuses to act, and writes nothing, when something else
//! steers the flag: another active strategy, a release plan, change requests (a 403 naming the
//! `SKIP_CHANGE_REQUEST` permission). A stage is set with a JSON patch of `/parameters/rollout`
//! only, never with a PUT (which replaces the whole strategy and would drop its stickiness and
//! group id); a missing strategy is created before the environment is turned on, because `/on`
//! on an environment without strategies makes a 100% default strategy. Every write is read back.
//!
//! Shapes are those of Unleash 8.2.0 (its own OpenAPI document, `featureSchema` /
//! `featureEnvironmentSchema` / `featureStrategySchema`, and its error bodies
//! `{"name", "message", "details"}`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{reading_of, FlagProvider, FlagReading, ProviderError};
use crate::fsutil::fingerprint;
use crate::http::{self, encode_segment, Answer};
use crate::percent::Percent;
use crate::state::FlagValue;

/// The title that marks the strategy flagramp owns.
pub const STRATEGY_TITLE: &str = "flagramp";

/// The strategy type flagramp owns.
pub const STRATEGY_NAME: &str = "flexibleRollout";

/// How long one request may take by default, its retries and waits included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The permission Unleash's 403 names when change requests are required in an environment.
const SKIP_CHANGE_REQUEST: &str = "SKIP_CHANGE_REQUEST";

/// Reads after a write before giving up on seeing the value written.
const READ_BACK_ATTEMPTS: u32 = 5;
const READ_BACK_PAUSE: Duration = Duration::from_millis(200);

/// Longest piece of a server's error text quoted in a message.
const MAX_QUOTED: usize = 300;

/// One flag in one Unleash project and environment.
#[derive(Clone)]
pub struct UnleashFlag {
    base_url: String,
    project: String,
    environment: String,
    token: String,
    token_env: Option<String>,
    key: String,
    timeout: Duration,
}

impl std::fmt::Debug for UnleashFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("UnleashFlag")
            .field("base_url", &self.base_url)
            .field("project", &self.project)
            .field("environment", &self.environment)
            .field("token_env", &self.token_env)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What flagramp understood of the flag in its environment.
#[derive(Debug)]
struct Owned {
    value: FlagValue,
    /// The environment is on.
    enabled: bool,
    /// flagramp's strategy: id, rollout and whether it is disabled.
    ours: Option<OurStrategy>,
    /// Fingerprint of the environment's `enabled` and `strategies`.
    version: String,
}

#[derive(Debug)]
struct OurStrategy {
    id: String,
    rollout: u32,
    disabled: bool,
}

impl UnleashFlag {
    /// The flag `key` in `project`/`environment` of the server at `base_url`, with an admin token.
    pub fn new(base_url: &str, project: &str, environment: &str, token: String, key: &str) -> UnleashFlag {
        UnleashFlag {
            base_url: base_url.trim_end_matches('/').to_string(),
            project: project.into(),
            environment: environment.into(),
            token,
            token_env: None,
            key: key.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Names the environment variable the token came from, so a refused token can be named in
    /// messages (the value never is).
    pub fn with_token_env(mut self, var: &str) -> UnleashFlag {
        self.token_env = Some(var.to_string());
        self
    }

    /// Bounds each request, its retries and waits included (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> UnleashFlag {
        self.timeout = timeout;
        self
    }

    fn feature_path(&self) -> String {
        format!(
            "/api/admin/projects/{}/features/{}",
            encode_segment(&self.project),
            encode_segment(&self.key)
        )
    }

    fn environment_path(&self) -> String {
        format!(
            "{}/environments/{}",
            self.feature_path(),
            encode_segment(&self.environment)
        )
    }

    fn token_name(&self) -> String {
        match &self.token_env {
            Some(var) => format!("the Unleash token in ${var}"),
            None => "the Unleash token".into(),
        }
    }

    /// The flag, as flagramp names it in messages.
    fn flag_name(&self) -> String {
        format!(
            "Unleash flag `{}` (project `{}`, environment `{}`)",
            self.key, self.project, self.environment
        )
    }

    /// Removes the token from text that came from elsewhere (a server's error message).
    fn scrub(&self, text: &str) -> String {
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
    async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, ProviderError> {
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
                self.scrub(&e)
            ))
        })
    }

    /// The error for a non-success answer to `method path` (`what` says what was being done).
    fn failure(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> ProviderError {
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
    async fn get_feature(&self) -> Result<Value, ProviderError> {
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

    fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "{} {why}; flagramp only changes a flag whose one active strategy in this environment is its own `{STRATEGY_NAME}` strategy titled \"{STRATEGY_TITLE}\" (or that has none yet), so it changed nothing",
            self.flag_name()
        ))
    }

    fn malformed(&self, what: &str) -> ProviderError {
        ProviderError::Io(format!(
            "Unleash's answer for {} is not in the shape Unleash 8 uses: {what}; nothing was changed",
            self.flag_name()
        ))
    }

    /// Understands the feature JSON: refuses what flagramp must not own, else the value.
    fn understand(&self, doc: &Value) -> Result<Owned, ProviderError> {
        let environments = doc
            .get("environments")
            .and_then(Value::as_array)
            .ok_or_else(|| self.malformed("no `environments` list"))?;
        let env = environments
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(self.environment.as_str()))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                let names: Vec<&str> = environments
                    .iter()
                    .filter_map(|e| e.get("name").and_then(Value::as_str))
                    .collect();
                ProviderError::NotFound(format!(
                    "Unleash flag `{}` in project `{}` has no environment `{}` (it has: {}): enable the environment in the project, or fix `flag.unleash.environment`",
                    self.key,
                    self.project,
                    self.environment,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ))
            })?;
        if let Some(plans) = env
            .get("releasePlans")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
        {
            let names: Vec<String> = plans
                .iter()
                .map(|p| match p.get("name").and_then(Value::as_str) {
                    Some(name) => format!("\"{}\"", self.scrub(name)),
                    None => "(unnamed)".into(),
                })
                .collect();
            return Err(ProviderError::Refused(format!(
                "{} is steered by Unleash's release plan {} in {}: flagramp will not fight a release plan, so it changed nothing; remove the release plan from the flag in this environment, or remove this rollout",
                self.flag_name(),
                names.join(", "),
                self.environment
            )));
        }
        let enabled = env
            .get("enabled")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.malformed(&format!("environment `{}` has no boolean `enabled`", self.environment)))?;
        let strategies = match env.get("strategies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(s)) => s.clone(),
            Some(_) => return Err(self.malformed("`strategies` is not a list")),
        };
        let version = fingerprint(
            serde_json::to_string(&json!({ "enabled": enabled, "strategies": strategies }))
                .expect("JSON values serialize")
                .as_bytes(),
        );

        let mut ours: Vec<&Map<String, Value>> = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for s in &strategies {
            let s = s
                .as_object()
                .ok_or_else(|| self.malformed("a strategy is not an object"))?;
            if s.get("title").and_then(Value::as_str) == Some(STRATEGY_TITLE) {
                ours.push(s);
            } else if s.get("disabled").and_then(Value::as_bool) != Some(true) {
                others.push(describe_strategy(s));
            }
        }
        if ours.len() > 1 {
            return Err(self.cannot_own(&format!(
                "has {} strategies titled \"{STRATEGY_TITLE}\" in {}: delete all but one",
                ours.len(),
                self.environment
            )));
        }
        if !others.is_empty() {
            let how = if enabled {
                "serves traffic through"
            } else {
                "is off, but turning it on would also serve traffic through"
            };
            return Err(self.cannot_own(&format!(
                "{how} other strategies in {}: {}. Delete them, or disable them in Unleash, to let flagramp own the rollout",
                self.environment,
                others.join(", ")
            )));
        }
        let ours = match ours.first() {
            None => None,
            Some(s) => Some(self.our_strategy(s)?),
        };
        let value = match (&ours, enabled) {
            (_, false) => FlagValue::OFF,
            (None, true) => {
                return Err(self.cannot_own(&format!(
                    "is on in {} without any active strategy, so it is unclear who gets it",
                    self.environment
                )))
            }
            (Some(s), true) if s.disabled => {
                return Err(self.cannot_own(&format!(
                    "is on in {} while flagramp's strategy is disabled, so it is unclear who gets it: turn the environment off or re-enable the strategy",
                    self.environment
                )))
            }
            (Some(s), true) => {
                let percent = Percent::from_millis(s.rollout * 1000).expect("a rollout is at most 100");
                reading_of(true, percent)
            }
        };
        Ok(Owned {
            value,
            enabled,
            ours,
            version,
        })
    }

    fn our_strategy(&self, s: &Map<String, Value>) -> Result<OurStrategy, ProviderError> {
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        if name != STRATEGY_NAME {
            return Err(self.cannot_own(&format!(
                "has a strategy titled \"{STRATEGY_TITLE}\" of type `{name}` in {}, not `{STRATEGY_NAME}`: delete it and flagramp creates its own",
                self.environment
            )));
        }
        let id = s
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| self.malformed("flagramp's strategy has no `id`"))?;
        let nonempty = |field: &str| s.get(field).and_then(Value::as_array).is_some_and(|a| !a.is_empty());
        if nonempty("constraints") || nonempty("segments") {
            return Err(self.cannot_own(&format!(
                "has constraints or segments on flagramp's strategy in {}, so its rollout is not a share of all users: remove them",
                self.environment
            )));
        }
        let raw = s.get("parameters").and_then(|p| p.get("rollout"));
        let rollout = match raw {
            Some(Value::String(t)) => t.trim().parse::<u32>().ok(),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        }
        .filter(|r| *r <= 100)
        .ok_or_else(|| {
            self.cannot_own(&format!(
                "has a rollout of {} on flagramp's strategy in {}, not a whole percent from 0 to 100",
                raw.map(Value::to_string).unwrap_or_else(|| "nothing".into()),
                self.environment
            ))
        })?;
        Ok(OurStrategy {
            id: id.to_string(),
            rollout,
            disabled: s.get("disabled").and_then(Value::as_bool) == Some(true),
        })
    }

    async fn read_owned(&self) -> Result<Owned, ProviderError> {
        let doc = self.get_feature().await?;
        self.understand(&doc)
    }

    /// Sends one write; any status but 200/201/204 is an error.
    async fn write(&self, method: Method, path: &str, body: Option<&Value>, what: &str) -> Result<(), ProviderError> {
        let answer = self.request(method.clone(), path, body).await?;
        if matches!(answer.status, 200 | 201 | 204) {
            Ok(())
        } else {
            Err(self.failure(&method, path, &answer, what))
        }
    }
}

/// The rollout parameter for a share of users: a whole percent from 0 to 100, as Unleash stores
/// it. Checked here because the server itself accepts `"150"`.
pub fn rollout_parameter(percent: Percent) -> Result<String, ProviderError> {
    if !percent.is_whole() || percent > Percent::FULL {
        return Err(ProviderError::Refused(format!(
            "Unleash stores whole percents from 0 to 100: flagramp will not set {percent}; nothing was sent"
        )));
    }
    Ok((percent.millis() / 1000).to_string())
}

/// True when a 403 body is Unleash's "change requests are required" refusal: a
/// `PermissionError` naming the `SKIP_CHANGE_REQUEST` permission (Unleash 8.2.0:
/// `{"name":"PermissionError","message":"… you need the \"SKIP_CHANGE_REQUEST\" permission.",
/// "details":[…]}`, with `permissions` when the error is serialized whole).
fn change_requests_required(body: Option<&Value>) -> bool {
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

/// `flexibleRollout "Gradual 25%" (id …)`, for messages.
fn describe_strategy(s: &Map<String, Value>) -> String {
    let name = s.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
    let mut out = format!("`{name}`");
    if let Some(title) = s.get("title").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        out.push_str(&format!(" \"{title}\""));
    }
    if let Some(rollout) = s
        .get("parameters")
        .and_then(|p| p.get("rollout"))
        .and_then(Value::as_str)
    {
        out.push_str(&format!(" at {rollout}%"));
    }
    if let Some(id) = s.get("id").and_then(Value::as_str) {
        out.push_str(&format!(" (id {id})"));
    }
    out
}

#[async_trait::async_trait]
impl FlagProvider for UnleashFlag {
    fn describe(&self) -> String {
        format!("Unleash {} ({}/{})", self.base_url, self.project, self.environment)
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let owned = self.read_owned().await?;
        Ok(FlagReading {
            value: owned.value,
            version: owned.version,
        })
    }

    async fn set(&self, to: FlagValue, seen: &FlagReading) -> Result<FlagReading, ProviderError> {
        // Validate before anything is sent.
        let rollout = if to.enabled {
            if to.percent == Percent::ZERO {
                return Err(ProviderError::Refused(format!(
                    "flagramp will not turn {} on for 0% of users: that reads back as off; nothing was sent",
                    self.flag_name()
                )));
            }
            Some(rollout_parameter(to.percent)?)
        } else {
            None
        };
        // Best-effort compare-and-swap: the environment must be as it was read.
        let now = self.read_owned().await?;
        if now.version != seen.version {
            return Err(ProviderError::Conflict(format!(
                "{} changed since it was read: someone else changed its environment; nothing was written",
                self.flag_name()
            )));
        }
        let env_path = self.environment_path();
        match rollout {
            Some(rollout) => {
                let target: u32 = rollout.parse().expect("a whole percent");
                match &now.ours {
                    Some(ours) => {
                        let mut patch = Vec::new();
                        if ours.rollout != target {
                            patch.push(json!({ "op": "replace", "path": "/parameters/rollout", "value": rollout }));
                        }
                        if ours.disabled {
                            patch.push(json!({ "op": "replace", "path": "/disabled", "value": false }));
                        }
                        if !patch.is_empty() {
                            let path = format!("{env_path}/strategies/{}", encode_segment(&ours.id));
                            self.write(
                                Method::PATCH,
                                &path,
                                Some(&Value::Array(patch)),
                                &format!("setting the rollout to {rollout}%"),
                            )
                            .await?;
                        }
                    }
                    None => {
                        let body = json!({
                            "name": STRATEGY_NAME,
                            "title": STRATEGY_TITLE,
                            "constraints": [],
                            "parameters": { "rollout": rollout, "stickiness": "default", "groupId": self.key },
                        });
                        self.write(
                            Method::POST,
                            &format!("{env_path}/strategies"),
                            Some(&body),
                            &format!("creating flagramp's strategy at {rollout}%"),
                        )
                        .await?;
                    }
                }
                // Only now: `/on` without a strategy would create a 100% default strategy.
                if !now.enabled {
                    self.write(
                        Method::POST,
                        &format!("{env_path}/on"),
                        None,
                        "turning the environment on",
                    )
                    .await?;
                }
            }
            None => {
                if now.enabled {
                    self.write(
                        Method::POST,
                        &format!("{env_path}/off"),
                        None,
                        "turning the environment off",
                    )
                    .await?;
                }
            }
        }
        // Read back until the change shows (the admin API is consistent, but be patient).
        let mut found = None;
        for attempt in 1..=READ_BACK_ATTEMPTS {
            let back = self.read_owned().await?;
            if back.value == to {
                return Ok(FlagReading {
                    value: back.value,
                    version: back.version,
                });
            }
            found = Some(back.value);
            if attempt < READ_BACK_ATTEMPTS {
                tokio::time::sleep(READ_BACK_PAUSE).await;
            }
        }
        Err(ProviderError::Io(format!(
            "{} does not read back as written: expected {}, found {} ({READ_BACK_ATTEMPTS} reads after the write)",
            self.flag_name(),
            to.describe(),
            found.map(FlagValue::describe).unwrap_or_default(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag() -> UnleashFlag {
        UnleashFlag::new(
            "http://127.0.0.1:1/",
            "default",
            "development",
            "secret-token".into(),
            "k",
        )
    }

    fn pct(p: u32) -> Percent {
        Percent::from_millis(p * 1000).unwrap()
    }

    fn env(enabled: bool, strategies: Value) -> Value {
        json!({ "name": "k", "environments": [
            { "name": "production", "enabled": true, "strategies": [{ "name": "default", "id": "p" }] },
            { "name": "development", "enabled": enabled, "strategies": strategies }
        ]})
    }

    fn ours(rollout: &str) -> Value {
        json!({ "id": "s1", "name": "flexibleRollout", "title": "flagramp", "disabled": false, "constraints": [],
                "segments": [], "parameters": { "rollout": rollout, "stickiness": "default", "groupId": "k" } })
    }

    #[test]
    fn reads_the_environment_and_our_rollout() {
        let f = flag();
        assert_eq!(
            f.understand(&env(true, json!([ours("25")]))).unwrap().value,
            FlagValue::on(pct(25))
        );
        assert_eq!(
            f.understand(&env(false, json!([ours("25")]))).unwrap().value,
            FlagValue::OFF
        );
        assert_eq!(
            f.understand(&env(true, json!([ours("0")]))).unwrap().value,
            FlagValue::OFF
        );
        assert_eq!(f.understand(&env(false, json!([]))).unwrap().value, FlagValue::OFF);
        let disabled_other = json!({ "id": "o", "name": "default", "title": null, "disabled": true });
        assert_eq!(
            f.understand(&env(true, json!([ours("5"), disabled_other])))
                .unwrap()
                .value,
            FlagValue::on(pct(5))
        );
    }

    #[test]
    fn refuses_what_it_cannot_own() {
        let f = flag();
        let other = json!({ "id": "o", "name": "default", "title": null, "disabled": false });
        for doc in [
            env(true, json!([ours("25"), other.clone()])),
            env(false, json!([other.clone()])),
            env(true, json!([other])),
            env(true, json!([ours("25"), ours("30")])),
            env(true, json!([ours("150")])),
            env(true, json!([ours("12.5")])),
            env(true, json!([])),
        ] {
            assert!(matches!(f.understand(&doc), Err(ProviderError::CannotOwn(_))), "{doc}");
        }
        let mut constrained = ours("25");
        constrained["constraints"] = json!([{ "contextName": "userId", "operator": "IN", "values": ["1"] }]);
        assert!(matches!(
            f.understand(&env(true, json!([constrained]))),
            Err(ProviderError::CannotOwn(_))
        ));
        let mut planned = env(true, json!([ours("25")]));
        planned["environments"][1]["releasePlans"] = json!([{ "name": "Gradual", "id": "x" }]);
        assert!(matches!(f.understand(&planned), Err(ProviderError::Refused(m)) if m.contains("\"Gradual\"")));
        assert!(matches!(
            f.understand(&json!({ "environments": [] })),
            Err(ProviderError::NotFound(_))
        ));
    }

    #[test]
    fn version_changes_with_the_environment_only() {
        let f = flag();
        let a = f.understand(&env(true, json!([ours("25")]))).unwrap().version;
        let mut doc = env(true, json!([ours("25")]));
        doc["environments"][0]["enabled"] = json!(false);
        doc["environments"][1]["lastSeenAt"] = json!("2026-11-24T00:00:00Z");
        assert_eq!(f.understand(&doc).unwrap().version, a);
        assert_ne!(f.understand(&env(true, json!([ours("30")]))).unwrap().version, a);
        assert_ne!(f.understand(&env(false, json!([ours("25")]))).unwrap().version, a);
    }

    #[test]
    fn rollout_parameters_are_whole_percents() {
        assert_eq!(rollout_parameter(pct(10)).unwrap(), "10");
        assert_eq!(rollout_parameter(Percent::FULL).unwrap(), "100");
        assert!(rollout_parameter(Percent::from_millis(12_500).unwrap()).is_err());
    }

    #[test]
    fn change_request_refusals_are_recognized() {
        let cr = json!({ "name": "PermissionError", "message": "You don't have the required permissions to perform this operation. To perform this action, you need the \"SKIP_CHANGE_REQUEST\" permission.", "details": [] });
        assert!(change_requests_required(Some(&cr)));
        let token = json!({ "message": "invalid token: expected a different token type for this endpoint" });
        assert!(!change_requests_required(Some(&token)));
        assert!(!change_requests_required(None));
    }

    #[test]
    fn paths_are_encoded_and_debug_hides_the_token() {
        let f = UnleashFlag::new("http://x/", "my project", "prod", "secret-token".into(), "a/b");
        assert_eq!(f.feature_path(), "/api/admin/projects/my%20project/features/a%2Fb");
        assert!(!format!("{f:?}").contains("secret-token"));
        assert_eq!(f.scrub("bad secret-token here"), "bad *** here");
    }
}
