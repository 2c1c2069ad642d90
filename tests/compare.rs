//! `compare` checks through the engine (docs/rules.md §2, docs/statistics.md): a canary worse
//! than its control rolls back with the bound in the reason, too little data holds, 100% skips,
//! cohorts that do not fit the percentage hold on rule `srm`, and a late regression is found in
//! the data after it began.

use chrono::{DateTime, Duration, Utc};

use flagramp::check::{CohortMeasured, CountsMeasured, Measured, Measurement, Measurements, Verdict};
use flagramp::engine::{check_records, evaluate, Input, Judging, Step};
use flagramp::record::{DecisionKind, DecisionRecord, Rule};
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{FlagValue, RolloutState};

use crate::support::pct;

const ENTERED: &str = "2026-11-24T08:00:00Z";

fn spec(extra: &str) -> RolloutSpec {
    let text = format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags.json }} }}\nstages: [{{ percent: 10, bake: 1h }}, {{ percent: 50, bake: 1h }}, 100]\nsources:\n  prom: {{ provider: prometheus, url: http://127.0.0.1:9 }}\nchecks:\n  - name: errors-vs-control\n    source: prom\n    compare:\n      canary: {{ events: 'e{{v=\"on\"}}[$window]', total: 't{{v=\"on\"}}[$window]'{units} }}\n      control: {{ events: 'e{{v=\"off\"}}[$window]', total: 't{{v=\"off\"}}[$window]'{units} }}\n{extra}",
        units = if extra.contains("#units") { ", units: 'u[$window]'" } else { "" },
    );
    let (spec, _, diags) = parse_spec(std::path::Path::new("demo.yml"), &text);
    assert!(diags.is_empty(), "{diags:?}\n{text}");
    spec.unwrap()
}

fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn state(spec: &RolloutSpec, percent: u32) -> RolloutState {
    let mut s = RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents());
    s.last_set = Some(FlagValue::on(pct(percent)));
    s.started_at = Some(t(ENTERED));
    s.stage_entered_at = Some(t(ENTERED));
    s
}

fn cohort(events: f64, total: f64, units: Option<f64>) -> CohortMeasured {
    CohortMeasured {
        events: Measurement::Value(events),
        total: Measurement::Value(total),
        units: units.map(Measurement::Value),
    }
}

fn counts(canary: CohortMeasured, control: CohortMeasured, at: DateTime<Utc>) -> Measured {
    Measured {
        what: Measurements::Counts(CountsMeasured {
            since: t(ENTERED),
            canary,
            control,
        }),
        at,
    }
}

/// The decision for these counts, measured `minutes` after the stage was entered.
fn decide(spec: &RolloutSpec, state: &RolloutState, minutes: i64, measured: Measured) -> DecisionRecord {
    step(spec, state, minutes, measured).0
}

fn at(minutes: i64) -> DateTime<Utc> {
    t(ENTERED) + Duration::minutes(minutes)
}

#[test]
fn a_canary_worse_than_its_control_rolls_back_with_the_bound_in_the_reason() {
    let spec = spec("");
    let s = state(&spec, 10);
    let record = decide(
        &spec,
        &s,
        30,
        counts(cohort(236.0, 12_400.0, None), cohort(1_100.0, 110_000.0, None), at(30)),
    );
    assert_eq!(
        (record.rule, record.decision),
        (Some(Rule::Rollback), DecisionKind::Disable),
        "{}",
        record.reason
    );
    let check = &record.checks[0];
    assert_eq!(check.verdict, Verdict::Fail);
    let compare = check.compare.as_ref().expect("compare evidence");
    assert_eq!((compare.canary.events, compare.canary.total), (236.0, 12_400.0));
    assert!((compare.control.rate.unwrap() - 0.01).abs() < 1e-12);
    let (difference, bound) = (compare.difference.unwrap(), compare.lower_bound.unwrap());
    assert!(bound > 0.0 && bound < difference, "{compare:?}");
    assert_eq!(compare.level, Some(0.99));
    assert!(
        record
            .reason
            .starts_with("errors-vs-control canary 1.9% vs control 1.0%: +0.9 pt, at least +"),
        "{}",
        record.reason
    );
    assert!(
        record.reason.contains("at 99% (12,400 / 110,000 requests)"),
        "{}",
        record.reason
    );
}

#[test]
fn an_equal_canary_passes_and_advances_once_baked() {
    let spec = spec("");
    let s = state(&spec, 10);
    let record = decide(
        &spec,
        &s,
        61,
        counts(cohort(124.0, 12_400.0, None), cohort(1_100.0, 110_000.0, None), at(61)),
    );
    assert_eq!(record.decision, DecisionKind::Advance, "{}", record.reason);
    assert_eq!(record.checks[0].verdict, Verdict::Pass);
    assert!(record.checks[0].compare.as_ref().unwrap().lower_bound.unwrap() < 0.0);
}

#[test]
fn too_little_data_and_an_empty_window_hold_as_insufficient() {
    let spec = spec("    min_samples: 1000\n");
    let s = state(&spec, 10);
    let thin = decide(
        &spec,
        &s,
        61,
        counts(cohort(50.0, 900.0, None), cohort(90.0, 9_000.0, None), at(61)),
    );
    assert_eq!(
        (thin.rule, thin.decision),
        (Some(Rule::Checks), DecisionKind::Hold),
        "{}",
        thin.reason
    );
    assert_eq!(thin.checks[0].verdict, Verdict::Insufficient);
    assert!(
        thin.reason
            .contains("too little data (canary 900 / control 9,000 requests, needs 1,000 in each)"),
        "{}",
        thin.reason
    );
    // Queried at the very moment the stage was entered: nothing to count yet.
    let empty = decide(
        &spec,
        &s,
        61,
        counts(cohort(0.0, 0.0, None), cohort(0.0, 0.0, None), at(0)),
    );
    assert_eq!(empty.checks[0].verdict, Verdict::Insufficient);
    assert!(empty.reason.contains("still empty"), "{}", empty.reason);
}

#[test]
fn at_full_exposure_the_check_is_skipped_and_never_holds() {
    let spec = spec("");
    let s = state(&spec, 100);
    let record = decide(
        &spec,
        &s,
        61,
        counts(cohort(0.0, 0.0, None), cohort(0.0, 0.0, None), at(61)),
    );
    assert_eq!(record.checks[0].verdict, Verdict::Skipped);
    assert_eq!(record.decision, DecisionKind::Complete, "{}", record.reason);
    assert!(
        record.reason.contains("skipped: at 100% there is no control cohort"),
        "{}",
        record.reason
    );
}

#[test]
fn cohorts_that_do_not_fit_the_percentage_hold_on_rule_srm() {
    let spec = spec("    #units\n");
    let s = state(&spec, 10);
    // The canary is clearly worse too: neither a rollback nor an advance may come of such data.
    let record = decide(
        &spec,
        &s,
        61,
        counts(
            cohort(400.0, 12_000.0, Some(1_100.0)),
            cohort(1_000.0, 100_000.0, Some(8_900.0)),
            at(61),
        ),
    );
    assert_eq!(
        (record.rule, record.decision),
        (Some(Rule::Srm), DecisionKind::Hold),
        "{}",
        record.reason
    );
    assert!(
        record
            .reason
            .contains("sample ratio mismatch: 1,100 of 10,000 users exposed where 10% expects 1,000"),
        "{}",
        record.reason
    );
    assert!(
        record.reason.contains("neither advances nor rolls back"),
        "{}",
        record.reason
    );
    let srm = record.checks[0].compare.as_ref().unwrap().srm.as_ref().unwrap();
    assert!(srm.mismatch && srm.p_value < 0.001);
    // Request counts stand in for users without `units:`: a 10% relative skew is tolerated.
    let spec = self::spec("");
    let s = state(&spec, 10);
    let record = decide(
        &spec,
        &s,
        61,
        counts(cohort(110.0, 11_000.0, None), cohort(890.0, 89_000.0, None), at(61)),
    );
    assert_ne!(record.rule, Some(Rule::Srm), "{}", record.reason);
}

/// One evaluation through the engine with these counts; the state it leaves (or the same).
fn step(spec: &RolloutSpec, state: &RolloutState, minutes: i64, measured: Measured) -> (DecisionRecord, RolloutState) {
    let judging = Judging {
        percent: state.last_set.unwrap().percent,
        stage_entered: state.stage_entered_at,
        looks: &state.compare,
        exposure: None,
    };
    let checks = check_records(&spec.checks, &[measured], &judging);
    let input = Input {
        spec,
        state: Some(state),
        flag: Ok(state.last_set.unwrap()),
        now: at(minutes),
        actor: "flagramp",
    };
    match evaluate(input, Some(&checks)) {
        Step::Decided(e) => (e.record, e.state.unwrap_or_else(|| state.clone())),
        Step::NeedsChecks => panic!("checks were given"),
    }
}

#[test]
fn a_regression_that_begins_late_in_a_long_stage_is_judged_on_its_own_data() {
    // Twenty hourly looks of a healthy stage, then an hour in which the canary's error rate
    // doubles: the whole stage's rate barely moves, the last hour shows it. The rollout is
    // paused, so every healthy look holds with the same reason and the history keeps only the
    // first: the looks are counted in the state all the same.
    let spec = spec("");
    let mut s = state(&spec, 10);
    s.paused = true;
    let (mut canary, mut control) = ((0.0, 0.0), (0.0, 0.0));
    for hour in 1..=20 {
        canary = (canary.0 + 100.0, canary.1 + 10_000.0);
        control = (control.0 + 900.0, control.1 + 90_000.0);
        let measured = counts(
            cohort(canary.0, canary.1, None),
            cohort(control.0, control.1, None),
            at(hour * 60),
        );
        let (record, next) = step(&spec, &s, hour * 60, measured);
        assert_eq!(
            record.checks[0].verdict,
            Verdict::Pass,
            "hour {hour}: {}",
            record.reason
        );
        assert_eq!(
            record.checks[0].compare.as_ref().unwrap().look,
            u32::try_from(hour).unwrap()
        );
        s = next;
    }
    assert_eq!(s.history.len(), 1, "repeated holds are not history");
    let looks = &s.compare["errors-vs-control"];
    assert_eq!((looks.tests, looks.points_seen, looks.points.len()), (20, 20, 20));
    assert_eq!(looks.stage_entered, t(ENTERED));
    let late = counts(
        cohort(canary.0 + 200.0, canary.1 + 10_000.0, None),
        cohort(control.0 + 900.0, control.1 + 90_000.0, None),
        at(21 * 60),
    );
    let (record, after) = step(&spec, &s, 21 * 60, late);
    assert_eq!(record.rule, Some(Rule::Rollback), "{}", record.reason);
    let compare = record.checks[0].compare.as_ref().unwrap();
    assert_eq!(
        compare.since,
        at(20 * 60),
        "judged on the data since the last look: {compare:?}"
    );
    assert_eq!(compare.canary.total, 10_000.0);
    assert!(after.compare.is_empty(), "a stage change starts the looks afresh");
}

#[test]
fn a_stage_keeps_at_most_a_day_of_start_points_and_their_indices_go_on() {
    let spec = spec("");
    let mut s = state(&spec, 10);
    s.paused = true;
    let n = flagramp::state::START_POINT_CAP + 10;
    for look in 1..=n {
        let minutes = i64::try_from(look).unwrap() * 15;
        let total = 1_000.0 * look as f64;
        let measured = counts(
            cohort(total / 100.0, total, None),
            cohort(total * 9.0 / 100.0, total * 9.0, None),
            at(minutes),
        );
        s = step(&spec, &s, minutes, measured).1;
    }
    let looks = &s.compare["errors-vs-control"];
    assert_eq!(looks.points.len(), flagramp::state::START_POINT_CAP);
    assert_eq!(looks.points_seen, u32::try_from(n).unwrap());
    assert_eq!(looks.points.last().unwrap().index, u32::try_from(n).unwrap());
    assert_eq!(looks.points[0].index, 11, "the oldest are dropped, the indices kept");
}

#[test]
fn looks_of_an_earlier_stage_are_not_counted() {
    let spec = spec("    window: 30m\n");
    let mut s = state(&spec, 10);
    s.paused = true;
    let measured = |m: i64| counts(cohort(100.0, 10_000.0, None), cohort(900.0, 90_000.0, None), at(m));
    s = step(&spec, &s, 60, measured(60)).1;
    s = step(&spec, &s, 120, measured(120)).1;
    assert_eq!(s.compare["errors-vs-control"].tests, 2);
    // A person moved the stage on (the state says so): the next look is the first again.
    s.stage_entered_at = Some(at(150));
    let (record, s) = step(&spec, &s, 180, measured(180));
    assert_eq!(record.checks[0].compare.as_ref().unwrap().look, 1, "{}", record.reason);
    assert_eq!(s.compare["errors-vs-control"].tests, 1);
}

/// A small deterministic generator of binomial counts (normal approximation; `n·p` is at least
/// 5 here), so that a proptest case is the same on every run.
struct Draws(u64);

impl Draws {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn binomial(&mut self, n: f64, p: f64) -> f64 {
        let z = flagramp::stats::normal_quantile(self.uniform());
        (n * p + z * (n * p * (1.0 - p)).sqrt()).round().clamp(0.0, n)
    }
}

/// How many of `stages` healthy stages of 20 looks, 15 minutes apart, fail at least once when
/// canary and control share the error rate `base` (the canary at 10% of traffic). With
/// `forget_looks`, the state's look count is cleared before every look.
fn false_alarms(window: &str, stages: u32, base: f64, canary_per_look: f64, seed: u64, forget_looks: bool) -> u32 {
    let spec = spec(&format!(
        "    window: {window}\n    alpha: 0.05\n    min_samples: 100\n"
    ));
    let control_per_look = canary_per_look * 9.0;
    let mut draws = Draws(seed);
    let mut alarms = 0;
    for _ in 0..stages {
        let mut s = state(&spec, 10);
        // Paused: every look holds at this stage, however long it is looked at.
        s.paused = true;
        let mut batches: Vec<(f64, f64)> = Vec::new();
        for look in 1..=20i64 {
            batches.push((
                draws.binomial(canary_per_look, base),
                draws.binomial(control_per_look, base),
            ));
            // The stage's counts so far, or the last two batches for a 30-minute window.
            let judged = if window == "stage" {
                &batches[..]
            } else {
                &batches[batches.len().saturating_sub(2)..]
            };
            let looks = judged.len() as f64;
            let events: (f64, f64) = judged.iter().fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            let measured = Measured {
                what: Measurements::Counts(CountsMeasured {
                    since: if window == "stage" {
                        t(ENTERED)
                    } else {
                        at(look * 15 - 30)
                    },
                    canary: cohort(events.0, canary_per_look * looks, None),
                    control: cohort(events.1, control_per_look * looks, None),
                }),
                at: at(look * 15),
            };
            let (record, next) = step(&spec, &s, look * 15, measured);
            if record.checks[0].verdict == Verdict::Fail {
                alarms += 1;
                break;
            }
            s = next;
            if forget_looks {
                s.compare.clear();
            }
        }
    }
    alarms
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]

    /// Under no effect, over 20 looks of one stage, a compare check fails at most `alpha` of the
    /// time (three standard errors allowed for the simulation), for both kinds of window; the
    /// looks go through the engine, so the state's look count is what spends `alpha`.
    #[test]
    fn under_no_effect_twenty_looks_of_a_stage_fail_at_most_alpha_of_the_time(
        base in 0.005f64..0.03,
        canary_per_look in 500.0f64..20_000.0,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let (alpha, stages) = (0.05, 400u32);
        let tolerance = 3.0 * (alpha * (1.0 - alpha) / f64::from(stages)).sqrt();
        for window in ["stage", "30m"] {
            let rate = f64::from(false_alarms(window, stages, base, canary_per_look, seed, false)) / f64::from(stages);
            proptest::prop_assert!(
                rate <= alpha + tolerance,
                "window {window}: {rate} of healthy stages failed (base {base}, {canary_per_look} canary requests a look)"
            );
        }
    }
}

#[test]
fn the_false_alarm_simulation_can_tell_a_valid_test_from_one_that_spends_alpha_again() {
    // The same simulation with the look count forgotten before every look (each look judged as
    // if it were the first, as when looks were read back from a history that dropped them):
    // the fixed window then alarms far more often than alpha. This is what the proptest above
    // would catch if the state stopped counting looks.
    let stages = 400;
    let alarms = false_alarms("30m", stages, 0.01, 4_000.0, 7, true);
    let rate = f64::from(alarms) / f64::from(stages);
    assert!(rate > 0.1, "forgetting looks must inflate false alarms: {rate}");
}
