//! Short, readable text for people, in a terminal or the step log; JSON output is the records
//! themselves.
//!
//! Every string that flagramp did not write itself goes through [`plain`], so no value,
//! error or name can start a line of its own, in a terminal or in the step log.

use std::fmt::Write;

use super::{check_label, next_step, person, transition, value_text, verb, when, Target};
use crate::check::Verdict;
use crate::escape::plain;
use crate::record::{DecisionRecord, Status};
use crate::window::human_time;

/// The first line of a plan, so nobody reads it as done.
pub const PLAN_NOTE: &str = "Plan only: nothing was changed. This is what the next run would do.";

/// The first line of a manual command's dry run.
pub const DRY_RUN_NOTE: &str = "Dry run: nothing was changed. This is what the command would do.";

/// One block per decision: what it did (or would do), the reason, one line per check, when it
/// may move on, and what a person can do next, named for `target`.
pub fn decisions(records: &[DecisionRecord], target: Target) -> String {
    let mut out = String::new();
    if records.iter().any(|r| r.planned) {
        // A person's command carries the person; a plan is flagramp's own.
        let manual = records.iter().any(|r| person(r).is_some());
        let _ = writeln!(out, "{}", if manual { DRY_RUN_NOTE } else { PLAN_NOTE });
    }
    for record in records {
        let by = person(record).map(|p| format!(" by {}", plain(p))).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} ({}): {} {}{by}",
            plain(&record.rollout),
            plain(&record.flag),
            verb(record),
            transition(record)
        );
        let _ = writeln!(out, "  {}", plain(&record.reason));
        for check in &record.checks {
            let mark = match check.verdict {
                Verdict::Pass => "ok  ",
                Verdict::Fail => "FAIL",
                Verdict::NoData => "none",
                Verdict::Error => "ERR ",
                Verdict::Insufficient => "wait",
                Verdict::Skipped => "skip",
            };
            let detail = check
                .detail
                .as_deref()
                .map(|d| format!(" ({})", plain(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  [{mark}] {} = {}, needs {}{detail}",
                plain(&check_label(check)),
                plain(&value_text(check, "-")),
                plain(&check.condition)
            );
        }
        if let Some(since) = record.unchanged_since {
            let _ = writeln!(out, "  unchanged since {}", human_time(since));
        }
        if let Some(at) = record.eligible_at {
            let _ = writeln!(out, "  eligible at {}", when(at, record.at));
        }
        if let Some(step) = next_step(record) {
            let _ = writeln!(out, "  next: {}", step.say(&record.rollout, target));
        }
    }
    out
}

/// One block per rollout: where it is, its stages, and its latest decisions.
pub fn statuses(statuses: &[Status]) -> String {
    let mut out = String::new();
    for s in statuses {
        let stages: Vec<String> = s
            .stages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if Some(i) == s.current_stage {
                    format!("[{p}]")
                } else {
                    p.to_string()
                }
            })
            .collect();
        let position = if s.completed_at.is_some() {
            "complete".to_string()
        } else if s.enabled {
            format!("on at {}", s.current_percent)
        } else if s.started_at.is_some() {
            "off".to_string()
        } else {
            "not started".to_string()
        };
        let mut flags = Vec::new();
        if s.paused {
            flags.push("paused");
        }
        if s.locked {
            flags.push("locked after rollback");
        }
        if !s.spec_found {
            flags.push("spec gone");
        }
        let extra = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(", "))
        };
        let _ = writeln!(out, "{} ({}): {position}{extra}", plain(&s.rollout), plain(&s.flag));
        let _ = writeln!(out, "  stages: {}", stages.join(" → "));
        if let Some(t) = s.started_at {
            let _ = write!(out, "  started {}", human_time(t));
            if let Some(a) = s.last_advanced_at {
                let _ = write!(out, ", last advanced {}", human_time(a));
            }
            let _ = writeln!(out);
        }
        if let Some(e) = &s.flag_error {
            let _ = writeln!(out, "  flag: {}", plain(e));
        }
        for record in s.history.iter().rev().take(5) {
            let by = person(record).map(|p| format!(" by {}", plain(p))).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} {} {}{by}: {}",
                human_time(record.at),
                record.decision.as_str(),
                transition(record),
                plain(&record.reason)
            );
        }
    }
    out
}

/// A backtest (`flagramp simulate`): a timeline per rollout (time, decision, percentage,
/// reason), then what happened when, so a person sees at a glance when the spec would have
/// started, advanced, held, rolled back and completed.
pub fn timelines(timelines: &[crate::simulate::Timeline], request: &crate::simulate::SimulateRequest) -> String {
    use crate::record::DecisionKind;

    let mut out = String::new();
    let ticks = timelines.first().map_or(0, |t| t.records.len());
    let _ = writeln!(
        out,
        "Backtest from {} to {}, every {}: {ticks} evaluation{} per rollout, on past metric data; nothing real was read or changed but the metric queries.",
        human_time(request.from),
        human_time(request.to),
        request.every,
        if ticks == 1 { "" } else { "s" }
    );
    for timeline in timelines {
        let Some(first) = timeline.records.first() else {
            continue;
        };
        let _ = writeln!(out, "\n{} ({})", plain(&timeline.rollout), plain(&first.flag));
        for record in &timeline.records {
            let diverged = if record.diverged { " [diverged]" } else { "" };
            let _ = writeln!(
                out,
                "  {}  {:<11} {:<12} {}{diverged}",
                human_time(record.at),
                record.decision.as_str(),
                transition(record),
                plain(&record.reason)
            );
        }
        let at_times = |kinds: &[DecisionKind]| -> Vec<String> {
            timeline
                .records
                .iter()
                .filter(|r| kinds.contains(&r.decision))
                .map(|r| format!("{} ({})", human_time(r.at), transition(r)))
                .collect()
        };
        let list = |times: Vec<String>| {
            if times.is_empty() {
                "never".to_string()
            } else {
                times.join(", ")
            }
        };
        let count = |kind: DecisionKind| timeline.records.iter().filter(|r| r.decision == kind).count();
        let total = timeline.records.len();
        let _ = writeln!(out, "  summary:");
        let _ = writeln!(out, "    started      {}", list(at_times(&[DecisionKind::Start])));
        let _ = writeln!(out, "    advanced     {}", list(at_times(&[DecisionKind::Advance])));
        let _ = writeln!(
            out,
            "    held         {} of {total} evaluations",
            count(DecisionKind::Hold)
        );
        let _ = writeln!(
            out,
            "    rolled back  {}",
            list(at_times(&[DecisionKind::Rollback, DecisionKind::Disable]))
        );
        let completed = timeline
            .records
            .iter()
            .find(|r| r.decision == DecisionKind::Complete)
            .map(|r| human_time(r.at));
        let _ = writeln!(out, "    completed    {}", completed.unwrap_or_else(|| "never".into()));
        let errors = count(DecisionKind::Error);
        if errors > 0 {
            let _ = writeln!(out, "    errors       {errors} of {total} evaluations");
        }
        let diverged = timeline.records.iter().filter(|r| r.diverged).count();
        if diverged > 0 {
            let _ = writeln!(
                out,
                "    diverged     {diverged} of {total} evaluations judged data gathered at another exposure than simulated"
            );
        }
    }
    out
}
