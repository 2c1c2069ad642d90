//! `compare` checks (docs/rules.md §2, docs/statistics.md): the exposed cohort's rate against the
//! control cohort's, judged with a test that stays valid however often the stage is evaluated.
//!
//! - `window: stage`: every suffix of the stage is tested (the data since each earlier evaluation,
//!   from the cumulative counts earlier records carry), start point j at `alpha·6/(π²j²)`, each
//!   with a confidence sequence, so a regression that begins late is judged on its own data.
//! - a fixed window: look k of the stage is a fresh sample tested at `alpha·6/(π²k²)`.
//!
//! The sample ratio check holds the rollout when the cohorts do not have the sizes the stage's
//! percentage means: such data cannot be trusted to advance nor to roll back.

use chrono::{DateTime, Utc};

use super::verdicts::Judging;
use crate::check::{CohortMeasured, CountsMeasured, Measurement, Verdict};
use crate::percent::Percent;
use crate::record::{CheckRecord, CohortRecord, CompareRecord, SrmRecord, StageCounts};
use crate::spec::{CheckSpec, CompareTest, CompareWindow};
use crate::state::{CompareLooks, RolloutState, StartPoint, START_POINT_CAP};
use crate::stats::{self, Counts, Margin};

/// A p-value below this is a sample ratio mismatch (as GrowthBook's check).
pub const SRM_P_VALUE: f64 = 0.001;

/// Without distinct-unit queries, requests stand in for users; heavy users skew request
/// shares, so a mismatch then also needs the exposed share off by more than this, relatively.
pub const SRM_REQUEST_TOLERANCE: f64 = 0.2;

/// Where a compare check's counted window starts for a query evaluated at `at`. A stage not yet
/// entered, or entered at or after `at`, has an empty window.
pub fn window_start(test: &CompareTest, stage_entered: Option<DateTime<Utc>>, at: DateTime<Utc>) -> DateTime<Utc> {
    match test.window {
        CompareWindow::Stage => stage_entered.unwrap_or(at),
        CompareWindow::Last(d) => d
            .to_chrono()
            .and_then(|d| at.checked_sub_signed(d))
            .unwrap_or(super::EARLIEST_TIME),
    }
}

/// Whether the counts need querying at all: at 100% there is no control cohort.
pub fn needs_counts(percent: Percent) -> bool {
    percent < Percent::FULL
}

pub(super) fn judge(
    check: &CheckSpec,
    test: &CompareTest,
    counts: &CountsMeasured,
    at: DateTime<Utc>,
    judging: &Judging<'_>,
    record: &mut CheckRecord,
) {
    if !needs_counts(judging.percent) {
        record.verdict = Verdict::Skipped;
        record.detail = Some("at 100% there is no control cohort to compare with".into());
        return;
    }
    if counts.since >= at {
        record.verdict = Verdict::Insufficient;
        record.detail = Some("the stage's window is still empty".into());
        return;
    }
    let canary = match cohort(&counts.canary, "canary") {
        Ok(c) => c,
        Err(problem) => return problem.apply(record),
    };
    let control = match cohort(&counts.control, "control") {
        Ok(c) => c,
        Err(problem) => return problem.apply(record),
    };
    let stage_counts = (test.window == CompareWindow::Stage).then_some(StageCounts {
        since: counts.since,
        canary: canary.record,
        control: control.record,
    });
    let looks = earlier_looks(&check.name, judging, at);
    let look = looks.map_or(0, |l| l.tests).saturating_add(1);
    let srm = sample_ratio(&canary, &control, judging);
    let mut evidence = CompareRecord {
        canary: canary.record,
        control: control.record,
        since: counts.since,
        difference: None,
        lower_bound: None,
        level: None,
        relative: matches!(test.margin, Margin::Relative(_)),
        allowed: test.margin.allowed(),
        alpha: test.alpha,
        look,
        window: match test.window {
            CompareWindow::Stage => "stage".into(),
            CompareWindow::Last(d) => d.to_string(),
        },
        stage_counts,
        srm,
    };
    let enough = |c: &Counts, k: &Counts| c.total >= test.min_samples && k.total >= test.min_samples;
    let judged = match test.window {
        CompareWindow::Stage => {
            // The stage's entry, then the earlier evaluations of this stage (for `window:
            // stage` the stage's entry is `since`).
            let earlier: Vec<&StartPoint> = looks
                .filter(|l| l.stage_entered == counts.since)
                .map(|l| l.points.iter().filter(|p| p.at < at).collect())
                .unwrap_or_default();
            let mut points = vec![stats::Start::entry()];
            points.extend(earlier.iter().map(|p| stats::Start {
                index: p.index,
                canary: counts_of(&p.canary),
                control: counts_of(&p.control),
            }));
            let now = (counts_of(&canary.record), counts_of(&control.record));
            let margin = test.margin;
            let tested = stats::suffix_test(
                &points,
                now,
                margin,
                test.alpha,
                stats::DEFAULT_TUNING,
                test.min_samples,
            )
            .or_else(|| {
                // A relative margin over a control without events has no estimate: judge
                // the absolute difference instead (docs/statistics.md).
                matches!(margin, Margin::Relative(_))
                    .then(|| {
                        stats::suffix_test(
                            &points,
                            now,
                            Margin::Absolute(0.0),
                            test.alpha,
                            stats::DEFAULT_TUNING,
                            test.min_samples,
                        )
                    })
                    .flatten()
            });
            tested.map(|t| {
                let since = match t.position {
                    0 => counts.since,
                    j => earlier.get(j - 1).map_or(counts.since, |p| p.at),
                };
                (t.canary, t.control, t.bound, since)
            })
        }
        CompareWindow::Last(_) => {
            let (c, k) = (counts_of(&canary.record), counts_of(&control.record));
            let alpha = stats::spent_alpha(test.alpha, look);
            enough(&c, &k)
                .then(|| {
                    stats::fixed_lower_bound(c, k, test.margin, alpha)
                        .or_else(|| stats::fixed_lower_bound(c, k, Margin::Absolute(0.0), alpha))
                })
                .flatten()
                .map(|b| (c, k, b, counts.since))
        }
    };
    match judged {
        Some((c, k, bound, since)) => {
            let relative = evidence.relative && k.rate().is_some_and(|r| r > 0.0);
            evidence.canary = with_counts(evidence.canary, c);
            evidence.control = with_counts(evidence.control, k);
            evidence.since = since;
            evidence.difference = Some(bound.difference);
            evidence.lower_bound = Some(bound.lower_bound);
            // The stage-wide guarantee: the bound was computed at a share of `alpha` (a start
            // point's or a look's), so it also holds at `1 − alpha`, and that is what the
            // user set (docs/statistics.md).
            evidence.level = Some(1.0 - test.alpha);
            let margin = if relative {
                test.margin
            } else {
                Margin::Absolute(if evidence.relative { 0.0 } else { test.margin.allowed() })
            };
            evidence.relative = relative;
            evidence.allowed = margin.allowed();
            record.verdict = if bound.exceeds(margin) {
                Verdict::Fail
            } else {
                Verdict::Pass
            };
        }
        None => {
            record.verdict = Verdict::Insufficient;
            record.detail = Some(format!(
                "canary {} / control {} {}, needs {} in each",
                crate::record::thousands(canary.record.total),
                crate::record::thousands(control.record.total),
                "requests",
                crate::record::thousands(test.min_samples)
            ));
        }
    }
    record.compare = Some(evidence);
}

/// This check's looks at the current stage so far; `None` before its first, or when what the
/// state holds belongs to an earlier stage.
fn earlier_looks<'j>(name: &str, judging: &Judging<'j>, at: DateTime<Utc>) -> Option<&'j CompareLooks> {
    let entered = judging.stage_entered?;
    judging
        .looks
        .get(name)
        .filter(|l| l.stage_entered == entered && entered < at)
}

/// Counts a look into the state: a test spends the next share of `alpha`, and a stage's
/// cumulative counts become a start point for later suffixes (docs/statistics.md, "Looks").
/// Returns whether anything changed.
pub(super) fn note_look(state: &mut RolloutState, record: &CheckRecord) -> bool {
    let (Some(compare), Some(entered)) = (&record.compare, state.stage_entered_at) else {
        return false;
    };
    let tested = compare.lower_bound.is_some();
    let point = compare.stage_counts.filter(|s| s.since == entered);
    if !tested && point.is_none() {
        return false;
    }
    let looks = state
        .compare
        .entry(record.name.clone())
        .or_insert_with(|| CompareLooks {
            stage_entered: entered,
            tests: 0,
            points_seen: 0,
            points: Vec::new(),
        });
    if looks.stage_entered != entered {
        *looks = CompareLooks {
            stage_entered: entered,
            tests: 0,
            points_seen: 0,
            points: Vec::new(),
        };
    }
    if tested {
        looks.tests = looks.tests.saturating_add(1);
    }
    if let Some(point) = point {
        looks.points_seen = looks.points_seen.saturating_add(1);
        looks.points.push(StartPoint {
            index: looks.points_seen,
            at: record.at.unwrap_or(entered),
            canary: point.canary,
            control: point.control,
        });
        if looks.points.len() > START_POINT_CAP {
            let excess = looks.points.len() - START_POINT_CAP;
            looks.points.drain(..excess);
        }
    }
    true
}

struct Cohort {
    record: CohortRecord,
}

/// Why a cohort's counts cannot be judged: the verdict it means and the detail.
struct Problem(Verdict, String);

impl Problem {
    fn apply(self, record: &mut CheckRecord) {
        record.verdict = self.0;
        record.detail = Some(self.1);
    }
}

fn cohort(measured: &CohortMeasured, which: &str) -> Result<Cohort, Problem> {
    let value = |m: &Measurement, what: &str| match m {
        Measurement::Value(v) if *v >= 0.0 => Ok(*v),
        Measurement::Value(v) => Err(Problem(
            Verdict::Error,
            format!("{which} {what} is negative ({v}): a count cannot be"),
        )),
        Measurement::NoData(why) => Err(Problem(Verdict::NoData, format!("{which} {what}: {why}"))),
        Measurement::Error(why) => Err(Problem(Verdict::Error, format!("{which} {what}: {why}"))),
    };
    let events = value(&measured.events, "events")?;
    let total = value(&measured.total, "total")?;
    let units = measured.units.as_ref().map(|u| value(u, "units")).transpose()?;
    if events > total {
        return Err(Problem(
            Verdict::Error,
            format!(
                "{which} events ({}) exceed its total ({}): check that `events` counts a part of what `total` counts",
                crate::record::thousands(events),
                crate::record::thousands(total)
            ),
        ));
    }
    Ok(Cohort {
        record: CohortRecord {
            events,
            total,
            rate: (total > 0.0).then(|| events / total),
            units,
        },
    })
}

fn sample_ratio(canary: &Cohort, control: &Cohort, judging: &Judging<'_>) -> Option<SrmRecord> {
    let share = judging.exposure.unwrap_or(judging.percent).as_f64() / 100.0;
    let (exposed, other, counted) = match (canary.record.units, control.record.units) {
        (Some(c), Some(k)) => (c, k, Counted::Users),
        _ => (canary.record.total, control.record.total, Counted::Requests),
    };
    let (ratio, mismatch) = ratio_mismatch(exposed, other, counted, share)?;
    Some(SrmRecord {
        counted: counted.as_str().into(),
        exposed: ratio.exposed,
        total: ratio.total,
        expected_share: ratio.expected_share,
        observed_share: ratio.observed_share,
        p_value: ratio.p_value,
        mismatch,
    })
}

/// What a sample ratio test counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Distinct users or sessions (the `units` queries).
    Users,
    /// Requests, standing in for users (the `total` queries).
    Requests,
}

impl Counted {
    /// As records say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Counted::Users => "users",
            Counted::Requests => "requests",
        }
    }
}

/// The sample ratio test of `exposed` against `other` units at `expected_share`, and whether
/// the shares do not fit: p below [`SRM_P_VALUE`], and for requests also off by more than
/// [`SRM_REQUEST_TOLERANCE`] relatively. `None` when there is nothing to test.
pub fn ratio_mismatch(
    exposed: f64,
    other: f64,
    counted: Counted,
    expected_share: f64,
) -> Option<(stats::SampleRatio, bool)> {
    let ratio = stats::sample_ratio(exposed, other, expected_share)?;
    let off = (ratio.observed_share / ratio.expected_share - 1.0).abs();
    let mismatch = ratio.p_value < SRM_P_VALUE && (counted == Counted::Users || off > SRM_REQUEST_TOLERANCE);
    Some((ratio, mismatch))
}

fn counts_of(c: &CohortRecord) -> Counts {
    Counts {
        events: c.events,
        total: c.total,
    }
}

fn with_counts(c: CohortRecord, counts: Counts) -> CohortRecord {
    CohortRecord {
        events: counts.events,
        total: counts.total,
        rate: counts.rate(),
        units: c.units,
    }
}

/// A compare check's phrase in a reason, e.g. `errors-vs-control canary 1.9% vs control 1.0%:
/// +0.9 pt, at least +0.4 pt at 99% (12,400 / 110,000 requests)`; `None` for other checks.
pub(super) fn phrase(record: &CheckRecord) -> Option<String> {
    match record.verdict {
        Verdict::Skipped => Some(format!("{} skipped: at 100% there is no control cohort", record.name)),
        Verdict::Insufficient => Some(format!(
            "{} has too little data ({})",
            record.name,
            record.detail.as_deref().unwrap_or("below min_samples")
        )),
        Verdict::Pass | Verdict::Fail => {
            let c = record.compare.as_ref()?;
            Some(format!("{} {} ({})", record.name, c.describe()?, c.sizes()))
        }
        _ => None,
    }
}
