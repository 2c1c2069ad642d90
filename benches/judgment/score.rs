//! `score`: the records of `flagramp simulate … --output json` judged against `truth.json`.
//!
//! Each rollout is scored from its start to its first move: the first `rollback`/`disable` or
//! the first `advance`. After that the simulated flag no longer matches the exposure in the data
//! (the history keeps the canary at 10%), so later records judge a world that did not happen;
//! simulate marks them `diverged` and they are left out.
//!
//! A tick sees a regression when the data it judges contain regressed minutes: the sources are
//! queried `lag` before the tick, so a tick at `t` sees it when `t − lag > onset`. The delay of
//! a detection is the number of such evaluations up to and including the one that rolled back
//! (1 = the first evaluation that could see it).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::design::{Kind, OutageKind, Scenario, Trial, Truth, BASE_RATES, FACTORS, TRAFFIC};

/// What the scorer reads of a decision record (src/record.rs `DecisionRecord`, plus simulate's
/// `diverged`). Decision and rule stay words so that a kind this scorer does not know is
/// counted, not a parse failure.
#[derive(Debug, Clone, Deserialize)]
pub struct SimRecord {
    pub rollout: String,
    pub at: DateTime<Utc>,
    pub decision: String,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub diverged: bool,
}

/// How a rollout's first stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Rollback(DateTime<Utc>),
    Advance(DateTime<Utc>),
}

/// One rollout's scored span.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    pub first_move: Option<Move>,
    /// Distinct tick times in the span, oldest first.
    pub ticks: Vec<DateTime<Utc>>,
    /// `decision (rule)` → count, for the decisions in the span.
    pub decisions: BTreeMap<String, u32>,
    /// Records before the first move marked `diverged` (there should be none).
    pub diverged: u32,
}

/// The records of one rollout, in time order, cut at the first move.
pub fn span(records: &[&SimRecord]) -> Span {
    let mut records = records.to_vec();
    records.sort_by_key(|r| r.at);
    let mut s = Span::default();
    for r in records {
        if s.ticks.last() != Some(&r.at) {
            s.ticks.push(r.at);
        }
        let key = match &r.rule {
            Some(rule) => format!("{} ({rule})", r.decision),
            None => r.decision.clone(),
        };
        *s.decisions.entry(key).or_default() += 1;
        let moves = matches!(r.decision.as_str(), "rollback" | "disable" | "advance");
        // The move itself may be marked: after it the simulated percent differs from the data.
        s.diverged += u32::from(r.diverged && !moves);
        match r.decision.as_str() {
            "rollback" | "disable" => {
                s.first_move = Some(Move::Rollback(r.at));
                break;
            }
            "advance" => {
                s.first_move = Some(Move::Advance(r.at));
                break;
            }
            _ => {}
        }
    }
    s
}

/// A regression rollout's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Rolled back after the regression became visible, `delay` evaluations in.
    Detected { delay: u32 },
    /// Rolled back before any tick could see the regression: a false rollback, not a detection.
    BeforeOnset,
    /// Advanced with the regression live.
    AdvancedLive,
    /// Never rolled back after the onset (held to the end, or advanced before it).
    Missed,
}

pub fn detection(span: &Span, onset: DateTime<Utc>, lag: Duration) -> Detection {
    let visible = |t: DateTime<Utc>| t - lag > onset;
    match span.first_move {
        Some(Move::Rollback(at)) if visible(at) => Detection::Detected {
            delay: span.ticks.iter().filter(|&&t| visible(t) && t <= at).count() as u32,
        },
        Some(Move::Rollback(_)) => Detection::BeforeOnset,
        Some(Move::Advance(at)) if visible(at) => Detection::AdvancedLive,
        _ => Detection::Missed,
    }
}

/// Counts of one cell for one kind of rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub trials: u32,
    pub rollbacks: u32,
    pub advanced: u32,
    pub detected: u32,
    pub within_two: u32,
    pub delays: Vec<u32>,
    pub advanced_live: u32,
    pub before_onset: u32,
    pub missed: u32,
}

impl Cell {
    fn add(&mut self, trial: &Trial, span: &Span, lag: Duration) {
        self.trials += 1;
        match span.first_move {
            Some(Move::Rollback(_)) => self.rollbacks += 1,
            Some(Move::Advance(_)) => self.advanced += 1,
            None => {}
        }
        if let Some(onset) = trial.onset {
            match detection(span, onset, lag) {
                Detection::Detected { delay } => {
                    self.detected += 1;
                    self.within_two += u32::from(delay <= 2);
                    self.delays.push(delay);
                }
                Detection::BeforeOnset => self.before_onset += 1,
                Detection::AdvancedLive => {
                    self.advanced_live += 1;
                    self.missed += 1;
                }
                Detection::Missed => self.missed += 1,
            }
        }
    }

    fn merge(&mut self, other: &Cell) {
        self.trials += other.trials;
        self.rollbacks += other.rollbacks;
        self.advanced += other.advanced;
        self.detected += other.detected;
        self.within_two += other.within_two;
        self.delays.extend_from_slice(&other.delays);
        self.advanced_live += other.advanced_live;
        self.before_onset += other.before_onset;
        self.missed += other.missed;
    }

    /// Regressions that were still running at their onset (not rolled back before it).
    fn live(&self) -> u32 {
        self.trials - self.before_onset
    }
}

/// The median of whole evaluations (the mean of the middle two for an even count).
pub fn median(values: &[u32]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(f64::from(v[n / 2])),
        _ => Some((f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0),
    }
}

/// The one-sided 95% Clopper–Pearson upper bound of a rate seen `k` times in `n`.
pub fn upper_bound(k: u32, n: u32) -> f64 {
    if n == 0 || k >= n {
        return 1.0;
    }
    let cdf = |p: f64| -> f64 {
        // P(X <= k) for X ~ Binomial(n, p), summed in logs so no term underflows early.
        let (n, k) = (f64::from(n), k);
        let mut log_term = n * (1.0 - p).ln();
        let mut sum = log_term.exp();
        for i in 0..k {
            let i = f64::from(i);
            log_term += ((n - i) / (i + 1.0)).ln() + (p / (1.0 - p)).ln();
            sum += log_term.exp();
        }
        sum
    };
    let (mut lo, mut hi) = (f64::from(k) / f64::from(n), 1.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if cdf(mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// Every rollout's span, keyed by trial and kind. Fails when a rollout has no records or a
/// record names a rollout the truth does not know: the run did not simulate what was generated.
pub fn spans(truth: &Truth, records: &[SimRecord]) -> Result<BTreeMap<(String, Kind), Span>> {
    let mut by_rollout: BTreeMap<&str, Vec<&SimRecord>> = BTreeMap::new();
    for r in records {
        by_rollout.entry(r.rollout.as_str()).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for trial in &truth.trials {
        for kind in Kind::ALL {
            let name = trial.rollout(kind);
            match by_rollout.remove(name.as_str()) {
                Some(records) => {
                    out.insert((trial.trial.clone(), kind), span(&records));
                }
                None => missing.push(name),
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} rollouts have no records (first: {}): was simulate run over every spec of this truth.json?",
            missing.len(),
            missing[0]
        );
    }
    if let Some(unknown) = by_rollout.keys().next() {
        bail!(
            "{} rollouts in the records are not in truth.json (first: {unknown}): records and truth come from different runs",
            by_rollout.len()
        );
    }
    Ok(out)
}

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn frac(k: u32, n: u32) -> String {
    if n == 0 {
        return "—".into();
    }
    format!("{k}/{n} ({})", pct(f64::from(k) / f64::from(n)))
}

fn rate(k: u32, n: u32) -> f64 {
    if n == 0 {
        0.0
    } else {
        f64::from(k) / f64::from(n)
    }
}

fn thousands(x: u64) -> String {
    let digits = x.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn base_text(base: f64) -> String {
    format!("{}%", base * 100.0)
}

fn factor_text(factor: f64) -> String {
    format!("{factor}×")
}

fn median_text(delays: &[u32]) -> String {
    median(delays).map_or("—".into(), |m| format!("{m}"))
}

fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// Which row of the no-regression table a trial belongs to.
fn shape_key(trial: &Trial) -> Option<&'static str> {
    Some(match trial.scenario {
        Scenario::Healthy => "healthy",
        Scenario::Regression { .. } => return None,
        Scenario::Spike { .. } => "spike",
        Scenario::ControlOutage {
            kind: OutageKind::Failing,
            ..
        } => "control outage: failing",
        Scenario::ControlOutage {
            kind: OutageKind::Dark, ..
        } => "control outage: dark",
        Scenario::NightThin { .. } => "night-time thin",
    })
}

/// The report: targets, false rollbacks by shape, detection by cell, decisions by rule.
pub fn report(truth: &Truth, records: &[SimRecord]) -> Result<String> {
    let spans = spans(truth, records)?;
    let lag = Duration::minutes(truth.lag_min);
    let span_of = |trial: &Trial, kind: Kind| &spans[&(trial.trial.clone(), kind)];

    // (shape, base, traffic) → per kind; base/traffic None = all.
    type Key = (String, Option<u64>, Option<u64>);
    let mut quiet: BTreeMap<Key, [Cell; 2]> = BTreeMap::new();
    let mut regressions: BTreeMap<(u64, u64, u64), [Cell; 2]> = BTreeMap::new();
    let mut decisions: [BTreeMap<String, u32>; 2] = Default::default();
    let mut diverged: BTreeMap<&'static str, [u32; 2]> = BTreeMap::new();
    let milli = |x: f64| (x * 1000.0).round() as u64;
    for trial in &truth.trials {
        for (k, kind) in Kind::ALL.into_iter().enumerate() {
            let s = span_of(trial, kind);
            for (d, n) in &s.decisions {
                *decisions[k].entry(d.clone()).or_default() += n;
            }
            if s.diverged > 0 {
                diverged.entry(shape_key(trial).unwrap_or("regression")).or_default()[k] += s.diverged;
            }
            match (&trial.scenario, shape_key(trial)) {
                (Scenario::Regression { factor, .. }, _) => {
                    let key = (milli(*factor), milli(trial.base_rate * 100.0), trial.traffic);
                    regressions.entry(key).or_default()[k].add(trial, s, lag);
                }
                (_, Some(shape)) => {
                    let keys: Vec<Key> = vec![
                        (shape.to_string(), None, None),
                        (
                            shape.to_string(),
                            Some(milli(trial.base_rate * 100.0)),
                            Some(trial.traffic),
                        ),
                        (shape.to_string(), None, Some(trial.traffic)),
                    ];
                    for key in keys {
                        quiet.entry(key).or_default()[k].add(trial, s, lag);
                    }
                }
                (_, None) => unreachable!("every non-regression shape has a row"),
            }
        }
    }
    let quiet_of = |shape: &str, base: Option<u64>, traffic: Option<u64>| {
        quiet
            .get(&(shape.to_string(), base, traffic))
            .cloned()
            .unwrap_or_default()
    };
    let pooled = |shapes: &[&str]| {
        let mut out: [Cell; 2] = Default::default();
        for shape in shapes {
            let cells = quiet_of(shape, None, None);
            out[0].merge(&cells[0]);
            out[1].merge(&cells[1]);
        }
        out
    };

    let mut md = String::new();
    let rollouts = truth.trials.len() * 2;
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "{} trials ({} rollouts), {} decision records. {} ticks every {} min (the first starts each rollout), sources queried {} min before each tick; each rollout is scored from its start to its first move (rollback or advance).{}\n",
        truth.trials.len(),
        rollouts,
        records.len(),
        (truth.to - truth.from).num_minutes() / truth.every_min + 1,
        truth.every_min,
        truth.lag_min,
        if truth.small { " **A `--small` run: too few trials for the targets.**" } else { "" }
    );

    // Targets.
    let healthy = pooled(&["healthy"]);
    let spike = pooled(&["spike"]);
    let outage = pooled(&["control outage: failing", "control outage: dark"]);
    let all_quiet = pooled(&[
        "healthy",
        "spike",
        "control outage: failing",
        "control outage: dark",
        "night-time thin",
    ]);
    let mut target_2x: [Cell; 2] = Default::default();
    let mut all_regressions: [Cell; 2] = Default::default();
    for (&(factor, base, traffic), cells) in &regressions {
        for k in 0..2 {
            all_regressions[k].merge(&cells[k]);
            if factor == 2000 && base >= 1000 && traffic >= 10_000 {
                target_2x[k].merge(&cells[k]);
            }
        }
    }
    let fr = |c: &Cell| rate(c.rollbacks, c.trials);
    let miss = |c: &Cell| rate(c.missed, c.live());
    let with_bound = |c: &Cell| {
        format!(
            "{}/{} ({}; ≤ {} at 95%)",
            c.rollbacks,
            c.trials,
            pct(rate(c.rollbacks, c.trials)),
            pct(upper_bound(c.rollbacks, c.trials))
        )
    };
    let _ = writeln!(md, "### Targets (for the `compare` check)\n");
    let _ = writeln!(md, "| target | compare | threshold | met |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    let _ = writeln!(
        md,
        "| false rollbacks on healthy rollouts ≤ 1%, over ≥ 500 | {} | {} | {} |",
        with_bound(&healthy[0]),
        frac(healthy[1].rollbacks, healthy[1].trials),
        yes(healthy[0].trials >= 500 && fr(&healthy[0]) <= 0.01)
    );
    for (name, cells) in [("spike", &spike), ("control-outage", &outage)] {
        let _ = writeln!(
            md,
            "| {name} false rollbacks ≤ the healthy rate | {} | {} | {} |",
            frac(cells[0].rollbacks, cells[0].trials),
            frac(cells[1].rollbacks, cells[1].trials),
            yes(cells[0].trials > 0 && fr(&cells[0]) <= fr(&healthy[0]))
        );
    }
    let _ = writeln!(
        md,
        "| ≥ 95% of 2× regressions rolled back within 2 evaluations of onset (base ≥ 1%, canary ≥ 10,000 / 15 min) | {} | {} | {} |",
        frac(target_2x[0].within_two, target_2x[0].trials),
        frac(target_2x[1].within_two, target_2x[1].trials),
        yes(target_2x[0].trials > 0 && rate(target_2x[0].within_two, target_2x[0].trials) >= 0.95)
    );
    let better = |ours: f64, theirs: f64| ours < theirs || (ours == 0.0 && theirs == 0.0);
    let _ = writeln!(
        md,
        "| fewer false rollbacks than the threshold (every rollout without a regression) | {} | {} | {} |",
        frac(all_quiet[0].rollbacks, all_quiet[0].trials),
        frac(all_quiet[1].rollbacks, all_quiet[1].trials),
        yes(all_quiet[0].trials > 0 && better(fr(&all_quiet[0]), fr(&all_quiet[1])))
    );
    let _ = writeln!(
        md,
        "| more regressions detected than the threshold (rolled back after a tick could see it, of every regressed rollout) | {} | {} | {} |",
        frac(all_regressions[0].detected, all_regressions[0].trials),
        frac(all_regressions[1].detected, all_regressions[1].trials),
        yes(all_regressions[0].trials > 0 && all_regressions[0].detected > all_regressions[1].detected)
    );
    let _ = writeln!(
        md,
        "| fewer missed regressions than the threshold (of those live at onset: advanced with it live, or never rolled back) | {} | {} | {} |\n",
        frac(all_regressions[0].missed, all_regressions[0].live()),
        frac(all_regressions[1].missed, all_regressions[1].live()),
        yes(all_regressions[0].trials > 0 && better(miss(&all_regressions[0]), miss(&all_regressions[1])))
    );

    // False rollbacks without a regression.
    let _ = writeln!(md, "### Rollouts without a regression\n");
    let _ = writeln!(
        md,
        "False rollbacks: any rollback in the first stage. Advanced: reached 50% (the stage's bake is 6 h, so the tick at T1 + 6 h is the first that can).\n"
    );
    let _ = writeln!(
        md,
        "| shape | base rate | canary / 15 min | trials | compare: false rollbacks | compare: advanced | threshold: false rollbacks | threshold: advanced |"
    );
    let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut quiet_row = |shape: &str, base: &str, traffic: &str, cells: &[Cell; 2]| {
        let _ = writeln!(
            md,
            "| {shape} | {base} | {traffic} | {} | {} | {} | {} | {} |",
            cells[0].trials,
            frac(cells[0].rollbacks, cells[0].trials),
            frac(cells[0].advanced, cells[0].trials),
            frac(cells[1].rollbacks, cells[1].trials),
            frac(cells[1].advanced, cells[1].trials),
        );
    };
    for shape in [
        "healthy",
        "spike",
        "control outage: failing",
        "control outage: dark",
        "night-time thin",
    ] {
        let all = quiet_of(shape, None, None);
        if all[0].trials == 0 {
            continue;
        }
        quiet_row(shape, "all", "all", &all);
        if shape == "healthy" {
            for base in BASE_RATES {
                for traffic in TRAFFIC {
                    let cells = quiet_of(shape, Some(milli(base * 100.0)), Some(traffic));
                    quiet_row(shape, &base_text(base), &thousands(traffic), &cells);
                }
            }
        } else {
            for traffic in TRAFFIC {
                let cells = quiet_of(shape, None, Some(traffic));
                quiet_row(shape, "all", &thousands(traffic), &cells);
            }
        }
    }

    // Detection.
    let _ = writeln!(md, "\n### Regressions\n");
    let _ = writeln!(
        md,
        "The canary's error rate becomes the factor × the base rate at a random minute 1–5 h into the first stage. Detected: rolled back after a tick could see it; ≤ 2: within 2 evaluations; delay: median evaluations from onset to the rollback (1 = the first tick that sees it); advanced live: reached 50% with the regression running; early: rolled back before any tick could see it (a false rollback, not a detection).\n"
    );
    let _ = writeln!(
        md,
        "| factor | base rate | canary / 15 min | trials | compare: detected | ≤ 2 | delay | advanced live | early | threshold: detected | ≤ 2 | delay | advanced live | early |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for factor in FACTORS {
        for base in BASE_RATES {
            for traffic in TRAFFIC {
                let Some(cells) = regressions.get(&(milli(factor), milli(base * 100.0), traffic)) else {
                    continue;
                };
                let mut row = format!(
                    "| {} | {} | {} | {} |",
                    factor_text(factor),
                    base_text(base),
                    thousands(traffic),
                    cells[0].trials
                );
                for c in cells {
                    let _ = write!(
                        row,
                        " {} | {} | {} | {} | {} |",
                        frac(c.detected, c.trials),
                        frac(c.within_two, c.trials),
                        median_text(&c.delays),
                        c.advanced_live,
                        c.before_onset
                    );
                }
                let _ = writeln!(md, "{row}");
            }
        }
    }

    // Decisions by rule, for reading the tables above.
    let _ = writeln!(md, "\n### Decisions in the scored spans\n");
    let _ = writeln!(md, "| decision (rule) | compare | threshold |");
    let _ = writeln!(md, "| --- | --- | --- |");
    let mut words: Vec<&String> = decisions[0].keys().chain(decisions[1].keys()).collect();
    words.sort();
    words.dedup();
    for word in words {
        let _ = writeln!(
            md,
            "| {word} | {} | {} |",
            decisions[0].get(word).copied().unwrap_or(0),
            decisions[1].get(word).copied().unwrap_or(0)
        );
    }
    if !diverged.is_empty() {
        let _ = writeln!(
            md,
            "\n### Ticks marked `diverged` before a rollout's first move\n\nThe simulated flag is at 10% until the first move, as the data were made. A tick is marked when the exposure the data show does not fit it (the sample ratio test). In a dark control outage the control's counters stand still, so the data show more exposure than 10%: `simulate` cannot tell that from another split and marks the tick (a real run would hold it on rule `srm`). In any other shape a mark would be a fault.\n\n| shape | compare | threshold |\n| --- | --- | --- |"
        );
        for (shape, [compare, threshold]) in &diverged {
            let _ = writeln!(md, "| {shape} | {compare} | {threshold} |");
        }
    }
    Ok(md)
}

pub fn read_records(text: &str) -> Result<Vec<SimRecord>> {
    serde_json::from_str(text).context("records: expected one JSON array of decision records")
}

pub fn read_truth(text: &str) -> Result<Truth> {
    serde_json::from_str(text).context("truth.json")
}
