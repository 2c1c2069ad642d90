//! Short, readable text for people, in a terminal or the step log; JSON output is the records
//! themselves.
//!
//! Every string that flagramp did not write itself goes through [`plain`], so no value,
//! error or name can start a line of its own, in a terminal or in the step log.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::{check_label, next_step, person, transition, value_text, verb, when, Target};
use crate::check::Verdict;
use crate::duration::SpecDuration;
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

/// The most rollouts a run decides without a progress bar: fewer are decided in moments.
pub const PROGRESS_AFTER: usize = 20;

/// Whether a run shows a progress bar (on stderr): only to a person watching a terminal, for a
/// run of more than [`PROGRESS_AFTER`] rollouts. Never in CI (`ci`: the `CI` variable, which
/// CI systems set to `true`; a log there would fill with redraws), nor beside JSON output
/// (read by programs).
pub fn should_show_progress(stderr_is_terminal: bool, ci: Option<&str>, json: bool, rollouts: usize) -> bool {
    stderr_is_terminal && !in_ci(ci) && !json && rollouts > PROGRESS_AFTER
}

/// Whether the `CI` variable (its value, if set) says this runs in CI, where neither drawing
/// (the progress bar, the status bar) belongs in the log.
pub fn in_ci(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// One block per rollout: where it is, its stages, and its latest decisions.
pub fn statuses(statuses: &[Status]) -> String {
    render_statuses(statuses, &|_| None)
}

/// [`statuses`] for a terminal: each rollout's stages line is a bar of its progress through
/// them with the bake left ([`stage_bar`]), given each stage's bake by `bakes` (by rollout name;
/// a rollout it does not know, such as one whose spec is gone, keeps the plain line), at `now`.
pub fn statuses_on_terminal(
    statuses: &[Status],
    bakes: &dyn Fn(&str) -> Option<Vec<SpecDuration>>,
    now: DateTime<Utc>,
) -> String {
    render_statuses(statuses, &|s| bakes(&s.rollout).map(|b| stage_bar(s, &b, now)))
}

/// The width of [`stage_bar`]'s bar, in cells.
pub const BAR_CELLS: usize = 10;

/// `██▌░░░░░░░ 10% → [50%] → 100% · bake 1h 20m left`: a rollout's progress through its stages
/// on one line.
///
/// The bar is the share of the rollout done: each stage is an equal part of it, a stage is done
/// when its bake has elapsed, and the current stage counts the part of its bake elapsed (a stage
/// without a bake counts as done once entered). Off or not started is empty, complete is full.
/// It is [`BAR_CELLS`] cells of eighths (`█` a whole cell, `▏` … `▉` one to seven eighths, `░`
/// none), rounded down so that it is only full when the rollout is complete. The bake's
/// elapsed time counts from the last change in history that brought the flag to where it is.
/// `bakes` holds each stage's bake, in the order of `status.stages`.
pub fn stage_bar(status: &Status, bakes: &[SpecDuration], now: DateTime<Utc>) -> String {
    let stages: Vec<String> = status
        .stages
        .iter()
        .enumerate()
        .map(|(i, p)| match Some(i) == status.current_stage {
            true => format!("[{p}]"),
            false => p.to_string(),
        })
        .collect();
    let total = status.stages.len().max(1) as f64;
    let entered = status
        .history
        .iter()
        .rev()
        .find(|r| r.decision.changes_flag() && !r.planned && r.to_percent == status.current_percent)
        .map(|r| r.at);
    let (done, left) = match (status.completed_at, status.enabled, status.current_stage) {
        (Some(_), _, _) => (1.0, None),
        (None, true, Some(i)) => {
            let bake = bakes.get(i).map_or(0, |b| b.as_secs());
            let elapsed = entered.map_or(0, |at| u64::try_from((now - at).num_seconds()).unwrap_or(0));
            let fraction = if bake == 0 {
                1.0
            } else {
                (elapsed as f64 / bake as f64).min(1.0)
            };
            let left = (bake > 0).then(|| bake.saturating_sub(elapsed));
            ((i as f64 + fraction) / total, left)
        }
        _ => (0.0, None),
    };
    let eighths = ((done * (BAR_CELLS * 8) as f64).floor() as usize).min(BAR_CELLS * 8);
    let partial = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8];
    let full = eighths / 8;
    let empty = BAR_CELLS - full - usize::from(!partial.is_empty());
    let bake = match left {
        Some(0) => " · bake done".to_string(),
        Some(secs) => format!(" · bake {} left", remaining(secs)),
        None => String::new(),
    };
    format!(
        "{}{partial}{} {}{bake}",
        "█".repeat(full),
        "░".repeat(empty),
        stages.join(" → ")
    )
}

/// `1h 20m`, `45m`, `2d 3h`: time left, rounded up to the minute so that it is never `0m`
/// while some is left.
fn remaining(secs: u64) -> String {
    let minutes = secs.div_ceil(60);
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h, m) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn render_statuses(statuses: &[Status], bar: &dyn Fn(&Status) -> Option<String>) -> String {
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
        match bar(s) {
            Some(bar) => {
                let _ = writeln!(out, "  {bar}");
            }
            None => {
                let _ = writeln!(out, "  stages: {}", stages.join(" → "));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percent::Percent;
    use crate::record::{DecisionKind, DecisionRecord};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn pct(p: u32) -> Percent {
        Percent::from_millis(p * 1000).unwrap()
    }

    /// At `percent` (stage `stage`), entered at 10:00 by `decision`.
    fn status(stage: Option<usize>, percent: u32, decision: DecisionKind) -> Status {
        let entered = DecisionRecord {
            from_percent: pct(10),
            to_percent: pct(percent),
            ..DecisionRecord::bare(
                "ramp",
                "f",
                decision,
                t("2026-11-24T10:00:00Z"),
                "flagramp",
                String::new(),
            )
        };
        Status {
            rollout: "ramp".into(),
            flag: "f".into(),
            stages: vec![pct(10), pct(50), pct(100)],
            current_stage: stage,
            current_percent: pct(percent),
            enabled: stage.is_some(),
            started_at: Some(t("2026-11-24T09:00:00Z")),
            last_advanced_at: None,
            completed_at: None,
            paused: false,
            locked: false,
            spec_found: true,
            flag_error: None,
            history: vec![entered],
        }
    }

    fn bakes() -> Vec<SpecDuration> {
        [3600, 7200, 0].map(SpecDuration::from_secs).to_vec()
    }

    #[test]
    fn the_bar_fills_one_part_per_stage_and_the_bake_elapsed_of_the_current_one() {
        // Stage 2 of 3, 40 of 120 minutes baked: (1 + 1/3) / 3 = 4/9 of 80 eighths = 35.6 → 35:
        // four full cells and three eighths.
        let at_fifty = status(Some(1), 50, DecisionKind::Advance);
        assert_eq!(
            stage_bar(&at_fifty, &bakes(), t("2026-11-24T10:40:00Z")),
            "████▍░░░░░ 10% → [50%] → 100% · bake 1h 20m left"
        );
        // Baked: the stage is done, and the bar says it waits for the next run.
        assert_eq!(
            stage_bar(&at_fifty, &bakes(), t("2026-11-24T13:00:00Z")),
            "██████▋░░░ 10% → [50%] → 100% · bake done"
        );
        // Half a minute left still reads as a minute.
        assert_eq!(
            stage_bar(&at_fifty, &bakes(), t("2026-11-24T11:59:30Z")),
            "██████▋░░░ 10% → [50%] → 100% · bake 1m left"
        );
    }

    #[test]
    fn off_is_empty_complete_is_full_and_a_rollback_restarts_the_bake() {
        let off = status(None, 0, DecisionKind::Disable);
        assert_eq!(
            stage_bar(&off, &bakes(), t("2026-11-24T10:40:00Z")),
            "░░░░░░░░░░ 10% → 50% → 100%"
        );
        let mut complete = status(Some(2), 100, DecisionKind::Advance);
        complete.completed_at = Some(t("2026-11-24T10:00:00Z"));
        assert_eq!(
            stage_bar(&complete, &bakes(), t("2026-11-24T10:40:00Z")),
            "██████████ 10% → 50% → [100%]"
        );
        // Rolled back to 10% at 10:00: its hour of bake starts again from there.
        let rolled_back = status(Some(0), 10, DecisionKind::Rollback);
        assert_eq!(
            stage_bar(&rolled_back, &bakes(), t("2026-11-24T10:15:00Z")),
            "▊░░░░░░░░░ [10%] → 50% → 100% · bake 45m left"
        );
    }

    #[test]
    fn a_progress_bar_is_for_a_person_at_a_terminal_watching_many_rollouts() {
        assert!(should_show_progress(true, None, false, 21));
        assert!(should_show_progress(true, Some("false"), false, 21));
        assert!(should_show_progress(true, Some(""), false, 21));
        // 20 or fewer are quick.
        assert!(!should_show_progress(true, None, false, 20));
        // Not a terminal: a pipe, a file, the step log.
        assert!(!should_show_progress(false, None, false, 500));
        // CI, however it says so.
        assert!(!should_show_progress(true, Some("true"), false, 500));
        assert!(!should_show_progress(true, Some("1"), false, 500));
        // JSON is for programs.
        assert!(!should_show_progress(true, None, true, 500));
    }

    #[test]
    fn times_left_read_in_the_largest_units() {
        assert_eq!(remaining(59), "1m");
        assert_eq!(remaining(3600), "1h");
        assert_eq!(remaining(3 * 86_400 + 5 * 3600 + 60), "3d 5h");
        assert_eq!(remaining(2 * 86_400), "2d");
    }
}
