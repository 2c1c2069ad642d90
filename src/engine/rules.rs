//! The automatic rules of a scheduled run (docs/rules.md §3, rules 2–9), in the order the rules
//! apply them: provider errors, drift, start, checks, rollback, pause, lock, bake and window.

use chrono::{DateTime, Utc};

use crate::percent::Percent;
use crate::record::{CheckRecord, DecisionKind, Failures, Rule};
use crate::state::FlagValue;

use super::decider::Decider;
use super::verdicts::Verdicts;
use super::{in_time_range, next_stage_above, stage_at, stage_label, time_after, to_label, Input, Step, LATEST_TIME};

/// When `window` next opens at or after `at`, if that is no later than [`LATEST_TIME`].
fn next_opening(window: &crate::window::Window, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    window.next_open_at_or_after(at).filter(|t| in_time_range(*t))
}

/// The spec's window at `now`: open (or none), closed until a time, or never open again within
/// the times flagramp works with.
enum WindowAt {
    Open,
    /// Closed: as the spec writes it, and when it opens.
    Closed(String, DateTime<Utc>),
    /// The error to decide.
    Never(String),
}

fn window_at(spec: &crate::spec::RolloutSpec, now: DateTime<Utc>) -> WindowAt {
    match &spec.policy.window {
        Some(window) if !window.contains(now) => match next_opening(window, now) {
            Some(opens) => WindowAt::Closed(window.describe(), opens),
            None => WindowAt::Never(window_beyond_range(window)),
        },
        _ => WindowAt::Open,
    }
}

fn window_beyond_range(window: &crate::window::Window) -> String {
    format!(
        "the window ({}) does not open again before {}: flagramp works with times up to the year 9999",
        window.describe(),
        crate::window::human_time(LATEST_TIME)
    )
}

/// Decides what a scheduled run does (docs/rules.md §3, rules 2–9; run
/// [`resolve_pending`](super::resolve_pending) first).
pub fn evaluate(input: Input<'_>, checks: Option<&[CheckRecord]>) -> Step {
    let mut d = Decider::new(input);
    let spec = input.spec;
    let now = input.now;

    if let Some(message) = d.time_out_of_range() {
        return d.error(&message);
    }
    // Rule 2: a provider that cannot be read is an error; metric sources are handled in 5.
    let found = match input.flag {
        Ok(found) => found,
        Err(message) => return d.error(&format!("flag provider: {message}")),
    };

    // Rule 3.
    if let Some(record) = d.drift(found) {
        return d.finish(record, None);
    }

    // Rule 4.
    if let Some(done) = d.state.completed_at {
        let reason = format!(
            "complete since {}: the flag serves everyone; nothing to do",
            crate::window::human_time(done)
        );
        let record = d.record(Rule::Complete, DecisionKind::Complete, found, found, reason, None, &[]);
        return d.report_only(record);
    }
    if !found.enabled {
        if d.state.locked {
            let reason = "rolled back to off earlier, and locked against starting again".to_string();
            return d.stay(Rule::Locked, DecisionKind::Hold, found, reason, None, &[]);
        }
        if d.state.paused {
            let reason = "paused before starting".to_string();
            return d.stay(Rule::Paused, DecisionKind::Paused, found, reason, None, &[]);
        }
        let first = FlagValue::on(spec.stages[0].percent);
        match window_at(spec, now) {
            WindowAt::Never(message) => return d.error(&message),
            WindowAt::Closed(shown, opens) => {
                let when = crate::window::human_time(opens);
                let reason = format!("ready to start, but outside the window ({shown}); it opens {when}");
                return d.stay(Rule::Window, DecisionKind::Hold, found, reason, Some(opens), &[]);
            }
            WindowAt::Open => {}
        }
        d.move_to(first);
        let reason = format!("into {}, the first", stage_label(spec, 0));
        let record = d.record(Rule::Start, DecisionKind::Start, found, first, reason, None, &[]);
        return d.finish(record, Some(first));
    }

    // Rule 5: query every check.
    let Some(checks) = checks else { return Step::NeedsChecks };
    let verdicts = Verdicts::sort(spec, checks);
    d.note_looks(checks);
    let current = found.percent;
    let stage = stage_at(spec, current);

    // Rule `srm` comes first: cohorts whose sizes do not fit the percentage are not the
    // experiment the checks assume, so their data can neither advance nor roll back.
    if !verdicts.mismatched.is_empty() {
        let reason = format!(
            "{}; the data cannot be trusted, so the rollout neither advances nor rolls back",
            verdicts.mismatched.join("; ")
        );
        return d.stay(Rule::Srm, DecisionKind::Hold, found, reason, None, verdicts.records);
    }
    // Rule 6 comes before 5's hold: a failure counts even when another check errored.
    if !verdicts.failing.is_empty() {
        // Saturating: a counter read from state may already be at the maximum.
        d.state.consecutive_failures = d.state.consecutive_failures.saturating_add(1);
        d.changed = true;
        let failures = d.state.consecutive_failures;
        let limit = spec.policy.failures_to_rollback;
        let what = verdicts.failing.join("; ");
        if failures >= limit {
            let to = d.rollback_target(current, spec.policy.rollback);
            let kind = d.roll_back_to(to);
            let reason = format!(
                "{what}: failure {failures} of {limit}, so back to {}",
                to_label(spec, to)
            );
            let mut record = d.record(Rule::Rollback, kind, found, to, reason, None, verdicts.records);
            // The counter is reset by the rollback; the record keeps the count that decided it.
            record.failures = Some(Failures { count: failures, limit });
            return d.finish(record, Some(to));
        }
        let reason = format!("{what}: failure {failures} of {limit} before a rollback");
        return d.stay(
            Rule::Rollback,
            DecisionKind::Hold,
            found,
            reason,
            None,
            verdicts.records,
        );
    }
    if !verdicts.waiting.is_empty() {
        let reason = format!(
            "{}; missing data and source trouble are never a pass, nor a failure",
            verdicts.waiting.join("; ")
        );
        return d.stay(Rule::Checks, DecisionKind::Hold, found, reason, None, verdicts.records);
    }

    // Every check passes from here on.
    if d.state.consecutive_failures != 0 {
        d.state.consecutive_failures = 0;
        d.changed = true;
    }
    // Rule 7.
    if d.state.paused {
        let reason = format!("{}, but the rollout is paused", verdicts.summary());
        return d.stay(
            Rule::Paused,
            DecisionKind::Paused,
            found,
            reason,
            None,
            verdicts.records,
        );
    }
    // Rule 8.
    if d.state.locked {
        let reason = format!(
            "{}, but it was rolled back earlier and is locked against advancing",
            verdicts.summary()
        );
        return d.stay(Rule::Locked, DecisionKind::Hold, found, reason, None, verdicts.records);
    }

    // Rule 9. Below the first stage (a person set less, then resumed) there is nothing to bake.
    let bake = stage.map(|i| spec.stages[i].bake).unwrap_or_default();
    let entered = d.state.stage_entered_at.unwrap_or(now);
    let at_last_stage = current == Percent::FULL;
    let here = stage
        .map(|i| stage_label(spec, i))
        .unwrap_or_else(|| current.to_string());
    let Some(bake_end) = bake.to_chrono().and_then(|b| time_after(entered, b)) else {
        return d.error(&format!(
            "the bake of {bake} at {here}, entered {}, would end past {}: flagramp cannot wait that long; shorten the bake in the spec",
            crate::window::human_time(entered),
            crate::window::human_time(LATEST_TIME)
        ));
    };
    if now < bake_end {
        let eligible = match (&spec.policy.window, at_last_stage) {
            (Some(w), false) => match next_opening(w, bake_end) {
                Some(t) => t,
                None => return d.error(&window_beyond_range(w)),
            },
            _ => bake_end,
        };
        // When it ends is the record's `eligible_at`; the reason says only what else it waits for.
        let last = if at_last_stage { " (the final bake)" } else { "" };
        let window = match &spec.policy.window {
            Some(w) if eligible != bake_end => format!(
                "; the window ({}) is closed when it ends and opens {}",
                w.describe(),
                crate::window::human_time(eligible)
            ),
            _ => String::new(),
        };
        let reason = format!("{}; {here} {}{last}{window}", verdicts.summary(), d.baked(current));
        return d.stay(
            Rule::Bake,
            DecisionKind::Hold,
            found,
            reason,
            Some(eligible),
            verdicts.records,
        );
    }
    if at_last_stage {
        d.state.completed_at = Some(now);
        d.changed = true;
        let reason = format!(
            "{} and 100% {}: the final bake is over",
            verdicts.summary(),
            d.baked(current)
        );
        return d.stay(
            Rule::Complete,
            DecisionKind::Complete,
            found,
            reason,
            None,
            verdicts.records,
        );
    }
    match window_at(spec, now) {
        WindowAt::Never(message) => return d.error(&message),
        WindowAt::Closed(shown, opens) => {
            let reason = format!(
                "{} and {here} {}, but outside the window ({shown}); it opens {}",
                verdicts.summary(),
                d.baked(current),
                crate::window::human_time(opens)
            );
            return d.stay(
                Rule::Window,
                DecisionKind::Hold,
                found,
                reason,
                Some(opens),
                verdicts.records,
            );
        }
        WindowAt::Open => {}
    }
    let next = next_stage_above(spec, current).expect("below 100% there is a higher stage, as the last is 100");
    let to = FlagValue::on(spec.stages[next].percent);
    d.move_to(to);
    let reason = format!(
        "{} and {here} {}; next is {}",
        verdicts.summary(),
        d.baked(current),
        stage_label(spec, next)
    );
    let record = d.record(
        Rule::Advance,
        DecisionKind::Advance,
        found,
        to,
        reason,
        None,
        verdicts.records,
    );
    d.finish(record, Some(to))
}
