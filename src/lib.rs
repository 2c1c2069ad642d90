//! flagramp: roll a feature flag out in stages, only while its metrics stay healthy.
//!
//! The library holds everything but the front ends (argument parsing, the runner's environment,
//! printing: `src/cli/`). Its API is what the crate root re-exports:
//!
//! - the application layer: a [`RunRequest`] carried out by [`execute`] into an [`Outcome`];
//! - specs: [`RolloutSpec`], parsed with positions by [`parse_spec`] or loaded by [`load_specs`];
//! - the pure decision engine: [`evaluate`], [`evaluate_manual`] and what they take and return;
//! - the decision record and its evidence: [`DecisionRecord`], [`Rule`], [`Status`];
//! - the three traits and their implementations: [`FlagProvider`], [`StateStore`],
//!   [`MetricSource`] (the in-memory ones, [`MemoryFlags`] and [`MemoryStateStore`], need no
//!   servers);
//! - the reports, one renderer per target: [`report`];
//! - backtests: [`simulate`] replays specs over past metric data;
//! - a repository's first files: [`init`] writes a starter spec, flag file and workflow.
//!
//! The modules stay reachable for the project's own tests and front ends; those not named above
//! are implementation detail and hidden from the documentation.
#![deny(missing_docs)]

#[doc(hidden)]
pub mod action;
pub mod app;
pub mod check;
#[doc(hidden)]
pub mod crashpoint;
pub mod duration;
pub mod engine;
#[doc(hidden)]
pub mod escape;
#[doc(hidden)]
pub mod exit;
#[doc(hidden)]
pub mod fsutil;
#[doc(hidden)]
pub mod github;
#[doc(hidden)]
pub mod http;
pub mod init;
pub mod metrics;
pub mod notify;
pub mod percent;
pub mod provider;
pub mod record;
pub mod report;
pub mod runner;
#[doc(hidden)]
pub mod schedule;
pub mod schema;
pub mod secrets;
pub mod simulate;
pub mod spec;
pub mod state;
#[doc(hidden)]
pub mod stats;
#[doc(hidden)]
pub mod window;

pub use app::{execute, load_specs, select, AppError, Operation, Outcome, Place, RunRequest};
pub use check::{Measurement, Verdict};
pub use duration::SpecDuration;
pub use engine::{evaluate, evaluate_manual, Evaluation, Input, ManualOp, Step};
pub use metrics::{CommandSource, MeasureRequest, MetricSource, PrometheusSource};
pub use percent::Percent;
pub use provider::{ChangeNote, FlagProvider, FlagReading, MemoryFlags, ProviderError};
pub use record::{BakeProgress, CheckRecord, DecisionKind, DecisionRecord, Failures, Rule, Status};
pub use runner::{Decided, Mode, Runner};
pub use schema::SchemaKind;
pub use secrets::Secrets;
pub use simulate::{simulate, SimulateRequest, Timeline};
pub use spec::{parse_spec, Diagnostic, RolloutSpec, SpecErrors};
pub use state::{FlagValue, LocalStateStore, MemoryStateStore, RolloutState, StateError, StateStore};
