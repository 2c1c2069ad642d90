//! `generate`: the histories as OpenMetrics for `promtool tsdb create-blocks-from openmetrics`,
//! two rollout specs per trial, `truth.json`, and the counts Prometheus must answer for a few
//! known queries (`expect.tsv`, checked by scripts/bench-judgment before anything is judged).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};

use crate::design::{
    self, Kind, OutageKind, Scenario, Sizes, Trial, Truth, CANARY_SHARE, EVERY_MIN, HISTORY_MIN, LAG_MIN, PREROLL_MIN,
    SEED, SIMULATE_MIN,
};
use crate::rng::Rng;

/// Keeps the data draws apart from the draws of each trial's parameters (onset, duration).
const DATA_SALT: u64 = 0x6461_7461; // "data"

/// One minute between samples: every window the checks use (15m, and the stage's `15k − 1`
/// minutes) then starts and ends on a sample, so Prometheus 2.x's `increase()` over it is the
/// exact count, not an extrapolation. 4 series × 386 points × 1,692 trials is about 2.6 million
/// samples, about 180 MB of OpenMetrics.
pub const STEP_S: i64 = 60;

/// Cumulative counters of one trial, one point per minute from `history_start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    pub requests_on: Vec<u64>,
    pub requests_off: Vec<u64>,
    pub errors_on: Vec<u64>,
    pub errors_off: Vec<u64>,
}

/// Points per series: the preroll, the history after T1, and the point at T1 itself.
pub fn points() -> usize {
    (PREROLL_MIN + HISTORY_MIN + 1) as usize
}

/// The error rates of both cohorts and the share of traffic that still flows, for the minute
/// starting `minute` minutes after T1.
struct Minute {
    traffic: f64,
    canary_rate: f64,
    control_rate: f64,
    control_dark: bool,
}

fn minute(trial: &Trial, minute: i64) -> Minute {
    let base = trial.base_rate;
    let mut m = Minute {
        traffic: 1.0,
        canary_rate: base,
        control_rate: base,
        control_dark: false,
    };
    match trial.scenario {
        Scenario::Healthy => {}
        Scenario::Regression { factor, onset_min } => {
            if minute >= onset_min {
                m.canary_rate = (base * factor).min(1.0);
            }
        }
        Scenario::Spike {
            factor,
            from_min,
            until_min,
        } => {
            if (from_min..until_min).contains(&minute) {
                m.canary_rate = (base * factor).min(1.0);
                m.control_rate = m.canary_rate;
            }
        }
        Scenario::ControlOutage {
            kind,
            control_rate,
            from_min,
            until_min,
        } => {
            if (from_min..until_min).contains(&minute) {
                match kind {
                    OutageKind::Failing => m.control_rate = control_rate,
                    OutageKind::Dark => m.control_dark = true,
                }
            }
        }
        Scenario::NightThin {
            floor,
            fall_from_min,
            fall_until_min,
        } => {
            m.traffic = if minute < fall_from_min {
                1.0
            } else if minute >= fall_until_min {
                floor
            } else {
                let done = (minute - fall_from_min) as f64 / (fall_until_min - fall_from_min) as f64;
                1.0 - (1.0 - floor) * done
            };
        }
    }
    m
}

/// One trial's counters. Each minute: all requests are a Poisson draw, the canary's part of
/// them a binomial draw at its share (none before T1), and each cohort's errors a binomial draw
/// at its rate.
pub fn history(trial: &Trial) -> History {
    let mut rng = Rng::new(SEED ^ DATA_SALT, trial.stream);
    let n = points();
    let mut h = History {
        requests_on: Vec::with_capacity(n),
        requests_off: Vec::with_capacity(n),
        errors_on: Vec::with_capacity(n),
        errors_off: Vec::with_capacity(n),
    };
    let (mut ron, mut roff, mut eon, mut eoff) = (0u64, 0u64, 0u64, 0u64);
    let per_minute = trial.traffic as f64 / CANARY_SHARE / 15.0;
    for i in 0..n {
        if i > 0 {
            // The point at index i closes the minute that started at index i − 1.
            let start = i as i64 - 1 - PREROLL_MIN;
            let m = minute(trial, start);
            let all = rng.poisson(per_minute * m.traffic);
            let share = if start >= 0 { CANARY_SHARE } else { 0.0 };
            let canary = rng.binomial(all, share);
            let control = if m.control_dark { 0 } else { all - canary };
            ron += canary;
            roff += control;
            eon += rng.binomial(canary, m.canary_rate);
            eoff += rng.binomial(control, m.control_rate);
        }
        h.requests_on.push(ron);
        h.requests_off.push(roff);
        h.errors_on.push(eon);
        h.errors_off.push(eoff);
    }
    h
}

/// A writer that counts and digests (FNV-1a, 64 bits) what passes through it.
struct Digest<W> {
    inner: W,
    bytes: u64,
    hash: u64,
}

impl<W: Write> Write for Digest<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        for &b in &buf[..n] {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The metric families as promtool reads them: `# TYPE` without `_total`, samples with it, each
/// series' samples together and in time order, timestamps in seconds, `# EOF` last.
pub fn write_openmetrics(
    out: impl Write,
    trials: &[Trial],
    histories: &[History],
    start: DateTime<Utc>,
) -> io::Result<(u64, u64, u64)> {
    let mut w = Digest {
        inner: BufWriter::with_capacity(1 << 20, out),
        bytes: 0,
        hash: 0xCBF2_9CE4_8422_2325,
    };
    let t0 = start.timestamp();
    let mut samples = 0u64;
    type Pick = fn(&History) -> (&[u64], &[u64]);
    let families: [(&str, &str, Pick); 2] = [
        (
            "bench_requests",
            "Requests served, by trial and cohort (variant on: the flag is on).",
            |h| (&h.requests_on, &h.requests_off),
        ),
        ("bench_errors", "Failed requests, by trial and cohort.", |h| {
            (&h.errors_on, &h.errors_off)
        }),
    ];
    for (family, help, pick) in families {
        writeln!(w, "# HELP {family} {help}")?;
        writeln!(w, "# TYPE {family} counter")?;
        for (trial, history) in trials.iter().zip(histories) {
            let (on, off) = pick(history);
            for (variant, series) in [("on", on), ("off", off)] {
                for (i, value) in series.iter().enumerate() {
                    writeln!(
                        w,
                        "{family}_total{{trial=\"{}\",variant=\"{variant}\"}} {value} {}",
                        trial.trial,
                        t0 + i as i64 * STEP_S
                    )?;
                    samples += 1;
                }
            }
        }
    }
    writeln!(w, "# EOF")?;
    w.flush()?;
    Ok((samples, w.bytes, w.hash))
}

fn selector(metric: &str, trial: &Trial, variant: &str) -> String {
    format!("{metric}{{trial=\"{}\",variant=\"{variant}\"}}", trial.trial)
}

fn increase(metric: &str, trial: &Trial, variant: &str, window: &str) -> String {
    format!("sum(increase({}[{window}]))", selector(metric, trial, variant))
}

/// A rollout spec for one of the trial's two rollouts. Nothing in it tells the scenario.
pub fn spec_text(trial: &Trial, kind: Kind, prom_url: &str) -> String {
    let name = trial.rollout(kind);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Generated by benches/judgment.rs for scripts/bench-judgment (BENCHMARKS.md)."
    );
    let _ = writeln!(s, "version: 1");
    let _ = writeln!(s, "name: {name}");
    let _ = writeln!(
        s,
        "flag: {{ provider: flagd, key: bench-{name}, flagd: {{ path: flags.json }} }}"
    );
    let _ = writeln!(
        s,
        "stages: [{{ percent: 10, bake: 6h }}, {{ percent: 50, bake: 2h }}, 100]"
    );
    let _ = writeln!(s, "sources:");
    let _ = writeln!(
        s,
        "  prom: {{ provider: prometheus, url: '{prom_url}', lag: {LAG_MIN}m }}"
    );
    let _ = writeln!(s, "checks:");
    match kind {
        Kind::Compare => {
            let cohort = |variant: &str| {
                format!(
                    "{{ events: '{}', total: '{}' }}",
                    increase("bench_errors_total", trial, variant, "$window"),
                    increase("bench_requests_total", trial, variant, "$window")
                )
            };
            let _ = writeln!(s, "  - name: errors-vs-control");
            let _ = writeln!(s, "    source: prom");
            let _ = writeln!(s, "    compare:");
            let _ = writeln!(s, "      canary: {}", cohort("on"));
            let _ = writeln!(s, "      control: {}", cohort("off"));
            let _ = writeln!(s, "    window: stage");
            let _ = writeln!(s, "    max_increase: 0");
            let _ = writeln!(s, "    alpha: 0.01");
            let _ = writeln!(s, "    min_samples: 500");
        }
        Kind::Threshold => {
            let _ = writeln!(s, "  - name: error-rate");
            let _ = writeln!(s, "    source: prom");
            let _ = writeln!(s, "    window: 15m");
            let _ = writeln!(
                s,
                "    query: '{} / {}'",
                increase("bench_errors_total", trial, "on", "$window"),
                increase("bench_requests_total", trial, "on", "$window")
            );
            let _ = writeln!(s, "    pass: \"<= {}\"", trial.threshold());
        }
    }
    let _ = writeln!(s, "policy: {{ failures_to_rollback: 1 }}");
    s
}

/// Known answers: for the first trial of each shape (and outage kind), the 15-minute counts at
/// three ticks' query times, and the whole stage's canary counts at the last one.
pub fn expectations(truth: &Truth, histories: &[History]) -> Vec<(i64, u64, String)> {
    let mut out = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (trial, h) in truth.trials.iter().zip(histories) {
        let key = match &trial.scenario {
            Scenario::ControlOutage { kind, .. } => format!("control-outage-{kind:?}"),
            other => other.shape().to_string(),
        };
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let index = |minutes_after_t1: i64| (minutes_after_t1 + PREROLL_MIN) as usize;
        for tick in [1, 12, SIMULATE_MIN / EVERY_MIN] {
            let at = tick * EVERY_MIN - LAG_MIN;
            let time = truth.time(at).timestamp();
            let series: [(&str, &str, &[u64]); 4] = [
                ("bench_requests_total", "on", &h.requests_on),
                ("bench_requests_total", "off", &h.requests_off),
                ("bench_errors_total", "on", &h.errors_on),
                ("bench_errors_total", "off", &h.errors_off),
            ];
            for (metric, variant, counter) in series {
                let value = counter[index(at)] - counter[index(at - 15)];
                out.push((time, value, increase(metric, trial, variant, "15m")));
            }
            if tick == SIMULATE_MIN / EVERY_MIN {
                for (metric, counter) in [
                    ("bench_requests_total", &h.requests_on),
                    ("bench_errors_total", &h.errors_on),
                ] {
                    let value = counter[index(at)] - counter[index(0)];
                    out.push((time, value, increase(metric, trial, "on", &format!("{at}m"))));
                }
            }
        }
    }
    out
}

pub struct Options<'a> {
    pub out: &'a Path,
    pub prom_url: &'a str,
    pub small: bool,
    pub start: DateTime<Utc>,
}

pub fn run(options: &Options<'_>) -> Result<Truth> {
    let sizes: Sizes = if options.small { design::SMALL } else { design::FULL };
    let from = options.start;
    let trials = design::trials(sizes, from);
    let out = options.out;
    let specs = out.join("specs");
    if specs.exists() {
        // Specs of an earlier, larger run would otherwise be simulated with this one.
        fs::remove_dir_all(&specs).with_context(|| format!("removing {}", specs.display()))?;
    }
    fs::create_dir_all(&specs).with_context(|| format!("creating {}", specs.display()))?;

    let histories: Vec<History> = trials.iter().map(history).collect();
    let history_start = from - Duration::minutes(PREROLL_MIN);
    let om_path = out.join("history.om");
    let file = fs::File::create(&om_path).with_context(|| format!("creating {}", om_path.display()))?;
    let (samples, bytes, hash) = write_openmetrics(file, &trials, &histories, history_start)
        .with_context(|| format!("writing {}", om_path.display()))?;

    for trial in &trials {
        for kind in Kind::ALL {
            let path = specs.join(format!("{}.yml", trial.rollout(kind)));
            fs::write(&path, spec_text(trial, kind, options.prom_url))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }

    let truth = Truth {
        generator: "benches/judgment.rs".into(),
        seed: SEED,
        from,
        to: from + Duration::minutes(SIMULATE_MIN),
        every_min: EVERY_MIN,
        lag_min: LAG_MIN,
        history_start,
        history_end: from + Duration::minutes(HISTORY_MIN),
        step_s: STEP_S,
        canary_share: CANARY_SHARE,
        stages: "[{ percent: 10, bake: 6h }, { percent: 50, bake: 2h }, 100]".into(),
        small: options.small,
        samples,
        openmetrics_bytes: bytes,
        openmetrics_fnv1a64: format!("{hash:016x}"),
        trials,
    };
    let truth_path = out.join("truth.json");
    fs::write(&truth_path, serde_json::to_string_pretty(&truth)? + "\n")
        .with_context(|| format!("writing {}", truth_path.display()))?;

    let mut tsv = String::from("# time\texpected\tquery (scripts/bench-judgment checks each against Prometheus)\n");
    for (time, value, query) in expectations(&truth, &histories) {
        let _ = writeln!(tsv, "{time}\t{value}\t{query}");
    }
    fs::write(out.join("expect.tsv"), tsv)?;
    // For the script: the simulation's range, without parsing JSON in bash.
    let range = format!(
        "from={}\nto={}\nevery={}m\n",
        truth.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        truth.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        truth.every_min
    );
    fs::write(out.join("range"), range)?;
    Ok(truth)
}
