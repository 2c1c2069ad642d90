//! What the flag system cannot hold: when stages were entered, counters, locks, the pending
//! transition and the history. One JSON document per rollout, behind the [`StateStore`] trait.

mod github;
mod local;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use github::GitHubStateStore;
pub use local::LocalStateStore;

use crate::percent::Percent;
use crate::record::DecisionRecord;

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

/// Where state documents live. Writes are compare-and-swap on the version read.
#[async_trait::async_trait]
pub trait StateStore: std::fmt::Debug + Send + Sync {
    /// Reads one rollout's state; `None` when it has none yet.
    async fn load(&self, rollout: &str) -> Result<Option<StoredState>, StateError>;

    /// Writes one rollout's state if it is still at `expected` (`None`: must not exist yet).
    async fn save(&self, state: &RolloutState, expected: Option<&StateVersion>) -> Result<StateVersion, StateError>;

    /// True when this store holds a lock that keeps every other run out for the store's life, so
    /// a claim found in it was left by a run that died.
    fn excludes_other_runs(&self) -> bool {
        false
    }

    /// Names of every rollout that has state.
    async fn list(&self) -> Result<Vec<String>, StateError>;
}
