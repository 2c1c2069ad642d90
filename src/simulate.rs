//! `flagramp simulate`: a backtest. Replays rollout specs over past metric data, one evaluation
//! per tick, with the flag and the state in memory (docs/statistics.md, "Backtests").
//!
//! Nothing real is read or written but the metric queries: the flag starts off and follows the
//! decisions, the state starts empty, and each tick's checks are queried at that tick (minus
//! the source's lag) by the same sources a run uses; command checks get the tick as
//! `FLAGRAMP_NOW`. The data replayed were gathered at the historical split, not the simulated
//! one, so the sample ratio test expects the exposure the data show (or the one the request
//! names), and ticks where the simulated percentage differs from it are marked `diverged`.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;

use crate::check::{Measured, Measurement, Measurements};
use crate::duration::SpecDuration;
use crate::engine::{self, Counted, Input, Judging, Step};
use crate::percent::Percent;
use crate::provider::FlagFiles;
use crate::record::{DecisionRecord, AUTOMATIC_ACTOR};
use crate::runner::Runner;
use crate::secrets::Secrets;
use crate::spec::RolloutSpec;
use crate::state::{FlagValue, MemoryStateStore, RolloutState};

/// The most ticks one backtest may have per rollout (a year at 15 minutes is 35,040).
pub const MAX_TICKS: i64 = 100_000;

/// How many rollouts are replayed at once: their queries go out concurrently, so a backtest of
/// many specs takes about as long as the metrics server needs, not the sum of its answers.
pub const CONCURRENT_ROLLOUTS: usize = 16;

/// A backtest, as a front end asks for it.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    /// The first tick.
    pub from: DateTime<Utc>,
    /// No tick is later than this.
    pub to: DateTime<Utc>,
    /// The time between ticks (a schedule's interval).
    pub every: SpecDuration,
    /// The exposure the data were gathered at; `None`: what the data show.
    pub exposure: Option<Percent>,
    /// The repository root: command checks run here.
    pub repo_root: PathBuf,
}

/// Why a backtest cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimulateError {
    /// `to` is not after `from`.
    #[error("--to ({to}) must be later than --from ({from})")]
    Empty {
        /// The first tick.
        from: String,
        /// The last.
        to: String,
    },
    /// `every` is zero or negative.
    #[error("--every must be longer than 0s")]
    NoInterval,
    /// Too many ticks.
    #[error("{ticks} ticks from --from to --to every {every}s is more than {MAX_TICKS}: shorten the span or lengthen --every")]
    TooManyTicks {
        /// How many the request asks for.
        ticks: i64,
        /// The interval in seconds.
        every: i64,
    },
}

impl SimulateRequest {
    /// The evaluation times: `from`, `from + every`, … up to and including `to`.
    pub fn ticks(&self) -> Result<Vec<DateTime<Utc>>, SimulateError> {
        if self.to <= self.from {
            return Err(SimulateError::Empty {
                from: self.from.to_rfc3339(),
                to: self.to.to_rfc3339(),
            });
        }
        let every = i64::try_from(self.every.as_secs()).unwrap_or(i64::MAX);
        if every <= 0 {
            return Err(SimulateError::NoInterval);
        }
        let ticks = (self.to - self.from).num_seconds() / every + 1;
        if ticks > MAX_TICKS {
            return Err(SimulateError::TooManyTicks { ticks, every });
        }
        Ok((0..ticks)
            .filter_map(|k| self.from.checked_add_signed(Duration::seconds(k * every)))
            .collect())
    }
}

/// One rollout's backtest: its decisions, one per tick, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The rollout.
    pub rollout: String,
    /// One record per tick.
    pub records: Vec<DecisionRecord>,
}

/// Replays every spec over the request's ticks, [`CONCURRENT_ROLLOUTS`] rollouts at a time; the
/// timelines come back in the order of `specs`.
pub async fn simulate(
    specs: &[RolloutSpec],
    request: &SimulateRequest,
    secrets: &Secrets,
) -> Result<Vec<Timeline>, SimulateError> {
    let ticks = request.ticks()?;
    for spec in specs {
        secrets.learn(spec);
    }
    // One pool for the whole backtest: sources keep their limits across rollouts, and rollouts
    // that ask the same query at the same tick share its answer.
    let pool = std::sync::Arc::new(crate::metrics::SourcePool::new());
    let timelines = futures::stream::iter(specs)
        .map(|spec| replay(spec, &ticks, request, secrets, &pool))
        .buffered(CONCURRENT_ROLLOUTS)
        .collect()
        .await;
    Ok(timelines)
}

/// What the replayed data show of the split: the last counts a `compare` check measured.
#[derive(Debug, Clone, Copy)]
struct Observed {
    exposed: f64,
    other: f64,
    counted: Counted,
}

impl Observed {
    /// The exposed share, as a percentage.
    fn percent(&self) -> Option<Percent> {
        let share = self.exposed / (self.exposed + self.other);
        let millis = (share * 100_000.0).round();
        (share.is_finite() && (0.0..=100_000.0).contains(&millis))
            .then(|| Percent::from_millis(millis as u32))
            .flatten()
    }

    /// Whether the data could have been gathered at `percent`: the sample ratio test of a
    /// `compare` check, with the simulated percentage as the expected share.
    fn fits(&self, percent: Percent) -> bool {
        let share = percent.as_f64() / 100.0;
        match engine::ratio_mismatch(self.exposed, self.other, self.counted, share) {
            Some((_, mismatch)) => !mismatch,
            // 0% or 100%: only data without one of the cohorts fit.
            None if share <= 0.0 => self.exposed <= 0.0,
            None => self.other <= 0.0,
        }
    }
}

/// The split the first `compare` check with usable counts measured at this tick.
fn observed(measured: &[Measured]) -> Option<Observed> {
    measured.iter().find_map(|m| {
        let Measurements::Counts(counts) = &m.what else {
            return None;
        };
        let value = |m: &Measurement| match m {
            Measurement::Value(v) if v.is_finite() && *v >= 0.0 => Some(*v),
            _ => None,
        };
        let units = |c: &crate::check::CohortMeasured| c.units.as_ref().and_then(value);
        let (exposed, other, counted) = match (units(&counts.canary), units(&counts.control)) {
            (Some(c), Some(k)) => (c, k, Counted::Users),
            _ => (
                value(&counts.canary.total)?,
                value(&counts.control.total)?,
                Counted::Requests,
            ),
        };
        (exposed + other > 0.0).then_some(Observed {
            exposed,
            other,
            counted,
        })
    })
}

async fn replay(
    spec: &RolloutSpec,
    ticks: &[DateTime<Utc>],
    request: &SimulateRequest,
    secrets: &Secrets,
    pool: &std::sync::Arc<crate::metrics::SourcePool>,
) -> Timeline {
    let mut flag = FlagValue::OFF;
    let mut state: Option<RolloutState> = None;
    let mut seen: Option<Observed> = None;
    let mut records = Vec::with_capacity(ticks.len());
    for &now in ticks {
        // A runner for its sources only: its store and flag files are never touched.
        let runner = Runner {
            store: Box::new(MemoryStateStore::new()),
            repo_root: request.repo_root.clone(),
            flag_files: FlagFiles::Local(request.repo_root.clone()),
            now,
            actor: AUTOMATIC_ACTOR.to_string(),
            secrets: secrets.clone(),
            budget: None,
            concurrency: 1,
            pool: pool.clone(),
            flag_reads: crate::provider::SharedReads::default(),
        };
        let input = Input {
            spec,
            state: state.as_ref(),
            flag: Ok(flag),
            now,
            actor: AUTOMATIC_ACTOR,
        };
        let mut step = engine::evaluate(input, None);
        if step == Step::NeedsChecks {
            let percent = flag.effective();
            let stage_entered = state.as_ref().and_then(|s| s.stage_entered_at);
            let measured = runner.measure_only(spec, percent, stage_entered).await;
            seen = observed(&measured).or(seen);
            let exposure = request.exposure.or_else(|| seen.and_then(|o| o.percent()));
            let mut judging = Judging {
                percent,
                exposure,
                ..Judging::default()
            };
            if let Some(s) = &state {
                judging.stage_entered = s.stage_entered_at;
                judging.looks = &s.compare;
            }
            let checks = engine::check_records(&spec.checks, &measured, &judging);
            step = engine::evaluate(input, Some(&checks));
        }
        let mut record = match step {
            Step::Decided(evaluation) => {
                if let Some(next) = evaluation.state {
                    state = Some(next);
                }
                if let Some(to) = evaluation.flag_change {
                    flag = to;
                }
                evaluation.record
            }
            Step::NeedsChecks => engine::error_record(
                spec,
                now,
                AUTOMATIC_ACTOR,
                "internal: the engine asked for checks twice".into(),
            ),
        };
        // Only a tick that judged data can have judged the wrong data; it judged them at the
        // percentage the flag had before its decision.
        let judged_at = record.from_percent;
        record.diverged = !record.checks.is_empty()
            && match (request.exposure, seen) {
                (Some(exposure), _) => judged_at != exposure,
                (None, Some(observed)) => !observed.fits(judged_at),
                (None, None) => false,
            };
        record.scrub(secrets);
        records.push(record);
    }
    Timeline {
        rollout: spec.name.clone(),
        records,
    }
}
