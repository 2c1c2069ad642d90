//! One integration-test binary (one link instead of many), with a module per topic.
//!
//! Tests that need real services are `#[ignore = "needs services: run scripts/test"]`; the test
//! script starts the services and runs them with `--include-ignored`.

mod action;
mod cli;
mod conformance;
mod engine_rules;
mod flagd_core;
mod flagd_file;
mod injection;
mod launchdarkly;
mod outputs;
mod prometheus_answers;
mod prometheus_live;
mod reports;
mod secrets;
mod spec_errors;
mod support;
mod support_selftest;
mod unleash;
