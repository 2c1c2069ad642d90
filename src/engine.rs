//! The decision engine (docs/rules.md §3): a pure function of spec, state, flag reading, check
//! results and `now`. No I/O, no clock: the runner gathers the inputs and carries out the result.
//!
//! Position is derived from the flag's real percentage, not from a stored stage index, so a
//! spec whose stages change mid-rollout, or a value adopted from a person, needs no migration:
//! the current stage is the highest stage at or below the current percentage.

use chrono::{DateTime, TimeDelta, Utc};

use crate::check::{sig4, Measurement, Verdict};
use crate::percent::Percent;
use crate::record::{BakeProgress, CheckRecord, DecisionKind, DecisionRecord, Failures, Rule};
use crate::spec::{CheckSpec, NoDataPolicy, RollbackPolicy, RolloutSpec};
use crate::state::{DriftNote, FlagValue, RolloutState};

/// Everything one evaluation of one rollout depends on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The validated spec.
    pub spec: &'a RolloutSpec,
    /// Stored state; `None` when the rollout has none yet.
    pub state: Option<&'a RolloutState>,
    /// The flag as the provider reports it, or why it could not be read.
    pub flag: Result<FlagValue, &'a str>,
    /// The evaluation time.
    pub now: DateTime<Utc>,
    /// Who is deciding: `flagramp` for scheduled runs, a person for manual commands.
    pub actor: &'a str,
}

/// A manual command (docs/rules.md §3, "Manual commands").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualOp {
    /// One stage up now, ignoring bake and window; checks must pass unless `force`.
    Advance {
        /// Advance even when a check does not pass.
        force: bool,
    },
    /// One stage down (from the first stage: off), and lock.
    Rollback,
    /// Stop advancing.
    Pause,
    /// Restart advancing; adopts a value a person set.
    Resume,
}

impl ManualOp {
    /// The command's name: `advance`, `rollback`, `pause` or `resume`.
    pub fn command(self) -> &'static str {
        match self {
            ManualOp::Advance { .. } => "advance",
            ManualOp::Rollback => "rollback",
            ManualOp::Pause => "pause",
            ManualOp::Resume => "resume",
        }
    }
}

/// The outcome of one call to [`evaluate`] or [`evaluate_manual`].
// Built once per evaluation and matched at once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The decision depends on the checks: query them and call again with their results.
    NeedsChecks,
    /// The decision.
    Decided(Evaluation),
}

/// A decision and what carrying it out means.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The decision record, with its evidence.
    pub record: DecisionRecord,
    /// The state to save; `None` when nothing changed.
    pub state: Option<RolloutState>,
    /// The value to set the flag to; `None` leaves the flag alone.
    pub flag_change: Option<FlagValue>,
}

/// Applies each check's condition to what its source measured.
pub fn check_records(checks: &[CheckSpec], measurements: &[Measurement]) -> Vec<CheckRecord> {
    checks
        .iter()
        .zip(measurements)
        .map(|(check, measurement)| {
            let (value, verdict, detail) = match measurement {
                Measurement::Value(v) => (
                    Some(*v),
                    if check.pass.holds(*v) {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    },
                    None,
                ),
                Measurement::NoData(why) => (None, Verdict::NoData, Some(why.clone())),
                Measurement::Error(why) => (None, Verdict::Error, Some(why.clone())),
            };
            CheckRecord {
                name: check.name.clone(),
                query: check.probe.describe(),
                value,
                condition: check.pass.to_string(),
                verdict,
                detail,
            }
        })
        .collect()
}

/// How long a claim protects a change in progress. A run takes seconds; a claim older than this
/// was left by a run that died, and rule 1 resolves it.
pub const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(10);

/// The earliest time flagramp decides at, computes or records (see [`LATEST_TIME`]).
pub const EARLIEST_TIME: DateTime<Utc> = match DateTime::from_timestamp(-62_167_219_200, 0) {
    Some(t) => t,
    None => panic!("0000-01-01T00:00:00Z is a valid time"),
};

/// The latest time flagramp decides at, computes or records: RFC 3339 has four-digit years, and
/// a later time would be written as `+10000-…`, which other tools cannot read back.
pub const LATEST_TIME: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => panic!("9999-12-31T23:59:59Z is a valid time"),
};

/// Whether `t` can be written in RFC 3339: years 0000 to 9999.
pub fn in_time_range(t: DateTime<Utc>) -> bool {
    (EARLIEST_TIME..=LATEST_TIME).contains(&t)
}

/// `at + by`, or `None` when that overflows or leaves the years 0000–9999.
pub fn time_after(at: DateTime<Utc>, by: TimeDelta) -> Option<DateTime<Utc>> {
    at.checked_add_signed(by).filter(|t| in_time_range(*t))
}

/// A claim recent enough that its run may still be changing the flag: leave it alone.
pub fn claim_in_progress(state: &RolloutState, now: DateTime<Utc>) -> Option<&crate::state::PendingTransition> {
    state.pending.as_ref().filter(|p| {
        p.claimed_at.is_some_and(|at| {
            in_time_range(at)
                && now.checked_add_signed(CLAIM_LEASE).is_some_and(|limit| at <= limit)
                && now.signed_duration_since(at) < CLAIM_LEASE
        })
    })
}

/// Finishes or abandons a change claimed by a run that stopped before recording it (rule 1).
///
/// Returns the state to save, or `None` when there was no pending transition.
pub fn resolve_pending(state: &RolloutState, found: FlagValue) -> Option<RolloutState> {
    let pending = state.pending.as_ref()?;
    if found == pending.to {
        let mut finished = (*pending.then).clone();
        finished.pending = None;
        return Some(finished);
    }
    // At the origin the change never happened; anywhere else a person moved the flag, which
    // the drift rule reports against the value flagramp really set.
    let mut abandoned = state.clone();
    abandoned.pending = None;
    Some(abandoned)
}

/// Index of the highest stage at or below `percent`.
pub fn stage_at(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    position(&spec.stage_percents(), percent)
}

/// Index of the highest of `stages` at or below `percent`: where a flag at `percent` is.
pub fn position(stages: &[Percent], percent: Percent) -> Option<usize> {
    stages.iter().rposition(|p| *p <= percent)
}

fn next_stage_above(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    spec.stages.iter().position(|s| s.percent > percent)
}

fn highest_stage_below(spec: &RolloutSpec, percent: Percent) -> Option<usize> {
    spec.stages.iter().rposition(|s| s.percent < percent)
}

fn stage_label(spec: &RolloutSpec, index: usize) -> String {
    format!(
        "stage {} of {} ({})",
        index + 1,
        spec.stages.len(),
        spec.stages[index].percent
    )
}

/// Where `to` is, as a reason names it: `stage 1 of 3 (10%)`, or `off`.
fn to_label(spec: &RolloutSpec, to: FlagValue) -> String {
    match to.enabled.then(|| stage_at(spec, to.percent)).flatten() {
        Some(i) => stage_label(spec, i),
        None if to.enabled => to.percent.to_string(),
        None => "off".to_string(),
    }
}

/// `at 50%` or `off`, after "with the flag".
fn flag_words(flag: FlagValue) -> String {
    if flag.enabled {
        format!("at {}", flag.percent)
    } else {
        "off".to_string()
    }
}

fn check_phrase(check: &CheckSpec, record: &CheckRecord) -> String {
    match (record.verdict, record.value) {
        (Verdict::Fail, Some(v)) => format!(
            "{} {} (needs {})",
            record.name,
            check.pass.describe_actual(v),
            record.condition
        ),
        (Verdict::NoData, _) => format!(
            "{} has no data ({})",
            record.name,
            record.detail.as_deref().unwrap_or("empty result")
        ),
        (Verdict::Error, _) => format!(
            "{} could not be measured: {}",
            record.name,
            record.detail.as_deref().unwrap_or("source error")
        ),
        (_, Some(v)) => format!("{} {} (needs {})", record.name, sig4(v), record.condition),
        (_, None) => format!("{} {}", record.name, record.verdict.as_str()),
    }
}

/// How the checks came out, sorted into what each rule needs.
struct Verdicts<'c> {
    failing: Vec<String>,
    waiting: Vec<String>,
    passing: usize,
    records: &'c [CheckRecord],
}

impl<'c> Verdicts<'c> {
    fn sort(spec: &RolloutSpec, records: &'c [CheckRecord]) -> Verdicts<'c> {
        let mut v = Verdicts {
            failing: Vec::new(),
            waiting: Vec::new(),
            passing: 0,
            records,
        };
        for (check, record) in spec.checks.iter().zip(records) {
            match record.verdict {
                Verdict::Pass => v.passing += 1,
                Verdict::Fail => v.failing.push(check_phrase(check, record)),
                Verdict::NoData if check.on_no_data == NoDataPolicy::Fail => v
                    .failing
                    .push(format!("{} (on_no_data: fail)", check_phrase(check, record))),
                Verdict::NoData | Verdict::Error => v.waiting.push(check_phrase(check, record)),
            }
        }
        v
    }

    fn all_pass(&self) -> bool {
        self.failing.is_empty() && self.waiting.is_empty()
    }

    fn summary(&self) -> String {
        match self.passing {
            0 => "no checks to pass".to_string(),
            1 => "the check passes".to_string(),
            2 => "both checks pass".to_string(),
            n => format!("all {n} checks pass"),
        }
    }
}

struct Decider<'a> {
    input: Input<'a>,
    state: RolloutState,
    changed: bool,
    notes: Vec<String>,
}

impl<'a> Decider<'a> {
    fn new(input: Input<'a>) -> Decider<'a> {
        let spec = input.spec;
        let (state, changed) = match input.state {
            Some(s) => (s.clone(), false),
            None => (
                RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents()),
                true,
            ),
        };
        let mut decider = Decider {
            input,
            state,
            changed,
            notes: Vec::new(),
        };
        let stages = spec.stage_percents();
        if decider.state.stages != stages {
            let show = |p: &[Percent]| p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
            decider.notes.push(format!(
                "stages changed from [{}] to [{}]",
                show(&decider.state.stages),
                show(&stages)
            ));
            decider.state.stages = stages;
            decider.changed = true;
        }
        decider
    }

    fn spec(&self) -> &'a RolloutSpec {
        self.input.spec
    }

    fn expected(&self) -> FlagValue {
        self.state.last_set.unwrap_or(FlagValue::OFF)
    }

    // Every field of a record a decision sets, named at each call: a parameter struct would only
    // repeat the record's own fields.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        rule: Rule,
        kind: DecisionKind,
        from: FlagValue,
        to: FlagValue,
        reason: String,
        eligible_at: Option<DateTime<Utc>>,
        checks: &[CheckRecord],
    ) -> DecisionRecord {
        let mut reason = reason;
        if !self.notes.is_empty() {
            reason = format!("{}; {reason}", self.notes.join("; "));
        }
        DecisionRecord {
            rollout: self.spec().name.clone(),
            flag: self.spec().flag.key.clone(),
            decision: kind,
            at: self.input.now,
            actor: self.input.actor.to_string(),
            from_percent: from.effective(),
            to_percent: to.effective(),
            stage: if to.enabled {
                stage_at(self.spec(), to.percent)
            } else {
                None
            },
            reason,
            eligible_at,
            checks: checks.to_vec(),
            refused: false,
            rule: Some(rule),
            bake: self.bake_progress(from),
            failures: Some(Failures {
                count: self.state.consecutive_failures,
                limit: self.spec().policy.failures_to_rollback,
            }),
            planned: false,
            locked: self.state.locked,
            paused: self.state.paused,
        }
    }

    /// Bake progress of the stage `from` is at, measured from when the stored state says it was
    /// entered (before this decision moved anything): the evidence behind rule 9.
    fn bake_progress(&self, from: FlagValue) -> Option<BakeProgress> {
        let entered = self.input.state.and_then(|s| s.stage_entered_at)?;
        let stage = stage_at(self.spec(), from.percent).filter(|_| from.enabled)?;
        let elapsed = (self.input.now - entered).num_seconds().max(0);
        Some(BakeProgress {
            required_s: self.spec().stages[stage].bake.as_secs(),
            elapsed_s: u64::try_from(elapsed).unwrap_or(0),
        })
    }

    /// `baked 30m of 1h` for the stage the flag is at, from the same evidence the record carries.
    fn baked(&self, at: Percent) -> String {
        self.bake_progress(FlagValue::on(at))
            .map(|b| b.describe())
            .unwrap_or_else(|| "baked".to_string())
    }

    /// A person's command that is not carried out: a hold (or `kind`) that says why, marked
    /// `refused` so the command exits 3 and the Action fails the step.
    fn refusal(
        &self,
        rule: Rule,
        kind: DecisionKind,
        at: FlagValue,
        reason: String,
        checks: &[CheckRecord],
    ) -> DecisionRecord {
        DecisionRecord {
            refused: true,
            ..self.record(rule, kind, at, at, reason, None, checks)
        }
    }

    /// A time the evaluation would use or print that lies outside what flagramp works with:
    /// the evaluation time, or one stored in state (edited by hand, or corrupt).
    fn time_out_of_range(&self) -> Option<String> {
        if !in_time_range(self.input.now) {
            return Some(
                "the evaluation time lies outside the years 0000–9999, which is all flagramp works with".into(),
            );
        }
        let s = &self.state;
        let stored = [
            ("started_at", s.started_at),
            ("stage_entered_at", s.stage_entered_at),
            ("last_advanced_at", s.last_advanced_at),
            ("completed_at", s.completed_at),
            ("drift.since", s.drift.map(|d| d.since)),
        ];
        let (field, _) = stored.into_iter().find(|(_, t)| t.is_some_and(|t| !in_time_range(t)))?;
        Some(format!(
            "the state's `{field}` lies outside the years 0000–9999: the state was edited or is corrupt; correct that field or delete the rollout's state"
        ))
    }

    /// Finishes with a decision; records it in history unless it repeats the last one verbatim.
    fn finish(mut self, record: DecisionRecord, flag_change: Option<FlagValue>) -> Step {
        let repeat = self.state.history.last().is_some_and(|last| {
            matches!(
                record.decision,
                DecisionKind::Hold | DecisionKind::Paused | DecisionKind::Drift | DecisionKind::Complete
            ) && last.decision == record.decision
                && last.reason == record.reason
                && last.from_percent == record.from_percent
                && last.to_percent == record.to_percent
        });
        if !repeat {
            self.state.push_history(record.clone());
            self.changed = true;
        }
        Step::Decided(Evaluation {
            record,
            state: self.changed.then_some(self.state),
            flag_change,
        })
    }

    /// Moves the flag, updating everything a stage change resets.
    fn move_to(&mut self, to: FlagValue) {
        let now = self.input.now;
        let from = self.expected();
        self.state.last_set = Some(to);
        self.state.stage_entered_at = Some(now);
        self.state.consecutive_failures = 0;
        self.state.drift = None;
        self.changed = true;
        if to.enabled {
            self.state.started_at.get_or_insert(now);
            if to.effective() > from.effective() {
                self.state.last_advanced_at = Some(now);
            }
        }
    }

    /// Finishes with a decision that only reports: nothing new for the history.
    fn report_only(self, record: DecisionRecord) -> Step {
        Step::Decided(Evaluation {
            record,
            state: self.changed.then_some(self.state),
            flag_change: None,
        })
    }

    fn error(self, message: &str) -> Step {
        let last = self.expected();
        let mut record = self.record(
            Rule::Error,
            DecisionKind::Error,
            last,
            last,
            message.to_string(),
            None,
            &[],
        );
        // Never record a time that cannot be written in RFC 3339 (see `time_out_of_range`).
        record.at = record.at.clamp(EARLIEST_TIME, LATEST_TIME);
        // An error changes nothing and is not history: the next run decides afresh.
        Step::Decided(Evaluation {
            record,
            state: None,
            flag_change: None,
        })
    }

    /// Rule 3: the flag is not what flagramp last set. Returns the decision, or `None` when the
    /// flag matches (clearing an earlier drift the person has since undone).
    fn drift(&mut self, found: FlagValue) -> Option<DecisionRecord> {
        let expected = self.expected();
        if found == expected {
            if self.state.drift.take().is_some() {
                self.notes
                    .push(format!("the flag is back at {}, drift cleared", expected.describe()));
                self.changed = true;
            }
            return None;
        }
        let same_as_before = self
            .state
            .drift
            .is_some_and(|d| d.expected == expected && d.found == found);
        if !same_as_before {
            self.state.drift = Some(DriftNote {
                expected,
                found,
                since: self.input.now,
            });
            self.changed = true;
        }
        let what = if self.state.last_set.is_none() {
            format!(
                "the flag is {} but this rollout has not started (no state)",
                found.describe()
            )
        } else {
            format!(
                "the flag is {} but flagramp last set it {}",
                found.describe(),
                expected.describe()
            )
        };
        let reason = format!(
            "{what}: a person changed it, so flagramp holds and changes nothing until the flag is {} again or the rollout is resumed from {}",
            expected.describe(),
            found.describe()
        );
        Some(self.record(Rule::Drift, DecisionKind::Drift, found, found, reason, None, &[]))
    }

    /// A person acting on the rollout takes responsibility for the flag as it is now; a refused
    /// command does not, so the drift stays reported.
    fn adopt(&mut self, found: FlagValue) {
        if found == self.expected() || (!found.enabled && self.state.last_set.is_none()) {
            return;
        }
        self.notes.push(format!(
            "adopted {} (was {} as flagramp last set it)",
            found.describe(),
            self.expected().describe()
        ));
        self.state.last_set = Some(found);
        self.state.drift = None;
        self.state.stage_entered_at = Some(self.input.now);
        if found.enabled {
            self.state.started_at.get_or_insert(self.input.now);
        }
        self.changed = true;
    }

    fn rollback_target(&self, current: Percent, policy: RollbackPolicy) -> FlagValue {
        match (policy, highest_stage_below(self.spec(), current)) {
            (RollbackPolicy::Previous, Some(i)) => FlagValue::on(self.spec().stages[i].percent),
            _ => FlagValue::OFF,
        }
    }

    /// Moves down to `to` and locks against advancing until a person runs `advance`.
    fn roll_back_to(&mut self, to: FlagValue) -> DecisionKind {
        self.move_to(to);
        self.state.locked = true;
        self.state.completed_at = None;
        if to.enabled {
            DecisionKind::Rollback
        } else {
            DecisionKind::Disable
        }
    }
}

/// When `window` next opens at or after `at`, if that is no later than [`LATEST_TIME`].
fn next_opening(window: &crate::window::Window, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    window.next_open_at_or_after(at).filter(|t| in_time_range(*t))
}

fn window_beyond_range(window: &crate::window::Window) -> String {
    format!(
        "the window ({}) does not open again before {}: flagramp works with times up to the year 9999",
        window.describe(),
        crate::window::human_time(LATEST_TIME)
    )
}

/// `(forced past: …)` when `--force` overrode checks that did not pass.
fn forced_note(force: bool, problems: &[String]) -> String {
    if force && !problems.is_empty() {
        format!(" (forced past: {})", problems.join("; "))
    } else {
        String::new()
    }
}

/// Decides what a scheduled run does (docs/rules.md §3, rules 2–9; run [`resolve_pending`] first).
pub fn evaluate(input: Input<'_>, checks: Option<&[CheckRecord]>) -> Step {
    let mut d = Decider::new(input);
    let spec = input.spec;
    let now = input.now;

    if let Some(message) = d.time_out_of_range() {
        return d.error(&message);
    }
    // Rule 2: a provider that cannot be read is an error; metric sources are handled in 5.
    let found = match input.flag {
        Ok(found) => found,
        Err(message) => return d.error(&format!("flag provider: {message}")),
    };

    // Rule 3.
    if let Some(record) = d.drift(found) {
        return d.finish(record, None);
    }

    // Rule 4.
    if let Some(done) = d.state.completed_at {
        let reason = format!(
            "complete since {}: the flag serves everyone; nothing to do",
            crate::window::human_time(done)
        );
        let record = d.record(Rule::Complete, DecisionKind::Complete, found, found, reason, None, &[]);
        return d.report_only(record);
    }
    if !found.enabled {
        if d.state.locked {
            let reason = "rolled back to off earlier, and locked against starting again".to_string();
            let record = d.record(Rule::Locked, DecisionKind::Hold, found, found, reason, None, &[]);
            return d.finish(record, None);
        }
        if d.state.paused {
            let reason = "paused before starting".to_string();
            let record = d.record(Rule::Paused, DecisionKind::Paused, found, found, reason, None, &[]);
            return d.finish(record, None);
        }
        let first = FlagValue::on(spec.stages[0].percent);
        if let Some(window) = &spec.policy.window {
            if !window.contains(now) {
                let Some(opens) = next_opening(window, now) else {
                    return d.error(&window_beyond_range(window));
                };
                let reason = format!(
                    "ready to start, but outside the window ({}); it opens {}",
                    window.describe(),
                    crate::window::human_time(opens)
                );
                let record = d.record(Rule::Window, DecisionKind::Hold, found, found, reason, Some(opens), &[]);
                return d.finish(record, None);
            }
        }
        d.move_to(first);
        let reason = format!("not started yet; the first stage is {}", stage_label(spec, 0));
        let record = d.record(Rule::Start, DecisionKind::Start, found, first, reason, None, &[]);
        return d.finish(record, Some(first));
    }

    // Rule 5: query every check.
    let Some(checks) = checks else { return Step::NeedsChecks };
    let verdicts = Verdicts::sort(spec, checks);
    let current = found.percent;
    let stage = stage_at(spec, current);

    // Rule 6 comes before 5's hold: a failure counts even when another check errored.
    if !verdicts.failing.is_empty() {
        // Saturating: a counter read from state may already be at the maximum.
        d.state.consecutive_failures = d.state.consecutive_failures.saturating_add(1);
        d.changed = true;
        let failures = d.state.consecutive_failures;
        let limit = spec.policy.failures_to_rollback;
        let what = verdicts.failing.join("; ");
        if failures >= limit {
            let to = d.rollback_target(current, spec.policy.rollback);
            let kind = d.roll_back_to(to);
            let reason = format!(
                "{what}: failure {failures} of {limit}, so back to {}",
                to_label(spec, to)
            );
            let mut record = d.record(Rule::Rollback, kind, found, to, reason, None, verdicts.records);
            // The counter is reset by the rollback; the record keeps the count that decided it.
            record.failures = Some(Failures { count: failures, limit });
            return d.finish(record, Some(to));
        }
        let reason = format!("{what}: failure {failures} of {limit} before a rollback");
        let record = d.record(
            Rule::Rollback,
            DecisionKind::Hold,
            found,
            found,
            reason,
            None,
            verdicts.records,
        );
        return d.finish(record, None);
    }
    if !verdicts.waiting.is_empty() {
        let reason = format!(
            "{}; missing data and source trouble are never a pass, nor a failure",
            verdicts.waiting.join("; ")
        );
        let record = d.record(
            Rule::Checks,
            DecisionKind::Hold,
            found,
            found,
            reason,
            None,
            verdicts.records,
        );
        return d.finish(record, None);
    }

    // Every check passes from here on.
    if d.state.consecutive_failures != 0 {
        d.state.consecutive_failures = 0;
        d.changed = true;
    }
    // Rule 7.
    if d.state.paused {
        let reason = format!("{}, but the rollout is paused", verdicts.summary());
        let record = d.record(
            Rule::Paused,
            DecisionKind::Paused,
            found,
            found,
            reason,
            None,
            verdicts.records,
        );
        return d.finish(record, None);
    }
    // Rule 8.
    if d.state.locked {
        let reason = format!(
            "{}, but it was rolled back earlier and is locked against advancing",
            verdicts.summary()
        );
        let record = d.record(
            Rule::Locked,
            DecisionKind::Hold,
            found,
            found,
            reason,
            None,
            verdicts.records,
        );
        return d.finish(record, None);
    }

    // Rule 9. Below the first stage (a person set less, then resumed) there is nothing to bake.
    let bake = stage.map(|i| spec.stages[i].bake).unwrap_or_default();
    let entered = d.state.stage_entered_at.unwrap_or(now);
    let at_last_stage = current == Percent::FULL;
    let here = stage
        .map(|i| stage_label(spec, i))
        .unwrap_or_else(|| current.to_string());
    let Some(bake_end) = bake.to_chrono().and_then(|b| time_after(entered, b)) else {
        return d.error(&format!(
            "the bake of {bake} at {here}, entered {}, would end past {}: flagramp cannot wait that long; shorten the bake in the spec",
            crate::window::human_time(entered),
            crate::window::human_time(LATEST_TIME)
        ));
    };
    if now < bake_end {
        let eligible = match (&spec.policy.window, at_last_stage) {
            (Some(w), false) => match next_opening(w, bake_end) {
                Some(t) => t,
                None => return d.error(&window_beyond_range(w)),
            },
            _ => bake_end,
        };
        let what = if at_last_stage { "the final bake" } else { "its bake" };
        let reason = format!(
            "{}; {here} {}, {what} ends {}",
            verdicts.summary(),
            d.baked(current),
            crate::window::human_time(bake_end)
        );
        let record = d.record(
            Rule::Bake,
            DecisionKind::Hold,
            found,
            found,
            reason,
            Some(eligible),
            verdicts.records,
        );
        return d.finish(record, None);
    }
    if at_last_stage {
        d.state.completed_at = Some(now);
        d.changed = true;
        let reason = format!(
            "{} and 100% {}: the final bake is over",
            verdicts.summary(),
            d.baked(current)
        );
        let record = d.record(
            Rule::Complete,
            DecisionKind::Complete,
            found,
            found,
            reason,
            None,
            verdicts.records,
        );
        return d.finish(record, None);
    }
    if let Some(window) = &spec.policy.window {
        if !window.contains(now) {
            let Some(opens) = next_opening(window, now) else {
                return d.error(&window_beyond_range(window));
            };
            let reason = format!(
                "{} and {here} {}, but outside the window ({}); it opens {}",
                verdicts.summary(),
                d.baked(current),
                window.describe(),
                crate::window::human_time(opens)
            );
            let record = d.record(
                Rule::Window,
                DecisionKind::Hold,
                found,
                found,
                reason,
                Some(opens),
                verdicts.records,
            );
            return d.finish(record, None);
        }
    }
    let next = next_stage_above(spec, current).expect("below 100% there is a higher stage, as the last is 100");
    let to = FlagValue::on(spec.stages[next].percent);
    d.move_to(to);
    let reason = format!(
        "{} and {here} {}; next is {}",
        verdicts.summary(),
        d.baked(current),
        stage_label(spec, next)
    );
    let record = d.record(
        Rule::Advance,
        DecisionKind::Advance,
        found,
        to,
        reason,
        None,
        verdicts.records,
    );
    d.finish(record, Some(to))
}

/// Decides what a manual command does. `reason` is the person's words, recorded with the actor.
///
/// A command that cannot be carried out (an advance its checks refuse, a rollback of a flag that
/// is off, an advance of a complete rollout) changes nothing but the history, and its record is
/// marked `refused`.
pub fn evaluate_manual(input: Input<'_>, op: ManualOp, reason: &str, checks: Option<&[CheckRecord]>) -> Step {
    let mut d = Decider::new(input);
    let spec = input.spec;
    let actor = input.actor;
    if let Some(message) = d.time_out_of_range() {
        return d.error(&message);
    }
    let found = match input.flag {
        Ok(found) => found,
        Err(message) => return d.error(&format!("flag provider: {message}")),
    };
    let because = if reason.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", reason.trim())
    };

    match op {
        ManualOp::Pause => {
            d.state.paused = true;
            d.changed = true;
            let text = format!("paused by {actor}{because} with the flag {}", flag_words(found));
            let record = d.record(Rule::Pause, DecisionKind::Paused, found, found, text, None, &[]);
            d.finish(record, None)
        }
        ManualOp::Resume => {
            d.adopt(found);
            d.state.paused = false;
            d.state.drift = None;
            d.changed = true;
            let text = if d.state.locked {
                format!(
                    "resumed by {actor}{because} with the flag {}, but still locked against advancing after a rollback",
                    flag_words(found)
                )
            } else {
                format!(
                    "resumed by {actor}{because} with the flag {}; scheduled runs go on from there",
                    flag_words(found)
                )
            };
            let record = d.record(Rule::Resume, DecisionKind::Hold, found, found, text, None, &[]);
            d.finish(record, None)
        }
        ManualOp::Rollback => {
            if !found.enabled {
                let text = format!("rollback by {actor}{because} refused: nothing to roll back, the flag is off");
                let record = d.refusal(Rule::Rollback, DecisionKind::Hold, found, text, &[]);
                return d.finish(record, None);
            }
            d.adopt(found);
            let to = d.rollback_target(found.percent, RollbackPolicy::Previous);
            let kind = d.roll_back_to(to);
            let text = format!(
                "rollback by {actor}{because} from {}, back to {}",
                found.percent,
                to_label(spec, to)
            );
            let record = d.record(Rule::Rollback, kind, found, to, text, None, &[]);
            d.finish(record, Some(to))
        }
        ManualOp::Advance { force } => {
            if let Some(done) = d.state.completed_at {
                let text = format!(
                    "advance by {actor}{because} refused: already complete since {}",
                    crate::window::human_time(done)
                );
                let record = d.refusal(Rule::Advance, DecisionKind::Complete, found, text, &[]);
                return d.finish(record, None);
            }
            // Every advance queries every check, forced or not, so the record shows what it
            // went past.
            let Some(records) = checks else {
                return Step::NeedsChecks;
            };
            let verdicts = Verdicts::sort(spec, records);
            if !found.enabled {
                return advance_from_off(d, found, force, &because, records);
            }
            let mut problems = verdicts.failing.clone();
            problems.extend(verdicts.waiting.iter().cloned());
            if !force && !verdicts.all_pass() {
                let text = format!("advance by {actor}{because} refused: {}", problems.join("; "));
                let record = d.refusal(Rule::Advance, DecisionKind::Hold, found, text, records);
                return d.finish(record, None);
            }
            let forced = forced_note(force, &problems);
            d.adopt(found);
            d.state.locked = false;
            match next_stage_above(spec, found.percent) {
                Some(next) => {
                    let to = FlagValue::on(spec.stages[next].percent);
                    d.move_to(to);
                    let text = format!("advance by {actor}{because} to {}{forced}", stage_label(spec, next));
                    let record = d.record(Rule::Advance, DecisionKind::Advance, found, to, text, None, records);
                    d.finish(record, Some(to))
                }
                None => {
                    d.state.completed_at = Some(input.now);
                    d.state.consecutive_failures = 0;
                    d.changed = true;
                    let text = format!("advance by {actor}{because} at 100%: complete{forced}");
                    let record = d.record(Rule::Advance, DecisionKind::Complete, found, found, text, None, records);
                    d.finish(record, None)
                }
            }
        }
    }
}

/// `advance` of a rollout whose flag is off: start it at the first stage. Nobody is exposed
/// yet, so no data is what a healthy check reports; a failing or broken check refuses.
fn advance_from_off(mut d: Decider<'_>, found: FlagValue, force: bool, because: &str, records: &[CheckRecord]) -> Step {
    let spec = d.spec();
    let actor = d.input.actor;
    let blocking: Vec<String> = spec
        .checks
        .iter()
        .zip(records)
        .filter(|(_, r)| matches!(r.verdict, Verdict::Fail | Verdict::Error))
        .map(|(check, r)| check_phrase(check, r))
        .collect();
    if !force && !blocking.is_empty() {
        let text = format!("advance by {actor}{because} refused: {}", blocking.join("; "));
        let record = d.refusal(Rule::Advance, DecisionKind::Hold, found, text, records);
        return d.finish(record, None);
    }
    let forced = forced_note(force, &blocking);
    d.adopt(found);
    let first = FlagValue::on(spec.stages[0].percent);
    d.move_to(first);
    d.state.locked = false;
    let text = format!(
        "advance by {actor}{because} from off to {}{forced}",
        stage_label(spec, 0)
    );
    let record = d.record(Rule::Advance, DecisionKind::Start, found, first, text, None, records);
    d.finish(record, Some(first))
}

/// The record of a rollout that could not be decided (docs/rules.md §3, rule 2): spec, state or
/// provider unusable, or a bug. `message` is already admitted by the caller.
pub fn error_record(spec: &RolloutSpec, now: DateTime<Utc>, actor: &str, message: String) -> DecisionRecord {
    DecisionRecord {
        rollout: spec.name.clone(),
        flag: spec.flag.key.clone(),
        decision: DecisionKind::Error,
        at: now.clamp(EARLIEST_TIME, LATEST_TIME),
        actor: actor.to_string(),
        from_percent: Percent::ZERO,
        to_percent: Percent::ZERO,
        stage: None,
        reason: message,
        eligible_at: None,
        checks: Vec::new(),
        refused: false,
        rule: Some(Rule::Error),
        bake: None,
        failures: None,
        planned: false,
        locked: false,
        paused: false,
    }
}

/// The hold for a rollout not reached before the run's time budget was spent (docs/rules.md §3,
/// rule 2): nothing read, nothing changed. `budget` is the budget as people read it.
pub fn budget_record(spec: &RolloutSpec, now: DateTime<Utc>, actor: &str, budget: &str) -> DecisionRecord {
    DecisionRecord {
        decision: DecisionKind::Hold,
        rule: Some(Rule::Budget),
        ..error_record(
            spec,
            now,
            actor,
            format!(
                "time budget exhausted: the run's {budget} (--time-budget, input `time_budget`) was spent before this rollout's turn; nothing was read or changed, the next run decides it"
            ),
        )
    }
}

/// The hold while another run's claim is fresh (docs/rules.md §3, rule 1): leave its work alone.
/// `found` is the flag as read, when it could be read.
pub fn busy_record(
    spec: &RolloutSpec,
    now: DateTime<Utc>,
    actor: &str,
    pending: &crate::state::PendingTransition,
    found: Option<FlagValue>,
) -> DecisionRecord {
    let at = found.map(FlagValue::effective).unwrap_or(pending.from.effective());
    let since = pending.claimed_at.map(crate::window::human_time).unwrap_or_default();
    DecisionRecord {
        decision: DecisionKind::Hold,
        from_percent: at,
        to_percent: at,
        stage: found.filter(|f| f.enabled).and_then(|f| stage_at(spec, f.percent)),
        reason: format!(
            "another run claimed a change to {} at {since} and may still be carrying it out; holding (a claim older than {} minutes is resolved from the flag)",
            pending.to.describe(),
            CLAIM_LEASE.num_minutes()
        ),
        rule: Some(Rule::Busy),
        ..error_record(spec, now, actor, String::new())
    }
}

/// A status shown as one record (the Action's status-only reports): its latest decision, or, for
/// a rollout with no history, a hold that says it has not started (or why the flag is unread).
pub fn status_record(status: &crate::record::Status, now: DateTime<Utc>, actor: &str) -> DecisionRecord {
    status.history.last().cloned().unwrap_or_else(|| DecisionRecord {
        rollout: status.rollout.clone(),
        flag: status.flag.clone(),
        decision: DecisionKind::Hold,
        at: now,
        actor: actor.to_string(),
        from_percent: status.current_percent,
        to_percent: status.current_percent,
        stage: status.current_stage,
        reason: status.flag_error.clone().unwrap_or_else(|| "not started yet".into()),
        eligible_at: None,
        checks: Vec::new(),
        refused: false,
        rule: Some(if status.flag_error.is_some() {
            Rule::Error
        } else {
            Rule::Start
        }),
        bake: None,
        failures: None,
        planned: false,
        locked: status.locked,
        paused: status.paused,
    })
}
