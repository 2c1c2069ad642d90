//! The pull request comment: found again by its hidden marker and edited in place.

use super::markdown::{assemble, counts_line, problems_section, section, RolloutReport, COMMENT_LIMIT};
use crate::record::DecisionRecord;
use crate::spec::Diagnostic;

/// A pull request comment: the hidden marker first (so it can be found again), a title, and the
/// same sections as the summary, under GitHub's size limit.
pub fn comment(marker: &str, title: &str, reports: &[RolloutReport], problems: &[Diagnostic], run_url: &str) -> String {
    let records: Vec<DecisionRecord> = reports.iter().map(|r| r.record.clone()).collect();
    let header = format!(
        "{marker}\n## {title}\n\n{}\n\n{}",
        counts_line(&records, problems.len()),
        problems_section(problems)
    );
    let sections = reports.iter().map(section).collect();
    let footer = format!("---\n<sub>Updated by [this run]({run_url}); edited in place on every run.</sub>\n");
    // The limit counts characters; bytes are an upper bound, so this is safe.
    assemble(header, sections, footer, run_url, COMMENT_LIMIT)
}
