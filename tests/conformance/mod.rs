//! One conformance suite for every flag provider (flagd file, Unleash, LaunchDarkly): the same
//! scenarios, driven through the real runner and engine, against each provider's harness. The
//! provider trait itself has its own suite, without the runner, in [`flag_provider`].

pub mod flag_provider;
pub mod flagd;
pub mod launchdarkly;
pub mod metric_source;
pub mod state_store;
pub mod unleash;

use flagramp::record::{DecisionKind, DecisionRecord};
use flagramp::spec::RolloutSpec;
use flagramp::state::FlagValue;

use crate::support::bench::{check_spec, Bench};
use crate::support::pct;

/// What the suite needs from a provider's test setup.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// The `flag:` block of a spec for `key` (YAML flow mapping), using `token_env` for the
    /// provider's token where it has one.
    fn flag_block(&self, key: &str, token_env: &str) -> String;
    /// The name of an environment variable holding a working (or, with `valid: false`, a
    /// refused) token; `None` when the provider takes no credentials.
    fn token(&self, valid: bool) -> Option<String>;
    /// Creates a fresh flag `key`, off, that flagramp may own.
    async fn create_flag(&self, key: &str);
    /// What the flag system says now, read independently of flagramp's provider.
    async fn observe(&self, key: &str) -> FlagValue;
    /// A person changes the flag by hand.
    async fn set_by_hand(&self, key: &str, value: FlagValue);
    /// A `flag:` block whose server answers every request with HTTP 500, if the harness can
    /// make one (`None`: the scenario is skipped, with a reason printed).
    async fn failing_server_block(&self, key: &str, token_env: &str) -> Option<String>;
    /// The repository root flag files are relative to, for file-based providers.
    fn files_root(&self) -> Option<std::path::PathBuf> {
        None
    }
}

/// A unique name for flags and token variables, so scenarios can share one server.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn spec(flag_block: &str, stages: &str) -> RolloutSpec {
    check_spec("conformance", flag_block, stages)
}

/// A bench over `spec` whose flag files are where the harness keeps them.
fn bench(h: &dyn Harness, spec: RolloutSpec) -> Bench {
    Bench::new(spec).with_files_root(h.files_root())
}

fn assert_decision(record: &DecisionRecord, kind: DecisionKind, context: &str) {
    assert_eq!(record.decision, kind, "{context}: {}", record.reason);
}

/// A new flag named after `prefix` (with a valid token) and a bench over a spec with `stages`.
async fn fresh_flag(h: &dyn Harness, prefix: &str, stages: &str) -> (String, Bench) {
    let key = unique(prefix);
    let token_env = h.token(true).unwrap_or_default();
    h.create_flag(&key).await;
    let bench = bench(h, spec(&h.flag_block(&key, &token_env), stages));
    (key, bench)
}

/// Start, advance through every stage, hold during the bake, complete.
pub async fn start_advance_hold_complete(h: &dyn Harness) {
    let (key, mut b) = fresh_flag(
        h,
        "ramp",
        "[{ percent: 10, bake: 30m }, { percent: 50, bake: 30m }, { percent: 100, bake: 30m }]",
    )
    .await;
    assert_decision(&b.run_after(0).await, DecisionKind::Start, "start");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(10)));
    assert_decision(&b.run_after(10).await, DecisionKind::Hold, "bake not elapsed");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(10)));
    assert_decision(&b.run_after(30).await, DecisionKind::Advance, "advance to 50");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(50)));
    assert_decision(&b.run_after(30).await, DecisionKind::Advance, "advance to 100");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(100)));
    assert_decision(&b.run_after(30).await, DecisionKind::Complete, "complete");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(100)));
}

/// A failing check rolls back to the previous stage, then from the first stage turns the flag off.
pub async fn rollback_to_previous_then_disable(h: &dyn Harness) {
    let (key, mut b) = fresh_flag(
        h,
        "rollback",
        "[{ percent: 10, bake: 0s }, { percent: 50, bake: 0s }, 100]",
    )
    .await;
    assert_decision(&b.run_after(0).await, DecisionKind::Start, "start");
    assert_decision(&b.run_after(1).await, DecisionKind::Advance, "advance");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(50)));
    b.healthy(false);
    assert_decision(&b.run_after(1).await, DecisionKind::Rollback, "rollback");
    assert_eq!(h.observe(&key).await, FlagValue::on(pct(10)));
    assert_decision(&b.run_after(1).await, DecisionKind::Disable, "disable");
    assert_eq!(h.observe(&key).await, FlagValue::OFF);
    b.healthy(true);
    assert_decision(&b.run_after(1).await, DecisionKind::Hold, "locked after rollback");
    assert_eq!(h.observe(&key).await, FlagValue::OFF);
}

/// A person's change is drift: flagramp holds and leaves the hand-set value alone.
pub async fn drift_holds_and_never_overwrites(h: &dyn Harness) {
    let (key, mut b) = fresh_flag(
        h,
        "drift",
        "[{ percent: 10, bake: 0s }, { percent: 50, bake: 0s }, 100]",
    )
    .await;
    assert_decision(&b.run_after(0).await, DecisionKind::Start, "start");
    h.set_by_hand(&key, FlagValue::on(pct(30))).await;
    for _ in 0..2 {
        let r = b.run_after(5).await;
        assert_decision(&r, DecisionKind::Drift, "drift");
        assert!(
            r.reason.contains("on at 30%") && r.reason.contains("on at 10%"),
            "{}",
            r.reason
        );
        assert_eq!(
            h.observe(&key).await,
            FlagValue::on(pct(30)),
            "the hand-set value is left alone"
        );
    }
    h.set_by_hand(&key, FlagValue::OFF).await;
    assert_decision(&b.run_after(5).await, DecisionKind::Drift, "turned off by hand");
    assert_eq!(h.observe(&key).await, FlagValue::OFF);
}

/// A missing flag, refused credentials and a failing server are `error` decisions that change
/// nothing, and never a metric failure or a rollback.
pub async fn missing_flag_auth_failure_and_server_error_are_errors(h: &dyn Harness) {
    let key = unique("missing");
    let token_env = h.token(true).unwrap_or_default();
    let mut b = bench(h, spec(&h.flag_block(&key, &token_env), "[10, 50, 100]"));
    let r = b.run_after(0).await;
    assert_decision(&r, DecisionKind::Error, "missing flag");
    assert!(r.checks.is_empty(), "no check is queried");

    match h.token(false) {
        Some(bad) => {
            let key = unique("auth");
            h.create_flag(&key).await;
            let mut b = bench(h, spec(&h.flag_block(&key, &bad), "[10, 50, 100]"));
            let r = b.run_after(0).await;
            assert_decision(&r, DecisionKind::Error, "refused credentials");
            assert!(r.checks.is_empty());
            assert_eq!(h.observe(&key).await, FlagValue::OFF);
        }
        None => eprintln!("auth failure scenario: this provider takes no credentials"),
    }

    let key = unique("broken");
    match h.failing_server_block(&key, &token_env).await {
        Some(block) => {
            let mut b = bench(h, spec(&block, "[10, 50, 100]"));
            let r = b.run_after(0).await;
            assert_decision(&r, DecisionKind::Error, "server error");
            assert!(r.checks.is_empty());
        }
        None => eprintln!("server error scenario: not applicable to this provider"),
    }
}

/// Every scenario, in order.
pub async fn run_all(h: &dyn Harness) {
    start_advance_hold_complete(h).await;
    rollback_to_previous_then_disable(h).await;
    drift_holds_and_never_overwrites(h).await;
    missing_flag_auth_failure_and_server_error_are_errors(h).await;
}
