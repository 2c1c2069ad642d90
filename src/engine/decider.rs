//! The state one evaluation builds up: the rollout state it will save, the notes its reason
//! carries, and the records it makes. Shared by the automatic rules and the manual commands, so
//! both move the flag, roll back (docs/rules.md §3, rule 6), report drift (rule 3) and record in
//! the same way.

use chrono::{DateTime, Utc};

use crate::percent::Percent;
use crate::record::{BakeProgress, CheckRecord, DecisionKind, DecisionRecord, Failures, Rule};
use crate::spec::{RollbackPolicy, RolloutSpec};
use crate::state::{DriftNote, FlagValue, RolloutState};

use super::{highest_stage_below, in_time_range, stage_at, Evaluation, Input, Step, EARLIEST_TIME, LATEST_TIME};

pub(super) struct Decider<'a> {
    pub(super) input: Input<'a>,
    pub(super) state: RolloutState,
    pub(super) changed: bool,
    pub(super) notes: Vec<String>,
}

impl<'a> Decider<'a> {
    pub(super) fn new(input: Input<'a>) -> Decider<'a> {
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

    pub(super) fn spec(&self) -> &'a RolloutSpec {
        self.input.spec
    }

    pub(super) fn expected(&self) -> FlagValue {
        self.state.last_set.unwrap_or(FlagValue::OFF)
    }

    // Every field of a record a decision sets, named at each call: a parameter struct would only
    // repeat the record's own fields.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
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
            diverged: false,
            unchanged_since: None,
        }
    }

    /// Bake progress of the stage `from` is at, measured from when the stored state says it was
    /// entered (before this decision moved anything): the evidence behind rule 9.
    pub(super) fn bake_progress(&self, from: FlagValue) -> Option<BakeProgress> {
        let entered = self.input.state.and_then(|s| s.stage_entered_at)?;
        let stage = stage_at(self.spec(), from.percent).filter(|_| from.enabled)?;
        let elapsed = (self.input.now - entered).num_seconds().max(0);
        Some(BakeProgress {
            required_s: self.spec().stages[stage].bake.as_secs(),
            elapsed_s: u64::try_from(elapsed).unwrap_or(0),
        })
    }

    /// `baked 30m of 1h` for the stage the flag is at, from the same evidence the record carries.
    pub(super) fn baked(&self, at: Percent) -> String {
        self.bake_progress(FlagValue::on(at))
            .map(|b| b.describe())
            .unwrap_or_else(|| "baked".to_string())
    }

    /// A person's command that is not carried out: a hold (or `kind`) that says why, marked
    /// `refused` so the command exits 3 and the Action fails the step.
    pub(super) fn refusal(
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
    pub(super) fn time_out_of_range(&self) -> Option<String> {
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

    /// Finishes with a decision that leaves the flag `at` where it is (a hold, a pause, a
    /// complete): its record, in history unless it repeats the last one.
    pub(super) fn stay(
        self,
        rule: Rule,
        kind: DecisionKind,
        at: FlagValue,
        reason: String,
        eligible_at: Option<DateTime<Utc>>,
        checks: &[CheckRecord],
    ) -> Step {
        let record = self.record(rule, kind, at, at, reason, eligible_at, checks);
        self.finish(record, None)
    }

    /// Finishes with a decision; records it in history unless it repeats the last entry
    /// (docs/rules.md §4, "unchanged since"). A repeat is a hold-like decision with the same
    /// decision, rule, percentages and check verdicts as the last entry; its values may differ.
    /// A repeat writes nothing (unless something else in the state changed) and says since when
    /// the rollout has been unchanged.
    pub(super) fn finish(mut self, mut record: DecisionRecord, flag_change: Option<FlagValue>) -> Step {
        match self.state.history.last().filter(|last| repeats(last, &record)) {
            Some(last) => record.unchanged_since = Some(last.unchanged_since.unwrap_or(last.at)),
            None => {
                self.state.push_history(record.clone());
                self.changed = true;
            }
        }
        Step::Decided(Evaluation {
            record,
            state: self.changed.then_some(self.state),
            flag_change,
        })
    }

    /// Counts the `compare` checks' looks of this evaluation into the state, whatever it decides.
    pub(super) fn note_looks(&mut self, checks: &[CheckRecord]) {
        for check in checks {
            if super::compare::note_look(&mut self.state, check) {
                self.changed = true;
            }
        }
    }

    /// Moves the flag, updating everything a stage change resets.
    pub(super) fn move_to(&mut self, to: FlagValue) {
        let now = self.input.now;
        let from = self.expected();
        self.state.last_set = Some(to);
        self.state.stage_entered_at = Some(now);
        self.state.consecutive_failures = 0;
        self.state.drift = None;
        // Looks belong to the stage they were made at: the new stage's test starts afresh.
        self.state.compare.clear();
        self.changed = true;
        if to.enabled {
            self.state.started_at.get_or_insert(now);
            if to.effective() > from.effective() {
                self.state.last_advanced_at = Some(now);
            }
        }
    }

    /// Finishes with a decision that only reports: nothing new for the history.
    pub(super) fn report_only(self, record: DecisionRecord) -> Step {
        Step::Decided(Evaluation {
            record,
            state: self.changed.then_some(self.state),
            flag_change: None,
        })
    }

    pub(super) fn error(self, message: &str) -> Step {
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
    pub(super) fn drift(&mut self, found: FlagValue) -> Option<DecisionRecord> {
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
    pub(super) fn adopt(&mut self, found: FlagValue) {
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

    pub(super) fn rollback_target(&self, current: Percent, policy: RollbackPolicy) -> FlagValue {
        match (policy, highest_stage_below(self.spec(), current)) {
            (RollbackPolicy::Previous, Some(i)) => FlagValue::on(self.spec().stages[i].percent),
            _ => FlagValue::OFF,
        }
    }

    /// Moves down to `to` and locks against advancing until a person runs `advance`.
    pub(super) fn roll_back_to(&mut self, to: FlagValue) -> DecisionKind {
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

/// Whether `record` says nothing `last` did not: the same hold-like decision, by the same rule,
/// at the same percentages, with every check at the same verdict (values may differ).
fn repeats(last: &DecisionRecord, record: &DecisionRecord) -> bool {
    let verdicts = |r: &DecisionRecord| -> Vec<(String, crate::check::Verdict, bool)> {
        r.checks.iter().map(|c| (c.name.clone(), c.verdict, c.gate)).collect()
    };
    matches!(
        record.decision,
        DecisionKind::Hold | DecisionKind::Paused | DecisionKind::Drift | DecisionKind::Complete
    ) && !record.refused
        && last.decision == record.decision
        && last.rule == record.rule
        && last.from_percent == record.from_percent
        && last.to_percent == record.to_percent
        && last.refused == record.refused
        && verdicts(last) == verdicts(record)
}
