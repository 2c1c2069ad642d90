//! Check verdicts (docs/rules.md §3, rule 5): what each check's condition makes of what its
//! source measured, and how the results sort into failing (rule 6), waiting (rule 5's hold) and
//! passing. Rules and manual commands both read checks through here, so every reason phrases a
//! check the same way.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::check::{sig4, Measured, Measurement, Measurements, Verdict};
use crate::percent::Percent;
use crate::record::CheckRecord;
use crate::spec::{CheckSpec, CheckTest, NoDataPolicy, RolloutSpec, ThresholdTest};
use crate::state::CompareLooks;

/// What judging a check needs besides its answers: where the rollout is and what it measured
/// before in this stage (for `compare` checks, docs/statistics.md).
#[derive(Debug, Clone, Copy)]
pub struct Judging<'a> {
    /// The flag's percentage the data was gathered at.
    pub percent: Percent,
    /// When the current stage was entered.
    pub stage_entered: Option<DateTime<Utc>>,
    /// The `compare` checks' looks at this stage so far, by check name (from the state).
    pub looks: &'a BTreeMap<String, CompareLooks>,
    /// The exposure to expect in the data instead of `percent` (a backtest replays data gathered
    /// at another percentage).
    pub exposure: Option<Percent>,
}

/// No looks yet: a rollout without state.
static NO_LOOKS: BTreeMap<String, CompareLooks> = BTreeMap::new();

impl Default for Judging<'_> {
    /// Judging at 0%, before any stage was entered: enough for checks other than `compare`.
    fn default() -> Self {
        Judging {
            percent: Percent::default(),
            stage_entered: None,
            looks: &NO_LOOKS,
            exposure: None,
        }
    }
}

/// Applies each check's test to what its source measured: a threshold check's condition to its
/// value (and, for a check compared with a control query, to the control's value; a control
/// without a value leaves the check without a verdict to give, like its own query), a compare
/// check's sequential test to its counts.
pub fn check_records(checks: &[CheckSpec], measured: &[Measured], judging: &Judging<'_>) -> Vec<CheckRecord> {
    checks
        .iter()
        .zip(measured)
        .map(|(check, measured)| {
            let mut record = CheckRecord {
                name: check.name.clone(),
                query: check.describe(),
                value: None,
                condition: check.condition(),
                verdict: Verdict::Error,
                detail: None,
                at: Some(measured.at),
                gate: check.gate,
                control_value: None,
                compare: None,
            };
            match (&check.test, &measured.what) {
                (CheckTest::Threshold(test), Measurements::Value { own, control }) => {
                    threshold(test, own, control.as_ref(), &mut record)
                }
                (CheckTest::Compare(test), Measurements::Counts(counts)) => {
                    super::compare::judge(check, test, counts, measured.at, judging, &mut record)
                }
                _ => record.detail = Some("internal: answers of another kind of check".into()),
            }
            record
        })
        .collect()
}

fn threshold(test: &ThresholdTest, own: &Measurement, control: Option<&Measurement>, record: &mut CheckRecord) {
    let control_value = match control {
        Some(Measurement::Value(c)) => Some(*c),
        _ => None,
    };
    let (value, verdict, detail) = match (own, control) {
        (Measurement::Value(v), None | Some(Measurement::Value(_))) => {
            let passes = test
                .pass
                .bound(control_value)
                .is_some_and(|bound| test.pass.holds_against(*v, bound));
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
    record.value = value;
    record.verdict = verdict;
    record.detail = detail;
    record.control_value = control_value;
}

pub(super) fn check_phrase(check: &CheckSpec, record: &CheckRecord) -> String {
    if let Some(phrase) = super::compare::phrase(record) {
        return phrase;
    }
    let pass = match &check.test {
        CheckTest::Threshold(t) => Some(&t.pass),
        CheckTest::Compare(_) => None,
    };
    match (record.verdict, record.value, pass) {
        (Verdict::Fail, Some(v), Some(pass)) => format!(
            "{} {} (needs {})",
            record.name,
            pass.describe_actual(v, record.control_value),
            record.condition
        ),
        (Verdict::NoData, _, _) => format!(
            "{} has no data ({})",
            record.name,
            record.detail.as_deref().unwrap_or("empty result")
        ),
        (Verdict::Error, _, _) => format!(
            "{} could not be measured: {}",
            record.name,
            record.detail.as_deref().unwrap_or("source error")
        ),
        (_, Some(v), _) => match record.control_value {
            Some(c) => format!(
                "{} {} against control {} (needs {})",
                record.name,
                sig4(v),
                sig4(c),
                record.condition
            ),
            None => format!("{} {} (needs {})", record.name, sig4(v), record.condition),
        },
        (_, None, _) => format!("{} {}", record.name, record.verdict.as_str()),
    }
}

/// How the checks came out, sorted into what each rule needs.
pub(super) struct Verdicts<'c> {
    pub(super) failing: Vec<String>,
    pub(super) waiting: Vec<String>,
    pub(super) passing: usize,
    /// Shadow checks (`gate: false`) that did not pass: reported, never acted on.
    pub(super) shadow: Vec<String>,
    /// Compare checks whose cohorts do not fit the stage's percentage (rule `srm`).
    pub(super) mismatched: Vec<String>,
    /// Compare checks skipped at 100%, where there is no control cohort.
    pub(super) skipped: Vec<String>,
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
            mismatched: Vec::new(),
            skipped: Vec::new(),
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
            if let Some(srm) = record
                .compare
                .as_ref()
                .and_then(|c| c.srm.as_ref())
                .filter(|s| s.mismatch)
            {
                v.mismatched.push(format!("{}: {}", check.name, srm.describe()));
            }
            match record.verdict {
                Verdict::Pass => v.passing += 1,
                Verdict::Skipped => v.skipped.push(check_phrase(check, record)),
                Verdict::Insufficient => v.waiting.push(check_phrase(check, record)),
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
        self.failing.is_empty() && self.waiting.is_empty() && self.mismatched.is_empty()
    }

    pub(super) fn summary(&self) -> String {
        let gating = match self.passing {
            0 if self.time_only => "no metric gate (policy.time_only)".to_string(),
            0 => "no checks to pass".to_string(),
            1 => "the check passes".to_string(),
            2 => "both checks pass".to_string(),
            n => format!("all {n} checks pass"),
        };
        let gating = if self.skipped.is_empty() {
            gating
        } else {
            format!("{gating} ({})", self.skipped.join("; "))
        };
        if self.shadow.is_empty() {
            gating
        } else {
            format!("{gating} (shadow, not acted on: {})", self.shadow.join("; "))
        }
    }
}
