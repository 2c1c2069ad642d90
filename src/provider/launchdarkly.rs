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

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{reading_of, FlagProvider, FlagReading, ProviderError};
use crate::http::{self, encode_segment, Answer};
use crate::percent::Percent;
use crate::state::FlagValue;

/// The public API.
pub const DEFAULT_BASE_URL: &str = "https://app.launchdarkly.com";

/// The REST API version flagramp is written against, sent on every request.
pub const API_VERSION: &str = "20240415";

/// The `Content-Type` of a semantic patch.
pub const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// How long one request may take by default, its retries and rate-limit waits included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rollout weights are thousandths of a percent: 100% is this.
const FULL_WEIGHT: u64 = 100_000;

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

/// A variation as flagramp refers to it.
#[derive(Debug, Clone)]
struct Variation {
    index: usize,
    id: String,
    shown: String,
}

/// What flagramp understood of the flag in its environment.
#[derive(Debug)]
struct Understood {
    reading: FlagReading,
    /// The environment's targeting switch.
    on: bool,
    on_variation: Variation,
    off_variation: Variation,
    /// The current fallthrough rollout's context kind and bucketing attribute, kept on writes.
    context_kind: Option<String>,
    bucket_by: Option<String>,
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

    fn flag_url(&self) -> String {
        format!(
            "{}/api/v2/flags/{}/{}",
            self.base_url,
            encode_segment(&self.project),
            encode_segment(&self.key)
        )
    }

    fn headers(&self, semantic_patch: bool) -> Vec<(&'static str, String)> {
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

    /// The flag, project and environment, for messages.
    fn named(&self) -> String {
        format!(
            "flag `{}` in LaunchDarkly project `{}`, environment `{}`",
            self.key, self.project, self.environment
        )
    }

    /// Text from LaunchDarkly (or the network) made safe to show: never the token, never long.
    fn scrub(&self, text: &str) -> String {
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
    fn status_detail(&self, answer: &Answer) -> String {
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
    fn failure(&self, answer: &Answer, writing: bool) -> ProviderError {
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

    async fn exchange(&self, method: Method, url: &str, body: Option<&Value>) -> Result<Answer, ProviderError> {
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
            let e = self.scrub(&e);
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

    async fn fetch(&self) -> Result<Value, ProviderError> {
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

    fn malformed(&self, what: &str) -> ProviderError {
        ProviderError::Io(format!(
            "LaunchDarkly's answer for {} is not a flag as expected: {what}",
            self.named()
        ))
    }

    fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "{} {why}; flagramp only changes a flag whose default rule serves its on or off variation, or a percentage rollout between the two, so it changed nothing",
            self.named()
        ))
    }

    fn refused(&self, why: &str) -> ProviderError {
        ProviderError::Refused(format!(
            "{} {why}; flagramp does not take traffic from LaunchDarkly's own rollout and experiment features, so it changed nothing. Stop or finish it in LaunchDarkly first",
            self.named()
        ))
    }

    /// Picks the "on" and "off" variations.
    fn variations(&self, flag: &Value, env: &Map<String, Value>) -> Result<(Variation, Variation), ProviderError> {
        let list = flag
            .get("variations")
            .and_then(Value::as_array)
            .ok_or_else(|| self.malformed("it has no `variations` list"))?;
        let mut variations = Vec::with_capacity(list.len());
        for (index, v) in list.iter().enumerate() {
            let id = v
                .get("_id")
                .and_then(Value::as_str)
                .ok_or_else(|| self.malformed(&format!("variation {index} has no `_id`")))?;
            let value = v.get("value").unwrap_or(&Value::Null);
            let name = v.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
            let shown = match name {
                Some(n) => format!("`{n}` ({})", render(value)),
                None => format!("`{}`", render(value)),
            };
            variations.push((
                Variation {
                    index,
                    id: id.to_string(),
                    shown,
                },
                value.clone(),
                name.map(str::to_string),
            ));
        }
        let off_index = env.get("offVariation").and_then(Value::as_u64).map(|i| i as usize);
        let boolean = variations.len() == 2
            && variations.iter().any(|(_, v, _)| *v == Value::Bool(true))
            && variations.iter().any(|(_, v, _)| *v == Value::Bool(false));
        let listed = || {
            variations
                .iter()
                .map(|(v, _, _)| v.shown.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let on = match &self.on_variation {
            None if boolean => variations.iter().find(|(_, v, _)| *v == Value::Bool(true)),
            None => {
                return Err(ProviderError::CannotOwn(format!(
                    "{} is not a boolean flag (variations {}): set `flag.launchdarkly.on_variation` to the name or value of the variation the rollout serves",
                    self.named(),
                    listed()
                )))
            }
            Some(wanted) => {
                let by_name: Vec<_> = variations.iter().filter(|(_, _, n)| n.as_deref() == Some(wanted)).collect();
                let by_value: Vec<_> = variations.iter().filter(|(_, v, _)| render(v) == *wanted).collect();
                match (by_name.as_slice(), by_value.as_slice()) {
                    ([one], _) | ([], [one]) => Some(*one),
                    ([], []) => {
                        return Err(ProviderError::CannotOwn(format!(
                            "{} has no variation named or valued `{wanted}` (`flag.launchdarkly.on_variation`); its variations are {}",
                            self.named(),
                            listed()
                        )))
                    }
                    _ => {
                        return Err(ProviderError::CannotOwn(format!(
                            "{} has more than one variation named or valued `{wanted}` (`flag.launchdarkly.on_variation`); its variations are {}",
                            self.named(),
                            listed()
                        )))
                    }
                }
            }
        };
        let on = on.map(|(v, _, _)| v.clone()).expect("found above");
        let off = if boolean {
            let off = variations
                .iter()
                .find(|(v, _, _)| v.index != on.index)
                .map(|(v, _, _)| v.clone())
                .expect("two variations");
            if off_index.is_some_and(|i| i != off.index) {
                return Err(self.cannot_own(&format!("serves {} when targeting is off, not {}", on.shown, off.shown)));
            }
            off
        } else {
            let i = off_index.ok_or_else(|| self.malformed("the environment has no `offVariation`"))?;
            let off = variations
                .get(i)
                .map(|(v, _, _)| v.clone())
                .ok_or_else(|| self.malformed(&format!("`offVariation` {i} is not a variation")))?;
            if off.index == on.index {
                return Err(self.cannot_own(&format!("serves the on variation {} when targeting is off", on.shown)));
            }
            off
        };
        Ok((on, off))
    }

    /// What the flag document says, or why flagramp will not take it over.
    fn understand(&self, flag: &Value) -> Result<Understood, ProviderError> {
        if !flag.is_object() {
            return Err(self.malformed("the answer is not a JSON object"));
        }
        let flag_version = flag
            .get("_version")
            .and_then(Value::as_i64)
            .ok_or_else(|| self.malformed("it has no integer `_version`"))?;
        let env = flag
            .get("environments")
            .and_then(|e| e.get(&self.environment))
            .and_then(Value::as_object)
            .ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "flag `{}` in LaunchDarkly project `{}` has no environment `{}`: check `flag.launchdarkly.environment` (an environment key, not its name)",
                    self.key, self.project, self.environment
                ))
            })?;
        if flag.get("archived") == Some(&Value::Bool(true)) {
            return Err(self.cannot_own("is archived"));
        }
        if flag.get("_purpose").and_then(Value::as_str) == Some("migration")
            || flag.get("migrationSettings").is_some_and(|m| !m.is_null())
            || env.get("migrationSettings").is_some_and(|m| !m.is_null())
        {
            return Err(self.cannot_own("is a migration flag, whose stages LaunchDarkly's migration tooling steers"));
        }
        if let Some(items) = flag.pointer("/experiments/items").and_then(Value::as_array) {
            let here = items.iter().find(|item| {
                let listed = item.get("environments").and_then(Value::as_array);
                let settings = item.get("_environmentSettings").and_then(Value::as_object);
                match (listed, settings) {
                    (None, None) => true,
                    _ => {
                        listed.is_some_and(|l| l.iter().any(|e| e.as_str() == Some(&self.environment)))
                            || settings.is_some_and(|s| s.contains_key(&self.environment))
                    }
                }
            });
            if let Some(item) = here {
                let metric = item.get("metricKey").and_then(Value::as_str).unwrap_or("a metric");
                return Err(self.refused(&format!("is in an experiment measuring `{metric}` in this environment")));
            }
        }
        let on = env
            .get("on")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.malformed("the environment has no boolean `on`"))?;
        let env_version = env.get("version").and_then(Value::as_i64).unwrap_or(0);
        let fallthrough = env.get("fallthrough").and_then(Value::as_object);
        let rollout = fallthrough.and_then(|f| f.get("rollout")).filter(|r| !r.is_null());
        if let Some(allocation) = rollout
            .and_then(|r| r.get("experimentAllocation"))
            .filter(|a| !a.is_null())
        {
            let why = match allocation.get("type").and_then(Value::as_str) {
                Some("measuredRollout") => "has a guarded rollout on its default rule".to_string(),
                Some(other) => format!("has a `{other}` allocation on its default rule"),
                None => "has an experiment allocating its default rule's traffic".to_string(),
            };
            return Err(self.refused(&why));
        }
        let (on_variation, off_variation) = self.variations(flag, env)?;
        let mut context_kind = None;
        let mut bucket_by = None;
        let percent = if let Some(rollout) = rollout {
            context_kind = rollout.get("contextKind").and_then(Value::as_str).map(str::to_string);
            bucket_by = rollout.get("bucketBy").and_then(Value::as_str).map(str::to_string);
            let weighted = rollout
                .get("variations")
                .and_then(Value::as_array)
                .ok_or_else(|| self.malformed("the default rule's rollout has no `variations`"))?;
            let (mut on_weight, mut total) = (0u64, 0u64);
            for w in weighted {
                let index = w.get("variation").and_then(Value::as_u64);
                let weight = w.get("weight").and_then(Value::as_u64);
                let (Some(index), Some(weight)) = (index, weight) else {
                    return Err(self.malformed("a rollout weight has no `variation` index or `weight`"));
                };
                if weight == 0 {
                    continue;
                }
                if index as usize == on_variation.index {
                    on_weight += weight;
                } else if index as usize != off_variation.index {
                    return Err(self.cannot_own(&format!(
                        "has a default rule rollout that gives {} to variation {index}, which is neither the on variation {} nor the off variation {}",
                        Percent::from_millis(weight.min(FULL_WEIGHT) as u32).unwrap_or(Percent::FULL),
                        on_variation.shown,
                        off_variation.shown
                    )));
                }
                total += weight;
            }
            if total == 0 {
                return Err(self.cannot_own("has a default rule rollout whose weights add up to 0"));
            }
            let millis = (u128::from(on_weight) * u128::from(FULL_WEIGHT) + u128::from(total) / 2) / u128::from(total);
            Percent::from_millis(millis as u32).expect("a share of the total is at most 100%")
        } else {
            match fallthrough.and_then(|f| f.get("variation")).and_then(Value::as_u64) {
                Some(i) if i as usize == on_variation.index => Percent::FULL,
                Some(i) if i as usize == off_variation.index => Percent::ZERO,
                Some(i) => {
                    return Err(self.cannot_own(&format!(
                        "has a default rule serving variation {i} to everyone, which is neither the on variation {} nor the off variation {}",
                        on_variation.shown, off_variation.shown
                    )))
                }
                None => return Err(self.malformed("the environment's `fallthrough` has neither `variation` nor `rollout`")),
            }
        };
        let value = reading_of(on, percent);
        Ok(Understood {
            reading: FlagReading {
                value,
                version: format!("{flag_version}.{env_version}"),
            },
            on,
            on_variation,
            off_variation,
            context_kind,
            bucket_by,
        })
    }

    /// The semantic patch instructions that set the flag to `to`.
    fn instructions(&self, current: &Understood, to: FlagValue) -> Vec<Value> {
        if !to.enabled {
            return vec![json!({ "kind": "turnFlagOff" })];
        }
        let mut instructions = Vec::new();
        if !current.on {
            instructions.push(json!({ "kind": "turnFlagOn" }));
        }
        if to.percent == Percent::FULL {
            instructions.push(json!({
                "kind": "updateFallthroughVariationOrRollout",
                "variationId": current.on_variation.id,
            }));
        } else {
            let on = u64::from(to.percent.millis());
            let mut weights = Map::new();
            weights.insert(current.on_variation.id.clone(), json!(on));
            weights.insert(current.off_variation.id.clone(), json!(FULL_WEIGHT - on));
            let mut update = json!({
                "kind": "updateFallthroughVariationOrRollout",
                "rolloutWeights": weights,
            });
            // Keep who is bucketed how: a different context kind or attribute reshuffles users.
            if let Some(kind) = current.context_kind.as_deref().filter(|k| *k != "user") {
                update["rolloutContextKind"] = json!(kind);
            }
            if let Some(attribute) = current.bucket_by.as_deref().filter(|b| *b != "key") {
                update["rolloutBucketBy"] = json!(attribute);
            }
            instructions.push(update);
        }
        instructions
    }
}

/// Whether a 400's message is LaunchDarkly's "this would break a pending scheduled change or
/// approval request" (the `ignoreConflicts` case).
fn mentions_pending_change(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["scheduled", "approval", "pending", "ignoreconflicts"]
        .iter()
        .any(|word| m.contains(word))
}

/// A variation's value as `on_variation` may name it: strings bare, anything else as JSON.
fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
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

    async fn set(&self, to: FlagValue, seen: &FlagReading) -> Result<FlagReading, ProviderError> {
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
    use super::*;

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

    fn pct(p: u32) -> Percent {
        Percent::from_millis(p * 1000).unwrap()
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
