//! Which checks gate a rollout (docs/rules.md §2): shadow checks never change a decision,
//! time-only ramps advance on bake alone and only when they say so, and a check compared with
//! the control cohort judges against the control's value.

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use flagramp::check::{Measured, Measurement, Measurements};
use flagramp::engine::{self, evaluate, Input, Step};
use flagramp::record::{CheckRecord, DecisionRecord};
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{FlagValue, RolloutState};

use crate::support::pct;

const GATING: &str = "  - { name: success-rate, command: [\"./a\"], pass: \">= 0.95\" }\n  - { name: latency, command: [\"./b\"], pass: \"< 300\" }\n";
const SHADOW: &str = "  - { name: new-errors, command: [\"./c\"], pass: \"<= 0.01\", gate: false }\n";

fn parse(text: &str) -> Result<RolloutSpec, String> {
    let (spec, _, diags) = parse_spec(std::path::Path::new("demo.yml"), text);
    match spec {
        Some(spec) if diags.is_empty() => Ok(spec),
        _ => Err(diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn spec(checks: &str, extra: &str) -> RolloutSpec {
    parse(&format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags.json }} }}\nstages: [{{ percent: 10, bake: 1h }}, {{ percent: 50, bake: 1h }}, 100]\n{checks}{extra}"
    ))
    .unwrap()
}

fn t(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn started(spec: &RolloutSpec, percent: u32, failures: u32) -> RolloutState {
    let mut s = RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents());
    s.last_set = Some(FlagValue::on(pct(percent)));
    s.started_at = Some(t("2026-11-24T08:00:00Z"));
    s.stage_entered_at = Some(t("2026-11-24T08:00:00Z"));
    s.consecutive_failures = failures;
    s
}

fn decide(spec: &RolloutSpec, state: &RolloutState, now: &str, checks: &[CheckRecord]) -> DecisionRecord {
    let input = Input {
        spec,
        state: Some(state),
        flag: Ok(state.last_set.unwrap()),
        now: t(now),
        actor: "flagramp",
    };
    match evaluate(input, None) {
        Step::Decided(e) => e.record,
        Step::NeedsChecks => match evaluate(input, Some(checks)) {
            Step::Decided(e) => e.record,
            Step::NeedsChecks => panic!("asked twice"),
        },
    }
}

fn measurement() -> impl Strategy<Value = Measurement> {
    prop_oneof![
        (0.0f64..2.0).prop_map(Measurement::Value),
        (500.0f64..1000.0).prop_map(Measurement::Value),
        Just(Measurement::NoData("no series".into())),
        Just(Measurement::Error("source down".into())),
    ]
}

proptest! {
    /// Whatever the gating checks and the shadow check measure, and however many failures came
    /// before, the decision with the shadow check is the decision without it.
    #[test]
    fn a_shadow_check_never_changes_a_decision(
        gating in proptest::collection::vec(measurement(), 2),
        shadow in measurement(),
        percent in prop_oneof![Just(10u32), Just(50)],
        failures in 0u32..3,
        baked in any::<bool>(),
    ) {
        let with = spec(&format!("checks:\n{GATING}{SHADOW}"), "");
        let without = spec(&format!("checks:\n{GATING}"), "");
        let now = if baked { "2026-11-24T09:30:00Z" } else { "2026-11-24T08:30:00Z" };
        let mut all = gating.clone();
        all.push(shadow);
        let a = decide(&with, &started(&with, percent, failures), now,
            &engine::check_records(&with.checks, &crate::support::measured(&all), &flagramp::engine::Judging::default()));
        let b = decide(&without, &started(&without, percent, failures), now,
            &engine::check_records(&without.checks, &crate::support::measured(&gating), &flagramp::engine::Judging::default()));
        prop_assert_eq!(a.decision, b.decision);
        prop_assert_eq!(a.rule, b.rule);
        prop_assert_eq!(a.to_percent, b.to_percent);
        prop_assert_eq!(a.failures, b.failures);
        // The shadow check is still recorded, marked as not gating.
        if let Some(record) = a.checks.iter().find(|c| c.name == "new-errors") {
            prop_assert!(!record.gate);
        }
    }
}

#[test]
fn a_failing_shadow_check_is_recorded_and_shown_as_shadow_while_the_rollout_advances() {
    let spec = spec(&format!("checks:\n{GATING}{SHADOW}"), "");
    let state = started(&spec, 10, 0);
    let checks = engine::check_records(
        &spec.checks,
        &crate::support::measured(&[
            Measurement::Value(0.99),
            Measurement::Value(120.0),
            Measurement::Value(0.5),
        ]),
        &flagramp::engine::Judging::default(),
    );
    let record = decide(&spec, &state, "2026-11-24T09:30:00Z", &checks);
    assert_eq!(record.decision.as_str(), "advance", "{}", record.reason);
    assert!(
        record.reason.contains("shadow, not acted on: new-errors 0.5 > 0.01"),
        "{}",
        record.reason
    );
    let shadow = &record.checks[2];
    assert!(!shadow.gate && shadow.verdict.as_str() == "fail");
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["checks"][2]["gate"], false);
    assert_eq!(json["checks"][0]["gate"], true);
    let text = flagramp::report::text::decisions(std::slice::from_ref(&record), flagramp::report::Target::Cli);
    assert!(text.contains("[FAIL] new-errors (shadow) = 0.5"), "{text}");
}

#[test]
fn a_time_only_ramp_advances_on_bake_alone_and_says_there_is_no_metric_gate() {
    let spec = spec("checks: []\n", "policy: { time_only: true }\n");
    assert!(spec.checks.is_empty());
    let state = started(&spec, 10, 0);
    let waiting = decide(&spec, &state, "2026-11-24T08:30:00Z", &[]);
    assert_eq!(waiting.decision.as_str(), "hold", "{}", waiting.reason);
    assert!(waiting.reason.contains("no metric gate"), "{}", waiting.reason);
    let record = decide(&spec, &state, "2026-11-24T09:00:00Z", &[]);
    assert_eq!(record.decision.as_str(), "advance", "{}", record.reason);
    assert_eq!(record.to_percent, pct(50));
    assert!(record.reason.contains("no metric gate"), "{}", record.reason);
}

#[test]
fn no_checks_without_time_only_and_checks_with_it_are_errors() {
    let head = "version: 1\nname: demo\nflag: { provider: flagd, key: demo, flagd: { path: flags.json } }\n";
    let empty = parse(&format!("{head}checks: []\n")).unwrap_err();
    assert!(empty.contains("time_only"), "{empty}");
    let missing = parse(head).unwrap_err();
    assert!(missing.contains("`checks` is missing"), "{missing}");
    let both = parse(&format!("{head}checks:\n{GATING}policy: {{ time_only: true }}\n")).unwrap_err();
    assert!(both.contains("gates on time alone, but it lists checks"), "{both}");
    let only_shadow = parse(&format!("{head}checks:\n{SHADOW}")).unwrap_err();
    assert!(only_shadow.contains("every check is a shadow check"), "{only_shadow}");
}

#[test]
fn a_control_comparison_judges_against_the_control_value_and_no_control_data_holds() {
    let spec = spec(
        "sources: { prom: { provider: prometheus, url: http://127.0.0.1:9090 } }\nchecks:\n  - name: latency-p99\n    source: prom\n    query: p99_on\n    control: p99_off\n    pass: \"<= control * 1.1\"\n",
        "",
    );
    let at = t("2026-11-24T08:59:00Z");
    let measured = |value: f64, control: Measurement| Measured {
        what: Measurements::Value {
            own: Measurement::Value(value),
            control: Some(control),
        },
        at,
    };
    let fail = engine::check_records(
        &spec.checks,
        &[measured(312.0, Measurement::Value(270.0))],
        &flagramp::engine::Judging::default(),
    );
    assert_eq!(fail[0].verdict.as_str(), "fail");
    assert_eq!(fail[0].control_value, Some(270.0));
    assert_eq!(fail[0].at, Some(at));
    let state = started(&spec, 10, 0);
    let record = decide(&spec, &state, "2026-11-24T09:30:00Z", &fail);
    assert!(
        record
            .reason
            .contains("latency-p99 312 > 1.1 × control 270 = 297 (needs <= control * 1.1)"),
        "{}",
        record.reason
    );
    let pass = engine::check_records(
        &spec.checks,
        &[measured(290.0, Measurement::Value(270.0))],
        &flagramp::engine::Judging::default(),
    );
    assert_eq!(pass[0].verdict.as_str(), "pass");
    let none = engine::check_records(
        &spec.checks,
        &[measured(290.0, Measurement::NoData("no series".into()))],
        &flagramp::engine::Judging::default(),
    );
    assert_eq!(none[0].verdict.as_str(), "no_data");
    assert!(none[0].detail.as_deref().unwrap().contains("control"));
    let held = decide(&spec, &state, "2026-11-24T09:30:00Z", &none);
    assert_eq!(held.decision.as_str(), "hold");
}
