//! Every rule of docs/rules.md §3, and every manual command, against the pure engine.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use flagramp::check::Measurement;
use flagramp::engine::{self, evaluate, evaluate_manual, Evaluation, Input, ManualOp, Step};
use flagramp::percent::Percent;

use crate::support::pct;
use flagramp::record::{CheckRecord, DecisionKind};
use flagramp::report::{self, NextStep, Target};
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{FlagValue, PendingTransition, RolloutState};

fn spec_with(extra: &str, stages: &str) -> RolloutSpec {
    let text = format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags.json }} }}\nstages: {stages}\nchecks:\n  - {{ name: success-rate, command: [\"./a\"], pass: \">= 0.95\" }}\n  - {{ name: latency, command: [\"./b\"], pass: \"< 300\" }}\n{extra}"
    );
    let (spec, _, diags) = parse_spec(std::path::Path::new("demo.yml"), &text);
    assert!(diags.is_empty(), "{diags:?}");
    spec.unwrap()
}

fn spec() -> RolloutSpec {
    spec_with(
        "",
        "[{ percent: 10, bake: 1h }, { percent: 50, bake: 1h }, { percent: 100, bake: 30m }]",
    )
}

fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

const T0: &str = "2026-11-24T09:00:00Z";

fn on(p: u32) -> FlagValue {
    FlagValue::on(pct(p))
}

fn checks(spec: &RolloutSpec, values: &[Measurement]) -> Vec<CheckRecord> {
    engine::check_records(
        &spec.checks,
        &crate::support::measured(values),
        &flagramp::engine::Judging::default(),
    )
}

fn healthy(spec: &RolloutSpec) -> Vec<CheckRecord> {
    checks(spec, &[Measurement::Value(0.99), Measurement::Value(120.0)])
}

fn failing(spec: &RolloutSpec) -> Vec<CheckRecord> {
    checks(spec, &[Measurement::Value(0.8), Measurement::Value(120.0)])
}

/// Runs the automatic evaluation, supplying checks when asked; asserts whether they were asked for.
fn decide(
    spec: &RolloutSpec,
    state: Option<&RolloutState>,
    flag: FlagValue,
    now: DateTime<Utc>,
    results: Option<&[CheckRecord]>,
) -> Evaluation {
    let input = Input {
        spec,
        state,
        flag: Ok(flag),
        now,
        actor: "flagramp",
    };
    match evaluate(input, None) {
        Step::Decided(e) => {
            assert!(
                results.is_none(),
                "checks were supplied but the engine decided without them: {:?}",
                e.record
            );
            e
        }
        Step::NeedsChecks => match evaluate(input, Some(results.expect("the engine asked for checks"))) {
            Step::Decided(e) => e,
            Step::NeedsChecks => panic!("asked for checks twice"),
        },
    }
}

fn manual(
    spec: &RolloutSpec,
    state: Option<&RolloutState>,
    flag: FlagValue,
    op: ManualOp,
    results: Option<&[CheckRecord]>,
) -> Evaluation {
    let input = Input {
        spec,
        state,
        flag: Ok(flag),
        now: t("2026-11-24T12:00:00Z"),
        actor: "alice",
    };
    match evaluate_manual(input, op, "because", None) {
        Step::Decided(e) => e,
        Step::NeedsChecks => match evaluate_manual(
            input,
            op,
            "because",
            Some(results.expect("the engine asked for checks")),
        ) {
            Step::Decided(e) => e,
            Step::NeedsChecks => panic!("asked for checks twice"),
        },
    }
}

/// A started rollout at `percent`, entered at `entered`.
fn state_at(spec: &RolloutSpec, percent: u32, entered: &str) -> RolloutState {
    let mut s = RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents());
    s.last_set = Some(on(percent));
    s.started_at = Some(t(T0));
    s.stage_entered_at = Some(t(entered));
    s
}

#[test]
fn new_rollout_starts_at_the_first_stage_without_querying_checks() {
    let spec = spec();
    let e = decide(&spec, None, FlagValue::OFF, t(T0), None);
    assert_eq!(e.record.decision, DecisionKind::Start);
    assert_eq!(e.flag_change, Some(on(10)));
    assert_eq!(e.record.stage, Some(0));
    let state = e.state.unwrap();
    assert_eq!(state.last_set, Some(on(10)));
    assert_eq!(state.stage_entered_at, Some(t(T0)));
    assert_eq!(state.started_at, Some(t(T0)));
    assert_eq!(state.history.len(), 1);
}

#[test]
fn bake_counts_from_when_the_stage_was_entered_across_skipped_runs() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let hold = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-24T09:59:59Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(hold.record.decision, DecisionKind::Hold);
    assert_eq!(hold.record.eligible_at, Some(t("2026-11-24T10:00:00Z")));
    assert_eq!(hold.flag_change, None);
    // No run for three hours: the bake is long over, one stage only.
    let adv = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-24T13:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(adv.record.decision, DecisionKind::Advance);
    assert_eq!(adv.flag_change, Some(on(50)));
    assert_eq!(adv.record.stage, Some(1));
    let next = adv.state.unwrap();
    assert_eq!(next.stage_entered_at, Some(t("2026-11-24T13:00:00Z")));
    assert_eq!(next.last_advanced_at, Some(t("2026-11-24T13:00:00Z")));
}

#[test]
fn a_failing_check_blocks_advancing_and_names_check_value_and_condition() {
    let spec = spec_with("policy: { failures_to_rollback: 2 }", "[10, 50, 100]");
    let state = state_at(&spec, 10, T0);
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-25T09:00:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Hold);
    assert!(
        e.record.reason.contains("success-rate 0.8 < 0.95 (needs >= 0.95)"),
        "{}",
        e.record.reason
    );
    assert!(e.record.reason.contains("failure 1 of 2"), "{}", e.record.reason);
    assert_eq!(e.state.unwrap().consecutive_failures, 1);
}

#[test]
fn rollback_returns_to_the_previous_stage_resets_the_counter_and_locks() {
    let spec = spec();
    let state = state_at(&spec, 50, T0);
    let e = decide(
        &spec,
        Some(&state),
        on(50),
        t("2026-11-24T09:10:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Rollback);
    assert_eq!(e.flag_change, Some(on(10)));
    let s = e.state.unwrap();
    assert!(s.locked);
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.last_set, Some(on(10)));
}

#[test]
fn rollback_from_the_first_stage_turns_the_flag_off() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-24T09:10:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Disable);
    assert_eq!(e.flag_change, Some(FlagValue::OFF));
    assert_eq!(e.record.to_percent, Percent::ZERO);
    assert_eq!(e.record.stage, None);
}

#[test]
fn rollback_policy_off_goes_straight_to_off() {
    let spec = spec_with("policy: { rollback: \"off\" }", "[10, 50, 100]");
    let state = state_at(&spec, 50, T0);
    let e = decide(
        &spec,
        Some(&state),
        on(50),
        t("2026-11-24T09:10:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Disable);
    assert_eq!(e.flag_change, Some(FlagValue::OFF));
}

#[test]
fn rollback_is_allowed_during_bake_outside_the_window_while_paused_and_again_after_a_rollback() {
    let spec = spec_with(
        "policy: { window: { days: Mon-Fri, hours: \"09:00-17:00\", timezone: UTC } }",
        "[10, 50, 100]",
    );
    let mut state = state_at(&spec, 100, "2026-11-28T12:00:00Z");
    state.paused = true;
    state.locked = true;
    // Saturday, mid-bake, paused and already locked.
    let e = decide(
        &spec,
        Some(&state),
        on(100),
        t("2026-11-28T12:05:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Rollback);
    assert_eq!(e.flag_change, Some(on(50)));
    let s = e.state.unwrap();
    let e = decide(
        &spec,
        Some(&s),
        on(50),
        t("2026-11-28T12:10:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.flag_change, Some(on(10)));
    let s = e.state.unwrap();
    let e = decide(
        &spec,
        Some(&s),
        on(10),
        t("2026-11-28T12:15:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Disable);
    let s = e.state.unwrap();
    // Off and locked: nothing further to roll back, and nothing is queried.
    let e = decide(&spec, Some(&s), FlagValue::OFF, t("2026-11-28T12:20:00Z"), None);
    assert_eq!(e.record.decision, DecisionKind::Hold);
    assert!(e.record.locked, "{:?}", e.record);
    assert_eq!(report::next_step(&e.record), Some(NextStep::Advance));
}

#[test]
fn no_data_never_passes_and_holds_without_counting() {
    let spec = spec();
    let mut state = state_at(&spec, 10, T0);
    state.consecutive_failures = 0;
    let results = checks(
        &spec,
        &[
            Measurement::NoData("the query matched no series".into()),
            Measurement::Value(100.0),
        ],
    );
    let e = decide(&spec, Some(&state), on(10), t("2026-11-25T09:00:00Z"), Some(&results));
    assert_eq!(e.record.decision, DecisionKind::Hold);
    assert!(
        e.record.reason.contains("success-rate has no data"),
        "{}",
        e.record.reason
    );
    assert_eq!(e.flag_change, None);
    assert_eq!(e.state.map(|s| s.consecutive_failures).unwrap_or(0), 0);
}

#[test]
fn no_data_with_on_no_data_fail_counts_as_a_failure() {
    let text = "version: 1\nname: demo\nflag: { provider: flagd, key: demo, flagd: { path: f.json } }\nchecks:\n  - { name: rate, command: [\"./a\"], pass: \">= 1\", on_no_data: fail }\n";
    let spec = parse_spec(std::path::Path::new("d.yml"), text).0.unwrap();
    let state = state_at(&spec, 50, T0);
    let results = checks(&spec, &[Measurement::NoData("value is NaN".into())]);
    let e = decide(&spec, Some(&state), on(50), t("2026-11-25T09:00:00Z"), Some(&results));
    assert_eq!(e.record.decision, DecisionKind::Rollback);
}

#[test]
fn source_errors_hold_and_are_never_a_failure() {
    let spec = spec();
    let mut state = state_at(&spec, 50, T0);
    state.consecutive_failures = 0;
    let results = checks(
        &spec,
        &[
            Measurement::Error("cannot connect to 127.0.0.1:9".into()),
            Measurement::Value(1.0),
        ],
    );
    let e = decide(&spec, Some(&state), on(50), t("2026-11-25T09:00:00Z"), Some(&results));
    assert_eq!(e.record.decision, DecisionKind::Hold);
    assert_eq!(e.flag_change, None);
    assert!(e.record.reason.contains("could not be measured"), "{}", e.record.reason);
}

#[test]
fn a_failure_counts_even_when_another_check_errored() {
    let spec = spec();
    let state = state_at(&spec, 50, T0);
    let results = checks(&spec, &[Measurement::Value(0.5), Measurement::Error("timeout".into())]);
    let e = decide(&spec, Some(&state), on(50), t("2026-11-25T09:00:00Z"), Some(&results));
    assert_eq!(e.record.decision, DecisionKind::Rollback);
}

#[test]
fn counter_is_kept_through_errors_and_reset_by_all_passing() {
    let spec = spec_with("policy: { failures_to_rollback: 3 }", "[10, 50, 100]");
    let mut state = state_at(&spec, 50, T0);
    state.consecutive_failures = 2;
    let err = checks(&spec, &[Measurement::Error("down".into()), Measurement::Value(1.0)]);
    let e = decide(&spec, Some(&state), on(50), t("2026-11-24T09:05:00Z"), Some(&err));
    assert_eq!(
        e.state.as_ref().map(|s| s.consecutive_failures).unwrap_or(2),
        2,
        "errors leave the counter"
    );
    let e = decide(
        &spec,
        Some(&state),
        on(50),
        t("2026-11-24T09:05:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.state.unwrap().consecutive_failures, 0, "all passing resets it");
    let e = decide(
        &spec,
        Some(&state),
        on(50),
        t("2026-11-24T09:05:00Z"),
        Some(&failing(&spec)),
    );
    assert_eq!(
        e.record.decision,
        DecisionKind::Rollback,
        "third consecutive failure rolls back"
    );
}

#[test]
fn drift_holds_reports_expected_and_found_and_never_writes_the_flag() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let e = decide(&spec, Some(&state), on(30), t("2026-11-24T11:00:00Z"), None);
    assert_eq!(e.record.decision, DecisionKind::Drift);
    assert_eq!(e.flag_change, None);
    assert!(
        e.record.reason.contains("on at 30%") && e.record.reason.contains("on at 10%"),
        "{}",
        e.record.reason
    );
    let s = e.state.expect("first sighting is recorded");
    assert_eq!(s.history.len(), 1);
    // Seen again: no new history entry.
    let again = decide(&spec, Some(&s), on(30), t("2026-11-24T11:15:00Z"), None);
    assert_eq!(again.record.decision, DecisionKind::Drift);
    assert!(again.state.is_none(), "a repeated drift changes nothing");
    // The person restores 10%: drift clears and evaluation continues.
    let back = decide(
        &spec,
        Some(&s),
        on(10),
        t("2026-11-24T11:30:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(back.record.decision, DecisionKind::Advance);
    assert!(back.record.reason.contains("drift cleared"), "{}", back.record.reason);
    assert!(back.state.unwrap().drift.is_none());
}

#[test]
fn a_flag_already_on_with_no_state_is_drift() {
    let spec = spec();
    let e = decide(&spec, None, on(100), t(T0), None);
    assert_eq!(e.record.decision, DecisionKind::Drift);
    assert_eq!(e.flag_change, None);
}

#[test]
fn a_flag_turned_off_by_a_person_is_drift_not_a_restart() {
    let spec = spec();
    let state = state_at(&spec, 50, T0);
    let e = decide(&spec, Some(&state), FlagValue::OFF, t("2026-11-24T11:00:00Z"), None);
    assert_eq!(e.record.decision, DecisionKind::Drift);
    assert_eq!(e.flag_change, None);
}

#[test]
fn resume_adopts_the_found_value_and_continues_from_the_highest_stage_below_it() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let drifted = decide(&spec, Some(&state), on(30), t("2026-11-24T11:00:00Z"), None)
        .state
        .unwrap();
    let resumed = manual(&spec, Some(&drifted), on(30), ManualOp::Resume, None);
    assert_eq!(resumed.flag_change, None, "resume never writes the flag");
    let s = resumed.state.unwrap();
    assert_eq!(s.last_set, Some(on(30)));
    assert!(s.drift.is_none());
    // The bake restarts at adoption; then the next stage above 30% is 50%.
    let e = decide(
        &spec,
        Some(&s),
        on(30),
        t("2026-11-24T13:00:01Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Advance);
    assert_eq!(e.flag_change, Some(on(50)));
}

#[test]
fn pending_transition_is_finished_when_the_flag_reached_the_target() {
    let spec = spec();
    let before = state_at(&spec, 10, T0);
    let Step::Decided(e) = evaluate(
        Input {
            spec: &spec,
            state: Some(&before),
            flag: Ok(on(10)),
            now: t("2026-11-24T10:00:00Z"),
            actor: "flagramp",
        },
        Some(&healthy(&spec)),
    ) else {
        panic!()
    };
    let mut claimed = before.clone();
    claimed.pending = Some(PendingTransition {
        from: on(10),
        to: on(50),
        then: Box::new(e.state.clone().unwrap()),
        claimed_at: None,
    });
    let finished = engine::resolve_pending(&claimed, on(50)).unwrap();
    assert_eq!(finished, e.state.unwrap());
    assert!(finished.pending.is_none());
    // And the next evaluation is not drift.
    let next = decide(
        &spec,
        Some(&finished),
        on(50),
        t("2026-11-24T10:05:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(next.record.decision, DecisionKind::Hold);
}

#[test]
fn pending_transition_is_abandoned_when_the_flag_is_still_at_the_origin() {
    let spec = spec();
    let before = state_at(&spec, 10, T0);
    let mut claimed = before.clone();
    claimed.pending = Some(PendingTransition {
        from: on(10),
        to: on(50),
        then: Box::new(state_at(&spec, 50, "2026-11-24T10:00:00Z")),
        claimed_at: None,
    });
    let abandoned = engine::resolve_pending(&claimed, on(10)).unwrap();
    assert_eq!(abandoned, before);
    assert!(engine::resolve_pending(&before, on(10)).is_none());
    let next = decide(
        &spec,
        Some(&abandoned),
        on(10),
        t("2026-11-24T10:05:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(
        next.record.decision,
        DecisionKind::Advance,
        "a crash does not cost the advance"
    );
}

#[test]
fn provider_errors_are_error_decisions_that_change_nothing() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let Step::Decided(e) = evaluate(
        Input {
            spec: &spec,
            state: Some(&state),
            flag: Err("flag `demo` is not in flags.json"),
            now: t(T0),
            actor: "flagramp",
        },
        None,
    ) else {
        panic!()
    };
    assert_eq!(e.record.decision, DecisionKind::Error);
    assert!(e.state.is_none() && e.flag_change.is_none());
}

#[test]
fn complete_after_the_final_bake_and_terminal_afterwards() {
    let spec = spec();
    let state = state_at(&spec, 100, "2026-11-24T11:00:00Z");
    let hold = decide(
        &spec,
        Some(&state),
        on(100),
        t("2026-11-24T11:29:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(hold.record.decision, DecisionKind::Hold);
    assert_eq!(hold.record.eligible_at, Some(t("2026-11-24T11:30:00Z")));
    let done = decide(
        &spec,
        Some(&state),
        on(100),
        t("2026-11-24T11:30:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(done.record.decision, DecisionKind::Complete);
    assert_eq!(done.flag_change, None);
    let s = done.state.unwrap();
    // Terminal: later runs query nothing and change nothing.
    let later = decide(&spec, Some(&s), on(100), t("2026-11-30T00:00:00Z"), None);
    assert_eq!(later.record.decision, DecisionKind::Complete);
    assert!(later.state.is_none());
}

fn windowed() -> RolloutSpec {
    spec_with(
        "policy: { window: { days: Mon-Fri, hours: \"09:00-17:00\", timezone: Europe/Berlin } }",
        "[{ percent: 10, bake: 1h }, 50, 100]",
    )
}

#[test]
fn start_waits_for_the_window() {
    let spec = windowed();
    // Saturday 2026-11-28 12:00 UTC; the window opens Monday 09:00 Berlin = 08:00 UTC.
    let e = decide(&spec, None, FlagValue::OFF, t("2026-11-28T12:00:00Z"), None);
    assert_eq!(e.record.decision, DecisionKind::Hold);
    assert_eq!(e.record.eligible_at, Some(t("2026-11-30T08:00:00Z")));
    assert_eq!(e.flag_change, None);
    let e = decide(&spec, None, FlagValue::OFF, t("2026-11-30T08:00:00Z"), None);
    assert_eq!(e.record.decision, DecisionKind::Start);
}

#[test]
fn advance_waits_for_the_window_and_eligible_at_is_the_later_of_bake_end_and_opening() {
    let spec = windowed();
    // Entered Friday 15:30 Berlin; the bake ends 16:30, inside the window.
    let state = state_at(&spec, 10, "2026-11-27T14:30:00Z");
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-27T15:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.eligible_at, Some(t("2026-11-27T15:30:00Z")));
    // Entered Friday 16:30 Berlin; the bake ends 17:30, after closing: Monday 09:00.
    let state = state_at(&spec, 10, "2026-11-27T15:30:00Z");
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-27T15:45:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.eligible_at, Some(t("2026-11-30T08:00:00Z")));
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-28T10:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Hold, "baked, but Saturday");
    assert_eq!(e.record.eligible_at, Some(t("2026-11-30T08:00:00Z")));
}

#[test]
fn paused_does_not_advance() {
    let spec = spec();
    let mut state = state_at(&spec, 10, T0);
    state.paused = true;
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-25T09:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Paused);
    assert_eq!(e.flag_change, None);
}

#[test]
fn locked_after_rollback_holds_until_a_person_advances() {
    let spec = spec();
    let mut state = state_at(&spec, 10, T0);
    state.locked = true;
    let e = decide(
        &spec,
        Some(&state),
        on(10),
        t("2026-11-25T09:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Hold);
    // The reason says why; the next step is named by each report for its reader (the issue
    // that moved hints out of stored reasons), from the record's `locked`.
    assert!(
        e.record.locked && !e.record.reason.contains("flagramp advance"),
        "{:?}",
        e.record
    );
    assert_eq!(report::next_step(&e.record), Some(NextStep::Advance));
    assert!(
        report::text::decisions(std::slice::from_ref(&e.record), Target::Cli).contains("run `flagramp advance demo`"),
        "{}",
        e.record.reason
    );
    let m = manual(
        &spec,
        Some(&state),
        on(10),
        ManualOp::Advance { force: false },
        Some(&healthy(&spec)),
    );
    assert_eq!(m.record.decision, DecisionKind::Advance);
    assert!(!m.state.unwrap().locked, "advance clears the lock");
}

#[test]
fn stages_edited_mid_rollout_continue_from_the_highest_new_stage_at_or_below() {
    let old = spec();
    let state = state_at(&old, 50, T0);
    let new = spec_with(
        "",
        "[{ percent: 5, bake: 1h }, { percent: 25, bake: 1h }, { percent: 75, bake: 1h }, 100]",
    );
    let e = decide(
        &new,
        Some(&state),
        on(50),
        t("2026-11-24T09:30:00Z"),
        Some(&healthy(&new)),
    );
    assert_eq!(e.record.stage, Some(1), "50% sits in the new 25% stage");
    assert!(e.record.reason.contains("stages changed"), "{}", e.record.reason);
    let s = e.state.unwrap();
    assert_eq!(s.stages, new.stage_percents());
    let e = decide(&new, Some(&s), on(50), t("2026-11-24T10:00:00Z"), Some(&healthy(&new)));
    assert_eq!(e.flag_change, Some(on(75)));
}

#[test]
fn manual_advance_moves_exactly_one_stage_ignoring_bake_and_window() {
    let spec = windowed();
    let state = state_at(&spec, 10, "2026-11-28T12:00:00Z");
    let m = manual(
        &spec,
        Some(&state),
        on(10),
        ManualOp::Advance { force: false },
        Some(&healthy(&spec)),
    );
    assert_eq!(m.record.decision, DecisionKind::Advance);
    assert_eq!(m.flag_change, Some(on(50)));
    assert_eq!(m.record.actor, "alice");
    assert!(m.record.reason.contains("because"), "{}", m.record.reason);
}

#[test]
fn manual_advance_is_refused_when_a_check_does_not_pass_unless_forced() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let m = manual(
        &spec,
        Some(&state),
        on(10),
        ManualOp::Advance { force: false },
        Some(&failing(&spec)),
    );
    assert_eq!(m.record.decision, DecisionKind::Hold);
    assert!(m.record.refused, "a refused advance is marked refused");
    assert_eq!(m.flag_change, None);
    assert_eq!(report::next_step(&m.record), Some(NextStep::ForceAdvance));
    let shown = report::text::decisions(std::slice::from_ref(&m.record), Target::Cli);
    assert!(shown.contains("flagramp advance demo --force"), "{shown}");
    assert_eq!(
        m.record.checks,
        failing(&spec),
        "the refusal shows the checks that refused it"
    );
    assert!(
        m.state.unwrap().history.last().unwrap().refused,
        "and is recorded as refused"
    );
    let nodata = checks(&spec, &[Measurement::NoData("empty".into()), Measurement::Value(1.0)]);
    let m = manual(
        &spec,
        Some(&state),
        on(10),
        ManualOp::Advance { force: false },
        Some(&nodata),
    );
    assert_eq!(m.flag_change, None, "no data is not a pass for a manual advance either");
    assert!(m.record.refused);
    // --force queries the checks too, so the record shows what it overrode.
    let forced = manual(
        &spec,
        Some(&state),
        on(10),
        ManualOp::Advance { force: true },
        Some(&failing(&spec)),
    );
    assert_eq!(forced.flag_change, Some(on(50)));
    assert!(!forced.record.refused);
    assert_eq!(forced.record.checks, failing(&spec));
    assert!(
        forced.record.reason.contains("forced past: success-rate 0.8"),
        "{}",
        forced.record.reason
    );
}

#[test]
fn manual_advance_from_off_queries_every_check_and_only_fail_or_error_refuses_it() {
    let spec = spec();
    // No data: nobody is exposed yet, so it does not refuse the start.
    let nodata = checks(&spec, &[Measurement::NoData("empty".into()), Measurement::Value(120.0)]);
    let m = manual(
        &spec,
        None,
        FlagValue::OFF,
        ManualOp::Advance { force: false },
        Some(&nodata),
    );
    assert_eq!(m.record.decision, DecisionKind::Start);
    assert_eq!(m.flag_change, Some(on(10)));
    assert_eq!(m.record.checks, nodata, "every check is recorded");
    // Also with on_no_data: fail, which is about users who are exposed.
    let strict = spec_with(
        "",
        "[{ percent: 10, bake: 1h }, { percent: 50, bake: 1h }, { percent: 100, bake: 30m }]",
    );
    let mut strict = strict;
    strict.checks[0].on_no_data = flagramp::spec::NoDataPolicy::Fail;
    let m = manual(
        &strict,
        None,
        FlagValue::OFF,
        ManualOp::Advance { force: false },
        Some(&nodata),
    );
    assert_eq!(m.flag_change, Some(on(10)));
    for bad in [
        failing(&spec),
        checks(
            &spec,
            &[Measurement::Error("connection refused".into()), Measurement::Value(1.0)],
        ),
    ] {
        let m = manual(
            &spec,
            None,
            FlagValue::OFF,
            ManualOp::Advance { force: false },
            Some(&bad),
        );
        assert_eq!(m.flag_change, None, "{}", m.record.reason);
        assert_eq!(m.record.decision, DecisionKind::Hold);
        assert!(m.record.refused);
        assert_eq!(report::verb(&m.record), "advance refused", "{}", m.record.reason);
        assert_eq!(m.record.checks, bad);
        let state = m.state.expect("the refusal is recorded");
        assert_eq!(state.last_set, None, "nothing started");
        let forced = manual(
            &spec,
            None,
            FlagValue::OFF,
            ManualOp::Advance { force: true },
            Some(&bad),
        );
        assert_eq!(forced.record.decision, DecisionKind::Start);
        assert_eq!(forced.flag_change, Some(on(10)));
        assert!(forced.record.reason.contains("forced past"), "{}", forced.record.reason);
        assert_eq!(forced.record.checks, bad);
    }
    // After a rollback to off, too.
    let mut off = state_at(&spec, 10, T0);
    off.last_set = Some(FlagValue::OFF);
    off.locked = true;
    let m = manual(
        &spec,
        Some(&off),
        FlagValue::OFF,
        ManualOp::Advance { force: false },
        Some(&failing(&spec)),
    );
    assert!(m.record.refused);
    assert!(m.state.unwrap().locked, "a refused advance does not unlock");
}

#[test]
fn refused_commands_change_nothing_but_the_history() {
    let spec = spec();
    // Rollback of a flag that is off.
    let mut off = state_at(&spec, 10, T0);
    off.last_set = Some(FlagValue::OFF);
    let m = manual(&spec, Some(&off), FlagValue::OFF, ManualOp::Rollback, None);
    assert!(m.record.refused);
    assert_eq!(m.flag_change, None);
    let after = m.state.unwrap();
    assert_eq!((after.last_set, after.locked), (off.last_set, off.locked));
    assert_eq!(after.history.len(), 1);
    // Advance of a complete rollout.
    let mut done = state_at(&spec, 100, T0);
    done.completed_at = Some(t(T0));
    let m = manual(&spec, Some(&done), on(100), ManualOp::Advance { force: true }, None);
    assert!(m.record.refused);
    assert_eq!(m.flag_change, None);
    // A refused advance does not adopt a value a person set: the drift stays reported.
    let state = state_at(&spec, 10, T0);
    let m = manual(
        &spec,
        Some(&state),
        on(30),
        ManualOp::Advance { force: false },
        Some(&failing(&spec)),
    );
    assert!(m.record.refused);
    assert_eq!(m.state.unwrap().last_set, Some(on(10)));
    // Commands that are carried out are not refused.
    for op in [ManualOp::Pause, ManualOp::Resume, ManualOp::Rollback] {
        let m = manual(&spec, Some(&state), on(10), op, None);
        assert!(!m.record.refused, "{op:?}: {}", m.record.reason);
    }
}

#[test]
fn manual_advance_starts_a_rollout_that_has_not_started_and_completes_at_100() {
    let spec = spec();
    let m = manual(
        &spec,
        None,
        FlagValue::OFF,
        ManualOp::Advance { force: false },
        Some(&healthy(&spec)),
    );
    assert_eq!(m.record.decision, DecisionKind::Start);
    assert_eq!(m.flag_change, Some(on(10)));
    let state = state_at(&spec, 100, T0);
    let m = manual(
        &spec,
        Some(&state),
        on(100),
        ManualOp::Advance { force: false },
        Some(&healthy(&spec)),
    );
    assert_eq!(m.record.decision, DecisionKind::Complete);
    assert!(m.state.unwrap().completed_at.is_some());
}

#[test]
fn manual_rollback_moves_one_stage_back_and_locks() {
    let spec = spec();
    let state = state_at(&spec, 50, T0);
    let m = manual(&spec, Some(&state), on(50), ManualOp::Rollback, None);
    assert_eq!(m.record.decision, DecisionKind::Rollback);
    assert_eq!(m.flag_change, Some(on(10)));
    let s = m.state.unwrap();
    assert!(s.locked);
    let m = manual(&spec, Some(&s), on(10), ManualOp::Rollback, None);
    assert_eq!(m.record.decision, DecisionKind::Disable);
    assert_eq!(m.flag_change, Some(FlagValue::OFF));
    let s = m.state.unwrap();
    let m = manual(&spec, Some(&s), FlagValue::OFF, ManualOp::Rollback, None);
    assert_eq!(m.flag_change, None, "nothing below off");
}

#[test]
fn pause_and_resume_are_recorded_with_the_actor() {
    let spec = spec();
    let state = state_at(&spec, 10, T0);
    let p = manual(&spec, Some(&state), on(10), ManualOp::Pause, None);
    assert_eq!(p.record.decision, DecisionKind::Paused);
    assert_eq!(p.flag_change, None);
    let s = p.state.unwrap();
    assert!(s.paused);
    assert_eq!(s.history.last().unwrap().actor, "alice");
    let r = manual(&spec, Some(&s), on(10), ManualOp::Resume, None);
    let s = r.state.unwrap();
    assert!(!s.paused);
    let e = decide(
        &spec,
        Some(&s),
        on(10),
        t("2026-11-25T09:00:00Z"),
        Some(&healthy(&spec)),
    );
    assert_eq!(e.record.decision, DecisionKind::Advance);
}

#[test]
fn history_keeps_the_last_100_decisions() {
    let spec = spec();
    let mut state = state_at(&spec, 10, T0);
    for minute in 0..150 {
        let now = t(T0) + Duration::minutes(minute);
        // Alternate the verdict (a pass that bakes, no data that holds) so that no hold repeats
        // the one before it, and each is a history entry.
        let first = if minute % 2 == 0 {
            Measurement::Value(0.99)
        } else {
            Measurement::NoData("empty".into())
        };
        let results = checks(&spec, &[first, Measurement::Value(1.0)]);
        let mut s = state.clone();
        // Entered a varying while ago, within the bake.
        s.stage_entered_at = Some(now - Duration::minutes(minute % 50));
        let e = decide(&spec, Some(&s), on(10), now, Some(&results));
        state = e.state.unwrap_or(s);
    }
    assert_eq!(state.history.len(), 100);
    assert_eq!(state.history.last().unwrap().at, t(T0) + Duration::minutes(149));
}

fn arb_measurement() -> impl Strategy<Value = Measurement> {
    prop_oneof![
        (0.0f64..1.0).prop_map(Measurement::Value),
        Just(Measurement::NoData("empty".into())),
        Just(Measurement::Error("down".into())),
    ]
}

fn arb_state(spec: &RolloutSpec) -> impl Strategy<Value = (RolloutState, FlagValue)> {
    let spec = spec.clone();
    (0usize..=3, 0u32..4, any::<bool>(), any::<bool>(), 0i64..200).prop_map(
        move |(stage, failures, paused, locked, minutes)| {
            let flag = if stage == 3 {
                FlagValue::OFF
            } else {
                FlagValue::on(spec.stages[stage].percent)
            };
            let mut s = RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents());
            s.last_set = Some(flag);
            s.started_at = Some(t(T0));
            s.stage_entered_at = Some(t(T0) - Duration::minutes(minutes));
            s.consecutive_failures = failures;
            s.paused = paused;
            s.locked = locked || stage == 3;
            (s, flag)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Never advances when a check is not `pass`; never moves more than one stage; always rolls
    /// back (never holds) once the failure count reaches the limit.
    #[test]
    fn engine_invariants(
        (state, flag) in arb_state(&spec_with("policy: { failures_to_rollback: 2 }", "[10, 50, 100]")),
        a in arb_measurement(),
        b in arb_measurement(),
    ) {
        let spec = spec_with("policy: { failures_to_rollback: 2 }", "[10, 50, 100]");
        let results = checks(&spec, &[a, b]);
        let input = Input { spec: &spec, state: Some(&state), flag: Ok(flag), now: t(T0), actor: "flagramp" };
        let e = match evaluate(input, None) {
            Step::Decided(e) => e,
            Step::NeedsChecks => match evaluate(input, Some(&results)) { Step::Decided(e) => e, Step::NeedsChecks => unreachable!() },
        };
        let all_pass = results.iter().all(|r| r.verdict == flagramp::check::Verdict::Pass);
        let any_fail = results.iter().any(|r| r.verdict == flagramp::check::Verdict::Fail);
        if let Some(to) = e.flag_change {
            let index = |v: FlagValue| if v.enabled { engine::stage_at(&spec, v.percent).map(|i| i as i64) } else { None }.unwrap_or(-1);
            prop_assert!((index(to) - index(flag)).abs() <= 1, "moved more than one stage: {:?} -> {:?}", flag, to);
            if to.effective() > flag.effective() && flag.enabled {
                prop_assert!(all_pass, "advanced with a check not passing: {:?}", results);
            }
        }
        if flag.enabled && any_fail && state.consecutive_failures + 1 >= 2 {
            prop_assert!(matches!(e.record.decision, DecisionKind::Rollback | DecisionKind::Disable), "held at the failure limit: {:?}", e.record);
        }
        if e.record.decision == DecisionKind::Advance {
            prop_assert!(all_pass);
        }
    }
}

#[test]
fn a_fresh_claim_belongs_to_a_run_at_work_and_an_old_one_is_resolved() {
    let spec = spec();
    let mut claimed = state_at(&spec, 10, T0);
    claimed.pending = Some(PendingTransition {
        from: on(10),
        to: on(50),
        then: Box::new(state_at(&spec, 50, T0)),
        claimed_at: Some(t(T0)),
    });
    assert!(engine::claim_in_progress(&claimed, t("2026-11-24T09:09:59Z")).is_some());
    assert!(engine::claim_in_progress(&claimed, t("2026-11-24T09:10:00Z")).is_none());
    // A claim from the future (a skewed clock) is not trusted forever either.
    assert!(engine::claim_in_progress(&claimed, t("2026-11-24T08:00:00Z")).is_none());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// A manual advance moves at most one stage up, only when every check passes (from off:
    /// when none fails or errors) or it is forced; a refusal changes neither the flag nor what
    /// flagramp last set; rollback, pause and resume never raise the flag.
    #[test]
    fn manual_command_invariants(
        (state, flag) in arb_state(&spec_with("", "[10, 50, 100]")),
        a in arb_measurement(),
        b in arb_measurement(),
        force in any::<bool>(),
        op in 0usize..4,
    ) {
        let spec = spec_with("", "[10, 50, 100]");
        let results = checks(&spec, &[a, b]);
        let op = [ManualOp::Advance { force }, ManualOp::Rollback, ManualOp::Pause, ManualOp::Resume][op];
        let e = manual(&spec, Some(&state), flag, op, Some(&results));
        let index = |v: FlagValue| if v.enabled { engine::stage_at(&spec, v.percent).map(|i| i as i64) } else { None }.unwrap_or(-1);
        if let Some(to) = e.flag_change {
            prop_assert!(!e.record.refused, "a refusal changed the flag: {:?}", e.record);
            prop_assert!((index(to) - index(flag)).abs() <= 1, "moved more than one stage: {:?} -> {:?}", flag, to);
            if to.effective() > flag.effective() {
                prop_assert!(matches!(op, ManualOp::Advance { .. }), "{op:?} raised the flag");
                let blocking = |r: &CheckRecord| if flag.enabled { r.verdict != flagramp::check::Verdict::Pass } else { matches!(r.verdict, flagramp::check::Verdict::Fail | flagramp::check::Verdict::Error) };
                prop_assert!(force || !results.iter().any(blocking), "advanced past {:?}", results);
            }
        }
        if matches!(op, ManualOp::Advance { .. }) && state.completed_at.is_none() {
            prop_assert_eq!(&e.record.checks, &results, "an advance records every check");
        }
        if e.record.refused {
            let after = e.state.as_ref().unwrap_or(&state);
            prop_assert_eq!(after.last_set, state.last_set);
            prop_assert_eq!(after.locked, state.locked);
        }
    }
}

#[test]
fn a_hold_that_repeats_the_last_entry_writes_nothing_and_says_since_when() {
    let spec = spec();
    let mut state = state_at(&spec, 10, T0);
    let hold_at = |state: &RolloutState, minute: i64, value: f64| {
        let now = t(T0) + Duration::minutes(minute);
        let results = checks(&spec, &[Measurement::Value(value), Measurement::Value(1.0)]);
        decide(&spec, Some(state), on(10), now, Some(&results))
    };
    let first = hold_at(&state, 5, 0.99);
    assert_eq!(first.record.unchanged_since, None);
    state = first.state.expect("a first hold is history");
    let entries = state.history.len();
    // The same hold with other values (and another bake progress): nothing to write.
    let again = hold_at(&state, 10, 0.97);
    assert_eq!(again.record.decision, DecisionKind::Hold, "{}", again.record.reason);
    assert!(again.state.is_none(), "a repeat writes nothing");
    assert_eq!(again.record.unchanged_since, Some(t(T0) + Duration::minutes(5)));
    let text = flagramp::report::text::decisions(std::slice::from_ref(&again.record), flagramp::report::Target::Cli);
    assert!(text.contains("unchanged since 2026-11-24 09:05 UTC"), "{text}");
    // A verdict that changes is news: it is written.
    let failing = hold_at(&state, 15, 0.5);
    assert!(failing.state.is_some_and(|s| s.history.len() == entries + 1));
    assert_eq!(failing.record.unchanged_since, None);
}
