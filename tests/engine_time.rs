//! Time arithmetic in the engine: any duration and any time, however absurd, gives a decision
//! (an `error` naming the problem when it cannot be computed), never a panic, and no record ever
//! holds a time outside the years 0000–9999 (which RFC 3339 cannot write).

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use flagramp::check::Measurement;
use flagramp::duration::SpecDuration;
use flagramp::engine::{self, evaluate, evaluate_manual, Evaluation, Input, ManualOp, Step, LATEST_TIME};
use flagramp::percent::Percent;
use flagramp::record::{CheckRecord, DecisionKind, DecisionRecord};
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{FlagValue, RolloutState};

fn spec(extra: &str) -> RolloutSpec {
    let text = format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags.json }} }}\nstages: [10, 50, 100]\nchecks:\n  - {{ name: probe, command: [\"./a\"], pass: \">= 1\" }}\n{extra}"
    );
    let (spec, _, diags) = parse_spec(std::path::Path::new("demo.yml"), &text);
    assert!(diags.is_empty(), "{diags:?}");
    spec.unwrap()
}

/// A spec whose every stage bakes `seconds`, set after parsing so that any value can be tried
/// whatever validation allows.
fn baking(extra: &str, seconds: u64) -> RolloutSpec {
    let mut s = spec(extra);
    for stage in &mut s.stages {
        stage.bake = SpecDuration::from_secs(seconds);
    }
    s
}

fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn on(p: u32) -> FlagValue {
    FlagValue::on(Percent::from_millis(p * 1000).unwrap())
}

fn passing(spec: &RolloutSpec) -> Vec<CheckRecord> {
    engine::check_records(
        &spec.checks,
        &crate::support::measured(&[Measurement::Value(1.0)]),
        &flagramp::engine::Judging::default(),
    )
}

fn started(spec: &RolloutSpec, percent: u32, entered: DateTime<Utc>) -> RolloutState {
    let mut s = RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents());
    s.last_set = Some(on(percent));
    s.started_at = Some(entered);
    s.stage_entered_at = Some(entered);
    s
}

fn decide(spec: &RolloutSpec, state: Option<&RolloutState>, flag: FlagValue, now: DateTime<Utc>) -> Evaluation {
    let input = Input {
        spec,
        state,
        flag: Ok(flag),
        now,
        actor: "flagramp",
    };
    let checks = passing(spec);
    match evaluate(input, None) {
        Step::Decided(e) => e,
        Step::NeedsChecks => match evaluate(input, Some(&checks)) {
            Step::Decided(e) => e,
            Step::NeedsChecks => panic!("asked for checks twice"),
        },
    }
}

fn manual(
    spec: &RolloutSpec,
    state: Option<&RolloutState>,
    flag: FlagValue,
    now: DateTime<Utc>,
    op: ManualOp,
) -> Evaluation {
    let input = Input {
        spec,
        state,
        flag: Ok(flag),
        now,
        actor: "alice",
    };
    let checks = passing(spec);
    match evaluate_manual(input, op, "", None) {
        Step::Decided(e) => e,
        Step::NeedsChecks => match evaluate_manual(input, op, "", Some(&checks)) {
            Step::Decided(e) => e,
            Step::NeedsChecks => panic!("asked for checks twice"),
        },
    }
}

/// `+10239-…` or `-0001-…`: a year RFC 3339 cannot write, as chrono prints it.
fn has_unwritable_year(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(7).any(|w| {
        (w[0] == b'+' || w[0] == b'-')
            && w[1..6].iter().all(u8::is_ascii_digit)
            && (w[6] == b'-' || w[6].is_ascii_digit())
    }) || text.contains("-0001-")
}

/// Every time in the record, and its JSON, can be written in RFC 3339.
fn assert_writable(record: &DecisionRecord) {
    assert!(engine::in_time_range(record.at), "{record:?}");
    if let Some(at) = record.eligible_at {
        assert!(engine::in_time_range(at), "{record:?}");
    }
    let json = serde_json::to_string(record).unwrap();
    assert!(!has_unwritable_year(&json), "{json}");
    let back: DecisionRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, record, "the record reads back");
}

const T0: &str = "2026-11-24T09:00:00Z";

#[test]
fn absurd_bakes_are_capped_at_365_days_and_never_panic() {
    // `99999999999d`, `106751991167d`, `9999999999999999s` (they passed `validate` once, then
    // panicked every later run): `validate` refuses them now, and a `SpecDuration` cannot hold
    // more than 365 days, so even one built in code only makes the rollout wait a year.
    for seconds in [
        99_999_999_999 * 86_400,
        106_751_991_167 * 86_400,
        9_999_999_999_999_999,
        u64::MAX,
    ] {
        let spec = baking("", seconds);
        let state = started(&spec, 10, t(T0));
        let e = decide(&spec, Some(&state), on(10), t("2026-11-24T10:00:00Z"));
        assert_eq!(e.record.decision, DecisionKind::Hold, "{seconds}s: {:?}", e.record);
        assert_eq!(e.record.eligible_at, Some(t("2027-11-24T09:00:00Z")), "{:?}", e.record);
        assert_eq!(e.flag_change, None);
        assert_writable(&e.record);
    }
}

#[test]
fn a_bake_or_window_that_ends_past_the_year_9999_is_an_error() {
    let spec = baking("", 86_400);
    let now = t("9999-12-31T12:00:00Z");
    let e = decide(&spec, Some(&started(&spec, 10, now)), on(10), now);
    assert_eq!(e.record.decision, DecisionKind::Error, "{:?}", e.record);
    assert_writable(&e.record);
    // 9999-12-31 is a Friday: after office hours, the window next opens in the year 10000.
    let windowed = baking(
        "policy: { window: { days: Mon-Fri, hours: \"09:00-17:00\", timezone: Europe/Berlin } }",
        0,
    );
    let friday_night = t("9999-12-31T20:00:00Z");
    for state in [None, Some(started(&windowed, 10, t(T0)))] {
        let flag = if state.is_some() { on(10) } else { FlagValue::OFF };
        let e = decide(&windowed, state.as_ref(), flag, friday_night);
        assert_eq!(e.record.decision, DecisionKind::Error, "{:?}", e.record);
        assert!(e.record.reason.contains("does not open again"), "{}", e.record.reason);
        assert_writable(&e.record);
    }
    // Earlier the same Friday the window is open: it advances.
    let e = decide(
        &windowed,
        Some(&started(&windowed, 10, t(T0))),
        on(10),
        t("9999-12-31T10:00:00Z"),
    );
    assert_eq!(e.record.decision, DecisionKind::Advance, "{:?}", e.record);
    assert_writable(&e.record);
}

#[test]
fn times_outside_the_years_0000_to_9999_are_errors_recorded_at_a_writable_time() {
    let spec = spec("");
    let past = LATEST_TIME + Duration::seconds(1);
    let e = decide(&spec, None, FlagValue::OFF, past);
    assert_eq!(e.record.decision, DecisionKind::Error);
    assert!(e.record.reason.contains("evaluation time"), "{}", e.record.reason);
    assert_eq!(e.record.at, LATEST_TIME);
    assert_writable(&e.record);
    let e = manual(
        &spec,
        None,
        FlagValue::OFF,
        DateTime::<Utc>::MAX_UTC,
        ManualOp::Advance { force: false },
    );
    assert_eq!(e.record.decision, DecisionKind::Error);
    assert_writable(&e.record);
    let e = manual(
        &spec,
        None,
        FlagValue::OFF,
        DateTime::<Utc>::MIN_UTC,
        ManualOp::Rollback,
    );
    assert_eq!(e.record.decision, DecisionKind::Error);
    assert_writable(&e.record);
    // A state edited by hand, or corrupt.
    for field in ["stage_entered_at", "completed_at", "started_at"] {
        let mut state = started(&spec, 10, t(T0));
        match field {
            "stage_entered_at" => state.stage_entered_at = Some(DateTime::<Utc>::MAX_UTC),
            "completed_at" => state.completed_at = Some(t("+10239-01-01T00:00:00Z")),
            _ => state.started_at = Some(DateTime::<Utc>::MIN_UTC),
        }
        let e = decide(&spec, Some(&state), on(10), t(T0));
        assert_eq!(e.record.decision, DecisionKind::Error, "{field}");
        assert!(e.record.reason.contains(field), "{}", e.record.reason);
        assert_writable(&e.record);
    }
}

#[test]
fn a_failure_counter_at_its_maximum_rolls_back_instead_of_wrapping() {
    let spec = spec("policy: { failures_to_rollback: 5 }");
    let mut state = started(&spec, 50, t(T0));
    state.consecutive_failures = u32::MAX;
    let failing = engine::check_records(
        &spec.checks,
        &crate::support::measured(&[Measurement::Value(0.0)]),
        &flagramp::engine::Judging::default(),
    );
    let input = Input {
        spec: &spec,
        state: Some(&state),
        flag: Ok(on(50)),
        now: t(T0),
        actor: "flagramp",
    };
    let Step::Decided(e) = evaluate(input, Some(&failing)) else {
        panic!("checks were given")
    };
    assert_eq!(e.record.decision, DecisionKind::Rollback, "{}", e.record.reason);
    assert_eq!(
        e.state.unwrap().consecutive_failures,
        0,
        "a rollback resets the counter"
    );
}

fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    let near_end = LATEST_TIME.timestamp();
    prop_oneof![
        (min..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        (near_end - 30 * 86_400..=near_end + 86_400).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        (1_700_000_000i64..1_900_000_000).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
    ]
}

fn arb_seconds() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..=400 * 86_400,
        Just(u64::MAX),
        Just(i64::MAX as u64 / 1000 + 1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any bake, evaluation time and stored time, with and without a window, scheduled or
    /// manual: a decision, never a panic, and only writable times in the record.
    #[test]
    fn no_duration_or_time_panics_the_engine(
        seconds in arb_seconds(),
        now in arb_time(),
        entered in arb_time(),
        windowed in any::<bool>(),
        stage in 0usize..4,
        op in 0usize..5,
    ) {
        let extra = if windowed {
            "policy: { window: { days: Mon-Fri, hours: \"22:00-06:00\", timezone: Pacific/Kiritimati } }"
        } else {
            ""
        };
        let spec = baking(extra, seconds);
        let (state, flag) = if stage == 3 {
            (None, FlagValue::OFF)
        } else {
            let percent = [10, 50, 100][stage];
            (Some(started(&spec, percent, entered)), on(percent))
        };
        let e = match op {
            0 => decide(&spec, state.as_ref(), flag, now),
            1 => manual(&spec, state.as_ref(), flag, now, ManualOp::Advance { force: false }),
            2 => manual(&spec, state.as_ref(), flag, now, ManualOp::Rollback),
            3 => manual(&spec, state.as_ref(), flag, now, ManualOp::Pause),
            _ => manual(&spec, state.as_ref(), flag, now, ManualOp::Resume),
        };
        assert_writable(&e.record);
        if let Some(next) = &e.state {
            for record in &next.history {
                assert_writable(record);
            }
        }
        if !engine::in_time_range(now) {
            prop_assert_eq!(e.record.decision, DecisionKind::Error);
        }
    }
}
