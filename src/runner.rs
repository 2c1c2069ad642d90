//! The shell around the engine: reads state and flags, queries checks, carries out decisions in
//! the order of docs/rules.md §3 rule 1 (claim, change the flag, record) and builds status.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};

use crate::check::{CohortMeasured, CountsMeasured, Measured, Measurement, Measurements};
use crate::engine::{self, Input, ManualOp, Step};
use crate::http::{Credentials, Deadline};
use crate::metrics::{
    CommandSource, DatadogSource, JsonSource, MeasureRequest, MetricSource, PooledSource, PrometheusSource,
    SourceIdentity, SourcePool,
};
use crate::percent::Percent;
use crate::provider::{
    self, ChangeNote, FlagFiles, FlagProvider, FlagReading, FlagdChange, ProviderError, SharedReads,
};
use crate::record::{CheckRecord, DecisionRecord, Status};
use crate::secrets::{SecretError, Secrets, WITHHELD_PROVIDER, WITHHELD_SOURCE};
use crate::spec::{Auth, CheckTest, CohortQueries, HeaderValue, Probe, Query, RolloutSpec, SourceProvider};
use crate::state::{FlagValue, PendingTransition, RolloutState, StateError, StateStore, StateVersion, StateWrite};

/// How many times a rollout is decided again after losing a compare-and-swap race.
const CONFLICT_ATTEMPTS: u32 = 3;

/// One attempt at deciding a rollout.
// Built once per attempt and matched at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Done(Decided),
    /// Another run changed the state or flag first: read everything again and decide again.
    Conflict(Lost),
}

/// Why an attempt lost a compare-and-swap, and to what.
struct Lost {
    why: String,
    /// Another run wrote the rollout's state: it is deciding this rollout too.
    to_state: bool,
}

impl Lost {
    fn state(why: &str) -> Lost {
        Lost {
            why: why.into(),
            to_state: true,
        }
    }
}

/// What deciding one rollout left for the run's phases.
// Built once per rollout and matched at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Prepared<'a> {
    /// Decided, with nothing (more) to write.
    Finished(Attempt),
    /// Decided; the state (and flag) are written with the run's other rollouts.
    Work(Work<'a>),
}

/// A decision waiting for the run's phases to write it.
struct Work<'a> {
    spec: &'a RolloutSpec,
    record: DecisionRecord,
    /// The state after the decision.
    next: RolloutState,
    /// The version the state was read at: every write of it is compare-and-swap on this.
    version: Option<StateVersion>,
    /// The history before and after the decision, for reports.
    before: Vec<DecisionRecord>,
    after: Vec<DecisionRecord>,
    /// The flag change, when the decision makes one.
    change: Option<FlagWork>,
}

/// A flag change to claim, make and record.
struct FlagWork {
    flags: Box<dyn FlagProvider>,
    /// The reading the decision was made on: the flag's compare-and-swap.
    read: FlagReading,
    to: FlagValue,
    note: ChangeNote,
    /// The state before the decision: withdrawing the claim restores it.
    before_state: RolloutState,
}

/// A change whose claim was saved.
struct Claimed<'a> {
    /// Its place among the run's prepared rollouts.
    pos: usize,
    work: Work<'a>,
    change: FlagWork,
    /// The claim's version: the record replaces the claim only if it is still there.
    version: StateVersion,
}

/// What the last phase writes for a claim.
enum Then {
    /// The flag is set: record the decision.
    Record,
    /// The flag was not set: withdraw the claim.
    Withdraw(Withdrawal),
}

/// Why a claim is withdrawn.
enum Withdrawal {
    /// Another process changed the flag first: decide again.
    Raced(String),
    /// The flag system refused, or failed before writing.
    NotChanged(String),
}

fn collect(outcome: Vec<Option<Attempt>>) -> Vec<Attempt> {
    outcome
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Attempt::Conflict(Lost::state("internal: a rollout without an outcome"))))
        .collect()
}

/// A decision, and whether carrying it out changed the rollout's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// The decision record.
    pub record: DecisionRecord,
    /// Whether state (or the flag) was written: reports go out for these.
    pub changed_state: bool,
    /// The rollout's history after this decision (for a plan: as it would be), so reports need
    /// not read the state again.
    pub history: Vec<DecisionRecord>,
    /// What went wrong after the decision was recorded (a notification not delivered): the
    /// decision stands, and reports show these as warnings.
    pub warnings: Vec<String>,
}

impl Attempt {
    fn unchanged(record: DecisionRecord, history: Vec<DecisionRecord>) -> Attempt {
        Attempt::Done(Decided {
            record,
            changed_state: false,
            history,
            warnings: Vec::new(),
        })
    }
}

/// What to do with each rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Decide and carry out (`run`).
    Run,
    /// Decide, change nothing (`plan`).
    Plan,
    /// A person's command.
    Manual {
        /// Which command.
        op: ManualOp,
        /// The person's reason.
        reason: String,
        /// Decide only, change nothing.
        dry_run: bool,
    },
}

impl Mode {
    fn changes_nothing(&self) -> bool {
        matches!(self, Mode::Plan | Mode::Manual { dry_run: true, .. })
    }
}

/// Runs evaluations against one state store and one repository checkout.
#[derive(Debug)]
pub struct Runner {
    /// Where state lives.
    pub store: Box<dyn StateStore>,
    /// The repository root: command checks run here.
    pub repo_root: PathBuf,
    /// Where flag files are read and written.
    pub flag_files: FlagFiles,
    /// The evaluation time.
    pub now: DateTime<Utc>,
    /// Who acts.
    pub actor: String,
    /// Secrets read so far, for redaction.
    pub secrets: Secrets,
    /// The run's time budget (`--time-budget`): once it has passed, the rollouts not yet decided
    /// hold without being read or changed. `None`: no budget.
    pub budget: Option<Deadline>,
    /// How many rollouts are decided at once (`--concurrency`).
    pub concurrency: usize,
    /// The run's metric sources: per-source limits and shared answers, for every rollout.
    pub pool: Arc<SourcePool>,
    /// The run's reads of flag files, shared by the rollouts whose flags they hold.
    pub flag_reads: SharedReads,
}

/// How many rollouts a run decides at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 32;

/// Told how far a run has come, for a front end to show (a progress bar on a terminal); the
/// runner knows nothing of how, or whether, it is shown.
pub trait Progress: std::fmt::Debug + Send + Sync {
    /// The run will decide `rollouts` rollouts.
    fn start(&self, rollouts: usize);
    /// One more rollout was decided (its first round; one decided again after losing a race to
    /// another run does not count twice).
    fn decided(&self);
    /// Every decision was carried out: the run is about to report.
    fn finish(&self);
}

/// Shows nothing.
#[derive(Debug)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: usize) {}
    fn decided(&self) {}
    fn finish(&self) {}
}

impl Runner {
    /// Decides every rollout and carries the decisions out together, in the order of
    /// docs/rules.md §3 rule 1, one phase for all rollouts at a time: every claim (and every
    /// state-only change) in one batch, then the flags (one write per flag file), then every
    /// record in one batch. A run's writes so do not grow with its rollouts.
    ///
    /// A panic while deciding one rollout (a bug) ends that rollout in `error` and the others
    /// go on: one bad rollout must not stop the rest, nor leave them changed with nothing
    /// reported. A rollout whose state or flag another run changed first (a compare-and-swap
    /// conflict) is read and decided again, a bounded number of times. Results come back in
    /// spec order.
    ///
    /// Every secret the specs name is registered first, and a person's reason is admitted like
    /// any text from outside, so that nothing this run stores or returns carries a secret.
    pub async fn decide_all(&self, specs: &[RolloutSpec], mode: &Mode) -> Vec<Decided> {
        self.decide_all_with(specs, mode, &NoProgress).await
    }

    /// [`Runner::decide_all`], telling `progress` as each rollout is decided.
    pub async fn decide_all_with(&self, specs: &[RolloutSpec], mode: &Mode, progress: &dyn Progress) -> Vec<Decided> {
        progress.start(specs.len());
        for spec in specs {
            self.secrets.learn(spec);
        }
        let mode = match mode {
            Mode::Manual { op, reason, dry_run } => Mode::Manual {
                op: *op,
                reason: self.secrets.admit(reason),
                dry_run: *dry_run,
            },
            other => other.clone(),
        };
        let mode = &mode;
        let mut decided: Vec<Option<Decided>> = vec![None; specs.len()];
        let mut lost: Vec<Option<Lost>> = (0..specs.len()).map(|_| None).collect();
        let mut open: Vec<usize> = (0..specs.len()).collect();
        for round in 1..=CONFLICT_ATTEMPTS {
            if open.is_empty() {
                break;
            }
            if round > 1 {
                // Runs started by one event race in step; a random pause lets one of them
                // finish before the others read again.
                let pause = rand::random_range(20..200u64) * u64::from(round - 1);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            // Each round decides on the flags as they are now.
            self.flag_reads.forget_all();
            let names: Vec<String> = open.iter().map(|&i| specs[i].name.clone()).collect();
            if let Err(e) = self.store.prefetch(&names).await {
                // Each load then reads on its own and reports its own error.
                tracing::warn!(error = %self.secrets.admit(&e.to_string()), "reading the state of every rollout at once failed");
            }
            // Each rollout's reads and queries are its own, so rollouts are decided side by
            // side, at most `concurrency` at once; `buffered` keeps them in spec order.
            let prepared: Vec<Prepared<'_>> = futures::stream::iter(open.clone())
                .map(|i| async move {
                    let prepared = self.prepare_guarded(&specs[i], mode).await;
                    if round == 1 {
                        progress.decided();
                    }
                    prepared
                })
                .buffered(self.concurrency.max(1))
                .collect()
                .await;
            let attempts = self.carry_out_all(prepared).await;
            let mut again = Vec::new();
            for (&i, attempt) in open.iter().zip(attempts) {
                match attempt {
                    Attempt::Done(d) => decided[i] = Some(d),
                    Attempt::Conflict(why) => {
                        tracing::info!(rollout = %specs[i].name, round, why = %why.why, "another run got there first; deciding again");
                        lost[i] = Some(why);
                        again.push(i);
                    }
                }
            }
            open = again;
        }
        // Their flags as they are now, not as the last round read them.
        self.flag_reads.forget_all();
        for i in open {
            let why = lost[i].take().unwrap_or_else(|| Lost::state(""));
            decided[i] = Some(self.lost_race(&specs[i], mode, why).await);
        }
        let decided = decided
            .into_iter()
            .zip(specs)
            .map(|(d, spec)| {
                let d = d.unwrap_or_else(|| Decided {
                    record: self.error_record(spec, "internal: a rollout without a decision".into()),
                    changed_state: false,
                    history: Vec::new(),
                    warnings: Vec::new(),
                });
                self.finish(d, mode)
            })
            .collect();
        progress.finish();
        decided
    }

    /// Decides one rollout and carries the decision out: [`Runner::decide_all`] of one.
    pub async fn decide(&self, spec: &RolloutSpec, mode: &Mode) -> Decided {
        let mut decided = self.decide_all(std::slice::from_ref(spec), mode).await;
        decided.pop().unwrap_or_else(|| Decided {
            record: self.error_record(spec, "internal: a rollout without a decision".into()),
            changed_state: false,
            history: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// The flag of `spec`, its file read through the run's shared reads.
    fn flags_of(&self, spec: &RolloutSpec) -> Result<Box<dyn FlagProvider>, ProviderError> {
        provider::for_flag_in_run(&spec.flag, &self.flag_files, &self.secrets, Some(&self.flag_reads))
    }

    /// What a decided rollout returns: a plan's record marked as one, and every record scrubbed.
    fn finish(&self, mut decided: Decided, mode: &Mode) -> Decided {
        // A plan or dry run did nothing: its record says what the next run would do
        // (docs/rules.md §4, `planned`).
        let planned = mode.changes_nothing();
        // The history "as it would be" ends with this very decision: it is as planned as the
        // record, so no report takes it for a change that happened.
        if planned {
            if let Some(last) = decided.history.last_mut().filter(|last| **last == decided.record) {
                last.planned = true;
            }
        }
        decided.record.planned = planned;
        decided.record.scrub(&self.secrets);
        for record in &mut decided.history {
            record.scrub(&self.secrets);
        }
        decided
    }

    /// Deciding one rollout, under its panic guard and the run's budget.
    async fn prepare_guarded<'a>(&self, spec: &'a RolloutSpec, mode: &Mode) -> Prepared<'a> {
        if let Some(held) = self.out_of_budget(spec) {
            return Prepared::Finished(Attempt::Done(held));
        }
        // Unwind safety: after a panic nothing of the abandoned attempt is used again. A
        // state write it made was compare-and-swap (resolving an old claim), and nothing of
        // this rollout is written in the run's phases.
        let guarded = AssertUnwindSafe(self.prepare(spec, mode)).catch_unwind().await;
        guarded.unwrap_or_else(|panic| {
            let message = panic_message(panic.as_ref());
            tracing::error!(rollout = %spec.name, "deciding this rollout panicked; it ends in error");
            Prepared::Finished(Attempt::unchanged(
                self.error_record(
                    spec,
                    format!(
                        "internal error (a bug in flagramp, please report it): {message}; a change this run may have claimed is finished or dropped from the flag by the next run"
                    ),
                ),
                Vec::new(),
            ))
        })
    }

    /// A hold for `spec` once the run's time budget is spent: nothing is read or changed, so a
    /// slow dependency cannot keep the run going past its budget.
    fn out_of_budget(&self, spec: &RolloutSpec) -> Option<Decided> {
        let budget = self.budget.filter(Deadline::passed)?;
        Some(Decided {
            record: engine::budget_record(spec, self.now, &self.actor, &budget.describe()),
            changed_state: false,
            history: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// The one way state is written: every record in it scrubbed first.
    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError> {
        self.store.save(&self.scrubbed(state), expected).await
    }

    /// `state` with every record in it redacted, as it may be stored.
    fn scrubbed(&self, state: &RolloutState) -> RolloutState {
        let mut state = state.clone();
        state.scrub(&self.secrets);
        state
    }

    fn error_record(&self, spec: &RolloutSpec, message: String) -> DecisionRecord {
        engine::error_record(spec, self.now, &self.actor, self.secrets.admit(&message))
    }

    /// The decision for a rollout other runs kept changing. Other runs writing the state are
    /// deciding this rollout: a scheduled run that lost to them did nothing wrong, and its hold
    /// says so. A flag system that keeps refusing the write is something else, an error.
    async fn lost_race(&self, spec: &RolloutSpec, mode: &Mode, last: Lost) -> Decided {
        let record = if last.to_state && !matches!(mode, Mode::Manual { .. }) {
            let found = match self.flags_of(spec) {
                Ok(flags) => flags.read().await.ok().map(|r| r.value),
                Err(_) => None,
            };
            engine::lost_race_record(spec, self.now, &self.actor, &self.secrets.admit(&last.why), found)
        } else {
            self.error_record(
                spec,
                format!(
                    "other runs kept changing this rollout ({}); nothing was changed by this run",
                    last.why
                ),
            )
        };
        Decided {
            record,
            changed_state: false,
            history: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads one rollout's state and flag, resolves a dead run's claim, queries the checks
    /// and decides; what is left to write is returned for the run's phases.
    async fn prepare<'a>(&self, spec: &'a RolloutSpec, mode: &Mode) -> Prepared<'a> {
        inject_panic(spec);
        let finished = |record, history| Prepared::Finished(Attempt::unchanged(record, history));
        if self.secrets.withheld(&spec.name).is_some_and(|w| w.flag_provider) {
            return finished(
                self.error_record(spec, format!("flag provider: {WITHHELD_PROVIDER}")),
                Vec::new(),
            );
        }
        let flags = match self.flags_of(spec) {
            Ok(p) => p,
            Err(e) => return finished(self.error_record(spec, format!("flag provider: {e}")), Vec::new()),
        };
        let stored = match self.store.load(&spec.name).await {
            Ok(s) => s,
            Err(e) => return finished(self.error_record(spec, e.to_string()), Vec::new()),
        };
        let reading = flags.read().await;
        let mut resolved_claim = false;
        let (mut state, mut version) = match stored {
            Some(s) => (Some(s.state), Some(s.version)),
            None => (None, None),
        };

        let history_of = |s: Option<&RolloutState>| s.map(|s| s.history.clone()).unwrap_or_default();
        // A store that keeps every other run out knows a claim in it is a dead run's: resolve it now.
        let claim_may_be_live = !self.store.excludes_other_runs();
        if let Some(pending) = state
            .as_ref()
            .filter(|_| claim_may_be_live)
            .and_then(|s| engine::claim_in_progress(s, self.now))
        {
            return finished(
                engine::busy_record(
                    spec,
                    self.now,
                    &self.actor,
                    pending,
                    reading.as_ref().ok().map(|r| r.value),
                ),
                history_of(state.as_ref()),
            );
        }
        // Rule 1: finish or abandon a change a crashed run claimed.
        if let (Some(current), Ok(read)) = (&state, &reading) {
            if let Some(resolved) = engine::resolve_pending(current, read.value) {
                tracing::info!(rollout = %spec.name, finished = resolved.last_set == Some(read.value), "resolved a pending transition");
                if !mode.changes_nothing() {
                    match self.save(&resolved, version.as_ref()).await {
                        Ok(v) => {
                            version = Some(v);
                            resolved_claim = true;
                        }
                        Err(StateError::Conflict { .. }) => {
                            return Prepared::Finished(Attempt::Conflict(Lost::state(
                                "the state changed while resolving a claim",
                            )))
                        }
                        Err(e) => return finished(self.error_record(spec, e.to_string()), history_of(state.as_ref())),
                    }
                }
                state = Some(resolved);
            }
        }

        let flag_error = reading.as_ref().err().map(|e| self.secrets.admit(&e.to_string()));
        let input = Input {
            spec,
            state: state.as_ref(),
            flag: match (&reading, &flag_error) {
                (Ok(r), _) => Ok(r.value),
                (Err(_), Some(msg)) => Err(msg.as_str()),
                (Err(_), None) => unreachable!("an error always has a message"),
            },
            now: self.now,
            actor: &self.actor,
        };
        let decide = |checks: Option<&[CheckRecord]>| match mode {
            Mode::Run | Mode::Plan => engine::evaluate(input, checks),
            Mode::Manual { op, reason, .. } => engine::evaluate_manual(input, *op, reason, checks),
        };
        let mut step = decide(None);
        if step == Step::NeedsChecks {
            let percent = reading.as_ref().map(|r| r.value.effective()).unwrap_or_default();
            let checks = self.measure(spec, percent, state.as_ref()).await;
            step = decide(Some(&checks));
        }
        let Step::Decided(evaluation) = step else {
            return finished(
                self.error_record(spec, "internal: the engine asked for checks twice".into()),
                history_of(state.as_ref()),
            );
        };
        tracing::info!(rollout = %spec.name, decision = evaluation.record.decision.as_str(), "decided");
        let after = history_of(evaluation.state.as_ref().or(state.as_ref()));
        if mode.changes_nothing() {
            return finished(evaluation.record, after);
        }
        let before = history_of(state.as_ref());
        let Ok(read) = reading else {
            return finished(evaluation.record, before);
        };
        let Some(next) = evaluation.state else {
            return Prepared::Finished(Attempt::Done(Decided {
                record: evaluation.record,
                changed_state: resolved_claim,
                history: after,
                warnings: Vec::new(),
            }));
        };
        let change = evaluation.flag_change.map(|to| FlagWork {
            // Redacted here: the note leaves the process (a commit message) before the record
            // is redacted for printing.
            note: ChangeNote {
                actor: self.actor.clone(),
                reason: self.secrets.redact(&evaluation.record.reason),
            },
            flags,
            read,
            to,
            before_state: state
                .clone()
                .unwrap_or_else(|| RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents())),
        });
        Prepared::Work(Work {
            spec,
            record: evaluation.record,
            next,
            version,
            before,
            after,
            change,
        })
    }

    /// Carries out the run's decisions in phases (docs/rules.md §3 rule 1): claims and
    /// state-only changes in one batch, the flags (one write per flag file), the records and
    /// withdrawn claims in one batch. One attempt per prepared rollout, in order.
    async fn carry_out_all(&self, prepared: Vec<Prepared<'_>>) -> Vec<Attempt> {
        let mut outcome: Vec<Option<Attempt>> = (0..prepared.len()).map(|_| None).collect();
        let mut works = Vec::new();
        for (pos, p) in prepared.into_iter().enumerate() {
            match p {
                Prepared::Finished(attempt) => outcome[pos] = Some(attempt),
                Prepared::Work(work) => works.push((pos, work)),
            }
        }

        // Phase 1: claims (a pending transition before the flag is touched) and the changes
        // that touch only the state.
        let writes: Vec<StateWrite> = works
            .iter()
            .map(|(_, w)| StateWrite {
                state: self.scrubbed(&match &w.change {
                    Some(change) => self.claim(change, &w.next),
                    None => w.next.clone(),
                }),
                expected: w.version.clone(),
            })
            .collect();
        let saved = if writes.is_empty() {
            Vec::new()
        } else {
            self.store.save_batch(&writes).await
        };
        let mut claimed = Vec::new();
        for ((pos, mut work), result) in works.into_iter().zip(saved) {
            outcome[pos] = match (result, work.change.take()) {
                (Ok(version), Some(change)) => {
                    claimed.push(Claimed {
                        pos,
                        work,
                        change,
                        version,
                    });
                    None
                }
                (Ok(_), None) => Some(Attempt::Done(Decided {
                    record: work.record,
                    changed_state: true,
                    history: work.after,
                    warnings: Vec::new(),
                })),
                (Err(StateError::Conflict { .. }), _) => {
                    Some(Attempt::Conflict(Lost::state("the state changed since it was read")))
                }
                (Err(e), _) => Some(self.not_carried_out(work, &e.to_string())),
            };
        }
        if claimed.is_empty() {
            return collect(outcome);
        }
        tracing::debug!(claims = claimed.len(), "claims saved");
        crate::crashpoint::pause_at("after-claim");

        // Phase 2: the flags.
        let set = self.set_flags(&claimed).await;
        let mut second = Vec::new();
        for (c, result) in claimed.into_iter().zip(set) {
            match result {
                Ok(_) => second.push((c, Then::Record)),
                // The flag changed under us, so our change never happened: withdraw the claim.
                Err(ProviderError::Conflict(why)) => second.push((c, Then::Withdraw(Withdrawal::Raced(why)))),
                // Refused outright or failed before writing: nothing was written, so the claim
                // is withdrawn at once and the next run is free to decide again.
                Err(
                    e @ (ProviderError::Refused(_)
                    | ProviderError::NotWritten(_)
                    | ProviderError::Auth(_)
                    | ProviderError::NotFound(_)
                    | ProviderError::CannotOwn(_)
                    | ProviderError::Unsupported(_)),
                ) => second.push((c, Then::Withdraw(Withdrawal::NotChanged(e.to_string())))),
                // The outcome is unknown (a timeout, a server error): the claim stays, and a
                // later run reads the flag and finishes or drops it.
                Err(e) => {
                    outcome[c.pos] = Some(self.not_carried_out(
                        c.work,
                        &format!(
                            "setting the flag failed: {e} (the claim is resolved from the flag after {} minutes)",
                            engine::CLAIM_LEASE.num_minutes()
                        ),
                    ))
                }
            }
        }
        if second.iter().any(|(_, then)| matches!(then, Then::Record)) {
            crate::crashpoint::pause_at("before-record");
        }

        // Phase 3: the records of the changes made, and the claims of those not made withdrawn.
        let writes: Vec<StateWrite> = second
            .iter()
            .map(|(c, then)| StateWrite {
                state: self.scrubbed(match then {
                    Then::Record => &c.work.next,
                    Then::Withdraw(_) => &c.change.before_state,
                }),
                expected: Some(c.version.clone()),
            })
            .collect();
        let saved = if writes.is_empty() {
            Vec::new()
        } else {
            self.store.save_batch(&writes).await
        };
        let lease = engine::CLAIM_LEASE.num_minutes();
        for ((c, then), result) in second.into_iter().zip(saved) {
            outcome[c.pos] = Some(match (then, result) {
                (Then::Record, Ok(_)) => Attempt::Done(Decided {
                    record: c.work.record,
                    changed_state: true,
                    history: c.work.after,
                    warnings: Vec::new(),
                }),
                (Then::Record, Err(e)) => self.not_carried_out(
                    c.work,
                    &format!("the flag is set but recording failed: {e} (the next run finishes it from the claim)"),
                ),
                (Then::Withdraw(Withdrawal::Raced(why)), Ok(_)) => Attempt::Conflict(Lost { why, to_state: false }),
                (Then::Withdraw(Withdrawal::Raced(why)), Err(e)) => self.not_carried_out(
                    c.work,
                    &format!("{why}; withdrawing the claim failed: {e} (it expires after {lease} minutes)"),
                ),
                (Then::Withdraw(Withdrawal::NotChanged(e)), Ok(_)) => {
                    self.not_carried_out(c.work, &format!("the flag was not changed: {e}"))
                }
                (Then::Withdraw(Withdrawal::NotChanged(e)), Err(save)) => self.not_carried_out(
                    c.work,
                    &format!(
                        "the flag was not changed: {e}; withdrawing the claim failed: {save} (it expires after {lease} minutes)"
                    ),
                ),
            });
        }
        collect(outcome)
    }

    /// The claim of a change: the state before it, with the change pending.
    fn claim(&self, change: &FlagWork, next: &RolloutState) -> RolloutState {
        let mut claim = change.before_state.clone();
        claim.pending = Some(PendingTransition {
            from: change.read.value,
            to: change.to,
            then: Box::new(next.clone()),
            claimed_at: Some(self.now),
        });
        claim
    }

    /// Sets the claimed flags: every flagd flag through [`provider::set_together`] (one write
    /// per file, the local files of a directory in one pass), every other flag on its own, at
    /// most `concurrency` at once. One result per claim, in order.
    async fn set_flags(&self, claimed: &[Claimed<'_>]) -> Vec<Result<FlagReading, ProviderError>> {
        let mut in_files = Vec::new();
        let mut alone = Vec::new();
        for (k, c) in claimed.iter().enumerate() {
            match c.change.flags.as_flagd_file() {
                Some(file) => in_files.push((
                    k,
                    FlagdChange {
                        flag: file,
                        to: c.change.to,
                        seen: &c.change.read,
                        note: &c.change.note,
                    },
                )),
                None => alone.push(k),
            }
        }
        let changes: Vec<FlagdChange<'_>> = in_files.iter().map(|(_, change)| *change).collect();
        let (files, others) = futures::join!(
            provider::set_together(&changes),
            futures::stream::iter(alone.iter().copied())
                .map(|k| {
                    let c = &claimed[k].change;
                    async move { (k, c.flags.set(c.to, &c.read, &c.note).await) }
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect::<Vec<_>>()
        );
        let mut results: Vec<Option<Result<FlagReading, ProviderError>>> = (0..claimed.len()).map(|_| None).collect();
        for ((k, _), result) in in_files.iter().zip(files) {
            results[*k] = Some(result);
        }
        for (k, result) in others {
            results[k] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ProviderError::Io("internal: a flag change without a result".into()))))
            .collect()
    }

    /// An error record for a decision that could not be carried out; the state is as it was.
    fn not_carried_out(&self, work: Work<'_>, message: &str) -> Attempt {
        Attempt::unchanged(
            self.error_record(
                work.spec,
                format!(
                    "{} was decided but not carried out: {message}",
                    work.record.decision.as_str()
                ),
            ),
            work.before,
        )
    }

    /// Queries every check (its control query, or a compare check's counts, too), concurrently,
    /// each within its own timeout. Each query is evaluated at the decision time minus its
    /// source's lag, so that only closed windows are judged (docs/rules.md §2).
    pub async fn measure(
        &self,
        spec: &RolloutSpec,
        percent: Percent,
        state: Option<&RolloutState>,
    ) -> Vec<CheckRecord> {
        let stage_entered = state.and_then(|s| s.stage_entered_at);
        let measured = self.measure_only(spec, percent, stage_entered).await;
        let judging = match state {
            Some(s) => engine::Judging {
                percent,
                stage_entered,
                looks: &s.compare,
                exposure: None,
            },
            None => engine::Judging {
                percent,
                ..Default::default()
            },
        };
        engine::check_records(&spec.checks, &measured, &judging)
    }

    /// Asks every check's source (or runs its command) and returns the answers, unjudged and
    /// admitted (redacted, capped); `measure` judges them.
    pub async fn measure_only(
        &self,
        spec: &RolloutSpec,
        percent: Percent,
        stage_entered: Option<DateTime<Utc>>,
    ) -> Vec<Measured> {
        let sources = self.sources(spec);
        let withheld = self.secrets.withheld(&spec.name);
        let commands = CommandSource::new(&self.repo_root, self.secrets.clone(), withheld.is_none());
        futures::future::join_all(spec.checks.iter().map(|check| {
            let sources = &sources;
            let withheld = &withheld;
            let commands = &commands;
            async move {
                let lag = check
                    .source()
                    .and_then(|name| spec.sources.get(name))
                    .map(|s| s.lag.as_secs())
                    .unwrap_or(0);
                let at = self.now - chrono::Duration::seconds(i64::try_from(lag).unwrap_or(i64::MAX / 1000));
                let ask = |probe: Probe, window: Option<std::time::Duration>| {
                    let request_probe = probe;
                    async move {
                        let request = MeasureRequest {
                            probe: &request_probe,
                            at,
                            window,
                            timeout: check.timeout.to_std(),
                            rollout: &spec.name,
                            percent,
                        };
                        self.admit(self.ask(&request, sources, withheld.as_ref(), commands).await)
                    }
                };
                let what = match &check.test {
                    CheckTest::Threshold(test) => {
                        let window = test.window.map(|w| w.to_std());
                        let control_probe = match (&test.probe, &test.control) {
                            (Probe::Query { source, .. }, Some(control)) => Some(Probe::Query {
                                source: source.clone(),
                                query: control.clone(),
                            }),
                            _ => None,
                        };
                        let own = ask(test.probe.clone(), window);
                        let (own, control) = match control_probe {
                            Some(probe) => {
                                let (own, control) = futures::join!(own, ask(probe, window));
                                (own, Some(control))
                            }
                            None => (own.await, None),
                        };
                        Measurements::Value { own, control }
                    }
                    CheckTest::Compare(test) => {
                        let since = engine::window_start(test, stage_entered, at);
                        // An empty window, or 100% (no control cohort), is judged without asking.
                        let empty = since >= at || !engine::needs_counts(percent);
                        let window = (at - since).to_std().ok();
                        let count = |query: &Query| {
                            let probe = Probe::Query {
                                source: test.source.clone(),
                                query: query.clone(),
                            };
                            async move {
                                if empty {
                                    Measurement::NoData("nothing to count".into())
                                } else {
                                    ask(probe, window).await
                                }
                            }
                        };
                        let cohort = |q: &'_ CohortQueries| {
                            let units = q.units.as_ref().map(count);
                            let (events, total) = (count(&q.events), count(&q.total));
                            async move {
                                let units = match units {
                                    Some(u) => Some(u.await),
                                    None => None,
                                };
                                let (events, total) = futures::join!(events, total);
                                CohortMeasured { events, total, units }
                            }
                        };
                        let (canary, control) = futures::join!(cohort(&test.canary), cohort(&test.control));
                        Measurements::Counts(CountsMeasured { since, canary, control })
                    }
                };
                Measured { what, at }
            }
        }))
        .await
    }

    async fn ask(
        &self,
        request: &MeasureRequest<'_>,
        sources: &BTreeMap<String, Result<PooledSource, SecretError>>,
        withheld: Option<&crate::secrets::Withheld>,
        commands: &CommandSource,
    ) -> Measurement {
        match request.probe {
            Probe::Command { .. } => commands.measure(request).await,
            Probe::Query { source, .. } if withheld.is_some_and(|w| w.sources.contains(source)) => {
                Measurement::Error(WITHHELD_SOURCE.into())
            }
            Probe::Query { source, .. } => match sources.get(source) {
                Some(Ok(s)) => self.pool.measure(s, request).await,
                Some(Err(why)) => Measurement::Error(format!("source `{source}`: {why}")),
                None => Measurement::Error(format!("source `{source}` is not declared")),
            },
        }
    }

    /// Answers, errors and command output enter the record here: redacted and capped first.
    fn admit(&self, measurement: Measurement) -> Measurement {
        match measurement {
            Measurement::Value(v) => Measurement::Value(v),
            Measurement::NoData(why) => Measurement::NoData(self.secrets.admit(&why)),
            Measurement::Error(why) => Measurement::Error(self.secrets.admit(&why)),
        }
    }

    fn sources(&self, spec: &RolloutSpec) -> BTreeMap<String, Result<PooledSource, SecretError>> {
        let withheld = self.secrets.withheld(&spec.name).unwrap_or_default();
        spec.sources
            .iter()
            // A source a pull request changed is never built: its secrets are not even read.
            .filter(|(name, _)| !withheld.sources.contains(*name))
            .map(|(name, source)| {
                let http = &source.http;
                let timeout = http.timeout.map(|t| t.to_std());
                let built = self.credentials(&http.auth, &http.headers).map(|credentials| {
                    let identity = SourceIdentity::new(source.provider.name(), &http.url, &credentials);
                    let client = match &source.provider {
                        SourceProvider::Prometheus => {
                            Arc::new(PrometheusSource::new(name, &http.url, credentials, timeout))
                                as Arc<dyn MetricSource>
                        }
                        SourceProvider::Datadog {
                            api_key_env,
                            app_key_env,
                        } => Arc::new(DatadogSource::new(
                            name,
                            &http.url,
                            credentials,
                            timeout,
                            [api_key_env.as_str(), app_key_env.as_str()],
                        )) as Arc<dyn MetricSource>,
                        SourceProvider::Http => {
                            Arc::new(JsonSource::new(name, &http.url, credentials, timeout)) as Arc<dyn MetricSource>
                        }
                    };
                    PooledSource {
                        source: client,
                        identity,
                        max_concurrency: source.max_concurrency,
                    }
                });
                (name.clone(), built)
            })
            .collect()
    }

    fn credentials(&self, auth: &Auth, headers: &[(String, HeaderValue)]) -> Result<Credentials, SecretError> {
        let mut credentials = Credentials::default();
        match auth {
            Auth::None => {}
            Auth::Bearer { token_env } => {
                let token = self.secrets.read(token_env)?;
                self.secrets.remember_bearer(&token);
                credentials.bearer = Some(token);
            }
            Auth::Basic {
                username_env,
                password_env,
            } => {
                let (user, password) = (self.secrets.read(username_env)?, self.secrets.read(password_env)?);
                self.secrets.remember_basic(&user, &password);
                credentials.basic = Some((user, password));
            }
        }
        for (name, value) in headers {
            let value = match value {
                HeaderValue::Literal(v) => v.clone(),
                HeaderValue::Env(var) => self.secrets.read(var)?,
            };
            credentials.headers.push((name.clone(), value));
        }
        Ok(credentials)
    }

    /// The status of each rollout, then of each state document whose spec is gone.
    ///
    /// Every status is scrubbed of the secrets the specs name, history included: state written
    /// by an older version, or by hand, may carry one.
    pub async fn status(&self, specs: &[RolloutSpec], include_orphans: bool) -> Result<Vec<Status>, StateError> {
        for spec in specs {
            self.secrets.learn(spec);
        }
        let mut out = self.raw_status(specs, include_orphans).await?;
        for status in &mut out {
            status.scrub(&self.secrets);
        }
        Ok(out)
    }

    async fn raw_status(&self, specs: &[RolloutSpec], include_orphans: bool) -> Result<Vec<Status>, StateError> {
        self.flag_reads.forget_all();
        let mut out = Vec::new();
        for spec in specs {
            let state = self.store.load(&spec.name).await?.map(|s| s.state);
            let reading = match self.flags_of(spec) {
                Ok(p) => p.read().await.map(|r| r.value),
                Err(e) => Err(e),
            };
            out.push(build_status(
                spec.name.clone(),
                spec.flag.key.clone(),
                spec,
                state,
                reading,
            ));
        }
        if include_orphans {
            for name in self.store.list().await? {
                if specs.iter().any(|s| s.name == name) {
                    continue;
                }
                if let Some(stored) = self.store.load(&name).await? {
                    let s = stored.state;
                    let last = s.last_set.unwrap_or(crate::state::FlagValue::OFF);
                    out.push(Status {
                        rollout: s.rollout.clone(),
                        flag: s.flag.clone(),
                        stages: s.stages.clone(),
                        current_stage: if last.enabled {
                            engine::position(&s.stages, last.percent)
                        } else {
                            None
                        },
                        current_percent: last.effective(),
                        enabled: last.enabled,
                        started_at: s.started_at,
                        last_advanced_at: s.last_advanced_at,
                        completed_at: s.completed_at,
                        paused: s.paused,
                        locked: s.locked,
                        spec_found: false,
                        flag_error: Some("the spec for this state is gone: values are what flagramp last set".into()),
                        history: s.history,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// The variable that, in debug builds only, makes deciding the rollout it names panic: the
/// tests prove the panic guard of [`Runner::decide_all`] with it.
#[doc(hidden)]
pub const INJECT_PANIC_VAR: &str = "FLAGRAMP_TEST_PANIC_IN_ROLLOUT";

fn inject_panic(spec: &RolloutSpec) {
    if crate::crashpoint::panics_in(&spec.name) {
        panic!("injected by {INJECT_PANIC_VAR} for rollout `{}`", spec.name);
    }
}

/// The text a panic was raised with (`panic!("…")`, `expect("…")`, a failed assertion).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn build_status(
    rollout: String,
    flag: String,
    spec: &RolloutSpec,
    state: Option<RolloutState>,
    reading: Result<crate::state::FlagValue, ProviderError>,
) -> Status {
    let state = state.unwrap_or_else(|| RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents()));
    let (value, flag_error) = match reading {
        Ok(v) => (v, None),
        Err(e) => (
            state.last_set.unwrap_or(crate::state::FlagValue::OFF),
            Some(e.to_string()),
        ),
    };
    Status {
        rollout,
        flag,
        stages: spec.stage_percents(),
        current_stage: if value.enabled {
            engine::stage_at(spec, value.percent)
        } else {
            None
        },
        current_percent: value.effective(),
        enabled: value.enabled,
        started_at: state.started_at,
        last_advanced_at: state.last_advanced_at,
        completed_at: state.completed_at,
        paused: state.paused,
        locked: state.locked,
        spec_found: true,
        flag_error,
        history: state.history,
    }
}
