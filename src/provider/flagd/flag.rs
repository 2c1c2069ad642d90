//! What one flag in a flagd file means to flagramp: `state` is on/off, and a single `fractional`
//! rule of `on` then `off` (or no rule: the default variant) is the percentage, read through
//! [`reading_of`]. Anything else is refused. A new value is written by editing only this flag's
//! `state` and weights in the file's text, so every other byte survives.

use std::collections::HashMap;
use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::FlagdFile;
use crate::percent::Percent;
use crate::provider::{reading_of, ProviderError};
use crate::state::FlagValue;

/// The largest fractional weight flagramp reads. It writes thousandths of a percent (at most
/// 100000); far larger weights are a mistake, not a share.
const MAX_WEIGHT: u64 = u32::MAX as u64;

impl FlagdFile {
    pub(super) fn flag<'d>(&self, doc: &'d Value) -> Result<&'d Map<String, Value>, ProviderError> {
        let flags = doc.get("flags").and_then(Value::as_object).ok_or_else(|| {
            ProviderError::CannotOwn(format!(
                "flagd file {} has no `flags` object",
                self.shown_path.display()
            ))
        })?;
        flags.get(&self.key).and_then(Value::as_object).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "flag `{}` is not in {}: add it with variants {{\"on\": true, \"off\": false}} and \"state\": \"DISABLED\"",
                self.key,
                self.shown_path.display()
            ))
        })
    }

    pub(super) fn cannot_own(&self, why: &str) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "flag `{}` in {} {why}; flagramp only changes a flag whose targeting is empty or a fractional split of `on` then `off`, so it changed nothing",
            self.key,
            self.shown_path.display()
        ))
    }

    pub(super) fn understand(&self, flag: &Map<String, Value>) -> Result<FlagValue, ProviderError> {
        let variants = flag.get("variants").and_then(Value::as_object);
        if !variants.is_some_and(|v| v.contains_key("on") && v.contains_key("off")) {
            return Err(self.cannot_own("has no `on` and `off` variants"));
        }
        let enabled = match flag.get("state").and_then(Value::as_str) {
            Some("ENABLED") => true,
            Some("DISABLED") => false,
            _ => return Err(self.cannot_own("has a `state` other than ENABLED or DISABLED")),
        };
        let Some(targeting) = flag.get("targeting").filter(|t| is_a_rule(t)) else {
            // No rule: everyone gets the default variant.
            let percent = match flag.get("defaultVariant").and_then(Value::as_str) {
                Some("on") => Percent::FULL,
                _ => Percent::ZERO,
            };
            return Ok(reading_of(enabled, percent));
        };
        let rule = targeting
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("fractional"))
            .and_then(Value::as_array)
            .ok_or_else(|| self.cannot_own("has targeting other than a single `fractional` rule"))?;
        let buckets = match rule.first() {
            Some(first) if !first.is_array() => &rule[1..],
            _ => &rule[..],
        };
        let weight = |bucket: &Value, name: &str| -> Option<u64> {
            let pair = bucket.as_array()?;
            (pair.len() == 2 && pair[0].as_str() == Some(name)).then(|| pair[1].as_u64())?
        };
        let (on, off) = match buckets {
            [on, off] => (weight(on, "on"), weight(off, "off")),
            _ => (None, None),
        };
        let (Some(on), Some(off)) = (on, off) else {
            return Err(self.cannot_own("has a fractional rule that is not [\"on\", weight], [\"off\", weight]"));
        };
        if on > MAX_WEIGHT || off > MAX_WEIGHT {
            return Err(self.cannot_own(&format!(
                "has a fractional weight above {MAX_WEIGHT} (flagramp writes weights in thousandths of a percent, 0 to 100000)"
            )));
        }
        let percent = Percent::share(on, on + off)
            .ok_or_else(|| self.cannot_own("has a fractional rule whose weights add up to 0"))?;
        Ok(reading_of(enabled, percent))
    }

    fn broken(&self, why: String) -> ProviderError {
        ProviderError::CannotOwn(format!(
            "flagramp cannot change flag `{}` in {} without touching the rest of the file ({why}), so it changed nothing",
            self.key,
            self.shown_path.display()
        ))
    }
}

/// The file's `text` with each of `changes` made (each flag's `state` and fractional weights,
/// its `targeting` added or replaced when it has no rule yet), every other byte as it was, so
/// numbers, escapes and formatting that a JSON round trip would change survive. One pass: the
/// edits of all flags are found in the text as read (they never overlap, being in different
/// flags), spliced in from the end, and the result is checked once.
pub(super) fn rewrite_all(
    text: &str,
    doc: &Value,
    changes: &[(&FlagdFile, FlagValue)],
) -> Result<String, ProviderError> {
    let Some((first, _)) = changes.first() else {
        return Ok(text.to_string());
    };
    // The file's flags are found once, however many of them change.
    let flags = member(&members(text).map_err(|e| first.broken(e.to_string()))?, "flags")
        .and_then(|flags| members(flags.get()))
        .map_err(|e| first.broken(e.to_string()))?;
    let mut edits = Vec::new();
    for (flag, to) in changes {
        edits.extend(owned_flag_edits(text, &flags, &flag.key, *to).map_err(|e| flag.broken(e.to_string()))?);
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_string();
    for (span, replacement) in edits {
        out.replace_range(span, &replacement);
    }
    // The splice must have changed these flags and nothing else.
    let written: Value =
        serde_json::from_str(&out).map_err(|e| first.broken(format!("the result is not JSON: {e}")))?;
    let without_ours = |d: &Value| {
        let mut d = d.clone();
        if let Some(flags) = d.get_mut("flags").and_then(Value::as_object_mut) {
            for (flag, _) in changes {
                flags.shift_remove(&flag.key);
            }
        }
        d
    };
    if without_ours(&written) != without_ours(doc) {
        return Err(first.broken("the result changes other flags".into()));
    }
    for (flag, to) in changes {
        if flag.understand(flag.flag(&written)?)? != *to {
            return Err(flag.broken(format!("the result does not read as {}", to.describe())));
        }
    }
    Ok(out)
}

/// Why a flag's text could not be edited in place (shown inside [`ProviderError::CannotOwn`]).
#[derive(Debug, thiserror::Error)]
enum EditError {
    /// A part of the file that does not parse as JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// An object without a member the edit needs.
    #[error("no `{0}`")]
    NoMember(String),
    /// A shape the edit cannot work in (`a short rule`, `an empty flag object`, …).
    #[error("{0}")]
    Shape(&'static str),
}

/// Whether a flag's `targeting` holds a rule: absent, `null` and `{}` mean none.
fn is_a_rule(targeting: &Value) -> bool {
    !targeting.is_null() && targeting.as_object().is_none_or(|o| !o.is_empty())
}

/// An object's members as raw text borrowed from the file; the last of duplicate keys wins, as
/// when the file is parsed into a document.
fn members(text: &str) -> Result<HashMap<String, &RawValue>, EditError> {
    Ok(serde_json::from_str(text)?)
}

fn member<'t>(members: &HashMap<String, &'t RawValue>, key: &str) -> Result<&'t RawValue, EditError> {
    members
        .get(key)
        .copied()
        .ok_or_else(|| EditError::NoMember(key.to_string()))
}

/// Where `part`, a slice borrowed from `whole`, lies in it.
fn span(whole: &str, part: &RawValue) -> Result<Range<usize>, EditError> {
    let part = part.get();
    (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .map(|start| start..start + part.len())
        .filter(|s| s.end <= whole.len())
        .ok_or(EditError::Shape("a value outside the file"))
}

/// The replacements in `text` that set the flag `key`, one of the file's `flags`, to `to`.
fn owned_flag_edits<'t>(
    text: &'t str,
    flags: &HashMap<String, &'t RawValue>,
    key: &str,
    to: FlagValue,
) -> Result<Vec<(Range<usize>, String)>, EditError> {
    let flag_raw = member(flags, key)?;
    let flag = members(flag_raw.get())?;
    let mut edits = Vec::new();

    let state = member(&flag, "state")?;
    let wanted = if to.enabled { "ENABLED" } else { "DISABLED" };
    if serde_json::from_str::<String>(state.get()).ok().as_deref() != Some(wanted) {
        edits.push((span(text, state)?, format!("\"{wanted}\"")));
    }
    if !to.enabled {
        // Turning off keeps the rule, so turning on again serves the same users.
        return Ok(edits);
    }
    let on = to.percent.millis();
    let weights = [on, Percent::FULL.millis() - on];
    let targeting = flag.get("targeting").copied();
    let has_rule = targeting
        .map(|t| serde_json::from_str::<Value>(t.get()).is_ok_and(|v| is_a_rule(&v)))
        .unwrap_or(false);
    match targeting {
        Some(targeting) if has_rule => {
            // `[bucketing input?, ["on", w], ["off", w]]`: only the two weights change.
            let rule = member(&members(targeting.get())?, "fractional")?;
            let buckets: Vec<&RawValue> = serde_json::from_str(rule.get())?;
            let last_two = buckets
                .len()
                .checked_sub(2)
                .map(|i| &buckets[i..])
                .ok_or(EditError::Shape("a short rule"))?;
            for (bucket, weight) in last_two.iter().zip(weights) {
                let pair: Vec<&RawValue> = serde_json::from_str(bucket.get())?;
                let old = pair.get(1).ok_or(EditError::Shape("a bucket without a weight"))?;
                edits.push((span(text, old)?, weight.to_string()));
            }
        }
        _ => {
            let style = MemberStyle::of(text, flag_raw, &flag)?;
            let rule = style.rule(weights);
            match targeting {
                Some(empty) => edits.push((span(text, empty)?, rule)),
                None => {
                    let end = flag
                        .values()
                        .map(|v| span(text, v).map(|s| s.end))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .max()
                        .ok_or(EditError::Shape("an empty flag object"))?;
                    edits.push((end..end, format!(",{}\"targeting\"{}{rule}", style.lead, style.colon)));
                }
            }
        }
    }
    Ok(edits)
}

/// How an object's members are laid out, so a new member looks like its neighbours.
struct MemberStyle<'t> {
    /// What comes between `{` (or `,`) and a key: a newline and indentation, or nothing.
    lead: &'t str,
    /// What comes between a key and its value: `:`, `: `, ` : `.
    colon: &'t str,
}

impl<'t> MemberStyle<'t> {
    fn of(
        text: &'t str,
        object: &RawValue,
        members: &HashMap<String, &RawValue>,
    ) -> Result<MemberStyle<'t>, EditError> {
        let object = span(text, object)?;
        let inner = &text[object.start + 1..object.end];
        let lead = &inner[..inner.len() - inner.trim_start().len()];
        let key_start = object.start + 1 + lead.len();
        let first_value = members
            .values()
            .map(|v| span(text, v).map(|s| s.start))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min()
            .ok_or(EditError::Shape("an empty flag object"))?;
        let key_and_colon = text
            .get(key_start..first_value)
            .ok_or(EditError::Shape("a member out of order"))?;
        let colon_at = key_and_colon
            .rfind(':')
            .ok_or(EditError::Shape("a member without `:`"))?;
        let colon_start = key_and_colon[..colon_at].trim_end().len();
        Ok(MemberStyle {
            lead,
            colon: &key_and_colon[colon_start..],
        })
    }

    fn rule(&self, [on, off]: [u32; 2]) -> String {
        if self.colon.contains(' ') {
            format!("{{\"fractional\": [[\"on\", {on}], [\"off\", {off}]]}}")
        } else {
            format!("{{\"fractional\":[[\"on\",{on}],[\"off\",{off}]]}}")
        }
    }
}
