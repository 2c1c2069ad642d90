//! The decision engine (docs/rules.md §3): a pure function of spec, state, flag reading, check
//! results and `now`. No I/O, no clock: the runner gathers the inputs and carries out the result.
//!
//! Position is derived from the flag's real percentage, not from a stored stage index, so a
//! spec whose stages change mid-rollout, or a value adopted from a person, needs no migration:
//! the current stage is the highest stage at or below the current percentage.
//!
//! The parts, by concern:
//! - this file: the public API and what several parts share (inputs, outcomes, time range,
//!   stage positions and labels);
//! - `decider.rs`: the state one evaluation builds up and the records it makes;
//! - `rules.rs`: the automatic rules of a scheduled run (rules 2–9);
//! - `manual.rs`: the manual commands;
//! - `verdicts.rs`: how check results sort into failing, waiting and passing;
//! - `claims.rs`: claims (rule 1) and the records made outside a normal evaluation.

mod claims;
mod compare;
mod decider;
mod manual;
mod rules;
mod verdicts;

use chrono::{DateTime, TimeDelta, Utc};

use crate::percent::Percent;
use crate::record::DecisionRecord;
use crate::spec::RolloutSpec;
use crate::state::{FlagValue, RolloutState};

pub use claims::{
    budget_record, busy_record, claim_in_progress, error_record, lost_race_record, resolve_pending, status_record,
    CLAIM_LEASE,
};
pub use compare::{needs_counts, ratio_mismatch, window_start, Counted, SRM_P_VALUE, SRM_REQUEST_TOLERANCE};
pub use manual::evaluate_manual;
pub use rules::evaluate;
pub use verdicts::{check_records, Judging};

/// Everything one evaluation of one rollout depends on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The validated spec.
    pub spec: &'a RolloutSpec,
    /// Stored state; `None` when the rollout has none yet.
    pub state: Option<&'a RolloutState>,
    /// The flag as the provider reports it, or why it could not be read.
    pub flag: Result<FlagValue, &'a str>,
    /// The evaluation time.
    pub now: DateTime<Utc>,
    /// Who is deciding: `flagramp` for scheduled runs, a person for manual commands.
    pub actor: &'a str,
}

/// A manual command (docs/rules.md §3, "Manual commands").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualOp {
    /// One stage up now, ignoring bake and window; checks must pass unless `force`.
    Advance {
        /// Advance even when a check does not pass.
        force: bool,
    },
    /// One stage down (from the first stage: off), and lock.
    Rollback,
    /// Stop advancing.
    Pause,
    /// Restart advancing; adopts a value a person set.
    Resume,
}

impl ManualOp {
    /// The command's name: `advance`, `rollback`, `pause` or `resume`.
    pub fn command(self) -> &'static str {
        match self {
            ManualOp::Advance { .. } => "advance",
            ManualOp::Rollback => "rollback",
            ManualOp::Pause => "pause",
            ManualOp::Resume => "resume",
        }
    }
}

/// The outcome of one call to [`evaluate`] or [`evaluate_manual`].
// Built once per evaluation and matched at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The decision depends on the checks: query them and call again with their results.
    NeedsChecks,
    /// The decision.
    Decided(Evaluation),
}

/// A decision and what carrying it out means.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The decision record, with its evidence.
    pub record: DecisionRecord,
    /// The state to save; `None` when nothing changed.
    pub state: Option<RolloutState>,
    /// The value to set the flag to; `None` leaves the flag alone.
    pub flag_change: Option<FlagValue>,
}

/// The earliest time flagramp decides at, computes or records (see [`LATEST_TIME`]).
pub const EARLIEST_TIME: DateTime<Utc> = match DateTime::from_timestamp(-62_167_219_200, 0) {
    Some(t) => t,
    None => panic!("0000-01-01T00:00:00Z is a valid time"),
};

/// The latest time flagramp decides at, computes or records: RFC 3339 has four-digit years, and
/// a later time would be written as `+10000-…`, which other tools cannot read back.
pub const LATEST_TIME: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => panic!("9999-12-31T23:59:59Z is a valid time"),
};

/// Whether `t` can be written in RFC 3339: years 0000 to 9999.
pub fn in_time_range(t: DateTime<Utc>) -> bool {
    (EARLIEST_TIME..=LATEST_TIME).contains(&t)
}

/// `at + by`, or `None` when that overflows or leaves the years 0000–9999.
pub fn time_after(at: DateTime<Utc>, by: TimeDelta) -> Option<DateTime<Utc>> {
    at.checked_add_signed(by).filter(|t| in_time_range(*t))
}

/// Index of the highest stage at or below `percent`.
pub fn stage_at(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    position(&spec.stage_percents(), percent)
}

/// Index of the highest of `stages` at or below `percent`: where a flag at `percent` is.
pub fn position(stages: &[Percent], percent: Percent) -> Option<usize> {
    stages.iter().rposition(|p| *p <= percent)
}

pub(super) fn next_stage_above(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    spec.stages.iter().position(|s| s.percent > percent)
}

pub(super) fn highest_stage_below(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    spec.stages.iter().rposition(|s| s.percent < percent)
}

pub(super) fn stage_label(spec: &RolloutSpec, index: usize) -> String {
    format!(
        "stage {} of {} ({})",
        index + 1,
        spec.stages.len(),
        spec.stages[index].percent
    )
}

/// Where `to` is, as a reason names it: `stage 1 of 3 (10%)`, or `off`.
pub(super) fn to_label(spec: &RolloutSpec, to: FlagValue) -> String {
    match to.enabled.then(|| stage_at(spec, to.percent)).flatten() {
        Some(i) => stage_label(spec, i),
        None if to.enabled => to.percent.to_string(),
        None => "off".to_string(),
    }
}

/// `at 50%` or `off`, after "with the flag".
pub(super) fn flag_words(flag: FlagValue) -> String {
    if flag.enabled {
        format!("at {}", flag.percent)
    } else {
        "off".to_string()
    }
}
