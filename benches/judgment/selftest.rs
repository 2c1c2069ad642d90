//! `selftest`: the generator's samplers and histories, and the specs it writes. Run by `cargo test
//! --all-targets` (which runs this bench target with no subcommand).

use anyhow::{ensure, Result};
use chrono::{DateTime, Duration, Utc};

use crate::design::{self, Kind, OutageKind, Scenario, Trial, PREROLL_MIN};
use crate::generate::{self, History};
use crate::rng::Rng;

fn t(text: &str) -> DateTime<Utc> {
    text.parse().expect("a time")
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Mean within 5 standard errors and variance within 20% of the distribution's: loose enough
/// never to fail by chance at these sizes (the seed is fixed anyway), tight enough to catch a
/// sampler that is off by a factor or a rescaling.
fn moments_fit(what: &str, xs: &[f64], mean: f64, var: f64) -> Result<()> {
    let (m, v) = mean_var(xs);
    let se = (var / xs.len() as f64).sqrt();
    ensure!(
        (m - mean).abs() <= 5.0 * se,
        "{what}: mean {m} where {mean} ± {}",
        5.0 * se
    );
    ensure!((v / var - 1.0).abs() <= 0.2, "{what}: variance {v} where {var}");
    Ok(())
}

fn samplers() -> Result<()> {
    let mut a = Rng::new(1, 2);
    let mut b = Rng::new(1, 2);
    let mut c = Rng::new(1, 3);
    let (xa, xb, xc): (Vec<u64>, Vec<u64>, Vec<u64>) = (0..8).map(|_| (a.next_u64(), b.next_u64(), c.next_u64())).fold(
        (vec![], vec![], vec![]),
        |mut acc, (x, y, z)| {
            acc.0.push(x);
            acc.1.push(y);
            acc.2.push(z);
            acc
        },
    );
    ensure!(xa == xb, "one seed and stream must give one sequence");
    ensure!(xa != xc, "other streams must give other sequences");

    let mut rng = Rng::new(7, 7);
    let draws = 3000;
    // Beta splitting (large n), inversion (small n) and its mirror (p > 0.5).
    for (n, p) in [(33_333u64, 0.01), (3_000, 0.3), (50, 0.02), (40, 0.9), (1_000, 0.7)] {
        let xs: Vec<f64> = (0..draws).map(|_| rng.binomial(n, p) as f64).collect();
        ensure!(xs.iter().all(|&x| x <= n as f64), "binomial({n}, {p}) above n");
        let np = n as f64 * p;
        moments_fit(&format!("binomial({n}, {p})"), &xs, np, np * (1.0 - p))?;
    }
    ensure!(rng.binomial(10, 0.0) == 0 && rng.binomial(10, 1.0) == 10 && rng.binomial(0, 0.5) == 0);
    for lambda in [33_333.0, 666.7, 20.0, 3.5] {
        let xs: Vec<f64> = (0..draws).map(|_| rng.poisson(lambda) as f64).collect();
        moments_fit(&format!("poisson({lambda})"), &xs, lambda, lambda)?;
    }
    let xs: Vec<f64> = (0..draws).map(|_| rng.range(60, 300) as f64).collect();
    ensure!(xs.iter().all(|&x| (60.0..300.0).contains(&x)), "range out of bounds");
    Ok(())
}

fn trial(scenario: Scenario, base_rate: f64, traffic: u64, stream: u64) -> Trial {
    let onset = match scenario {
        Scenario::Regression { onset_min, .. } => Some(t(design::DEFAULT_START) + Duration::minutes(onset_min)),
        _ => None,
    };
    Trial {
        trial: format!("t{stream:04}"),
        base_rate,
        traffic,
        scenario,
        onset,
        stream,
    }
}

/// Counts in the minutes `from..until` after T1 (the point at T1 + m closes minute m − 1).
fn between(counter: &[u64], from: i64, until: i64) -> u64 {
    let at = |m: i64| counter[(m + PREROLL_MIN) as usize];
    at(until) - at(from)
}

fn histories() -> Result<()> {
    let regression = trial(
        Scenario::Regression {
            factor: 5.0,
            onset_min: 120,
        },
        0.01,
        50_000,
        11,
    );
    let h: History = generate::history(&regression);
    ensure!(
        h == generate::history(&regression),
        "a trial's history must be the same every time"
    );
    ensure!(h.requests_on.len() == generate::points(), "one point per minute");
    for series in [&h.requests_on, &h.requests_off, &h.errors_on, &h.errors_off] {
        ensure!(series.windows(2).all(|w| w[0] <= w[1]), "counters never fall");
    }
    ensure!(
        h.errors_on.iter().zip(&h.requests_on).all(|(e, r)| e <= r),
        "errors are a part of requests"
    );
    ensure!(h.requests_on[PREROLL_MIN as usize] == 0, "no canary traffic before T1");
    ensure!(h.requests_off[PREROLL_MIN as usize] > 0, "control traffic before T1");
    let on = between(&h.requests_on, 0, 360) as f64;
    let off = between(&h.requests_off, 0, 360) as f64;
    ensure!(
        ((on / (on + off)) - 0.1).abs() < 0.002,
        "canary share {}",
        on / (on + off)
    );
    ensure!(
        (on / 24.0 / 50_000.0 - 1.0).abs() < 0.01,
        "canary requests per 15 min {}",
        on / 24.0
    );
    let rate = |e: &[u64], r: &[u64], from, until| between(e, from, until) as f64 / between(r, from, until) as f64;
    let before = rate(&h.errors_on, &h.requests_on, 0, 120);
    let after = rate(&h.errors_on, &h.requests_on, 120, 360);
    let control = rate(&h.errors_off, &h.requests_off, 0, 360);
    ensure!((before / 0.01 - 1.0).abs() < 0.05, "canary rate before onset {before}");
    ensure!((after / 0.05 - 1.0).abs() < 0.05, "canary rate after onset {after}");
    ensure!((control / 0.01 - 1.0).abs() < 0.03, "control rate {control}");

    let dark = trial(
        Scenario::ControlOutage {
            kind: OutageKind::Dark,
            control_rate: 0.0,
            from_min: 100,
            until_min: 130,
        },
        0.01,
        1_000,
        12,
    );
    let h = generate::history(&dark);
    ensure!(between(&h.requests_off, 100, 130) == 0, "a dark control serves nothing");
    ensure!(
        between(&h.requests_off, 130, 131) > 0,
        "the control is back after the outage"
    );
    ensure!(
        between(&h.requests_on, 100, 130) > 0,
        "the canary serves during the outage"
    );

    let night = trial(
        Scenario::NightThin {
            floor: 0.05,
            fall_from_min: 60,
            fall_until_min: 180,
        },
        0.01,
        10_000,
        13,
    );
    let h = generate::history(&night);
    let day = between(&h.requests_on, 0, 60) as f64;
    let thin = between(&h.requests_on, 180, 240) as f64;
    ensure!(
        (thin / day - 0.05).abs() < 0.01,
        "night traffic {thin} against day {day}"
    );
    Ok(())
}

fn specs_and_openmetrics() -> Result<()> {
    let start = t(design::DEFAULT_START);
    let trials = design::trials(design::SMALL, start);
    ensure!(trials == design::trials(design::SMALL, start), "the design is fixed");
    let shapes = ["healthy", "regression", "spike", "control-outage", "night-thin"];
    for shape in shapes {
        ensure!(trials.iter().any(|t| t.scenario.shape() == shape), "no {shape} trial");
    }
    let full = design::trials(design::FULL, start);
    let count = |shape: &str| full.iter().filter(|t| t.scenario.shape() == shape).count();
    ensure!(
        count("healthy") >= 500 && count("regression") == 27 * 32,
        "full design sizes"
    );
    for shape in ["spike", "control-outage", "night-thin"] {
        ensure!(count(shape) >= 100, "{shape}: {} trials", count(shape));
    }
    for trial in full.iter().filter(|t| t.onset.is_some()) {
        let onset = trial.onset.unwrap() - start;
        ensure!(
            onset >= Duration::hours(1) && onset < Duration::hours(5),
            "onset {onset} outside 1h..5h"
        );
    }

    for trial in &trials {
        for kind in Kind::ALL {
            let text = generate::spec_text(trial, kind, "http://127.0.0.1:9");
            let path = format!("{}.yml", trial.rollout(kind));
            let (spec, _, diags) = flagramp::parse_spec(std::path::Path::new(&path), &text);
            ensure!(diags.is_empty(), "{path}: {diags:?}\n{text}");
            let spec = spec.expect("a valid spec");
            ensure!(spec.name == trial.rollout(kind) && spec.checks.len() == 1, "{path}");
            ensure!(!text.contains(trial.scenario.shape()), "{path} tells its scenario");
        }
    }
    let threshold = generate::spec_text(&trials[0], Kind::Threshold, "http://127.0.0.1:9");
    ensure!(threshold.contains("pass: \"<= 0.0075\""), "{threshold}");

    let histories: Vec<History> = trials.iter().take(3).map(generate::history).collect();
    let mut buf = Vec::new();
    let (samples, bytes, _) = generate::write_openmetrics(&mut buf, &trials[..3], &histories, start)?;
    let text = String::from_utf8(buf)?;
    ensure!(bytes as usize == text.len(), "bytes counted");
    ensure!(samples == 3 * 4 * generate::points() as u64, "samples counted");
    ensure!(text.ends_with("\n# EOF\n"), "OpenMetrics ends with # EOF");
    ensure!(text.contains("# TYPE bench_requests counter\n") && text.contains("# TYPE bench_errors counter\n"));
    let first = format!(
        "bench_requests_total{{trial=\"t0001\",variant=\"on\"}} 0 {}\n",
        start.timestamp()
    );
    ensure!(text.contains(&first), "expected the line {first}");
    Ok(())
}

pub fn run() -> Result<()> {
    for (name, test) in [
        ("samplers", samplers as fn() -> Result<()>),
        ("histories", histories),
        ("specs and OpenMetrics", specs_and_openmetrics),
    ] {
        test().map_err(|e| e.context(format!("selftest {name}")))?;
        eprintln!("judgment: selftest {name}: ok");
    }
    Ok(())
}
