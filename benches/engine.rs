//! The engine benchmark (BENCHMARKS.md, "Engine"): the time and the allocations of one
//! evaluation of the pure decision engine (`src/engine/`), for the cases a scheduled run meets.
//!
//! ```text
//! cargo bench --bench engine             criterion's timings, after the allocation counts
//! cargo bench --bench engine -- advance  one case (a criterion filter)
//! ```
//!
//! One evaluation is what the runner asks of the engine for one rollout at one tick
//! (ARCHITECTURE.md, "How a decision flows"): `evaluate` without check results; when it answers
//! `NeedsChecks`, `check_records` judges the answers (for a `compare` check, the sequential test
//! over every start point of the stage) and `evaluate` decides with them. The answers are
//! measured beforehand, as the runner's queries would be. Each case's state is made by the
//! engine itself over earlier ticks, so it carries the history and looks a real one would.
//!
//! Allocations are counted by a wrapper around the system allocator (the bench binary's own
//! `#[global_allocator]`); its one relaxed atomic add per call is in the timings too.
//! `cargo test --all-targets` runs this target in criterion's test mode: every case once, with
//! its expected decision and its allocation count checked, in well under a second.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chrono::{DateTime, Duration, Utc};
use criterion::Criterion;

use flagramp::check::{CohortMeasured, CountsMeasured, Measured, Measurement, Measurements};
use flagramp::engine::{check_records, evaluate, Evaluation, Input, Judging, Step};
use flagramp::percent::Percent;
use flagramp::record::{thousands, DecisionKind};
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{FlagValue, RolloutState};

/// The system allocator, counting.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static REALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to `System` unchanged; the counters are only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations, reallocations and bytes asked for (a reallocation counts only its growth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allocated {
    allocations: u64,
    reallocations: u64,
    bytes: u64,
}

fn allocated() -> Allocated {
    Allocated {
        allocations: ALLOCATIONS.load(Relaxed),
        reallocations: REALLOCATIONS.load(Relaxed),
        bytes: BYTES.load(Relaxed),
    }
}

/// What running `f` once allocated (this benchmark is single-threaded, so nothing else counts).
fn allocations_of<T>(f: impl FnOnce() -> T) -> Allocated {
    let before = allocated();
    drop(black_box(f()));
    let after = allocated();
    Allocated {
        allocations: after.allocations - before.allocations,
        reallocations: after.reallocations - before.reallocations,
        bytes: after.bytes - before.bytes,
    }
}

/// Stage 1 of the cases: entered at this time.
const T0: &str = "2026-11-24T09:00:00Z";
/// Ticks every 15 minutes, as the judgment benchmark's simulation and a `*/15` cron.
const TICK_MINUTES: i64 = 15;
/// Sources answer for a minute before the tick (the default `lag`).
const LAG_MINUTES: i64 = 1;
/// How many earlier evaluations of the stage the `compare` case carries as start points.
const START_POINTS: usize = 50;

fn t0() -> DateTime<Utc> {
    T0.parse().expect("a fixed time")
}

fn tick(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n * TICK_MINUTES)
}

fn on(percent: u32) -> FlagValue {
    FlagValue::on(Percent::from_millis(percent * 1000).expect("a percentage"))
}

fn parse(text: &str) -> RolloutSpec {
    let (spec, _, diags) = parse_spec(Path::new("bench.yml"), text);
    assert!(diags.is_empty(), "{diags:?}\n{text}");
    spec.expect("a valid spec")
}

/// Two command checks, as README.md's example spec has besides its Prometheus check; stages of
/// 10%, 50% and 100% with an hour's bake, and a rollback at the first failure (the default).
fn threshold_spec() -> RolloutSpec {
    parse(
        "version: 1\nname: checkout\nflag: { provider: flagd, key: checkout, flagd: { path: flags.json } }\n\
         stages: [{ percent: 10, bake: 1h }, { percent: 50, bake: 1h }, { percent: 100, bake: 30m }]\n\
         checks:\n\
         \x20 - { name: success-rate, command: [\"./success-rate\"], pass: \">= 0.95\" }\n\
         \x20 - { name: latency, command: [\"./latency\"], pass: \"< 300\" }\n",
    )
}

/// A `compare` check over a stage long enough for [`START_POINTS`] looks, as
/// tests/specs/good/compare-checks.yml's first check.
fn compare_spec() -> RolloutSpec {
    parse(
        "version: 1\nname: checkout\nflag: { provider: flagd, key: checkout, flagd: { path: flags.json } }\n\
         stages: [{ percent: 10, bake: 24h }, { percent: 50, bake: 1h }, 100]\n\
         sources:\n  prom: { provider: prometheus, url: http://127.0.0.1:9 }\n\
         checks:\n\
         \x20 - name: errors-vs-control\n\
         \x20   source: prom\n\
         \x20   compare:\n\
         \x20     canary: { events: 'sum(increase(e{v=\"on\"}[$window]))', total: 'sum(increase(t{v=\"on\"}[$window]))' }\n\
         \x20     control: { events: 'sum(increase(e{v=\"off\"}[$window]))', total: 'sum(increase(t{v=\"off\"}[$window]))' }\n\
         \x20   window: stage\n\
         \x20   max_increase: 0\n\
         \x20   alpha: 0.01\n\
         \x20   min_samples: 500\n",
    )
}

/// What the sources answer at a tick.
#[derive(Clone, Copy)]
enum Answers {
    /// Both threshold checks pass.
    Healthy,
    /// The success rate fails.
    Failing,
    /// The `compare` check's cumulative counts since the stage was entered at `T0`: 10,000
    /// canary and 90,000 control requests per tick, 1% errors in both.
    Counts,
}

fn answers(kind: Answers, now: DateTime<Utc>) -> Vec<Measured> {
    let at = now - Duration::minutes(LAG_MINUTES);
    let value = |v: f64| Measured::value(Measurement::Value(v), at);
    match kind {
        Answers::Healthy => vec![value(0.99), value(120.0)],
        Answers::Failing => vec![value(0.80), value(120.0)],
        Answers::Counts => {
            let ticks = ((at - t0()).num_seconds() as f64) / (TICK_MINUTES as f64 * 60.0);
            let cohort = |requests: f64| CohortMeasured {
                events: Measurement::Value((requests * ticks * 0.01).round()),
                total: Measurement::Value((requests * ticks).round()),
                units: None,
            };
            vec![Measured {
                what: Measurements::Counts(CountsMeasured {
                    since: t0(),
                    canary: cohort(10_000.0),
                    control: cohort(90_000.0),
                }),
                at,
            }]
        }
    }
}

/// One rollout at one tick: everything an evaluation reads.
struct Case {
    name: &'static str,
    spec: RolloutSpec,
    state: Option<RolloutState>,
    flag: FlagValue,
    now: DateTime<Utc>,
    measured: Vec<Measured>,
    expect: DecisionKind,
}

impl Case {
    fn evaluate(&self) -> Evaluation {
        one_evaluation(&self.spec, self.state.as_ref(), self.flag, self.now, &self.measured)
    }
}

/// One evaluation as the runner makes it (see the top of this file).
fn one_evaluation(
    spec: &RolloutSpec,
    state: Option<&RolloutState>,
    flag: FlagValue,
    now: DateTime<Utc>,
    measured: &[Measured],
) -> Evaluation {
    let input = Input {
        spec,
        state,
        flag: Ok(flag),
        now,
        actor: "flagramp",
    };
    match evaluate(input, None) {
        Step::Decided(e) => e,
        Step::NeedsChecks => {
            let judging = match state {
                Some(s) => Judging {
                    percent: flag.percent,
                    stage_entered: s.stage_entered_at,
                    looks: &s.compare,
                    exposure: None,
                },
                None => Judging {
                    percent: flag.percent,
                    ..Judging::default()
                },
            };
            let records = check_records(&spec.checks, measured, &judging);
            match evaluate(input, Some(&records)) {
                Step::Decided(e) => e,
                Step::NeedsChecks => panic!("the engine asked for checks twice"),
            }
        }
    }
}

/// The state and flag after the engine has decided every tick in `ticks` (from a rollout
/// without state), the flag set as each decision says.
fn driven(spec: &RolloutSpec, ticks: &[(i64, Answers)]) -> (RolloutState, FlagValue) {
    let mut state: Option<RolloutState> = None;
    let mut flag = FlagValue::OFF;
    for &(n, kind) in ticks {
        let e = one_evaluation(spec, state.as_ref(), flag, tick(n), &answers(kind, tick(n)));
        if let Some(next) = e.state {
            state = Some(next);
        }
        if let Some(to) = e.flag_change {
            flag = to;
        }
    }
    (state.expect("the rollout started"), flag)
}

fn cases() -> Vec<Case> {
    let spec = threshold_spec();
    // Started at tick 0, healthy at ticks 1 and 2: baking at 10%.
    let young = [(0, Answers::Healthy), (1, Answers::Healthy), (2, Answers::Healthy)];
    let (baking, at_10) = driven(&spec, &young);
    // Advanced to 50% at tick 4 (the hour's bake over), then healthy once more.
    let mut older = young.to_vec();
    older.extend([(3, Answers::Healthy), (4, Answers::Healthy), (5, Answers::Healthy)]);
    let (at_50_state, at_50) = driven(&spec, &older);
    assert_eq!(at_50, on(50), "the rollout advanced to 50%");

    let compare = compare_spec();
    let looks: Vec<(i64, Answers)> = (0..=START_POINTS as i64).map(|n| (n, Answers::Counts)).collect();
    let (watched, watched_flag) = driven(&compare, &looks);
    let points = watched.compare.values().map(|l| l.points.len()).sum::<usize>();
    assert_eq!(points, START_POINTS, "the state carries {START_POINTS} start points");
    let next = START_POINTS as i64 + 1;

    vec![
        Case {
            name: "start",
            spec: spec.clone(),
            state: None,
            flag: FlagValue::OFF,
            now: tick(0),
            measured: Vec::new(),
            expect: DecisionKind::Start,
        },
        Case {
            name: "hold (baking, 2 checks pass)",
            spec: spec.clone(),
            state: Some(baking.clone()),
            flag: at_10,
            now: tick(3),
            measured: answers(Answers::Healthy, tick(3)),
            expect: DecisionKind::Hold,
        },
        Case {
            name: "advance (baked, 2 checks pass)",
            spec: spec.clone(),
            state: Some(baking),
            flag: at_10,
            now: tick(4),
            measured: answers(Answers::Healthy, tick(4)),
            expect: DecisionKind::Advance,
        },
        Case {
            name: "rollback (a check fails)",
            spec,
            state: Some(at_50_state),
            flag: at_50,
            now: tick(6),
            measured: answers(Answers::Failing, tick(6)),
            expect: DecisionKind::Rollback,
        },
        Case {
            name: "compare (50 start points)",
            spec: compare,
            state: Some(watched),
            flag: watched_flag,
            now: tick(next),
            measured: answers(Answers::Counts, tick(next)),
            expect: DecisionKind::Hold,
        },
    ]
}

/// Checks each case's decision and prints what one evaluation allocates.
fn allocation_report(cases: &[Case]) {
    println!("engine: allocations per evaluation (the second of two, so nothing is first-use)");
    for case in cases {
        let e = case.evaluate();
        assert_eq!(
            e.record.decision, case.expect,
            "{}: decided {:?}: {}",
            case.name, e.record.decision, e.record.reason
        );
        let first = allocations_of(|| case.evaluate());
        let second = allocations_of(|| case.evaluate());
        // Pure and deterministic: the same evaluation allocates the same each time.
        assert_eq!(first, second, "{}: allocations differ between runs", case.name);
        println!(
            "  {:<32} {:>5} allocations, {:>3} reallocations, {:>8} bytes",
            case.name,
            thousands(second.allocations as f64),
            second.reallocations,
            thousands(second.bytes as f64)
        );
    }
}

fn main() {
    let cases = cases();
    allocation_report(&cases);
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("engine");
        for case in &cases {
            group.bench_function(case.name, |b| b.iter(|| black_box(case).evaluate()));
        }
        group.finish();
    }
    c.final_summary();
}
