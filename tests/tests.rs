//! One integration-test binary (one link instead of many), with a module per topic.
//!
//! Tests that need real services are `#[ignore = "needs services: run scripts/test"]`; the test
//! script starts the services and runs them with `--include-ignored`.

mod action;
mod action_inputs;
mod api;
mod cli;
mod cmd;
mod compare;
mod completions;
mod concurrency;
mod conformance;
mod crash;
mod datadog;
mod engine_rules;
mod engine_time;
mod faults;
mod files;
mod flagd_core;
mod flagd_file;
mod front_ends;
mod gates;
mod hostile_input;
mod http_source;
mod init;
mod injection;
mod launchdarkly;
mod list;
mod manual_commands;
mod notify;
mod outputs;
mod progress;
mod prometheus_answers;
mod prometheus_live;
mod quickstart;
mod races;
mod release;
mod reports;
mod repository_dispatch;
mod schema_files;
mod secrets;
mod simulate;
mod spec_catalogue;
mod spec_errors;
mod state_branch;
mod stats_reference;
mod support;
mod support_selftest;
mod typed_errors;
mod unleash;
mod workflow_docs;
