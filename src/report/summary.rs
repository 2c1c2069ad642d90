//! The job summary (`GITHUB_STEP_SUMMARY`): one line of counts, then each rollout, then what the
//! run used of GitHub's API.

use super::markdown::{assemble, counts_line, problems_section, section, RolloutReport, SUMMARY_LIMIT};
use crate::duration::SpecDuration;
use crate::escape::markdown;
use crate::github::ApiUse;
use crate::record::DecisionRecord;
use crate::schedule::{ScheduleError, ScheduleLag};
use crate::spec::Diagnostic;

/// The job summary, under GitHub's size limit.
pub fn summary(reports: &[RolloutReport], problems: &[Diagnostic], run_url: &str) -> String {
    summary_ending(reports, problems, run_url, "", None)
}

/// The job summary, with `notes` (Markdown paragraphs about the run, such as
/// [`schedule_note`]) under its first line, ending with the API use of the run
/// ([`api_use_line`]) when given: the footer is kept whatever the size limit cuts, so the line
/// always shows.
pub fn summary_ending(
    reports: &[RolloutReport],
    problems: &[Diagnostic],
    run_url: &str,
    notes: &str,
    api_use: Option<&ApiUse>,
) -> String {
    let records: Vec<DecisionRecord> = reports.iter().map(|r| r.record.clone()).collect();
    let header = format!(
        "{}\n\n{notes}{}",
        counts_line(&records, problems.len()),
        problems_section(problems)
    );
    let sections = reports.iter().map(section).collect();
    let mut footer = format!("---\n[flagramp run]({run_url})\n");
    if let Some(used) = api_use {
        footer.push('\n');
        footer.push_str(&api_use_line(used));
        footer.push('\n');
    }
    assemble(header, sections, footer, run_url, SUMMARY_LIMIT)
}

/// One line of what the run used of GitHub's API: requests (REST and GraphQL, retries
/// counted), commits that landed, and the rate limit GitHub last reported for each budget, so
/// a fan-out's jobs can be seen against GitHub's limits (docs/state-branch.md, "API use").
pub fn api_use_line(used: &ApiUse) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "GitHub API use: {} ({} REST, {} GraphQL), {}",
        plural(used.requests(), "request", "requests"),
        used.rest_requests,
        used.graphql_requests,
        plural(used.commits, "commit", "commits"),
    );
    let limits: Vec<String> = used
        .rate_limits
        .iter()
        .map(|(resource, limit)| {
            let of = limit.limit.map(|l| format!(" of {l}")).unwrap_or_default();
            let reset = limit
                .reset
                .and_then(|r| chrono::DateTime::<chrono::Utc>::from_timestamp(r, 0))
                .map(|t| format!(", resets {}", t.format("%H:%M UTC")))
                .unwrap_or_default();
            format!("{} left{of} ({resource}{reset})", limit.remaining)
        })
        .collect();
    if !limits.is_empty() {
        line.push_str("; rate limit: ");
        line.push_str(&limits.join(", "));
    }
    line
}

/// What the job summary says of a scheduled run's lag behind its cron slot, with a warning when
/// the lag is longer than `shortest_bake` (the shortest non-zero bake of the rollouts run):
/// those stages bake longer than their specs say.
pub fn schedule_note(lag: &Result<ScheduleLag, ScheduleError>, shortest_bake: Option<SpecDuration>) -> String {
    let lag = match lag {
        Ok(lag) => lag,
        Err(e) => {
            return format!(
                "This scheduled run's lag behind its slot is not known: {}.\n\n",
                markdown(&e.to_string())
            )
        }
    };
    let mut out = format!(
        // The payload names the cron, not the slot: a run more than one period late is
        // measured from a later slot than its own, so this is how late it is at least.
        "This scheduled run started {} after its cron's latest slot {} (cron <code>{}</code>): at least that late.\n\n",
        lag.lag_text(),
        lag.slot_text(),
        markdown(&lag.cron)
    );
    if let Some(bake) = shortest_bake.filter(|b| lag.exceeds(*b)) {
        out.push_str(&format!("⚠️ {}\n\n", schedule_warning(lag, bake)));
    }
    out
}

/// The warning when a scheduled run's lag is longer than a bake, for the summary and the step
/// log alike (no text from outside in it).
pub fn schedule_warning(lag: &ScheduleLag, bake: SpecDuration) -> String {
    format!(
        "The lag ({}) is longer than the shortest bake of these rollouts ({bake}): GitHub starts scheduled runs late under load, so such stages bake longer than their specs say. Scheduling off the hour (minute 17 rather than 0) is delayed less often.",
        lag.lag_text()
    )
}
