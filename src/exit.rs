//! Exit codes (docs/rules.md §4), decided in one place.

use std::process::ExitCode;

use crate::record::{DecisionKind, DecisionRecord};

/// Every rollout decided (hold, drift and rollback included).
pub const DECIDED: u8 = 0;
/// An invalid spec, a rollout that ended in `error`, or a file in `init`'s way.
pub const INVALID: u8 = 1;
/// A usage error: unknown command or rollout name, bad flags.
pub const USAGE: u8 = 2;
/// A person's command was refused and nothing was changed: an advance its checks refused, a
/// rollback of a flag that is off, an advance of a complete rollout, or another run that kept
/// the state locked. A job that ran it must not show green.
pub const REFUSED: u8 = 3;

/// The exit code for a set of decisions: an error outranks a refusal.
pub fn code_for(records: &[DecisionRecord]) -> u8 {
    if records.iter().any(|r| r.decision == DecisionKind::Error) {
        INVALID
    } else if records.iter().any(|r| r.refused) {
        REFUSED
    } else {
        DECIDED
    }
}

/// [`code_for`] as the process's exit code.
pub fn for_decisions(records: &[DecisionRecord]) -> ExitCode {
    ExitCode::from(code_for(records))
}
