//! A rollout's path as a Mermaid `xychart-beta` for the job summary and the pull request
//! comment: the flag's percentage after each change in its history, then where it is after this
//! run's decision, with its rollbacks marked.
//!
//! `xychart-beta` has no point markers, so a rollback is a bar at its point, as high as the
//! percentage it rolled back from, drawn behind the line; a line under the chart says so. Its
//! x axis is a list of categories, not a time scale: the points are evenly spaced, each labelled
//! with its time (UTC).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::markdown::RolloutReport;
use crate::escape::mermaid_string;
use crate::percent::Percent;
use crate::record::{DecisionKind, DecisionRecord};

/// The most points one chart shows (the latest ones): enough to see the way a rollout went,
/// and small enough that a comment with many rollouts stays far under GitHub's size limit
/// (each chart is well under 1 KB).
pub const CHART_POINTS: usize = 20;

/// One point of a rollout's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at: DateTime<Utc>,
    percent: Percent,
    /// A rollback (or turning off) to `percent`, from this percentage.
    rolled_back_from: Option<Percent>,
}

/// The points of a rollout's path, oldest first, the latest [`CHART_POINTS`]: every decision in
/// its history that moved the flag, then this run's decision. A plan's decision has not
/// happened: its point is where the flag is, unmoved. An error knows nothing of the flag and
/// adds no point.
fn points(report: &RolloutReport) -> Vec<Point> {
    let moved = |r: &DecisionRecord| Point {
        at: r.at,
        percent: r.to_percent,
        rolled_back_from: matches!(r.decision, DecisionKind::Rollback | DecisionKind::Disable)
            .then_some(r.from_percent),
    };
    let mut points: Vec<Point> = report
        .history
        .iter()
        .filter(|r| r.decision.changes_flag() && !r.planned)
        .map(moved)
        .collect();
    let now = &report.record;
    if now.planned {
        points.push(Point {
            at: now.at,
            percent: now.from_percent,
            rolled_back_from: None,
        });
    } else if now.decision != DecisionKind::Error {
        points.push(moved(now));
    }
    let skip = points.len().saturating_sub(CHART_POINTS);
    points.split_off(skip)
}

/// A percentage as a Mermaid number: `10`, `12.5`.
fn number(p: Percent) -> String {
    p.as_f64().to_string()
}

/// The chart's Mermaid source (without the fence), or `None` when the rollout has fewer than
/// two points: one point is not a path, and the progress line above says where it is.
pub fn mermaid(report: &RolloutReport) -> Option<String> {
    let points = points(report);
    if points.len() < 2 {
        return None;
    }
    let list = |values: Vec<String>| values.join(", ");
    let labels = list(
        points
            .iter()
            .map(|p| format!("\"{}\"", p.at.format("%m-%d %H:%M")))
            .collect(),
    );
    let percents = list(points.iter().map(|p| number(p.percent)).collect());
    let mut out = String::new();
    let _ = writeln!(out, "xychart-beta");
    let _ = writeln!(out, "  title \"{}\"", mermaid_string(&report.record.rollout));
    let _ = writeln!(out, "  x-axis \"UTC\" [{labels}]");
    let _ = writeln!(out, "  y-axis \"percent\" 0 --> 100");
    if points.iter().any(|p| p.rolled_back_from.is_some()) {
        let bars = list(
            points
                .iter()
                .map(|p| number(p.rolled_back_from.unwrap_or(Percent::ZERO)))
                .collect(),
        );
        let _ = writeln!(out, "  bar [{bars}]");
    }
    let _ = writeln!(out, "  line [{percents}]");
    Some(out)
}

/// The chart as Markdown: the fenced Mermaid block and the line that reads it.
pub fn section(report: &RolloutReport) -> Option<String> {
    let chart = mermaid(report)?;
    let rollbacks = if chart.contains("\n  bar [") {
        "; bars: rollbacks, as high as the percentage rolled back from"
    } else {
        ""
    };
    Some(format!(
        "```mermaid\n{chart}```\n\n<sub>Line: the flag's percentage after each change, and now{rollbacks}.</sub>\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().to_utc() + chrono::TimeDelta::minutes(minute)
    }

    fn pct(p: u32) -> Percent {
        Percent::from_millis(p * 1000).unwrap()
    }

    fn rec(minute: i64, decision: DecisionKind, from: u32, to: u32) -> DecisionRecord {
        DecisionRecord {
            from_percent: pct(from),
            to_percent: pct(to),
            ..DecisionRecord::bare("ramp", "f", decision, at(minute), "flagramp", String::new())
        }
    }

    fn report(history: Vec<DecisionRecord>, now: DecisionRecord) -> RolloutReport {
        RolloutReport {
            record: now,
            provider: String::new(),
            stages: vec![pct(10), pct(50), pct(100)],
            history,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_path_is_the_flag_after_each_change_with_rollbacks_as_bars() {
        let history = vec![
            rec(0, DecisionKind::Start, 0, 10),
            rec(30, DecisionKind::Hold, 10, 10),
            rec(60, DecisionKind::Advance, 10, 50),
        ];
        let chart = mermaid(&report(history, rec(90, DecisionKind::Rollback, 50, 10))).unwrap();
        assert!(
            chart.contains("x-axis \"UTC\" [\"11-24 10:00\", \"11-24 11:00\", \"11-24 11:30\"]"),
            "{chart}"
        );
        assert!(chart.contains("\n  line [10, 50, 10]\n"), "{chart}");
        assert!(chart.contains("\n  bar [0, 0, 50]\n"), "{chart}");
    }

    #[test]
    fn a_plan_shows_the_flag_where_it_is_and_no_rollback() {
        let mut plan = rec(90, DecisionKind::Rollback, 50, 10);
        plan.planned = true;
        let chart = mermaid(&report(vec![rec(0, DecisionKind::Start, 0, 50)], plan)).unwrap();
        assert!(chart.contains("\n  line [50, 50]\n"), "{chart}");
        assert!(!chart.contains("bar"), "{chart}");
    }

    #[test]
    fn one_point_is_no_chart_and_many_are_cut_to_the_latest() {
        assert_eq!(mermaid(&report(Vec::new(), rec(0, DecisionKind::Start, 0, 10))), None);
        let history: Vec<DecisionRecord> = (0..50)
            .map(|i| rec(i, DecisionKind::Advance, 10, 10 + (i as u32 % 90)))
            .collect();
        let chart = mermaid(&report(history, rec(60, DecisionKind::Hold, 59, 59))).unwrap();
        let line = chart.lines().find(|l| l.trim_start().starts_with("line")).unwrap();
        assert_eq!(line.matches(',').count() + 1, CHART_POINTS, "{line}");
        assert!(line.ends_with("59]"), "{line}");
    }
}
