//! flagramp: roll a feature flag out in stages, only while its metrics stay healthy.
//!
//! The library holds everything but argument parsing: specs ([`spec`]), the pure decision engine
//! ([`engine`]), flag providers ([`provider`]), metric sources ([`metrics`]), state stores
//! ([`state`]) and the [`runner`] that ties them together.
#![deny(missing_docs)]

pub mod action;
pub mod app;
pub mod check;
#[doc(hidden)]
pub mod crashpoint;
pub mod duration;
pub mod engine;
pub mod escape;
pub mod exit;
#[doc(hidden)]
pub mod fsutil;
pub mod github;
pub mod http;
pub mod metrics;
pub mod percent;
pub mod provider;
pub mod record;
pub mod report;
pub mod runner;
pub mod schema;
pub mod secrets;
pub mod spec;
pub mod state;
pub mod window;
