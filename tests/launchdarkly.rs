//! The LaunchDarkly provider against the stateful fake of LaunchDarkly's REST API
//! (`support::launchdarkly`): how flags read, the exact semantic patches written, the headers,
//! conflicts decided again, refusals, rate limits, and every provider error as an `error`
//! decision that changes nothing. Each test ends with the fake's conformance check against
//! LaunchDarkly's API description and semantic patch documentation.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use flagramp::percent::Percent;

use crate::support::pct;
use flagramp::provider::launchdarkly::LaunchDarklyFlag;
use flagramp::provider::{ChangeNote, FlagProvider, FlagReading, ProviderError};
use flagramp::record::{DecisionKind, DecisionRecord};
use flagramp::state::{FlagValue, LocalStateStore, RolloutState, StateStore};

use crate::conformance::launchdarkly::block;
use crate::support::bench::{check_spec, Bench};
use crate::support::launchdarkly::{
    check_semantic_patch, semantic_patch_docs, FakeLaunchDarkly, BAD_TOKEN, BAD_TOKEN_ENV, ENVIRONMENT,
    OTHER_ENVIRONMENT, PROJECT, SEMANTIC_PATCH, TOKEN, TOKEN_ENV,
};

const KEY: &str = "new-checkout";

fn provider(fake: &FakeLaunchDarkly, key: &str, on_variation: Option<&str>) -> LaunchDarklyFlag {
    LaunchDarklyFlag::new(
        &fake.uri(),
        PROJECT,
        ENVIRONMENT,
        TOKEN.to_string(),
        key,
        on_variation.map(str::to_string),
    )
}

async fn fake_with_flag() -> FakeLaunchDarkly {
    let fake = FakeLaunchDarkly::start().await;
    fake.add_boolean_flag(KEY);
    fake
}

const CHECKOUT_FLOWS: [(&str, &str); 3] = [("classic", "Classic"), ("express", "Express"), ("one-page", "One page")];

fn add_checkout_flow(fake: &FakeLaunchDarkly, key: &str) {
    let variations: Vec<(Value, &str)> = CHECKOUT_FLOWS.iter().map(|(v, n)| (json!(v), *n)).collect();
    fake.add_multivariate_flag(key, &variations, 0);
}

/// A bench (local state, a check script whose verdict the test controls and which notes each
/// run, so a test can tell whether checks were queried) over the rollout `ld-ramp`.
fn ld_bench(flag_block: &str, stages: &str) -> Bench {
    Bench::new(check_spec("ld-ramp", flag_block, stages))
}

fn bench_for_fake(fake: &FakeLaunchDarkly, key: &str, token_env: &str) -> Bench {
    ld_bench(
        &block(key, token_env, &fake.uri()),
        "[{ percent: 10, bake: 30m }, { percent: 50, bake: 30m }, 100]",
    )
}

async fn stored_state(bench: &Bench) -> Option<RolloutState> {
    LocalStateStore::read_only(&bench.repo.state_dir())
        .load(&bench.spec.name)
        .await
        .unwrap()
        .map(|s| s.state)
}

/// An `error` decision that queried no check, named no token, and left no rollback behind.
async fn assert_clean_error(bench: &Bench, record: &DecisionRecord, expected: &[&str]) {
    assert_eq!(record.decision, DecisionKind::Error, "{}", record.reason);
    for text in expected {
        assert!(record.reason.contains(text), "expected {text:?} in: {}", record.reason);
    }
    assert!(record.checks.is_empty(), "no check in the record: {:?}", record.checks);
    let serialized = serde_json::to_string(record).unwrap();
    for token in [TOKEN, BAD_TOKEN] {
        assert!(!serialized.contains(token), "the token leaked: {serialized}");
    }
    if let Some(state) = stored_state(bench).await {
        assert!(!state.locked, "no rollback lock");
        assert_eq!(state.consecutive_failures, 0, "not a metric failure");
        assert!(
            !state.history.iter().any(|r| r.decision == DecisionKind::Rollback),
            "no rollback"
        );
    }
}

// ----- reading ------------------------------------------------------------------------------------

#[tokio::test]
async fn boolean_flags_read_as_on_off_and_rollout_percentages() {
    let fake = fake_with_flag().await;
    let ld = provider(&fake, KEY, None);
    // As LaunchDarkly creates it: targeting off, default rule serving `true`.
    assert_eq!(ld.read().await.unwrap().value, FlagValue::OFF);
    fake.set_by_hand(KEY, FlagValue::on(pct(30)));
    assert_eq!(ld.read().await.unwrap().value, FlagValue::on(pct(30)));
    fake.set_by_hand(KEY, FlagValue::on(Percent::from_millis(12_345).unwrap()));
    assert_eq!(
        ld.read().await.unwrap().value,
        FlagValue::on(Percent::from_millis(12_345).unwrap())
    );
    fake.set_by_hand(KEY, FlagValue::on(Percent::FULL));
    assert_eq!(ld.read().await.unwrap().value, FlagValue::on(Percent::FULL));
    // On, serving `false` to everyone, or a rollout giving `true` nothing: on for nobody is off.
    fake.edit_environment(KEY, |env| {
        env.insert("fallthrough".into(), json!({ "variation": 1 }));
    });
    assert_eq!(ld.read().await.unwrap().value, FlagValue::OFF);
    fake.edit_environment(KEY, |env| {
        env.insert(
            "fallthrough".into(),
            json!({ "rollout": { "variations": [{ "variation": 0, "weight": 0 }, { "variation": 1, "weight": 100000 }] } }),
        );
    });
    assert_eq!(ld.read().await.unwrap().value, FlagValue::OFF);
    // Targeting off: whatever the default rule says.
    fake.set_by_hand(KEY, FlagValue::on(pct(40)));
    fake.edit_environment(KEY, |env| {
        env.insert("on".into(), json!(false));
    });
    assert_eq!(ld.read().await.unwrap().value, FlagValue::OFF);
    // Rules serve traffic of their own and are fine: flagramp only owns the default rule.
    fake.set_by_hand(KEY, FlagValue::on(pct(20)));
    fake.edit_environment(KEY, |env| {
        env.insert(
            "rules".into(),
            json!([{ "_id": "7c1e2b3a-0000-4000-8000-000000000001", "variation": 0, "trackEvents": false,
                     "clauses": [{ "attribute": "email", "op": "endsWith", "values": ["@example.com"], "negate": false }] }]),
        );
    });
    assert_eq!(ld.read().await.unwrap().value, FlagValue::on(pct(20)));
    // The version moves with every change.
    let before = ld.read().await.unwrap().version;
    fake.set_by_hand(KEY, FlagValue::on(pct(25)));
    assert_ne!(ld.read().await.unwrap().version, before);
    // Every read asks for this environment only.
    for r in fake.requests() {
        assert_eq!(r.query, vec![("env".to_string(), ENVIRONMENT.to_string())]);
    }
    fake.assert_conformant();
}

#[tokio::test]
async fn multivariate_flags_need_on_variation_by_name_or_value() {
    let fake = FakeLaunchDarkly::start().await;
    add_checkout_flow(&fake, "checkout-flow");
    let e = provider(&fake, "checkout-flow", None).read().await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::CannotOwn(m) if m.contains("set `flag.launchdarkly.on_variation`") && m.contains("`Express` (express)")),
        "{e:?}"
    );
    // By name.
    fake.set_by_hand_between("checkout-flow", 1, 0, FlagValue::on(pct(25)));
    let by_name = provider(&fake, "checkout-flow", Some("Express"));
    assert_eq!(by_name.read().await.unwrap().value, FlagValue::on(pct(25)));
    // By value.
    let by_value = provider(&fake, "checkout-flow", Some("express"));
    assert_eq!(by_value.read().await.unwrap().value, FlagValue::on(pct(25)));
    // The other variation is a different rollout.
    fake.set_by_hand_between("checkout-flow", 2, 0, FlagValue::on(pct(40)));
    assert_eq!(
        provider(&fake, "checkout-flow", Some("one-page"))
            .read()
            .await
            .unwrap()
            .value,
        FlagValue::on(pct(40))
    );
    // A value that is not a string matches as JSON.
    fake.add_multivariate_flag("page-size", &[(json!(10), "small"), (json!(50), "large")], 0);
    fake.set_by_hand_between("page-size", 1, 0, FlagValue::on(pct(5)));
    assert_eq!(
        provider(&fake, "page-size", Some("50")).read().await.unwrap().value,
        FlagValue::on(pct(5))
    );
    // A name no variation has.
    let e = provider(&fake, "checkout-flow", Some("Turbo"))
        .read()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::CannotOwn(m) if m.contains("no variation named or valued `Turbo`") && m.contains("`One page` (one-page)")),
        "{e:?}"
    );
    // Writing a multivariate flag: weights between the on variation and the off variation.
    // Even with targeting off, a rollout to a third variation is a person's setup: not taken over.
    fake.set_by_hand_between("checkout-flow", 1, 0, FlagValue::OFF);
    assert!(matches!(by_name.read().await, Err(ProviderError::CannotOwn(_))));
    fake.edit_environment("checkout-flow", |env| {
        env.insert("fallthrough".into(), json!({ "variation": 0 }));
    });
    let seen = by_name.read().await.unwrap();
    let back = by_name
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap();
    assert_eq!(back.value, FlagValue::on(pct(10)));
    let (express, classic) = (
        fake.variation_id("checkout-flow", 1),
        fake.variation_id("checkout-flow", 0),
    );
    assert_eq!(
        fake.applied_patches()[0]["instructions"],
        json!([
            { "kind": "turnFlagOn" },
            { "kind": "updateFallthroughVariationOrRollout", "rolloutWeights": { express: 10000, classic: 90000 } }
        ])
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn shapes_flagramp_cannot_own_are_refused_before_anything_is_written() {
    let fake = FakeLaunchDarkly::start().await;
    add_checkout_flow(&fake, "checkout-flow");
    // A rollout that gives traffic to a third variation.
    fake.edit_environment("checkout-flow", |env| {
        env.insert("on".into(), json!(true));
        env.insert(
            "fallthrough".into(),
            json!({ "rollout": { "variations": [
                { "variation": 0, "weight": 60000 }, { "variation": 1, "weight": 20000 }, { "variation": 2, "weight": 20000 }
            ] } }),
        );
    });
    let ld = provider(&fake, "checkout-flow", Some("Express"));
    let e = ld.read().await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::CannotOwn(m) if m.contains("gives 20% to variation 2")),
        "{e:?}"
    );
    // Serving a third variation to everyone.
    fake.edit_environment("checkout-flow", |env| {
        env.insert("fallthrough".into(), json!({ "variation": 2 }));
    });
    let e = ld.read().await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::CannotOwn(m) if m.contains("serving variation 2 to everyone")),
        "{e:?}"
    );
    // A migration flag.
    fake.add_boolean_flag("migrate-db");
    fake.edit_flag("migrate-db", |f| f["_purpose"] = json!("migration"));
    let e = provider(&fake, "migrate-db", None).read().await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::CannotOwn(m) if m.contains("migration flag")),
        "{e:?}"
    );
    // An environment the flag does not have.
    let e = LaunchDarklyFlag::new(&fake.uri(), PROJECT, "prod", TOKEN.into(), "migrate-db", None)
        .read()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::NotFound(m) if m.contains("no environment `prod`")),
        "{e:?}"
    );

    // Through the runner: an error decision, no check queried, nothing written.
    let before = fake.flag("checkout-flow");
    let mut bench = ld_bench(
        &format!(
            "{{ provider: launchdarkly, key: checkout-flow, launchdarkly: {{ project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {TOKEN_ENV}, base_url: \"{}\", on_variation: Express }} }}",
            fake.uri()
        ),
        "[10, 50, 100]",
    );
    let r = bench.run_after(0).await;
    assert_clean_error(&bench, &r, &["serving variation 2 to everyone", "changed nothing"]).await;
    assert_eq!(bench.checks_run(), 0);
    assert_eq!(fake.patch_requests(), 0);
    assert_eq!(fake.flag("checkout-flow"), before);
    fake.assert_conformant();
}

#[tokio::test]
async fn experiments_and_guarded_rollouts_are_refused_with_nothing_written() {
    let fake = FakeLaunchDarkly::start().await;
    for key in ["exp-allocation", "guarded", "legacy-exp"] {
        fake.add_boolean_flag(key);
    }
    fake.mark_experiment("exp-allocation");
    fake.mark_guarded_rollout("guarded");
    fake.mark_legacy_experiment("legacy-exp");
    let cases = [
        (
            "exp-allocation",
            "has an experiment allocating its default rule's traffic",
        ),
        ("guarded", "has a guarded rollout on its default rule"),
        ("legacy-exp", "is in an experiment measuring `checkout-conversion`"),
    ];
    for (key, why) in cases {
        let e = provider(&fake, key, None).read().await.unwrap_err();
        assert!(
            matches!(&e, ProviderError::Refused(m) if m.contains(why)),
            "{key}: {e:?}"
        );

        let before = fake.flag(key);
        let mut bench = bench_for_fake(&fake, key, TOKEN_ENV);
        let r = bench.run_after(0).await;
        assert_clean_error(&bench, &r, &[why, "changed nothing"]).await;
        assert_eq!(bench.checks_run(), 0, "{key}");
        assert_eq!(fake.flag(key), before, "{key} untouched");
    }
    // A refusal in `set` too, if the experiment starts between reading and writing.
    fake.add_boolean_flag(KEY);
    let ld = provider(&fake, KEY, None);
    let seen = ld.read().await.unwrap();
    fake.mark_experiment(KEY);
    let e = ld
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Refused(_)), "{e:?}");
    assert_eq!(fake.patch_requests(), 0);
    fake.assert_conformant();
}

// ----- writing ------------------------------------------------------------------------------------

#[tokio::test]
async fn semantic_patches_are_exactly_the_documented_instructions() {
    let fake = fake_with_flag().await;
    let ld = provider(&fake, KEY, None);
    let (on, off) = (fake.variation_id(KEY, 0), fake.variation_id(KEY, 1));
    let staging = fake.flag(KEY)["environments"][OTHER_ENVIRONMENT].clone();

    let mut seen = ld.read().await.unwrap();
    for to in [
        FlagValue::on(pct(10)),
        FlagValue::on(pct(50)),
        FlagValue::on(Percent::FULL),
        FlagValue::OFF,
    ] {
        seen = ld.set(to, &seen, &ChangeNote::default()).await.unwrap();
        assert_eq!(seen.value, to);
        assert_eq!(fake.observe(KEY), to);
    }
    let expected = [
        json!({
            "environmentKey": "production",
            "comment": "flagramp: on at 10% (was off)",
            "instructions": [
                { "kind": "turnFlagOn" },
                { "kind": "updateFallthroughVariationOrRollout", "rolloutWeights": { on.as_str(): 10000, off.as_str(): 90000 } }
            ]
        }),
        json!({
            "environmentKey": "production",
            "comment": "flagramp: on at 50% (was on at 10%)",
            "instructions": [
                { "kind": "updateFallthroughVariationOrRollout", "rolloutWeights": { on.as_str(): 50000, off.as_str(): 50000 } }
            ]
        }),
        json!({
            "environmentKey": "production",
            "comment": "flagramp: on at 100% (was on at 50%)",
            "instructions": [
                { "kind": "updateFallthroughVariationOrRollout", "variationId": on }
            ]
        }),
        json!({
            "environmentKey": "production",
            "comment": "flagramp: off (was on at 100%)",
            "instructions": [{ "kind": "turnFlagOff" }]
        }),
    ];
    assert_eq!(fake.applied_patches(), expected);
    // Each write: read (version check), PATCH, read back.
    let requests = fake.requests();
    assert_eq!(
        requests.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["GET", "GET", "PATCH", "GET", "GET", "PATCH", "GET", "GET", "PATCH", "GET", "GET", "PATCH", "GET"]
    );
    for r in &requests {
        assert_eq!(r.header("ld-api-version"), Some("20240415"), "{} {}", r.method, r.path);
        assert_eq!(r.header("authorization"), Some(TOKEN), "the raw token, no Bearer");
        assert_eq!(r.path, format!("/api/v2/flags/{PROJECT}/{KEY}"));
        if r.method == "PATCH" {
            assert_eq!(r.header("content-type"), Some(SEMANTIC_PATCH));
            assert!(r.query.is_empty());
        }
    }
    assert_eq!(
        fake.flag(KEY)["environments"][OTHER_ENVIRONMENT]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "version" && *k != "lastModified")
            .collect::<Vec<_>>(),
        staging
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "version" && *k != "lastModified")
            .collect::<Vec<_>>(),
        "the other environment is untouched"
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn a_rollout_keeps_its_context_kind_and_bucketing_attribute() {
    let fake = fake_with_flag().await;
    fake.edit_environment(KEY, |env| {
        env.insert("on".into(), json!(true));
        env.insert(
            "fallthrough".into(),
            json!({ "rollout": { "contextKind": "organization", "bucketBy": "tier", "seed": 7,
                "variations": [{ "variation": 0, "weight": 10000 }, { "variation": 1, "weight": 90000 }] } }),
        );
    });
    let ld = provider(&fake, KEY, None);
    let seen = ld.read().await.unwrap();
    assert_eq!(seen.value, FlagValue::on(pct(10)));
    ld.set(FlagValue::on(pct(25)), &seen, &ChangeNote::default())
        .await
        .unwrap();
    let (on, off) = (fake.variation_id(KEY, 0), fake.variation_id(KEY, 1));
    assert_eq!(
        fake.applied_patches()[0]["instructions"],
        json!([{
            "kind": "updateFallthroughVariationOrRollout",
            "rolloutWeights": { on: 25000, off: 75000 },
            "rolloutContextKind": "organization",
            "rolloutBucketBy": "tier"
        }])
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn a_change_between_read_and_write_is_a_conflict_before_writing() {
    let fake = fake_with_flag().await;
    let ld = provider(&fake, KEY, None);
    let seen = ld.read().await.unwrap();
    fake.set_by_hand(KEY, FlagValue::on(pct(30)));
    let e = ld
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Conflict(m) if m.contains("changed since it was read") && m.contains("nothing was written")),
        "{e:?}"
    );
    assert_eq!(fake.patch_requests(), 0);
    assert_eq!(fake.observe(KEY), FlagValue::on(pct(30)));
    // A reading from another flag version is refused the same way.
    let stale = FlagReading {
        value: FlagValue::OFF,
        version: "0.0".into(),
    };
    assert!(matches!(
        ld.set(FlagValue::OFF, &stale, &ChangeNote::default()).await,
        Err(ProviderError::Conflict(_))
    ));
    fake.assert_conformant();
}

async fn started(fake: &FakeLaunchDarkly) -> Bench {
    let mut bench = bench_for_fake(fake, KEY, TOKEN_ENV);
    let r = bench.run_after(0).await;
    assert_eq!(r.decision, DecisionKind::Start, "{}", r.reason);
    assert_eq!(fake.observe(KEY), FlagValue::on(pct(10)));
    bench
}

fn advances(state: &RolloutState) -> usize {
    state
        .history
        .iter()
        .filter(|r| r.decision == DecisionKind::Advance)
        .count()
}

#[tokio::test]
async fn a_409_is_decided_again_and_advances_once() {
    let fake = fake_with_flag().await;
    let mut bench = started(&fake).await;
    fake.fail_next("PATCH", 409, 1);
    let r = bench.run_after(30).await;
    assert_eq!(r.decision, DecisionKind::Advance, "{}", r.reason);
    assert_eq!(fake.observe(KEY), FlagValue::on(pct(50)));
    let state = stored_state(&bench).await.unwrap();
    assert_eq!(advances(&state), 1);
    assert!(state.pending.is_none(), "the claim was withdrawn, then recorded");
    assert_eq!(
        fake.patch_requests(),
        3,
        "start, the refused advance, the advance decided again"
    );
    assert_eq!(fake.applied_patches().len(), 2);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_version_moved_between_read_and_write_is_decided_again_and_advances_once() {
    let fake = fake_with_flag().await;
    let mut bench = started(&fake).await;
    // Someone changes the flag elsewhere right after the runner's read.
    fake.bump_version_after_gets(1);
    let version = fake.version(KEY);
    let r = bench.run_after(30).await;
    assert_eq!(r.decision, DecisionKind::Advance, "{}", r.reason);
    assert_eq!(fake.observe(KEY), FlagValue::on(pct(50)));
    assert_eq!(advances(&stored_state(&bench).await.unwrap()), 1);
    assert_eq!(fake.patch_requests(), 2, "no PATCH on the stale reading");
    assert_eq!(
        fake.version(KEY),
        version + 2,
        "the change elsewhere, then flagramp's one write"
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn approval_required_405_is_a_clear_error() {
    let fake = fake_with_flag().await;
    fake.fail_next_with("PATCH", 405, "Approval is required to make this request", 1);
    let mut bench = bench_for_fake(&fake, KEY, TOKEN_ENV);
    let r = bench.run_after(0).await;
    assert_clean_error(
        &bench,
        &r,
        &[
            "start was decided but not carried out",
            "approval required in production",
            "Approval is required to make this request",
            "nothing was changed",
        ],
    )
    .await;
    assert_eq!(fake.observe(KEY), FlagValue::OFF);
    assert_eq!(fake.applied_patches().len(), 0);
    // Nothing was written, so no claim is left behind: once approved, the next run starts at once.
    assert!(
        stored_state(&bench).await.is_none_or(|s| s.pending.is_none()),
        "the refused change leaves no claim"
    );
    let r = bench.run_after(1).await;
    assert_eq!(r.decision, DecisionKind::Start, "{}", r.reason);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_400_scheduled_change_conflict_is_a_clear_error_and_other_400s_show_the_message() {
    let fake = fake_with_flag().await;
    let message = "This change conflicts with a pending scheduled change. Use ignoreConflicts=true to apply it anyway";
    fake.fail_next_with("PATCH", 400, message, 1);
    let mut bench = bench_for_fake(&fake, KEY, TOKEN_ENV);
    let r = bench.run_after(0).await;
    assert_clean_error(
        &bench,
        &r,
        &[
            "pending scheduled change or approval request",
            message,
            "nothing was changed",
        ],
    )
    .await;
    assert_eq!(fake.observe(KEY), FlagValue::OFF);

    let ld = provider(&fake, KEY, None);
    let seen = ld.read().await.unwrap();
    fake.fail_next_with("PATCH", 400, "Invalid semantic patch instruction", 1);
    let e = ld
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Io(m) if m.contains("rejected the change") && m.contains("HTTP 400: Invalid semantic patch instruction (invalid_request)")),
        "{e:?}"
    );
    assert_eq!(fake.applied_patches().len(), 0);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_429_waits_for_x_ratelimit_reset_then_succeeds() {
    let fake = fake_with_flag().await;
    let ld = provider(&fake, KEY, None);
    let reset = chrono::Utc::now().timestamp_millis() + 1000;
    fake.rate_limit_next("GET", &[("X-Ratelimit-Reset", reset.to_string())]);
    let started = Instant::now();
    let reading = ld.read().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reading.value, FlagValue::OFF);
    assert!(elapsed >= Duration::from_millis(900), "waited only {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "waited {elapsed:?}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!((requests[0].status, requests[1].status), (429, 200));

    // A rate-limited write was not applied, so it is sent again after `Retry-After`.
    fake.rate_limit_next("PATCH", &[("Retry-After", "1".to_string())]);
    let started = Instant::now();
    ld.set(FlagValue::on(pct(10)), &reading, &ChangeNote::default())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(fake.patch_requests(), 2);
    assert_eq!(fake.applied_patches().len(), 1);
    assert_eq!(fake.observe(KEY), FlagValue::on(pct(10)));
    fake.assert_conformant();
}

// ----- provider errors: each an `error` decision that changes nothing -----------------------------

/// A fresh flag, a run with `setup` applied to the fake, and the flag checked untouched.
async fn error_run(
    token_env: &str,
    key: &str,
    setup: impl FnOnce(&FakeLaunchDarkly),
) -> (FakeLaunchDarkly, Bench, DecisionRecord) {
    let fake = fake_with_flag().await;
    setup(&fake);
    let before = fake.flag(KEY);
    let mut bench = bench_for_fake(&fake, key, token_env);
    let r = bench.run_after(0).await;
    assert_eq!(fake.flag(KEY), before, "the flag is untouched");
    assert_eq!(fake.patch_requests(), 0);
    assert_eq!(bench.checks_run(), 0, "no check is queried");
    (fake, bench, r)
}

#[tokio::test]
async fn a_401_is_an_auth_error_that_never_shows_the_token() {
    let (fake, bench, r) = error_run(BAD_TOKEN_ENV, KEY, |_| {}).await;
    assert_clean_error(
        &bench,
        &r,
        &[
            "LaunchDarkly rejected the API access token",
            "HTTP 401: Invalid access token (unauthorized)",
            "without \"Bearer\"",
        ],
    )
    .await;
    assert_eq!(fake.requests().len(), 1, "no retry of a refused token");
    fake.assert_conformant();
}

#[tokio::test]
async fn a_403_names_the_permission_the_token_lacks() {
    let (fake, bench, r) = error_run(TOKEN_ENV, KEY, |f| f.fail_next("GET", 403, 1)).await;
    assert_clean_error(
        &bench,
        &r,
        &[
            "may not read flag `new-checkout`",
            "HTTP 403",
            "viewProject on proj/default",
        ],
    )
    .await;
    fake.assert_conformant();

    // Refused on the write: the role lacks the update actions.
    let fake = fake_with_flag().await;
    fake.fail_next("PATCH", 403, 1);
    let ld = provider(&fake, KEY, None);
    let seen = ld.read().await.unwrap();
    let e = ld
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Auth(m) if m.contains("may not change") && m.contains("updateOn and updateFallthrough on proj/default:env/production:flag/new-checkout")),
        "{e:?}"
    );
    fake.assert_conformant();
}

#[tokio::test]
async fn a_404_names_project_flag_and_environment() {
    let (fake, bench, r) = error_run(TOKEN_ENV, "no-such-flag", |_| {}).await;
    assert_clean_error(
        &bench,
        &r,
        &[
            "no flag `no-such-flag` in project `default`",
            "environment `production`",
            "HTTP 404",
        ],
    )
    .await;
    fake.assert_conformant();
}

#[tokio::test]
async fn a_500_is_retried_a_bounded_number_of_times_then_an_error() {
    let (fake, bench, r) = error_run(TOKEN_ENV, KEY, |f| f.fail_next("GET", 500, 5)).await;
    assert_clean_error(&bench, &r, &["LaunchDarkly failed to answer", "HTTP 500"]).await;
    assert_eq!(fake.requests().len(), 3, "three attempts");
    fake.assert_conformant();
}

#[tokio::test]
async fn malformed_json_is_an_error() {
    let (fake, bench, r) = error_run(TOKEN_ENV, KEY, |f| f.malformed_next("GET", 1)).await;
    assert_clean_error(&bench, &r, &["a body that is not JSON", "flag `new-checkout`"]).await;
    fake.assert_conformant();
}

#[tokio::test]
async fn a_timeout_bounds_the_whole_read() {
    // The provider's own timeout (10 s for a request, its retries included).
    let started = Instant::now();
    let (fake, bench, r) = error_run(TOKEN_ENV, KEY, |f| f.delay_next("GET", Duration::from_secs(12), 3)).await;
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    assert_clean_error(
        &bench,
        &r,
        &[
            "cannot read flag `new-checkout`",
            "no answer from 127.0.0.1",
            "within 10s",
        ],
    )
    .await;
    // The one attempt used the whole time: no retry runs past the deadline.
    assert_eq!(fake.requests().len(), 1);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_short_timeout_gives_up_at_its_deadline() {
    let fake = fake_with_flag().await;
    fake.delay_next("GET", Duration::from_secs(2), 1);
    let ld = provider(&fake, KEY, None).with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = ld.read().await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Io(m) if m.contains("no answer from 127.0.0.1") && m.contains("within 0.3s")),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), 1);
    // A write that times out is not sent again: it may have been applied.
    fake.delay_next("PATCH", Duration::from_secs(2), 1);
    let seen = provider(&fake, KEY, None).read().await.unwrap();
    let e = ld
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Io(m) if m.contains("may or may not have been applied")),
        "{e:?}"
    );
    assert_eq!(fake.patch_requests(), 1);
    fake.assert_conformant();
}

// ----- the fake itself ----------------------------------------------------------------------------

#[test]
fn the_excerpts_document_the_instructions_the_fake_checks() {
    let docs = semantic_patch_docs();
    assert_eq!(docs.body_properties, ["comment", "environmentKey", "instructions"]);
    let kinds: Vec<&str> = docs.kinds.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["turnFlagOff", "turnFlagOn", "updateFallthroughVariationOrRollout"]
    );
    assert!(docs.kinds["turnFlagOn"].is_empty());
    let groups: Vec<Vec<(String, bool)>> = docs.kinds["updateFallthroughVariationOrRollout"]
        .iter()
        .map(|g| g.iter().map(|p| (p.name.clone(), p.optional)).collect())
        .collect();
    assert_eq!(
        groups,
        vec![
            vec![("variationId".to_string(), false)],
            vec![
                ("rolloutWeights".to_string(), false),
                ("rolloutBucketBy".to_string(), true),
                ("rolloutContextKind".to_string(), true),
            ],
        ]
    );
    // Every documented example passes the fake's checks (the percentage one once its `//`
    // comments are stripped).
    assert_eq!(docs.examples.len(), 4);
    for (kind, example) in &docs.examples {
        assert_eq!(check_semantic_patch(example), Vec::<String>::new(), "{kind}: {example}");
    }
    // And what the documentation does not allow is caught.
    let problems = check_semantic_patch(&json!({
        "environmentKey": "production",
        "instructions": [
            { "kind": "updateFallthroughVariationOrRollout", "variationId": "a", "rolloutWeights": { "a": 100000 } },
            { "kind": "turnFlagOn", "value": true },
            { "kind": "setRollout" },
            { "kind": "updateFallthroughVariationOrRollout", "rolloutWeights": { "a": 50.5 } }
        ],
        "patch": []
    }));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(!check_semantic_patch(&json!({ "instructions": [{ "kind": "turnFlagOn" }] })).is_empty());
}

#[tokio::test]
async fn the_fake_refuses_what_launchdarkly_refuses_and_reports_it() {
    let fake = fake_with_flag().await;
    let url = format!("{}/api/v2/flags/{PROJECT}/{KEY}", fake.uri());
    let send = |headers: Vec<(&'static str, String)>, method: reqwest::Method, body: Option<Value>| {
        let url = url.clone();
        async move {
            flagramp::http::send(method, &url, &headers, body.as_ref(), Duration::from_secs(5), false)
                .await
                .unwrap()
        }
    };
    let version = ("LD-API-Version", "20240415".to_string());
    let auth = ("Authorization", TOKEN.to_string());
    let semantic = ("Content-Type", SEMANTIC_PATCH.to_string());
    let on = fake.variation_id(KEY, 0);
    let off = fake.variation_id(KEY, 1);

    // Weights that do not add up to 100%.
    let body = json!({ "environmentKey": "production", "instructions": [
        { "kind": "updateFallthroughVariationOrRollout", "rolloutWeights": { on.as_str(): 10000, off.as_str(): 80000 } }
    ] });
    let a = send(
        vec![auth.clone(), version.clone(), semantic.clone()],
        reqwest::Method::PATCH,
        Some(body),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text().contains("must sum to 100000"), "{}", a.text());
    // An unknown variation id.
    let body = json!({ "environmentKey": "production", "instructions": [
        { "kind": "updateFallthroughVariationOrRollout", "variationId": "2f43f67c-3e4e-4945-a18a-26559378ca00" }
    ] });
    let a = send(
        vec![auth.clone(), version.clone(), semantic.clone()],
        reqwest::Method::PATCH,
        Some(body),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        fake.violations(),
        Vec::<String>::new(),
        "valid shapes, refused values: not violations"
    );

    // "Bearer", no API version, a JSON Patch instead of a semantic patch: refused and reported.
    let a = send(
        vec![("Authorization", format!("Bearer {TOKEN}")), version.clone()],
        reqwest::Method::GET,
        None,
    )
    .await;
    assert_eq!(a.status, 401);
    let a = send(vec![auth.clone()], reqwest::Method::GET, None).await;
    assert_eq!(a.status, 400);
    let json_patch = json!({ "patch": [{ "op": "replace", "path": "/environments/production/on", "value": true }] });
    let a = send(
        vec![
            auth.clone(),
            version.clone(),
            ("Content-Type", "application/json".to_string()),
        ],
        reqwest::Method::PATCH,
        Some(json_patch),
    )
    .await;
    assert_eq!(a.status, 400);
    let violations = fake.violations();
    let expected = [
        "request #2 GET /api/v2/flags/default/new-checkout -> 401: the Authorization header has \"Bearer\"",
        "request #3 GET /api/v2/flags/default/new-checkout -> 400: no LD-API-Version header",
        "request #4 PATCH /api/v2/flags/default/new-checkout -> 400: Content-Type is Some(\"application/json\"), not a semantic patch",
        "request #4 PATCH /api/v2/flags/default/new-checkout -> 400: semantic patch: flagSempatch: (root): required property `instructions` is missing",
        "request #4 PATCH /api/v2/flags/default/new-checkout -> 400: semantic patch: body property `patch` is not documented",
        "request #4 PATCH /api/v2/flags/default/new-checkout -> 400: semantic patch: `environmentKey` (a string) is required",
    ];
    assert_eq!(violations.len(), expected.len(), "{violations:#?}");
    for (v, e) in violations.iter().zip(expected) {
        assert!(v.starts_with(e), "{v}\n  does not start with\n{e}");
    }
    assert_eq!(fake.applied_patches().len(), 0);
    assert_eq!(fake.version(KEY), 1);
}
