//! Check verdicts (docs/rules.md §3, rule 5): what each check's condition makes of what its
//! source measured, and how the results sort into failing (rule 6), waiting (rule 5's hold) and
//! passing. Rules and manual commands both read checks through here, so every reason phrases a
//! check the same way.

use crate::check::{sig4, Measurement, Verdict};
use crate::record::CheckRecord;
use crate::spec::{CheckSpec, NoDataPolicy, RolloutSpec};

/// Applies each check's condition to what its source measured.
pub fn check_records(checks: &[CheckSpec], measurements: &[Measurement]) -> Vec<CheckRecord> {
    checks
        .iter()
        .zip(measurements)
        .map(|(check, measurement)| {
            let (value, verdict, detail) = match measurement {
                Measurement::Value(v) => (
                    Some(*v),
                    if check.pass.holds(*v) {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    },
                    None,
                ),
                Measurement::NoData(why) => (None, Verdict::NoData, Some(why.clone())),
                Measurement::Error(why) => (None, Verdict::Error, Some(why.clone())),
            };
            CheckRecord {
                name: check.name.clone(),
                query: check.probe.describe(),
                value,
                condition: check.pass.to_string(),
                verdict,
                detail,
            }
        })
        .collect()
}

pub(super) fn check_phrase(check: &CheckSpec, record: &CheckRecord) -> String {
    match (record.verdict, record.value) {
        (Verdict::Fail, Some(v)) => format!(
            "{} {} (needs {})",
            record.name,
            check.pass.describe_actual(v),
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
        (_, Some(v)) => format!("{} {} (needs {})", record.name, sig4(v), record.condition),
        (_, None) => format!("{} {}", record.name, record.verdict.as_str()),
    }
}

/// How the checks came out, sorted into what each rule needs.
pub(super) struct Verdicts<'c> {
    pub(super) failing: Vec<String>,
    pub(super) waiting: Vec<String>,
    pub(super) passing: usize,
    pub(super) records: &'c [CheckRecord],
}

impl<'c> Verdicts<'c> {
    pub(super) fn sort(spec: &RolloutSpec, records: &'c [CheckRecord]) -> Verdicts<'c> {
        let mut v = Verdicts {
            failing: Vec::new(),
            waiting: Vec::new(),
            passing: 0,
            records,
        };
        for (check, record) in spec.checks.iter().zip(records) {
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
        match self.passing {
            0 => "no checks to pass".to_string(),
            1 => "the check passes".to_string(),
            2 => "both checks pass".to_string(),
            n => format!("all {n} checks pass"),
        }
    }
}
