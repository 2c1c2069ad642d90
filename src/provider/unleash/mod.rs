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
//!
//! Split by concern: `client` speaks the admin API (paths, requests, status and error-body
//! mapping), `flag` says what a feature's environment means to flagramp (which strategy it
//! owns, which value that reads as, and what it refuses), and this module is the
//! [`FlagProvider`] that reads through both and writes a stage with compare-and-swap.

mod client;
mod flag;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::http::encode_segment;
use crate::percent::Percent;
use crate::state::FlagValue;
pub use flag::rollout_parameter;
use flag::Owned;

/// The title that marks the strategy flagramp owns.
pub const STRATEGY_TITLE: &str = "flagramp";

/// The strategy type flagramp owns.
pub const STRATEGY_NAME: &str = "flexibleRollout";

/// How long one request may take by default, its retries and waits included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads after a write before giving up on seeing the value written.
const READ_BACK_ATTEMPTS: u32 = 5;
const READ_BACK_PAUSE: Duration = Duration::from_millis(200);

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

    /// The flag, as flagramp names it in messages.
    pub(super) fn flag_name(&self) -> String {
        format!(
            "Unleash flag `{}` (project `{}`, environment `{}`)",
            self.key, self.project, self.environment
        )
    }

    async fn read_owned(&self) -> Result<Owned, ProviderError> {
        let doc = self.get_feature().await?;
        self.understand(&doc)
    }
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

    async fn set(&self, to: FlagValue, seen: &FlagReading, _note: &ChangeNote) -> Result<FlagReading, ProviderError> {
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
    use super::client::change_requests_required;
    use super::*;
    use crate::percent::pct;

    fn flag() -> UnleashFlag {
        UnleashFlag::new(
            "http://127.0.0.1:1/",
            "default",
            "development",
            "secret-token".into(),
            "k",
        )
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
