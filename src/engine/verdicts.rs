//! Check verdicts (docs/rules.md §3, rule 5): what each check's condition makes of what its
//! source measured, and how the results sort into failing (rule 6), waiting (rule 5's hold) and
//! passing. Rules and manual commands both read checks through here, so every reason phrases a
//! check the same way.

use crate::check::{sig4, Measured, Measurement, Verdict};
use crate::record::CheckRecord;
use crate::spec::{CheckSpec, NoDataPolicy, RolloutSpec};

/// Applies each check's condition to what its source measured (and, for a check compared with a
/// control query, to what the control measured). A control without a value leaves the check
/// without a verdict to give: no data, or an error, like its own query.
pub fn check_records(checks: &[CheckSpec], measured: &[Measured]) -> Vec<CheckRecord> {
    checks
        .iter()
        .zip(measured)
        .map(|(check, measured)| {
            let control_value = match &measured.control {
                Some(Measurement::Value(c)) => Some(*c),
                _ => None,
            };
            let (value, verdict, detail) = match (&measured.measurement, &measured.control) {
                (Measurement::Value(v), None | Some(Measurement::Value(_))) => {
                    let passes = check
                        .pass
                        .bound(control_value)
                        .is_some_and(|bound| check.pass.holds_against(*v, bound));
                    (Some(*v), if passes { Verdict::Pass } else { Verdict::Fail }, None)
                }
                (Measurement::Value(v), Some(Measurement::NoData(why))) => (
                    Some(*v),
                    Verdict::NoData,
                    Some(format!("the control query has no data: {why}")),
                ),
                (Measurement::Value(v), Some(Measurement::Error(why))) => (
                    Some(*v),
                    Verdict::Error,
                    Some(format!("the control query failed: {why}")),
                ),
                (Measurement::NoData(why), _) => (None, Verdict::NoData, Some(why.clone())),
                (Measurement::Error(why), _) => (None, Verdict::Error, Some(why.clone())),
            };
            CheckRecord {
                name: check.name.clone(),
                query: check.probe.describe(),
                value,
                condition: check.pass.to_string(),
                verdict,
                detail,
                at: Some(measured.at),
                gate: check.gate,
                control_value,
            }
        })
        .collect()
}

pub(super) fn check_phrase(check: &CheckSpec, record: &CheckRecord) -> String {
    match (record.verdict, record.value) {
        (Verdict::Fail, Some(v)) => format!(
            "{} {} (needs {})",
            record.name,
            check.pass.describe_actual(v, record.control_value),
            record.condition
        ),
        (Verdict::NoData, _) => format!(
            "{} has no data ({})",
            record.name,
            record.detail.as_deref().unwrap_or("empty result")
        ),
        (Verdict::Error, _) => format!(
            "{} could not be measured: {}",
            record.name,
            record.detail.as_deref().unwrap_or("source error")
        ),
        (_, Some(v)) => match record.control_value {
            Some(c) => format!(
                "{} {} against control {} (needs {})",
                record.name,
                sig4(v),
                sig4(c),
                record.condition
            ),
            None => format!("{} {} (needs {})", record.name, sig4(v), record.condition),
        },
        (_, None) => format!("{} {}", record.name, record.verdict.as_str()),
    }
}

/// How the checks came out, sorted into what each rule needs.
pub(super) struct Verdicts<'c> {
    pub(super) failing: Vec<String>,
    pub(super) waiting: Vec<String>,
    pub(super) passing: usize,
    /// Shadow checks (`gate: false`) that did not pass: reported, never acted on.
    pub(super) shadow: Vec<String>,
    /// The rollout gates on time alone (`policy.time_only`).
    pub(super) time_only: bool,
    pub(super) records: &'c [CheckRecord],
}

impl<'c> Verdicts<'c> {
    pub(super) fn sort(spec: &RolloutSpec, records: &'c [CheckRecord]) -> Verdicts<'c> {
        let mut v = Verdicts {
            failing: Vec::new(),
            waiting: Vec::new(),
            passing: 0,
            shadow: Vec::new(),
            time_only: spec.policy.time_only,
            records,
        };
        for (check, record) in spec.checks.iter().zip(records) {
            if !check.gate {
                if record.verdict != Verdict::Pass {
                    v.shadow.push(check_phrase(check, record));
                }
                continue;
            }
            match record.verdict {
                Verdict::Pass => v.passing += 1,
                Verdict::Fail => v.failing.push(check_phrase(check, record)),
                Verdict::NoData if check.on_no_data == NoDataPolicy::Fail => v
                    .failing
                    .push(format!("{} (on_no_data: fail)", check_phrase(check, record))),
                Verdict::NoData | Verdict::Error => v.waiting.push(check_phrase(check, record)),
            }
        }
        v
    }

    pub(super) fn all_pass(&self) -> bool {
        self.failing.is_empty() && self.waiting.is_empty()
    }

    pub(super) fn summary(&self) -> String {
        let gating = match self.passing {
            0 if self.time_only => "no metric gate (policy.time_only)".to_string(),
            0 => "no checks to pass".to_string(),
            1 => "the check passes".to_string(),
            2 => "both checks pass".to_string(),
            n => format!("all {n} checks pass"),
        };
        if self.shadow.is_empty() {
            gating
        } else {
            format!("{gating} (shadow, not acted on: {})", self.shadow.join("; "))
        }
    }
}
