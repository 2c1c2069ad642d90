//! Claims and the records made outside a normal evaluation (docs/rules.md §3, rules 1 and 2).
//!
//! A run claims a change before setting the flag; a claim left by a run that died is resolved
//! here from the flag as found (rule 1). The runner also records rollouts it cannot evaluate:
//! errors, the busy hold while another run's claim is fresh, the time-budget hold, and status.
//! These records are made here so that every decision record comes from the engine.

use chrono::{DateTime, TimeDelta, Utc};

use crate::record::{DecisionKind, DecisionRecord, Rule};
use crate::spec::RolloutSpec;
use crate::state::{FlagValue, RolloutState};

use super::{in_time_range, stage_at, EARLIEST_TIME, LATEST_TIME};

/// How long a claim protects a change in progress. A run takes seconds; a claim older than this
/// was left by a run that died, and rule 1 resolves it.
pub const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(10);

/// A claim recent enough that its run may still be changing the flag: leave it alone.
pub fn claim_in_progress(state: &RolloutState, now: DateTime<Utc>) -> Option<&crate::state::PendingTransition> {
    state.pending.as_ref().filter(|p| {
        p.claimed_at.is_some_and(|at| {
            in_time_range(at)
                && now.checked_add_signed(CLAIM_LEASE).is_some_and(|limit| at <= limit)
                && now.signed_duration_since(at) < CLAIM_LEASE
        })
    })
}

/// Finishes or abandons a change claimed by a run that stopped before recording it (rule 1).
///
/// Returns the state to save, or `None` when there was no pending transition.
pub fn resolve_pending(state: &RolloutState, found: FlagValue) -> Option<RolloutState> {
    let pending = state.pending.as_ref()?;
    if found == pending.to {
        let mut finished = (*pending.then).clone();
        finished.pending = None;
        return Some(finished);
    }
    // At the origin the change never happened; anywhere else a person moved the flag, which
    // the drift rule reports against the value flagramp really set.
    let mut abandoned = state.clone();
    abandoned.pending = None;
    Some(abandoned)
}

/// The record of a rollout that could not be decided (docs/rules.md §3, rule 2): spec, state or
/// provider unusable, or a bug. `message` is already admitted by the caller.
pub fn error_record(spec: &RolloutSpec, now: DateTime<Utc>, actor: &str, message: String) -> DecisionRecord {
    let at = now.clamp(EARLIEST_TIME, LATEST_TIME);
    DecisionRecord {
        rule: Some(Rule::Error),
        ..DecisionRecord::bare(&spec.name, &spec.flag.key, DecisionKind::Error, at, actor, message)
    }
}

/// The hold for a rollout not reached before the run's time budget was spent (docs/rules.md §3,
/// rule 2): nothing read, nothing changed. `budget` is the budget as people read it.
pub fn budget_record(spec: &RolloutSpec, now: DateTime<Utc>, actor: &str, budget: &str) -> DecisionRecord {
    DecisionRecord {
        decision: DecisionKind::Hold,
        rule: Some(Rule::Budget),
        ..error_record(
            spec,
            now,
            actor,
            format!(
                "time budget exhausted: the run's {budget} (--time-budget, input `time_budget`) was spent before this rollout's turn; nothing was read or changed, the next run decides it"
            ),
        )
    }
}

/// The hold of a rollout whose state other runs kept writing while this run decided it
/// (docs/rules.md §3, rule 1): they are deciding it, so this run changes nothing and leaves it
/// to them, as it leaves a fresh claim. `found` is the flag as last read, when it was.
pub fn lost_race_record(
    spec: &RolloutSpec,
    now: DateTime<Utc>,
    actor: &str,
    why: &str,
    found: Option<FlagValue>,
) -> DecisionRecord {
    let at = found.map(FlagValue::effective).unwrap_or_default();
    DecisionRecord {
        decision: DecisionKind::Hold,
        rule: Some(Rule::Busy),
        from_percent: at,
        to_percent: at,
        stage: found.filter(|f| f.enabled).and_then(|f| stage_at(spec, f.percent)),
        ..error_record(
            spec,
            now,
            actor,
            format!(
                "other runs kept changing this rollout's state ({why}); holding: this run changed nothing and leaves the rollout to them"
            ),
        )
    }
}

/// The hold while another run's claim is fresh (docs/rules.md §3, rule 1): leave its work alone.
/// `found` is the flag as read, when it could be read.
pub fn busy_record(
    spec: &RolloutSpec,
    now: DateTime<Utc>,
    actor: &str,
    pending: &crate::state::PendingTransition,
    found: Option<FlagValue>,
) -> DecisionRecord {
    let at = found.map(FlagValue::effective).unwrap_or(pending.from.effective());
    let since = pending.claimed_at.map(crate::window::human_time).unwrap_or_default();
    DecisionRecord {
        decision: DecisionKind::Hold,
        from_percent: at,
        to_percent: at,
        stage: found.filter(|f| f.enabled).and_then(|f| stage_at(spec, f.percent)),
        reason: format!(
            "another run claimed a change to {} at {since} and may still be carrying it out; holding (a claim older than {} minutes is resolved from the flag)",
            pending.to.describe(),
            CLAIM_LEASE.num_minutes()
        ),
        rule: Some(Rule::Busy),
        ..error_record(spec, now, actor, String::new())
    }
}

/// A status shown as one record (the Action's status-only reports): its latest decision, or, for
/// a rollout with no history, a hold that says it has not started (or why the flag is unread).
pub fn status_record(status: &crate::record::Status, now: DateTime<Utc>, actor: &str) -> DecisionRecord {
    status.history.last().cloned().unwrap_or_else(|| {
        let reason = status.flag_error.clone().unwrap_or_else(|| "not started yet".into());
        DecisionRecord {
            from_percent: status.current_percent,
            to_percent: status.current_percent,
            stage: status.current_stage,
            rule: Some(if status.flag_error.is_some() {
                Rule::Error
            } else {
                Rule::Start
            }),
            locked: status.locked,
            paused: status.paused,
            ..DecisionRecord::bare(&status.rollout, &status.flag, DecisionKind::Hold, now, actor, reason)
        }
    })
}
