//! The job summary (`GITHUB_STEP_SUMMARY`): one line of counts, then each rollout, then what the
//! run used of GitHub's API.

use super::markdown::{assemble, counts_line, problems_section, section, RolloutReport, SUMMARY_LIMIT};
use crate::github::ApiUse;
use crate::record::DecisionRecord;
use crate::spec::Diagnostic;

/// The job summary, under GitHub's size limit.
pub fn summary(reports: &[RolloutReport], problems: &[Diagnostic], run_url: &str) -> String {
    summary_ending(reports, problems, run_url, None)
}

/// The job summary, ending with the API use of the run ([`api_use_line`]) when given: the
/// footer is kept whatever the size limit cuts, so the line always shows.
pub fn summary_ending(
    reports: &[RolloutReport],
    problems: &[Diagnostic],
    run_url: &str,
    api_use: Option<&ApiUse>,
) -> String {
    let records: Vec<DecisionRecord> = reports.iter().map(|r| r.record.clone()).collect();
    let header = format!(
        "{}\n\n{}",
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
