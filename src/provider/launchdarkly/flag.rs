//! What a LaunchDarkly flag means to flagramp: which variations are "on" and "off", the share
//! of users its default rule (fallthrough) gives "on", what it refuses to take over (other
//! variations, guarded rollouts, experiments), and the semantic patch instructions that set a new
//! value while keeping who is bucketed how.

use serde_json::{json, Map, Value};

use super::LaunchDarklyFlag;
use crate::percent::Percent;
use crate::provider::{reading_of, FlagReading, ProviderError};
use crate::state::FlagValue;

/// Rollout weights are thousandths of a percent: 100% is this.
const FULL_WEIGHT: u64 = 100_000;

/// A variation as flagramp refers to it.
#[derive(Debug, Clone)]
pub(super) struct Variation {
    pub(super) index: usize,
    pub(super) id: String,
    pub(super) shown: String,
}

/// What flagramp understood of the flag in its environment.
#[derive(Debug)]
pub(super) struct Understood {
    pub(super) reading: FlagReading,
    /// The environment's targeting switch.
    pub(super) on: bool,
    pub(super) on_variation: Variation,
    pub(super) off_variation: Variation,
    /// The current fallthrough rollout's context kind and bucketing attribute, kept on writes.
    pub(super) context_kind: Option<String>,
    pub(super) bucket_by: Option<String>,
}

impl LaunchDarklyFlag {
    pub(super) fn malformed(&self, what: &str) -> ProviderError {
        ProviderError::Io(format!(
            "LaunchDarkly's answer for {} is not a flag as expected: {what}",
            self.named()
        ))
    }

    pub(super) fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "{} {why}; flagramp only changes a flag whose default rule serves its on or off variation, or a percentage rollout between the two, so it changed nothing",
            self.named()
        ))
    }

    pub(super) fn refused(&self, why: &str) -> ProviderError {
        ProviderError::Refused(format!(
            "{} {why}; flagramp does not take traffic from LaunchDarkly's own rollout and experiment features, so it changed nothing. Stop or finish it in LaunchDarkly first",
            self.named()
        ))
    }

    /// Picks the "on" and "off" variations.
    pub(super) fn variations(
        &self,
        flag: &Value,
        env: &Map<String, Value>,
    ) -> Result<(Variation, Variation), ProviderError> {
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
    pub(super) fn understand(&self, flag: &Value) -> Result<Understood, ProviderError> {
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
    pub(super) fn instructions(&self, current: &Understood, to: FlagValue) -> Vec<Value> {
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

/// A variation's value as `on_variation` may name it: strings bare, anything else as JSON.
pub(super) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
