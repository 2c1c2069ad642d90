//! Manual commands (docs/rules.md §3, "Manual commands"): `advance`, `rollback`, `pause` and
//! `resume`, decided for a person, who takes responsibility for the flag as it is.

use crate::check::Verdict;
use crate::record::{CheckRecord, DecisionKind, Rule};
use crate::spec::RollbackPolicy;
use crate::state::FlagValue;

use super::decider::Decider;
use super::verdicts::{check_phrase, Verdicts};
use super::{flag_words, next_stage_above, stage_label, to_label, Input, ManualOp, Step};

/// `(forced past: …)` when `--force` overrode checks that did not pass.
fn forced_note(force: bool, problems: &[String]) -> String {
    if force && !problems.is_empty() {
        format!(" (forced past: {})", problems.join("; "))
    } else {
        String::new()
    }
}

/// Decides what a manual command does. `reason` is the person's words: the record's reason
/// quotes them, then gives the evidence; who acted is the record's `actor`, and reports name
/// the command from its `rule` and `decision` (docs/rules.md §4).
///
/// A command that cannot be carried out (an advance its checks refuse, a rollback of a flag that
/// is off, an advance of a complete rollout) changes nothing but the history, and its record is
/// marked `refused`.
pub fn evaluate_manual(input: Input<'_>, op: ManualOp, reason: &str, checks: Option<&[CheckRecord]>) -> Step {
    let mut d = Decider::new(input);
    let spec = input.spec;
    if let Some(message) = d.time_out_of_range() {
        return d.error(&message);
    }
    let found = match input.flag {
        Ok(found) => found,
        Err(message) => return d.error(&format!("flag provider: {message}")),
    };
    let because = quoted(reason);

    match op {
        ManualOp::Pause => {
            d.state.paused = true;
            d.changed = true;
            let text = format!("{because}the flag stays {} until someone resumes", flag_words(found));
            let record = d.record(Rule::Pause, DecisionKind::Paused, found, found, text, None, &[]);
            d.finish(record, None)
        }
        ManualOp::Resume => {
            let was_paused = d.state.paused;
            d.adopt(found);
            d.state.paused = false;
            d.state.drift = None;
            d.changed = true;
            let not_paused = if was_paused { "" } else { " (it was not paused)" };
            let text = if d.state.locked {
                format!(
                    "{because}the flag is {}{not_paused}, but still locked against advancing after a rollback",
                    flag_words(found)
                )
            } else {
                format!(
                    "{because}the flag is {}{not_paused}; scheduled runs go on from there",
                    flag_words(found)
                )
            };
            let record = d.record(Rule::Resume, DecisionKind::Hold, found, found, text, None, &[]);
            d.finish(record, None)
        }
        ManualOp::Rollback => {
            if !found.enabled {
                let text = format!("{because}nothing to roll back, the flag is off");
                let record = d.refusal(Rule::Rollback, DecisionKind::Hold, found, text, &[]);
                return d.finish(record, None);
            }
            d.adopt(found);
            let to = d.rollback_target(found.percent, RollbackPolicy::Previous);
            let kind = d.roll_back_to(to);
            let text = format!("{because}from {} back to {}", found.percent, to_label(spec, to));
            let record = d.record(Rule::Rollback, kind, found, to, text, None, &[]);
            d.finish(record, Some(to))
        }
        ManualOp::Advance { force } => {
            if let Some(done) = d.state.completed_at {
                let text = format!("{because}already complete since {}", crate::window::human_time(done));
                let record = d.refusal(Rule::Advance, DecisionKind::Complete, found, text, &[]);
                return d.finish(record, None);
            }
            // Every advance queries every check, forced or not, so the record shows what it
            // went past.
            let Some(records) = checks else {
                return Step::NeedsChecks;
            };
            let verdicts = Verdicts::sort(spec, records);
            d.note_looks(records);
            if !found.enabled {
                return advance_from_off(d, found, force, &because, records);
            }
            let mut problems = verdicts.mismatched.clone();
            problems.extend(verdicts.failing.iter().cloned());
            problems.extend(verdicts.waiting.iter().cloned());
            if !force && !verdicts.all_pass() {
                let text = format!("{because}{}", problems.join("; "));
                let record = d.refusal(Rule::Advance, DecisionKind::Hold, found, text, records);
                return d.finish(record, None);
            }
            let forced = forced_note(force, &problems);
            d.adopt(found);
            d.state.locked = false;
            match next_stage_above(spec, found.percent) {
                Some(next) => {
                    let to = FlagValue::on(spec.stages[next].percent);
                    d.move_to(to);
                    let text = format!("{because}on to {}{forced}", stage_label(spec, next));
                    let record = d.record(Rule::Advance, DecisionKind::Advance, found, to, text, None, records);
                    d.finish(record, Some(to))
                }
                None => {
                    d.state.completed_at = Some(input.now);
                    d.state.consecutive_failures = 0;
                    d.changed = true;
                    let text = format!("{because}at 100%, so the rollout is complete{forced}");
                    let record = d.record(Rule::Advance, DecisionKind::Complete, found, found, text, None, records);
                    d.finish(record, None)
                }
            }
        }
    }
}

/// `advance` of a rollout whose flag is off: start it at the first stage. Nobody is exposed
/// yet, so no data is what a healthy check reports; a failing or broken check refuses.
fn advance_from_off(mut d: Decider<'_>, found: FlagValue, force: bool, because: &str, records: &[CheckRecord]) -> Step {
    let spec = d.spec();
    let blocking: Vec<String> = spec
        .checks
        .iter()
        .zip(records)
        .filter(|(_, r)| matches!(r.verdict, Verdict::Fail | Verdict::Error))
        .map(|(check, r)| check_phrase(check, r))
        .collect();
    if !force && !blocking.is_empty() {
        let text = format!("{because}{}", blocking.join("; "));
        let record = d.refusal(Rule::Advance, DecisionKind::Hold, found, text, records);
        return d.finish(record, None);
    }
    let forced = forced_note(force, &blocking);
    d.adopt(found);
    let first = FlagValue::on(spec.stages[0].percent);
    d.move_to(first);
    d.state.locked = false;
    let text = format!("{because}from off to {}{forced}", stage_label(spec, 0));
    let record = d.record(Rule::Advance, DecisionKind::Start, found, first, text, None, records);
    d.finish(record, Some(first))
}

/// The person's reason as a reason begins with it: `“freeze”: `, or nothing. Typographic
/// quotes, so that JSON carries the words without escapes.
fn quoted(reason: &str) -> String {
    match reason.trim() {
        "" => String::new(),
        words => format!("“{words}”: "),
    }
}
