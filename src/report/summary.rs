//! The job summary (`GITHUB_STEP_SUMMARY`): one line of counts, then each rollout.

use super::markdown::{assemble, counts_line, problems_section, section, RolloutReport, SUMMARY_LIMIT};
use crate::record::DecisionRecord;
use crate::spec::Diagnostic;

/// The job summary, under GitHub's size limit.
pub fn summary(reports: &[RolloutReport], problems: &[Diagnostic], run_url: &str) -> String {
    let records: Vec<DecisionRecord> = reports.iter().map(|r| r.record.clone()).collect();
    let header = format!(
        "{}\n\n{}",
        counts_line(&records, problems.len()),
        problems_section(problems)
    );
    let sections = reports.iter().map(section).collect();
    let footer = format!("---\n[flagramp run]({run_url})\n");
    assemble(header, sections, footer, run_url, SUMMARY_LIMIT)
}
