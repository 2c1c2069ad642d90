//! LaunchDarkly (REST API v2): the default rule ("fallthrough") of one flag in one environment,
//! read with `GET /api/v2/flags/{project}/{key}?env={environment}` and changed with semantic
//! patches (`PATCH`, `Content-Type: application/json; domain-model=launchdarkly.semanticpatch`).
//!
//! **What flagramp owns.** The environment's targeting switch (`on`) and its fallthrough, which
//! serves every context that matches no targeting rule: either one variation or a percentage
//! rollout between the flag's "on" variation and its "off" variation. The percentage flagramp
//! reads and sets is the share of that fallthrough traffic.
//!
//! **What it leaves alone.** Targeting rules, individual targets, prerequisites and every other
//! environment. Rules may serve traffic of their own (a beta group, internal users): LaunchDarkly
//! evaluates them before the fallthrough, flagramp never reads or changes them, and they are not
//! a reason to refuse.
//!
//! **Which variation is "on".** Boolean flags first: "on" is the variation whose value is `true`,
//! "off" the one with `false` (the environment's `offVariation` must be that one too). A flag with
//! other variations needs `flag.launchdarkly.on_variation` (a variation's `name`, or its value
//! written as a string: `express`, `3`, `{"v":2}`); its "off" variation is the environment's
//! `offVariation`.
//!
//! **Reading.** `on: false` is off. A fallthrough variation equal to "on" is 100%; equal to "off"
//! is off (on for nobody reads as off, as in the flagd provider). A rollout whose weights
//! (thousandths of a percent) all go to "on" and "off" is on at the weight of "on" (0 reads as
//! off). Anything else is a shape flagramp will not take over ([`ProviderError::CannotOwn`]).
//!
//! **What it refuses to touch** ([`ProviderError::Refused`], nothing written), from the fields of
//! the `FeatureFlag` / `FeatureFlagConfig` / `Rollout` schemas of LaunchDarkly's OpenAPI
//! description (`tests/fixtures/launchdarkly/ld-openapi.subset.json`):
//! - `environments[env].fallthrough.rollout.experimentAllocation` (`Rollout` →
//!   `ExperimentAllocationRep`): an experiment, or a guarded ("measured") rollout, allocates the
//!   default rule's traffic. The description documents only `defaultVariation` and
//!   `canReshuffle`; a `type` of `measuredRollout` (seen in real answers, not in the description)
//!   is used only to word the message as a guarded rollout.
//! - `experiments.items[]` (`FeatureFlag` → `ExperimentInfoRep` → `LegacyExperimentRep`) naming
//!   this environment in `environments` or `_environmentSettings` (an item naming no environment
//!   at all counts as this one's).
//!
//! Migration flags (`_purpose: migration`, or `migrationSettings` on the flag or environment)
//! and archived flags are [`ProviderError::CannotOwn`]: LaunchDarkly's migration stages steer
//! the first. `_summary` (`FlagSummary`) only counts targets and rules per variation and is not
//! relied on. Nothing in the description marks a guarded rollout other than the allocation above.
//!
//! **Writing.** The flag is read again first: if its version (`_version`, and the environment's
//! `version`) moved since the reading the decision was made on, the write is a
//! [`ProviderError::Conflict`] and the runner decides again. Then one semantic patch:
//! `turnFlagOn` (when off) plus `updateFallthroughVariationOrRollout` with `rolloutWeights`
//! keyed by variation `_id`, or a plain `variationId` at 100%; `turnFlagOff` to disable. The
//! rollout's context kind and bucketing attribute are kept when they are not the defaults. The
//! flag is read back and must show the value that was set.
//!
//! Every request carries `LD-API-Version` and the access token as LaunchDarkly wants it
//! (`Authorization: <token>`, no "Bearer"). The token never appears in a message.
//!
//! Split by concern: `client` speaks the REST API (URLs, headers, one request under the shared
//! HTTP policy, and each answer's status mapped to a [`ProviderError`]), `flag` says what a
//! flag's environment means to flagramp (its on and off variations, the percentage its default
//! rule serves, what it refuses, and the semantic patch for a new value), and this module is the
//! [`FlagProvider`] that reads through both and writes with compare-and-swap.

mod client;
mod flag;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::state::FlagValue;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://app.launchdarkly.com";

/// The REST API version flagramp is written against, sent on every request.
pub const API_VERSION: &str = "20240415";

/// The `Content-Type` of a semantic patch.
pub const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// How long one request may take by default, its retries and rate-limit waits included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One flag in one LaunchDarkly project and environment.
#[derive(Clone)]
pub struct LaunchDarklyFlag {
    base_url: String,
    project: String,
    environment: String,
    token: String,
    key: String,
    on_variation: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for LaunchDarklyFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("LaunchDarklyFlag")
            .field("base_url", &self.base_url)
            .field("project", &self.project)
            .field("environment", &self.environment)
            .field("key", &self.key)
            .field("on_variation", &self.on_variation)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LaunchDarklyFlag {
    /// The flag `key` in `project`/`environment`, with an API access token.
    pub fn new(
        base_url: &str,
        project: &str,
        environment: &str,
        token: String,
        key: &str,
        on_variation: Option<String>,
    ) -> LaunchDarklyFlag {
        LaunchDarklyFlag {
            base_url: base_url.trim_end_matches('/').to_string(),
            project: project.into(),
            environment: environment.into(),
            token,
            key: key.into(),
            on_variation,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same flag with another timeout per request (retries and waits included).
    pub fn with_timeout(mut self, timeout: Duration) -> LaunchDarklyFlag {
        self.timeout = timeout;
        self
    }

    /// The flag, project and environment, for messages.
    pub(super) fn named(&self) -> String {
        format!(
            "flag `{}` in LaunchDarkly project `{}`, environment `{}`",
            self.key, self.project, self.environment
        )
    }
}

#[async_trait::async_trait]
impl FlagProvider for LaunchDarklyFlag {
    fn describe(&self) -> String {
        format!("LaunchDarkly {}/{}", self.project, self.environment)
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let flag = self.fetch().await?;
        Ok(self.understand(&flag)?.reading)
    }

    async fn set(&self, to: FlagValue, seen: &FlagReading, _note: &ChangeNote) -> Result<FlagReading, ProviderError> {
        let current = self.understand(&self.fetch().await?)?;
        if current.reading.version != seen.version {
            return Err(ProviderError::Conflict(format!(
                "{} changed since it was read (version {} is now {}); nothing was written",
                self.named(),
                seen.version,
                current.reading.version
            )));
        }
        let body = json!({
            "environmentKey": self.environment,
            "comment": format!("flagramp: {} (was {})", to.describe(), current.reading.value.describe()),
            "instructions": self.instructions(&current, to),
        });
        let answer = self.exchange(Method::PATCH, &self.flag_url(), Some(&body)).await?;
        if answer.status != 200 {
            return Err(self.failure(&answer, true));
        }
        let back = self.read().await?;
        if back.value != to {
            return Err(ProviderError::Io(format!(
                "{} reads back {} after setting {}",
                self.named(),
                back.value.describe(),
                to.describe()
            )));
        }
        Ok(back)
    }
}

#[cfg(test)]
mod tests {
    use super::client::mentions_pending_change;
    use super::flag::render;
    use super::*;
    use crate::percent::pct;
    use crate::percent::Percent;
    use serde_json::Value;

    fn flag(variations: Value, env: Value) -> Value {
        json!({ "_version": 3, "variations": variations, "environments": { "production": env } })
    }

    fn boolean(env: Value) -> Value {
        flag(
            json!([{ "_id": "t", "value": true }, { "_id": "f", "value": false }]),
            env,
        )
    }

    fn provider(on_variation: Option<&str>) -> LaunchDarklyFlag {
        LaunchDarklyFlag::new(
            "http://127.0.0.1:1/",
            "default",
            "production",
            "api-secret-token".into(),
            "new-checkout",
            on_variation.map(str::to_string),
        )
    }

    #[test]
    fn reads_boolean_fallthroughs() {
        let p = provider(None);
        let read = |env: Value| p.understand(&boolean(env)).map(|u| u.reading.value);
        let base = json!({ "on": true, "offVariation": 1, "version": 7 });
        let with = |extra: Value| {
            let mut env = base.clone();
            env.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            env
        };
        assert_eq!(
            read(with(json!({ "fallthrough": { "variation": 0 } }))),
            Ok(FlagValue::on(Percent::FULL))
        );
        assert_eq!(
            read(with(json!({ "fallthrough": { "variation": 1 } }))),
            Ok(FlagValue::OFF)
        );
        assert_eq!(
            read(with(json!({ "on": false, "fallthrough": { "variation": 0 } }))),
            Ok(FlagValue::OFF)
        );
        let rollout = |on: u64, off: u64| {
            with(json!({ "fallthrough": { "rollout": { "variations": [
                { "variation": 0, "weight": on }, { "variation": 1, "weight": off }
            ] } } }))
        };
        assert_eq!(
            read(rollout(12_500, 87_500)),
            Ok(FlagValue::on(Percent::from_millis(12_500).unwrap()))
        );
        assert_eq!(read(rollout(0, 100_000)), Ok(FlagValue::OFF));
        assert_eq!(read(rollout(50, 50)), Ok(FlagValue::on(pct(50))));
        assert!(matches!(read(rollout(0, 0)), Err(ProviderError::CannotOwn(_))));
        let version = p.understand(&boolean(rollout(1, 1))).unwrap().reading.version;
        assert_eq!(version, "3.7");
    }

    #[test]
    fn a_boolean_flag_that_serves_true_when_off_is_not_owned() {
        let p = provider(None);
        let env = json!({ "on": false, "offVariation": 0, "fallthrough": { "variation": 1 } });
        let e = p.understand(&boolean(env)).unwrap_err();
        assert!(
            matches!(&e, ProviderError::CannotOwn(m) if m.contains("when targeting is off")),
            "{e:?}"
        );
    }

    #[test]
    fn renders_values_for_on_variation() {
        assert_eq!(render(&json!("express")), "express");
        assert_eq!(render(&json!(3)), "3");
        assert_eq!(render(&json!({ "v": 2 })), r#"{"v":2}"#);
    }

    #[test]
    fn pending_change_messages() {
        assert!(mentions_pending_change(
            "HTTP 400: this change would conflict with a scheduled change"
        ));
        assert!(mentions_pending_change("pending Approval request"));
        assert!(!mentions_pending_change("HTTP 400: invalid rollout weights"));
        assert!(!mentions_pending_change("HTTP 400: conflicting instructions"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let shown = format!("{:?}", provider(None));
        assert!(!shown.contains("api-secret-token"), "{shown}");
        assert!(shown.contains("new-checkout"));
    }
}
