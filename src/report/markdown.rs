//! The Markdown both GitHub reports are made of (the job summary and the pull request comment):
//! one section per rollout, rendered from its decision record, and the assembly that keeps a
//! report under GitHub's size limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{check_label, next_step, person, transition, value_text, verb, when, Target};
use crate::check::Verdict;
use crate::escape::{markdown, markdown_block};
use crate::percent::Percent;
use crate::record::{DecisionKind, DecisionRecord};
use crate::spec::Diagnostic;

/// GitHub rejects a step summary over 1 MiB; stay well under it.
pub const SUMMARY_LIMIT: usize = 1024 * 1024 - 16 * 1024;
/// GitHub rejects a comment body of 65,536 characters or more.
pub const COMMENT_LIMIT: usize = 65_535;
/// History entries shown per rollout.
const HISTORY_SHOWN: usize = 5;

/// One rollout as a report shows it.
#[derive(Debug, Clone)]
pub struct RolloutReport {
    /// This run's decision.
    pub record: DecisionRecord,
    /// The flag system and where the flag lives, as Markdown whose untrusted parts are escaped
    /// already, e.g. `flagd file <code>flags/f.json</code> on <code>main</code>`.
    pub provider: String,
    /// The stage percentages.
    pub stages: Vec<Percent>,
    /// Earlier decisions, newest last.
    pub history: Vec<DecisionRecord>,
    /// What went wrong after the decision was recorded (a notification not sent): shown as
    /// warnings; the decision stands.
    pub warnings: Vec<String>,
}

/// Counts per decision kind, every kind present (zeros included) so consumers can rely on keys.
pub fn counts(records: &[DecisionRecord]) -> BTreeMap<&'static str, usize> {
    let kinds = [
        DecisionKind::Start,
        DecisionKind::Advance,
        DecisionKind::Hold,
        DecisionKind::Rollback,
        DecisionKind::Disable,
        DecisionKind::Complete,
        DecisionKind::Paused,
        DecisionKind::Drift,
        DecisionKind::Error,
    ];
    kinds
        .iter()
        .map(|k| (k.as_str(), records.iter().filter(|r| r.decision == *k).count()))
        .collect()
}

/// Rollouts that started or advanced, rolled back or were turned off, and held (hold, paused, drift).
pub fn tallies(records: &[DecisionRecord]) -> (usize, usize, usize) {
    let n = |kinds: &[DecisionKind]| records.iter().filter(|r| kinds.contains(&r.decision)).count();
    (
        n(&[DecisionKind::Start, DecisionKind::Advance]),
        n(&[DecisionKind::Rollback, DecisionKind::Disable]),
        n(&[DecisionKind::Hold, DecisionKind::Paused, DecisionKind::Drift]),
    )
}

/// The report's first line: counts of what this run did, or for a plan what it would do.
pub(super) fn counts_line(records: &[DecisionRecord], problems: usize) -> String {
    let (advanced, rolled_back, held) = tallies(records);
    let complete = records.iter().filter(|r| r.decision == DecisionKind::Complete).count();
    let errors = records.iter().filter(|r| r.decision == DecisionKind::Error).count();
    let planned = records.iter().any(|r| r.planned);
    let rollouts = format!("{} rollout{}", records.len(), if records.len() == 1 { "" } else { "s" });
    let mut parts = if planned {
        vec![
            "plan only, nothing was changed".to_string(),
            rollouts,
            format!("{advanced} would advance"),
            format!("{rolled_back} would roll back"),
            format!("{held} would hold"),
            format!("{complete} complete"),
        ]
    } else {
        vec![
            rollouts,
            format!("{advanced} advanced"),
            format!("{rolled_back} rolled back"),
            format!("{held} held"),
            format!("{complete} complete"),
        ]
    };
    parts.push(format!("{errors} error{}", if errors == 1 { "" } else { "s" }));
    if problems > 0 {
        parts.push(format!(
            "{problems} spec problem{}",
            if problems == 1 { "" } else { "s" }
        ));
    }
    format!("**flagramp** · {}", parts.join(" · "))
}

/// `⏫ Advanced`, `⏫ Would advance`: the decision's mark and what it did or would do.
fn headline(record: &DecisionRecord) -> String {
    let mark = if record.refused {
        "🚫"
    } else {
        match record.decision {
            DecisionKind::Start => "🚀",
            DecisionKind::Advance => "⏫",
            DecisionKind::Hold => "⏸️",
            DecisionKind::Rollback => "⏬",
            DecisionKind::Disable => "⛔",
            DecisionKind::Complete => "✅",
            DecisionKind::Paused => "⏸️",
            DecisionKind::Drift => "✋",
            DecisionKind::Error => "❌",
        }
    };
    let verb = verb(record);
    let mut chars = verb.chars();
    let capitalised: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{mark} {capitalised}")
}

fn verdict_cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ pass",
        Verdict::Fail => "❌ fail",
        Verdict::NoData => "⚪ no data",
        Verdict::Error => "⚠️ error",
        Verdict::Insufficient => "⏳ insufficient",
        Verdict::Skipped => "➖ skipped",
    }
}

/// `10% → **50%** → 100%`: the stage the flag is at in bold, `off` in front when it is off.
///
/// The position comes from the flag's percentage after the decision, as the engine derives it
/// (the highest stage at or below it), never from the record's stage index, which refers to the
/// stages as they were when it was decided. A percentage between stages (a stage edit, a value
/// a person set) is shown beside its stage: `**5%** (flag at 10%) → 25% → 100%`.
pub fn progress(stages: &[Percent], record: &DecisionRecord) -> String {
    let at = record.to_percent;
    let line = |bold: Option<usize>, note: &str| {
        stages
            .iter()
            .enumerate()
            .map(|(i, p)| match bold == Some(i) {
                true => format!("**{p}**{note}"),
                false => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" → ")
    };
    if at == Percent::ZERO {
        return format!("**off** · {}", line(None, ""));
    }
    match crate::engine::position(stages, at) {
        Some(i) if stages[i] == at => line(Some(i), ""),
        Some(i) => line(Some(i), &format!(" (flag at {at})")),
        None => format!("**{at}** · {}", line(None, "")),
    }
}

/// One rollout's section.
pub(super) fn section(report: &RolloutReport) -> String {
    let r = &report.record;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### <code>{}</code> · flag <code>{}</code>\n",
        markdown(&r.rollout),
        markdown(&r.flag)
    );
    // The bake is of the stage the decision was made at: shown beside the progress only when
    // the flag stays there (a move names it in the reason).
    let bake = r
        .bake
        .filter(|_| r.from_percent == r.to_percent)
        .map(|b| format!(" · {}", b.describe()))
        .unwrap_or_default();
    let _ = writeln!(out, "{} · {}{bake}\n", report.provider, progress(&report.stages, r));
    let by = person(r).map(|p| format!(" by {}", markdown(p))).unwrap_or_default();
    let _ = writeln!(
        out,
        "**{}** {}{by}: {}\n",
        headline(r),
        transition(r),
        markdown(&r.reason)
    );
    if let Some(since) = r.unchanged_since {
        let _ = writeln!(out, "Unchanged since {}.\n", crate::window::human_time(since));
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "> [!WARNING]\n> {}\n", markdown(warning));
    }
    if let Some(at) = r.eligible_at {
        let _ = writeln!(out, "Eligible to move on at **{}**.\n", when(at, r.at));
    }
    if let Some(step) = next_step(r) {
        let _ = writeln!(out, "Next: {}.\n", step.say(&r.rollout, Target::GitHub));
    }
    if let Some(chart) = super::chart::section(report) {
        out.push_str(&chart);
    }
    if !r.checks.is_empty() {
        out.push_str("| check | value | condition | verdict |\n| --- | --- | --- | --- |\n");
        for c in &r.checks {
            let value = markdown(&value_text(c, "—"));
            let detail = c
                .detail
                .as_deref()
                .map(|d| format!("<br>{}", markdown(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| <details><summary>{}</summary><code>{}</code></details> | {value} | <code>{}</code> | {}{detail} |",
                markdown(&check_label(c)),
                markdown(&c.query),
                markdown(&c.condition),
                verdict_cell(c.verdict)
            );
        }
        out.push('\n');
    }
    let recent: Vec<&DecisionRecord> = report.history.iter().rev().take(HISTORY_SHOWN).collect();
    if !recent.is_empty() {
        out.push_str("<details><summary>Recent history</summary>\n\n");
        for h in recent {
            let _ = writeln!(
                out,
                "- {} **{}** {} by {}: {}",
                crate::window::human_time(h.at),
                h.decision.as_str(),
                transition(h),
                markdown(&h.actor),
                markdown(&h.reason)
            );
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

pub(super) fn problems_section(problems: &[Diagnostic]) -> String {
    if problems.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "### ❌ {} problem{} in rollout specs\n\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    let listed: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
    out.push_str(&markdown_block(&listed.join("\n")));
    out.push('\n');
    out
}

/// Cuts `text` to at most `limit` bytes on a character boundary.
fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` without a chart its cut left open: an unclosed fence would turn the rest of the
/// report into code, and the chart into a Mermaid error.
fn without_open_chart(text: &str) -> &str {
    match text.rfind("```mermaid\n") {
        Some(start) if !text[start..].contains("\n```\n") => &text[..start],
        _ => text,
    }
}

/// Assembles header, sections and footer under `limit`: sections that do not fit are left out
/// with a note; a first section too large on its own is cut on a character boundary.
pub(super) fn assemble(header: String, sections: Vec<String>, footer: String, run_url: &str, limit: usize) -> String {
    let note_room = 400 + run_url.len();
    let mut out = header;
    let total = sections.len();
    for (i, s) in sections.into_iter().enumerate() {
        let room = limit.saturating_sub(out.len() + footer.len() + note_room);
        if s.len() <= room {
            out.push_str(&s);
            continue;
        }
        let mut left_out = total - i;
        if i == 0 {
            out.push_str(without_open_chart(cut(&s, room)));
            let _ = writeln!(
                out,
                "\n\n_…cut to stay under GitHub's size limit: see [the run]({run_url})._\n"
            );
            left_out -= 1;
        }
        if left_out > 0 {
            let _ = writeln!(
                out,
                "_{left_out} more rollout{} not shown here to stay under GitHub's size limit: see [the run]({run_url})._\n",
                if left_out == 1 { "" } else { "s" }
            );
        }
        break;
    }
    out.push_str(&footer);
    // The header alone (thousands of spec problems) could still be too long.
    if out.len() > limit {
        let note = format!("\n\n_…cut to stay under GitHub's size limit: see [the run]({run_url})._\n");
        out = cut(&out, limit - note.len()).to_string() + &note;
    }
    out
}
