//! Reports for people, rendered from decision records and never recomputed: one renderer per
//! target, [`text`] (the terminal and the step log), [`summary()`] (the job summary) and
//! [`comment()`] (the pull request comment), the last two sharing their Markdown sections and
//! each rollout's path as a Mermaid chart ([`chart`]).
//!
//! What every target says the same way lives here: what a decision did, or for a plan or dry
//! run what it *would* do (docs/rules.md §4), when the rollout may move on, and what a person
//! can do next, which each target names in its own terms (a CLI command, or the manual
//! workflow run with its inputs).

pub mod chart;
pub mod comment;
mod markdown;
pub mod summary;
pub mod text;

pub use comment::comment;
pub use markdown::{counts, progress, tallies, RolloutReport, COMMENT_LIMIT, SUMMARY_LIMIT};
pub use summary::summary;

use chrono::{DateTime, Utc};

use crate::check::{sig4, Verdict};
use crate::record::{DecisionKind, DecisionRecord, Rule, AUTOMATIC_ACTOR};

/// Where a report is read, which decides how a next step is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A terminal: the CLI command to run.
    Cli,
    /// GitHub (job summary, pull request comment, step log): the manual workflow run.
    GitHub,
}

/// `at 10%`, or `10% → 50%` when the decision moved the flag.
pub fn transition(record: &DecisionRecord) -> String {
    if record.from_percent == record.to_percent {
        format!("at {}", record.to_percent)
    } else {
        format!("{} → {}", record.from_percent, record.to_percent)
    }
}

/// What the decision did, or would do: `advanced`, `would advance`, `holding`, `would hold`.
/// States that hold whatever a run does (already paused, already complete, drift, an error)
/// read the same in both moods.
pub fn verb(record: &DecisionRecord) -> String {
    let would = record.planned;
    let pick = |done: &str, planned: &str| if would { planned } else { done }.to_string();
    if record.refused {
        let command = match record.rule {
            Some(Rule::Rollback) => "rollback",
            Some(Rule::Pause) => "pause",
            Some(Rule::Resume) => "resume",
            _ => "advance",
        };
        return pick(&format!("{command} refused"), &format!("{command} would be refused"));
    }
    match record.decision {
        DecisionKind::Start => pick("started", "would start"),
        DecisionKind::Advance => pick("advanced", "would advance"),
        DecisionKind::Hold if record.rule == Some(Rule::Resume) => pick("resumed", "would resume"),
        DecisionKind::Hold => pick("holding", "would hold"),
        DecisionKind::Rollback => pick("rolled back", "would roll back"),
        DecisionKind::Disable => pick("turned off", "would turn off"),
        // Rule 4 reports a rollout completed earlier, and queries nothing (docs/rules.md §3).
        DecisionKind::Complete if record.rule == Some(Rule::Complete) && record.checks.is_empty() => {
            "complete".to_string()
        }
        DecisionKind::Complete => pick("completed", "would complete"),
        DecisionKind::Paused if record.rule == Some(Rule::Pause) => pick("paused", "would pause"),
        DecisionKind::Paused => "paused".to_string(),
        DecisionKind::Drift => "drift: holding for a person".to_string(),
        DecisionKind::Error => "error".to_string(),
    }
}

/// The person who acted, when a person did (a manual command); automatic decisions are
/// flagramp's own and say nobody.
pub fn person(record: &DecisionRecord) -> Option<&str> {
    (record.actor != AUTOMATIC_ACTOR).then_some(record.actor.as_str())
}

/// `2026-11-24 10:30 UTC (in 25 min)`: a time a record names, seen from the record's own time.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes();
    let relative = match minutes {
        m if m <= 0 => "now".to_string(),
        m if m < 120 => format!("in {m} min"),
        m if m < 48 * 60 => format!("in {} h", m / 60),
        m => format!("in {} days", m / (24 * 60)),
    };
    format!("{} ({relative})", crate::window::human_time(at))
}

/// What a person can do next about a decision, derived from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Locked after a rollback: `advance` lifts the lock and moves one stage up.
    Advance,
    /// Paused, or holding for a person after drift: `resume` goes on from the flag as it is.
    Resume,
    /// An `advance` its checks refused: fix them, or force it.
    ForceAdvance,
}

/// What a report calls a check: its name, marked when it is a shadow check (`gate: false`),
/// which every report shows but no decision acts on (docs/rules.md §2).
pub fn check_label(check: &crate::record::CheckRecord) -> String {
    if check.gate {
        check.name.clone()
    } else {
        format!("{} (shadow)", check.name)
    }
}

/// What a report shows as a check's value: the number (`—` or `-` when there is none, as
/// `none` says), with its control's value; for a compare check, the cohorts' rates and the bound.
pub fn value_text(check: &crate::record::CheckRecord, none: &str) -> String {
    if let Some(shown) = check.compare.as_ref().and_then(|c| c.describe()) {
        return shown;
    }
    check.value.map(sig4).unwrap_or_else(|| none.into()) + &control_note(check)
}

/// The control query's value, when the check compared with one, as reports show it.
pub fn control_note(check: &crate::record::CheckRecord) -> String {
    check
        .control_value
        .map(|c| format!(", control {}", sig4(c)))
        .unwrap_or_default()
}

/// The next step a person could take, if the decision leaves one to them.
pub fn next_step(record: &DecisionRecord) -> Option<NextStep> {
    if record.refused {
        let checks_refused = record
            .checks
            .iter()
            .any(|c| c.gate && !matches!(c.verdict, Verdict::Pass | Verdict::Skipped));
        return (record.rule == Some(Rule::Advance) && checks_refused).then_some(NextStep::ForceAdvance);
    }
    // A plan's change has not happened: there is nothing to undo yet.
    let changes = matches!(
        record.rule,
        Some(Rule::Rollback | Rule::Pause | Rule::Resume | Rule::Advance)
    );
    if record.planned && changes {
        return None;
    }
    // The rule that decided names the step first: a rollout both paused and locked is told
    // whichever the deciding rule is waiting for.
    match (record.rule, record.decision) {
        (_, DecisionKind::Error | DecisionKind::Complete) => None,
        (Some(Rule::Locked), _) => Some(NextStep::Advance),
        (Some(Rule::Paused | Rule::Pause | Rule::Drift), _) | (_, DecisionKind::Drift) => Some(NextStep::Resume),
        (_, DecisionKind::Rollback | DecisionKind::Disable) => Some(NextStep::Advance),
        _ if record.locked => Some(NextStep::Advance),
        _ if record.paused => Some(NextStep::Resume),
        _ => None,
    }
}

impl NextStep {
    /// The step in `target`'s terms, for `rollout`. Rollout names are plain (letters, digits,
    /// `.`, `_`, `-`), so they need no escaping in either target.
    pub fn say(self, rollout: &str, target: Target) -> String {
        let (command, force, why) = match self {
            NextStep::Advance => ("advance", false, "to lift the rollback lock and move one stage up"),
            NextStep::Resume => ("resume", false, "to go on from the flag as it is now"),
            NextStep::ForceAdvance => ("advance", true, "after fixing the checks, or to advance anyway"),
        };
        match target {
            Target::Cli => {
                let flag = if force { " --force" } else { "" };
                format!("run `flagramp {command} {rollout}{flag}` {why}")
            }
            Target::GitHub => {
                let force = if force { ", `force: true`" } else { "" };
                format!("run this workflow by hand (Run workflow) with `command: {command}`, `rollout: {rollout}`{force} {why}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_from_the_record() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:05:00Z").unwrap().to_utc();
        let at = |m: i64| now + chrono::TimeDelta::minutes(m);
        assert_eq!(when(at(25), now), "2026-11-24 10:30 UTC (in 25 min)");
        assert_eq!(when(at(0), now), "2026-11-24 10:05 UTC (now)");
        assert_eq!(when(at(180), now), "2026-11-24 13:05 UTC (in 3 h)");
        assert_eq!(when(at(3 * 24 * 60), now), "2026-11-27 10:05 UTC (in 3 days)");
    }

    #[test]
    fn next_steps_name_each_target_in_its_own_terms() {
        assert_eq!(
            NextStep::Advance.say("checkout", Target::Cli),
            "run `flagramp advance checkout` to lift the rollback lock and move one stage up"
        );
        assert_eq!(
            NextStep::ForceAdvance.say("checkout", Target::GitHub),
            "run this workflow by hand (Run workflow) with `command: advance`, `rollout: checkout`, `force: true` after fixing the checks, or to advance anyway"
        );
        assert!(!NextStep::Resume
            .say("checkout", Target::GitHub)
            .contains("flagramp resume"));
    }
}
