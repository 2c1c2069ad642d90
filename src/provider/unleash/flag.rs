//! What an Unleash feature means to flagramp: in its environment, the one `flexibleRollout`
//! strategy titled [`STRATEGY_TITLE`] is flagramp's, its `rollout` is the percentage, and the
//! environment's `enabled` is on/off. Anything else that steers the flag (another active strategy,
//! constraints, a release plan) is refused here, before anything is written.

use serde_json::{json, Map, Value};

use super::{UnleashFlag, STRATEGY_NAME, STRATEGY_TITLE};
use crate::fsutil::fingerprint;
use crate::percent::Percent;
use crate::provider::{reading_of, ProviderError};
use crate::state::FlagValue;

/// What flagramp understood of the flag in its environment.
#[derive(Debug)]
pub(super) struct Owned {
    pub(super) value: FlagValue,
    /// The environment is on.
    pub(super) enabled: bool,
    /// flagramp's strategy: id, rollout and whether it is disabled.
    pub(super) ours: Option<OurStrategy>,
    /// Fingerprint of the environment's `enabled` and `strategies`.
    pub(super) version: String,
}

#[derive(Debug)]
pub(super) struct OurStrategy {
    pub(super) id: String,
    pub(super) rollout: u32,
    pub(super) disabled: bool,
}

impl UnleashFlag {
    pub(super) fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "{} {why}; flagramp only changes a flag whose one active strategy in this environment is its own `{STRATEGY_NAME}` strategy titled \"{STRATEGY_TITLE}\" (or that has none yet), so it changed nothing",
            self.flag_name()
        ))
    }

    pub(super) fn malformed(&self, what: &str) -> ProviderError {
        ProviderError::Io(format!(
            "Unleash's answer for {} is not in the shape Unleash 8 uses: {what}; nothing was changed",
            self.flag_name()
        ))
    }

    /// Understands the feature JSON: refuses what flagramp must not own, else the value.
    pub(super) fn understand(&self, doc: &Value) -> Result<Owned, ProviderError> {
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

    pub(super) fn our_strategy(&self, s: &Map<String, Value>) -> Result<OurStrategy, ProviderError> {
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
