//! What the flag system cannot hold: when stages were entered, counters, locks, the pending
//! transition and the history. One JSON document per rollout, behind the [`StateStore`] trait.

mod github;
mod local;
mod memory;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use github::GitHubStateStore;
pub use local::LocalStateStore;
pub use memory::MemoryStateStore;

use std::collections::BTreeMap;

use crate::percent::Percent;
use crate::record::{CohortRecord, DecisionRecord};

/// How many decisions a state file keeps.
pub const HISTORY_CAP: usize = 100;

/// The version of the state document format.
pub const STATE_FORMAT: u32 = 1;

/// A flag's observable position: on or off, and the share of users when on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagValue {
    /// Whether the flag serves the `on` variant to anyone.
    pub enabled: bool,
    /// The share of users that get `on`; 0 when off.
    pub percent: Percent,
}

impl FlagValue {
    /// Off.
    pub const OFF: FlagValue = FlagValue {
        enabled: false,
        percent: Percent::ZERO,
    };

    /// On for `percent` of users.
    pub fn on(percent: Percent) -> FlagValue {
        FlagValue { enabled: true, percent }
    }

    /// The share of users that really get `on` (0 when off).
    pub fn effective(self) -> Percent {
        if self.enabled {
            self.percent
        } else {
            Percent::ZERO
        }
    }

    /// `off` or `on at 10%`, for reasons.
    pub fn describe(self) -> String {
        if self.enabled {
            format!("on at {}", self.percent)
        } else {
            "off".into()
        }
    }
}

/// A change claimed before the flag is touched, so a crash between the two is recoverable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingTransition {
    /// The flag before the change.
    pub from: FlagValue,
    /// The flag after the change.
    pub to: FlagValue,
    /// The state to record once the flag is confirmed at `to`.
    pub then: Box<RolloutState>,
    /// When the claim was made; a recent claim may belong to a run still at work.
    #[serde(default)]
    pub claimed_at: Option<DateTime<Utc>>,
}

/// A person's change that flagramp is holding for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftNote {
    /// What flagramp last set.
    pub expected: FlagValue,
    /// What the flag system said.
    pub found: FlagValue,
    /// When it was first seen.
    pub since: DateTime<Utc>,
}

/// One rollout's state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutState {
    /// Document format.
    pub format: u32,
    /// The rollout's name.
    pub rollout: String,
    /// The flag's key.
    pub flag: String,
    /// The stage percentages this state was last evaluated with.
    pub stages: Vec<Percent>,
    /// What flagramp last set the flag to; `None` before it ever did.
    pub last_set: Option<FlagValue>,
    /// When the rollout started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the current stage was entered: bake time counts from here, across skipped runs.
    pub stage_entered_at: Option<DateTime<Utc>>,
    /// When the rollout last moved up.
    pub last_advanced_at: Option<DateTime<Utc>>,
    /// When the final bake elapsed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Consecutive evaluations with a failing check.
    pub consecutive_failures: u32,
    /// Advancing is paused by a person.
    pub paused: bool,
    /// A rollback happened; advancing needs a person's `advance`.
    pub locked: bool,
    /// A person's change being held for.
    pub drift: Option<DriftNote>,
    /// A claimed change not yet recorded.
    pub pending: Option<PendingTransition>,
    /// Decisions, newest last, at most [`HISTORY_CAP`].
    pub history: Vec<DecisionRecord>,
    /// Each `compare` check's looks at the current stage, by check name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub compare: BTreeMap<String, CompareLooks>,
    /// The last notification sent (docs/rules.md §5): written only when one was sent, so a
    /// repeated hold still writes nothing. Absent in state written before notifications, and in
    /// the state of a rollout that never notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified: Option<LastNotified>,
}

/// What was last notified, and when: an unchanged error is sent again only once a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastNotified {
    /// The decision notified.
    pub decision: crate::record::DecisionKind,
    /// The decision's time (the run's evaluation time).
    pub at: DateTime<Utc>,
    /// Its reason (redacted), which tells one error from another.
    pub reason: String,
}

/// How many start points of a stage a `compare` check keeps: a day of evaluations every 15
/// minutes. Older ones are dropped; the suffixes from them are no longer tested, which keeps
/// the test valid (docs/statistics.md, "Looks").
pub const START_POINT_CAP: usize = 96;

/// A `compare` check's looks at one stage (docs/statistics.md, "Looks").
///
/// They are kept here, not read back from the history, because the false-alarm budget is spent
/// per look: a look the history did not keep (a hold that repeats the last entry verbatim, or
/// entries past [`HISTORY_CAP`]) would be spent again, and the stage would alarm more often
/// than `alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareLooks {
    /// When the stage these looks belong to was entered.
    pub stage_entered: DateTime<Utc>,
    /// Tests made at this stage: a fixed window's test k spends `alpha·6/(π²k²)`.
    pub tests: u32,
    /// Start points recorded at this stage so far, dropped ones included: the next one's index
    /// is this plus one.
    pub points_seen: u32,
    /// The newest start points, oldest first, at most [`START_POINT_CAP`].
    pub points: Vec<StartPoint>,
}

/// The cumulative counts of a stage at one earlier evaluation: the data since then is a suffix
/// of the stage, tested on its own (`window: stage`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartPoint {
    /// Which start point of the stage this is (1 = the first evaluation; 0 is the stage's
    /// entry, which needs no record): suffix j is tested at `alpha·6/(π²(j+1)²)`.
    pub index: u32,
    /// The time the counts are for.
    pub at: DateTime<Utc>,
    /// The exposed cohort's counts since the stage was entered.
    pub canary: CohortRecord,
    /// The control cohort's counts since the stage was entered.
    pub control: CohortRecord,
}

impl RolloutState {
    /// The state of a rollout that has never been evaluated.
    pub fn new(rollout: &str, flag: &str, stages: Vec<Percent>) -> RolloutState {
        RolloutState {
            format: STATE_FORMAT,
            rollout: rollout.to_string(),
            flag: flag.to_string(),
            stages,
            last_set: None,
            started_at: None,
            stage_entered_at: None,
            last_advanced_at: None,
            completed_at: None,
            consecutive_failures: 0,
            paused: false,
            locked: false,
            drift: None,
            pending: None,
            history: Vec::new(),
            compare: BTreeMap::new(),
            last_notified: None,
        }
    }

    /// Redacts every record it holds (the claimed next state's too) before it is stored.
    pub fn scrub(&mut self, secrets: &crate::secrets::Secrets) {
        for record in &mut self.history {
            record.scrub(secrets);
        }
        if let Some(last) = &mut self.last_notified {
            last.reason = secrets.admit(&last.reason);
        }
        if let Some(pending) = &mut self.pending {
            pending.then.scrub(secrets);
        }
    }

    /// Appends a decision, keeping the last [`HISTORY_CAP`].
    pub fn push_history(&mut self, record: DecisionRecord) {
        self.history.push(record);
        if self.history.len() > HISTORY_CAP {
            let excess = self.history.len() - HISTORY_CAP;
            self.history.drain(..excess);
        }
    }
}

/// The largest state document a store writes (bytes): GitHub's contents API refuses files
/// over 1 MB, and a state file too large to read would stop the rollout for good.
pub const STATE_SIZE_CAP: usize = 512 * 1024;

/// A state document as a store read it, for `rollout` at `location` (how a person finds it);
/// `fix` says what to do about a document that is not JSON. Every store decodes through this,
/// so all of them refuse the same documents with the same words.
pub fn decode(bytes: &[u8], rollout: &str, location: String, fix: &str) -> Result<RolloutState, StateError> {
    let state: RolloutState = serde_json::from_slice(bytes).map_err(|e| StateError::Unreadable {
        rollout: rollout.into(),
        location: location.clone(),
        detail: format!("{e}; {fix}"),
    })?;
    if state.format != STATE_FORMAT || state.rollout != rollout {
        return Err(StateError::Unreadable {
            rollout: rollout.into(),
            location,
            detail: format!(
                "it is format {} for rollout `{}`, expected format {STATE_FORMAT} for `{rollout}`",
                state.format, state.rollout
            ),
        });
    }
    Ok(state)
}

/// The bytes a store writes for `state`: pretty JSON, with the oldest history entries dropped
/// (the claimed next state's too) until it fits in [`STATE_SIZE_CAP`].
pub fn encode(state: &RolloutState) -> Result<Vec<u8>, StateError> {
    let to_bytes = |s: &RolloutState| {
        let mut bytes = serde_json::to_vec_pretty(s).map_err(|e| StateError::Io(e.to_string()))?;
        bytes.push(b'\n');
        Ok::<_, StateError>(bytes)
    };
    let mut bytes = to_bytes(state)?;
    if bytes.len() <= STATE_SIZE_CAP {
        return Ok(bytes);
    }
    let mut trimmed = state.clone();
    while bytes.len() > STATE_SIZE_CAP {
        let then_len = trimmed.pending.as_ref().map_or(0, |p| p.then.history.len());
        // Old start points go before decisions, down to the newest few of each check: the
        // history is the audit trail, a start point only one more suffix to test.
        if drop_oldest_start_points(&mut trimmed, START_POINTS_KEPT_FIRST) {
            bytes = to_bytes(&trimmed)?;
            continue;
        }
        if trimmed.history.is_empty() && then_len == 0 {
            if drop_oldest_start_points(&mut trimmed, 0) {
                bytes = to_bytes(&trimmed)?;
                continue;
            }
            return Err(StateError::Io(format!(
                "the state of `{}` is {} bytes even without history, over the {STATE_SIZE_CAP}-byte limit",
                state.rollout,
                bytes.len()
            )));
        }
        // Drop about as many entries as the excess holds, oldest first, from both histories in
        // proportion to their lengths (at least one entry).
        let excess = bytes.len() - STATE_SIZE_CAP;
        let entries = trimmed.history.len() + then_len;
        let per_entry = (bytes.len() / entries.max(1)).max(1);
        let drop = excess.div_ceil(per_entry).clamp(1, entries);
        let from_then = (drop * then_len).div_ceil(entries).min(then_len);
        let from_main = (drop - from_then).min(trimmed.history.len());
        if let Some(p) = trimmed.pending.as_mut() {
            p.then.history.drain(..from_then);
        }
        trimmed.history.drain(..from_main);
        bytes = to_bytes(&trimmed)?;
    }
    Ok(bytes)
}

/// The start points of each `compare` check a state keeps while it drops history to fit.
const START_POINTS_KEPT_FIRST: usize = 8;

/// Halves every `compare` check's start points beyond the newest `keep`, oldest first, in the
/// state and in the claimed next state; whether any was dropped. Fewer suffixes are then tested,
/// and the bound stays valid (docs/statistics.md, "Looks"), so a state with many compare checks
/// still fits.
fn drop_oldest_start_points(state: &mut RolloutState, keep: usize) -> bool {
    let mut dropped = false;
    let mut halve = |s: &mut RolloutState| {
        for looks in s.compare.values_mut() {
            let n = looks.points.len().saturating_sub(keep).div_ceil(2);
            if n > 0 {
                looks.points.drain(..n);
                dropped = true;
            }
        }
    };
    halve(state);
    if let Some(p) = state.pending.as_mut() {
        halve(&mut p.then);
    }
    dropped
}

/// An opaque token for compare-and-swap: what a store saw when it read a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateVersion(pub String);

/// A state document and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// The document.
    pub state: RolloutState,
    /// Its version, for [`StateStore::save`].
    pub version: StateVersion,
}

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The document exists but cannot be used.
    #[error("state for rollout `{rollout}` is unreadable ({location}): {detail}")]
    Unreadable {
        /// The rollout.
        rollout: String,
        /// Where the document is.
        location: String,
        /// What is wrong.
        detail: String,
    },
    /// Another run changed the document since it was read.
    #[error("state for rollout `{rollout}` changed since it was read: another run got there first")]
    Conflict {
        /// The rollout.
        rollout: String,
    },
    /// Another run holds the store.
    #[error("{0}")]
    Locked(String),
    /// The store could not be reached or written.
    #[error("state store: {0}")]
    Io(String),
}

/// One document of a [`StateStore::save_batch`]: written only if it is still at `expected`
/// (`None`: must not exist yet).
#[derive(Debug, Clone, PartialEq)]
pub struct StateWrite {
    /// The document.
    pub state: RolloutState,
    /// The version it was read at.
    pub expected: Option<StateVersion>,
}

/// Where state documents live. Writes are compare-and-swap on the version read.
#[async_trait::async_trait]
pub trait StateStore: std::fmt::Debug + Send + Sync {
    /// Reads one rollout's state; `None` when it has none yet.
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError>;

    /// Writes one rollout's state if it is still at `expected` (`None`: must not exist yet).
    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError>;

    /// Writes the documents of one phase of a run (claims, or records) together, each
    /// compare-and-swap on its own version, so that a run's writes do not grow with its
    /// rollouts: one commit on a state branch, one pass of syncs in a directory. One result per
    /// write, in order; a conflict on one document leaves the others written.
    async fn save_batch(&self, writes: &[StateWrite]) -> Vec<Result<StateVersion, StateError>> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            results.push(self.save(&write.state, write.expected.as_ref()).await);
        }
        results
    }

    /// Says which rollouts the run is about to load, so a store that can read them together
    /// (a state branch: one tree, one query for every blob) does so before the loads; the loads
    /// then answer from what it read. A store that reads each document cheaply ignores it.
    async fn prefetch(&self, rollouts: &[String]) -> Result<(), StateError> {
        let _ = rollouts;
        Ok(())
    }

    /// True when this store holds a lock that keeps every other run out for the store's life, so
    /// a claim found in it was left by a run that died.
    fn excludes_other_runs(&self) -> bool {
        false
    }

    /// Names of every rollout that has state.
    async fn list(&self) -> Result<Vec<String>, StateError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Verdict;
    use crate::record::{CheckRecord, DecisionKind};

    fn bulky_record(i: usize) -> DecisionRecord {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000 + i as i64, 0).unwrap();
        let reason = format!("decision {i}: {}", "r".repeat(2000));
        DecisionRecord {
            checks: (0..10)
                .map(|c| CheckRecord {
                    name: format!("check-{c}"),
                    query: "up".into(),
                    value: None,
                    condition: ">= 1".into(),
                    verdict: Verdict::Error,
                    detail: Some("d".repeat(2000)),
                    at: None,
                    gate: true,
                    control_value: None,
                    compare: None,
                })
                .collect(),
            ..DecisionRecord::bare("r", "f", DecisionKind::Hold, at, "flagramp", reason)
        }
    }

    #[test]
    fn many_compare_checks_fit_by_dropping_their_oldest_start_points_after_the_history() {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let cohort = CohortRecord {
            events: 123_456.0,
            total: 12_345_678.0,
            rate: Some(0.01),
            units: Some(1_234.0),
        };
        let mut state = RolloutState::new("r", "f", vec![Percent::FULL]);
        state.push_history(bulky_record(0));
        for c in 0..200 {
            let points = (1..=START_POINT_CAP as u32)
                .map(|index| StartPoint {
                    index,
                    at,
                    canary: cohort,
                    control: cohort,
                })
                .collect();
            state.compare.insert(
                format!("check-{c}"),
                CompareLooks {
                    stage_entered: at,
                    tests: 96,
                    points_seen: 96,
                    points,
                },
            );
        }
        assert!(serde_json::to_vec_pretty(&state).unwrap().len() > STATE_SIZE_CAP);
        let bytes = encode(&state).unwrap();
        assert!(bytes.len() <= STATE_SIZE_CAP, "{} bytes", bytes.len());
        let kept: RolloutState = serde_json::from_slice(&bytes).unwrap();
        assert!(
            kept.history.is_empty(),
            "start points down to the newest few, then the history"
        );
        let looks = &kept.compare["check-7"];
        assert!(!looks.points.is_empty() && looks.points.len() < START_POINTS_KEPT_FIRST);
        assert_eq!(looks.points.last().unwrap().index, 96, "the newest start points stay");
        assert_eq!((looks.tests, looks.points_seen), (96, 96), "the counts stay");
    }

    #[test]
    fn old_start_points_go_before_decisions() {
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let cohort = CohortRecord {
            events: 1.0,
            total: 100.0,
            rate: Some(0.01),
            units: None,
        };
        let mut state = RolloutState::new("r", "f", vec![Percent::FULL]);
        for i in 0..HISTORY_CAP {
            state.push_history(bulky_record(i));
        }
        let points: Vec<StartPoint> = (1..=START_POINT_CAP as u32)
            .map(|index| StartPoint {
                index,
                at,
                canary: cohort,
                control: cohort,
            })
            .collect();
        let looks = CompareLooks {
            stage_entered: at,
            tests: 96,
            points_seen: 96,
            points,
        };
        state.compare.insert("errors".into(), looks);
        let kept: RolloutState = serde_json::from_slice(&encode(&state).unwrap()).unwrap();
        let points = &kept.compare["errors"].points;
        assert!(points.len() >= START_POINTS_KEPT_FIRST && points.len() < START_POINT_CAP);
        assert_eq!(points.last().unwrap().index, 96);
    }

    #[test]
    fn a_state_file_never_exceeds_the_size_cap_and_loses_the_oldest_history_first() {
        let mut state = RolloutState::new("r", "f", vec![Percent::FULL]);
        for i in 0..HISTORY_CAP {
            state.push_history(bulky_record(i));
        }
        let mut then = state.clone();
        then.push_history(bulky_record(HISTORY_CAP));
        state.pending = Some(PendingTransition {
            from: FlagValue::OFF,
            to: FlagValue::OFF,
            then: Box::new(then),
            claimed_at: None,
        });
        assert!(serde_json::to_vec_pretty(&state).unwrap().len() > 4 * STATE_SIZE_CAP);
        let bytes = encode(&state).unwrap();
        assert!(bytes.len() <= STATE_SIZE_CAP, "{} bytes", bytes.len());
        let kept: RolloutState = serde_json::from_slice(&bytes).unwrap();
        let newest = |s: &RolloutState| s.history.last().map(|r| r.reason[..12].to_string());
        assert_eq!(newest(&kept), newest(&state), "the newest decision stays");
        assert!(kept.history.len() < state.history.len() && !kept.history.is_empty());
        let then = &kept.pending.as_ref().unwrap().then;
        assert_eq!(newest(then).as_deref(), Some("decision 100"));
        // A small state is written as it is.
        let small = RolloutState::new("r", "f", vec![Percent::FULL]);
        assert_eq!(
            encode(&small).unwrap().len(),
            serde_json::to_vec_pretty(&small).unwrap().len() + 1
        );
    }
}
