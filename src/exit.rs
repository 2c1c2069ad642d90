//! Exit codes (DESIGN.md §4), decided in one place.

use std::process::ExitCode;

use crate::record::{DecisionKind, DecisionRecord};

/// Every rollout decided (hold, drift and rollback included).
pub const DECIDED: u8 = 0;
/// An invalid spec, or a rollout that ended in `error`.
pub const INVALID: u8 = 1;
/// A usage error: unknown command or rollout name, bad flags.
pub const USAGE: u8 = 2;

/// The exit code for a set of decisions.
pub fn for_decisions(records: &[DecisionRecord]) -> ExitCode {
    if records.iter().any(|r| r.decision == DecisionKind::Error) {
        ExitCode::from(INVALID)
    } else {
        ExitCode::from(DECIDED)
    }
}
