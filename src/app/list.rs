//! Fan-out: the rollouts, put in chunks for a GitHub Actions matrix (`flagramp list`, the
//! Action's `command: list`). One job per chunk then runs its rollouts (`rollouts:`), so a
//! schedule with many rollouts is not one long job.
//!
//! Rollouts that report to the same pull request share a chunk: the pull request's comment is
//! one comment, edited in place, and two jobs editing it at once would each write their own
//! view of it. Which pull request a rollout reports to is [`super::reports_to`], the same
//! answer the Action's comments use.
//!
//! Chunks are balanced greedily (the largest group first, each into the chunk with the fewest
//! rollouts so far), deterministic (ties go to spec order), keep spec order inside a chunk and
//! are numbered by their first rollout in spec order.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::{reports_to, repository_path, ReportTo};
use crate::escape;
use crate::github::GitHub;
use crate::spec::{PullRequestRef, RolloutSpec};

/// GitHub runs at most this many jobs from one matrix.
pub const MAX_MATRIX_JOBS: usize = 256;

/// The chunks `list` makes unless told otherwise.
pub const DEFAULT_MAX_JOBS: usize = 8;

/// What `list` is asked.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// At most this many chunks, 1 to [`MAX_MATRIX_JOBS`].
    pub max_jobs: usize,
    /// How `auto` pull requests are found.
    pub lookup: Lookup,
}

/// How `report.pull_request: auto` is resolved for chunking.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Ask GitHub, on `branch` (`None`: the repository's default branch).
    GitHub {
        /// The API client.
        github: Arc<GitHub>,
        /// The branch whose history counts.
        branch: Option<String>,
    },
    /// No way to ask (why, for the note): `auto` rollouts are grouped by spec file alone.
    Unavailable(String),
}

/// Why `list` could not list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// A number of jobs a matrix cannot have.
    #[error("at most {0} jobs is not possible: a matrix runs 1 to {MAX_MATRIX_JOBS} jobs (GitHub's limit)")]
    MaxJobs(usize),
}

/// The rollouts and their chunks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The chunks asked for at most.
    pub max_jobs: usize,
    /// Every rollout, in spec order.
    pub rollouts: Vec<Listed>,
    /// The chunks, numbered from 1.
    pub chunks: Vec<Chunk>,
    /// Why `auto` rollouts were grouped by spec file alone (no token, or the lookup failed);
    /// `null` when every `auto` rollout was looked up, or none is `auto`.
    pub note: Option<String>,
}

/// One rollout of a [`Listing`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// The rollout's name.
    pub name: String,
    /// Its spec file, as the repository names it.
    pub file: String,
    /// The flag's key.
    pub flag: String,
    /// The flag provider.
    pub provider: &'static str,
    /// `report.pull_request` as the spec says it: `"auto"`, `"none"` or a number.
    pub pull_request: Value,
    /// The pull request it reports to, resolved (`null`: none, or `auto` not looked up).
    pub reports_to: Option<u64>,
    /// The chunk it is in.
    pub chunk: usize,
}

/// One chunk: one job of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Its number, from 1.
    pub chunk: usize,
    /// Its rollouts, in spec order.
    pub rollouts: Vec<String>,
}

/// Lists `specs` (in spec order) in chunks.
pub async fn list(specs: &[RolloutSpec], request: &ListRequest) -> Result<Listing, ListError> {
    if !(1..=MAX_MATRIX_JOBS).contains(&request.max_jobs) {
        return Err(ListError::MaxJobs(request.max_jobs));
    }
    let refs: Vec<&RolloutSpec> = specs.iter().collect();
    let any_auto = specs.iter().any(|s| s.report.pull_request == PullRequestRef::Auto);
    let grouped_alone = "`auto` rollouts are grouped by spec file alone";
    let (targets, note) = match &request.lookup {
        Lookup::GitHub { github, branch } if any_auto => {
            let branch = match branch {
                Some(branch) => Ok(branch.clone()),
                None => github.default_branch().await,
            };
            let (targets, failed) = match &branch {
                Ok(branch) => reports_to(&refs, Some((github, branch))).await,
                Err(e) => (reports_to(&refs, None).await.0, Some(e.clone())),
            };
            let note = failed.map(|e| {
                format!("could not ask GitHub which pull request last changed each spec ({e}); {grouped_alone}")
            });
            (targets, note)
        }
        Lookup::Unavailable(why) if any_auto => {
            (reports_to(&refs, None).await.0, Some(format!("{why}; {grouped_alone}")))
        }
        _ => (reports_to(&refs, None).await.0, None),
    };
    Ok(listing(specs, &targets, request.max_jobs, note))
}

/// The listing of `specs` whose reports go to `targets`.
fn listing(specs: &[RolloutSpec], targets: &[ReportTo], max_jobs: usize, note: Option<String>) -> Listing {
    let chunks = chunk(&groups(targets), max_jobs);
    let mut chunk_of = vec![0; specs.len()];
    for (n, members) in chunks.iter().enumerate() {
        for &i in members {
            chunk_of[i] = n + 1;
        }
    }
    let rollouts = specs
        .iter()
        .zip(targets)
        .zip(chunk_of)
        .map(|((spec, target), chunk)| Listed {
            name: spec.name.clone(),
            file: repository_path(&spec.file),
            flag: spec.flag.key.clone(),
            provider: spec.flag.provider.name(),
            pull_request: match spec.report.pull_request {
                PullRequestRef::Auto => json!("auto"),
                PullRequestRef::None => json!("none"),
                PullRequestRef::Number(n) => json!(n),
            },
            reports_to: match target {
                ReportTo::PullRequest(n) => Some(*n),
                ReportTo::Nowhere | ReportTo::Unknown => None,
            },
            chunk,
        })
        .collect();
    let chunks = chunks
        .into_iter()
        .enumerate()
        .map(|(n, members)| Chunk {
            chunk: n + 1,
            rollouts: members.into_iter().map(|i| specs[i].name.clone()).collect(),
        })
        .collect();
    Listing {
        max_jobs,
        rollouts,
        chunks,
        note,
    }
}

/// The rollouts (indices) that must share a chunk, in order of their first rollout: those that
/// report to one pull request together, every other one alone.
pub fn groups(targets: &[ReportTo]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_pull_request: HashMap<u64, usize> = HashMap::new();
    for (i, target) in targets.iter().enumerate() {
        match target {
            ReportTo::PullRequest(n) => match by_pull_request.get(n) {
                Some(&g) => groups[g].push(i),
                None => {
                    by_pull_request.insert(*n, groups.len());
                    groups.push(vec![i]);
                }
            },
            ReportTo::Nowhere | ReportTo::Unknown => groups.push(vec![i]),
        }
    }
    groups
}

/// Puts `groups` (lists of rollout indices, never split) into at most `max_jobs` chunks: the
/// largest group first (ties: the one whose first rollout comes first), each into the chunk
/// with the fewest rollouts so far (ties: the lower chunk). Each chunk lists its rollouts in
/// spec order, and the chunks come in the order of their first rollouts. No chunk is empty, so
/// there are `min(max_jobs, groups)` of them; the largest and the smallest differ by at most
/// the size of the largest group.
pub fn chunk(groups: &[Vec<usize>], max_jobs: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<&Vec<usize>> = groups.iter().filter(|g| !g.is_empty()).collect();
    order.sort_by_key(|g| (Reverse(g.len()), g.iter().min().copied()));
    let jobs = max_jobs.clamp(1, MAX_MATRIX_JOBS).min(order.len());
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new(); jobs];
    for group in order {
        if let Some(lightest) = (0..jobs).min_by_key(|&c| (chunks[c].len(), c)) {
            chunks[lightest].extend(group);
        }
    }
    for members in &mut chunks {
        members.sort_unstable();
    }
    chunks.sort_by_key(|members| members.first().copied());
    chunks
}

impl Listing {
    /// The matrix for `strategy.matrix` (through `fromJSON`): one job per chunk, each with its
    /// number and its rollouts separated by commas (rollout names have none).
    pub fn matrix(&self) -> Value {
        let include: Vec<Value> = self
            .chunks
            .iter()
            .map(|c| json!({ "chunk": c.chunk, "rollouts": c.rollouts.join(",") }))
            .collect();
        json!({ "include": include })
    }

    /// One line per chunk, then one per rollout: its spec file and where it reports.
    pub fn text(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut out = format!(
            "{} in {} (at most {})\n",
            plural(self.rollouts.len(), "rollout", "rollouts"),
            plural(self.chunks.len(), "chunk", "chunks"),
            plural(self.max_jobs, "job", "jobs"),
        );
        let name_width = self.rollouts.iter().map(|r| r.name.chars().count()).max().unwrap_or(0);
        let file_width = self.rollouts.iter().map(|r| r.file.chars().count()).max().unwrap_or(0);
        for chunk in &self.chunks {
            out.push_str(&format!(
                "chunk {} ({}): {}\n",
                chunk.chunk,
                plural(chunk.rollouts.len(), "rollout", "rollouts"),
                escape::plain(&chunk.rollouts.join(", "))
            ));
            for rollout in self.rollouts.iter().filter(|r| r.chunk == chunk.chunk) {
                out.push_str(&format!(
                    "  {:<name_width$}  {:<file_width$}  {}\n",
                    escape::plain(&rollout.name),
                    escape::plain(&rollout.file),
                    rollout.reports(self.note.is_none())
                ));
            }
        }
        out
    }

    /// The job summary's table: chunk, rollout, spec file, where it reports.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "**flagramp** · {} rollout(s) in {} chunk(s)\n\n| chunk | rollout | spec | reports to |\n| --- | --- | --- | --- |\n",
            self.rollouts.len(),
            self.chunks.len()
        );
        for chunk in &self.chunks {
            for rollout in self.rollouts.iter().filter(|r| r.chunk == chunk.chunk) {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    chunk.chunk,
                    escape::markdown(&rollout.name),
                    escape::markdown(&rollout.file),
                    escape::markdown(&rollout.reports(self.note.is_none()))
                ));
            }
        }
        if let Some(note) = &self.note {
            out.push_str(&format!("\n{}\n", escape::markdown(note)));
        }
        out
    }
}

impl Listed {
    /// Where its report goes, in words; `looked_up`: whether `auto` was asked of GitHub.
    fn reports(&self, looked_up: bool) -> String {
        let auto = self.pull_request == json!("auto");
        match (self.reports_to, auto) {
            (Some(n), true) => format!("pull request #{n} (auto)"),
            (Some(n), false) => format!("pull request #{n}"),
            (None, false) => "no pull request".to_string(),
            (None, true) if looked_up => "no pull request (auto: none changed the spec)".to_string(),
            (None, true) => "auto: not looked up".to_string(),
        }
    }
}
