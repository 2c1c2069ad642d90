//! Which trials the benchmark runs, and the truth the scorer judges the records against.
//!
//! Every trial is one cohort history (canary at 10% of traffic, control at 90%) with two
//! rollouts over it: `<trial>-compare` (the `compare` check) and `<trial>-threshold` (the fixed
//! threshold baseline). Times are whole minutes from the start of the first stage (T1), which is
//! when the first tick starts the rollout.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The generator's seed: fixed, so every run generates the same data.
pub const SEED: u64 = 0x666c_6167_7261_6d70; // "flagramp"

/// T1 when `--start` is not given: in the past, at a fixed date, so the data are the same on
/// every run. 20:00 UTC, so the night-time shape reads as a night on the clock.
pub const DEFAULT_START: &str = "2026-11-30T20:00:00Z";

/// Error rates of the control cohort (and of a healthy canary).
pub const BASE_RATES: [f64; 3] = [0.005, 0.01, 0.02];
/// Canary requests per 15 minutes (the canary sees 10% of all traffic).
pub const TRAFFIC: [u64; 3] = [1_000, 10_000, 50_000];
/// Regression sizes: the canary's error rate after the onset, as a multiple of the control's.
pub const FACTORS: [f64; 3] = [1.5, 2.0, 5.0];
/// The canary's share of traffic from T1 on (the first stage's percentage).
pub const CANARY_SHARE: f64 = 0.10;

/// Minutes of control-only traffic before T1, so every counter exists before the stage starts.
pub const PREROLL_MIN: i64 = 5;
/// Minutes of data after T1: the 6h first stage, the tick that advances it, a little more.
pub const HISTORY_MIN: i64 = 6 * 60 + 20;
/// `--to` of the simulation, in minutes after T1: the tick at 6h advances a healthy rollout,
/// one tick more shows what follows.
pub const SIMULATE_MIN: i64 = 6 * 60 + 15;
/// Minutes between ticks (`--every 15m`) and the sources' lag (`lag: 1m`, the default).
pub const EVERY_MIN: i64 = 15;
pub const LAG_MIN: i64 = 1;
/// Regressions, spikes and outages begin at a uniformly drawn minute in this range (1h to 5h
/// after T1): inside the first stage with at least four evaluations left before it may advance.
pub const EVENT_FROM_MIN: i64 = 60;
pub const EVENT_UNTIL_MIN: i64 = 5 * 60;

/// Trials per cell.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Per base rate × traffic level (9 cells).
    pub healthy: usize,
    /// Per factor × base rate × traffic level (27 cells).
    pub regression: usize,
    /// Per base rate × traffic level, for each of spike, control outage and night-time thin.
    pub other: usize,
}

/// The full benchmark: 504 healthy, 864 regression, 108 each of spike, control outage and
/// night-time thin (1,692 trials, 3,384 rollouts).
pub const FULL: Sizes = Sizes {
    healthy: 56,
    regression: 32,
    other: 12,
};

/// `--small`: one trial per cell (two of the other shapes, so both kinds of control outage are
/// there), to check the pipeline quickly.
pub const SMALL: Sizes = Sizes {
    healthy: 1,
    regression: 1,
    other: 2,
};

/// What happens in a trial. Times are minutes after T1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "kebab-case")]
pub enum Scenario {
    /// Both cohorts at the base rate throughout.
    Healthy,
    /// The canary's error rate becomes `factor` × base from `onset` on, and stays there.
    Regression { factor: f64, onset_min: i64 },
    /// A platform-wide incident: both cohorts' error rates × `factor` for a while.
    Spike { factor: f64, from_min: i64, until_min: i64 },
    /// The control cohort fails for a while: `failing` serves errors at `control_rate`;
    /// `dark` serves nothing at all (its counters stand still).
    ControlOutage {
        kind: OutageKind,
        control_rate: f64,
        from_min: i64,
        until_min: i64,
    },
    /// Traffic falls to `floor` of its level between `fall_from_min` and `fall_until_min` and
    /// stays there (the default start puts this at 21:00–23:00 UTC).
    NightThin {
        floor: f64,
        fall_from_min: i64,
        fall_until_min: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutageKind {
    Failing,
    Dark,
}

impl Scenario {
    /// The shape's name in tables and `truth.json`.
    pub fn shape(&self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::Regression { .. } => "regression",
            Scenario::Spike { .. } => "spike",
            Scenario::ControlOutage { .. } => "control-outage",
            Scenario::NightThin { .. } => "night-thin",
        }
    }
}

/// One trial: a history and the two rollouts judged on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// `t0042`: the label in the metrics and the start of both rollouts' names.
    pub trial: String,
    /// The control's error rate (and the canary's when healthy).
    pub base_rate: f64,
    /// Canary requests per 15 minutes at full traffic.
    pub traffic: u64,
    #[serde(flatten)]
    pub scenario: Scenario,
    /// The regression's onset as a time (regressions only), for reading `truth.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onset: Option<DateTime<Utc>>,
    /// The stream of the seeded generator this trial's data come from.
    pub stream: u64,
}

impl Trial {
    pub fn rollout(&self, kind: Kind) -> String {
        format!("{}-{}", self.trial, kind.as_str())
    }

    /// The threshold baseline's limit: 1.5 × the base rate.
    pub fn threshold(&self) -> f64 {
        threshold_for(self.base_rate)
    }
}

/// 1.5 × base, rounded to 6 decimals so the spec shows the number people would write.
pub fn threshold_for(base_rate: f64) -> f64 {
    (base_rate * 1.5 * 1e6).round() / 1e6
}

/// The two rollouts of every trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Compare,
    Threshold,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Compare, Kind::Threshold];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Compare => "compare",
            Kind::Threshold => "threshold",
        }
    }
}

/// Everything the scorer needs besides the records; written as `truth.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub generator: String,
    pub seed: u64,
    /// T1: the first tick; the rollout starts and the first stage begins.
    pub from: DateTime<Utc>,
    /// The last tick (`--to`).
    pub to: DateTime<Utc>,
    pub every_min: i64,
    pub lag_min: i64,
    pub history_start: DateTime<Utc>,
    pub history_end: DateTime<Utc>,
    pub step_s: i64,
    pub canary_share: f64,
    pub stages: String,
    pub small: bool,
    /// Samples written (series × points) and the OpenMetrics file's size and FNV-1a digest.
    pub samples: u64,
    pub openmetrics_bytes: u64,
    pub openmetrics_fnv1a64: String,
    pub trials: Vec<Trial>,
}

impl Truth {
    /// A minute offset from T1 as a time.
    pub fn time(&self, minutes: i64) -> DateTime<Utc> {
        self.from + Duration::minutes(minutes)
    }
}

/// The trials, in a fixed order; their random parameters come from each trial's own stream.
pub fn trials(sizes: Sizes, from: DateTime<Utc>) -> Vec<Trial> {
    let mut out = Vec::new();
    let mut push = |base_rate: f64, traffic: u64, draw: &dyn Fn(&mut Rng) -> Scenario| {
        let stream = out.len() as u64 + 1;
        let mut rng = Rng::new(SEED, stream);
        let scenario = draw(&mut rng);
        let onset = match scenario {
            Scenario::Regression { onset_min, .. } => Some(from + Duration::minutes(onset_min)),
            _ => None,
        };
        out.push(Trial {
            trial: format!("t{stream:04}"),
            base_rate,
            traffic,
            scenario,
            onset,
            stream,
        });
    };
    let event = |rng: &mut Rng| rng.range(EVENT_FROM_MIN, EVENT_UNTIL_MIN);
    for base in BASE_RATES {
        for traffic in TRAFFIC {
            for _ in 0..sizes.healthy {
                push(base, traffic, &|_| Scenario::Healthy);
            }
        }
    }
    for factor in FACTORS {
        for base in BASE_RATES {
            for traffic in TRAFFIC {
                for _ in 0..sizes.regression {
                    push(base, traffic, &|rng| Scenario::Regression {
                        factor,
                        onset_min: event(rng),
                    });
                }
            }
        }
    }
    for base in BASE_RATES {
        for traffic in TRAFFIC {
            for _ in 0..sizes.other {
                push(base, traffic, &|rng| {
                    let from_min = event(rng);
                    Scenario::Spike {
                        factor: (rng.between(4.0, 10.0) * 10.0).round() / 10.0,
                        from_min,
                        until_min: from_min + rng.range(5, 21),
                    }
                });
            }
        }
    }
    for base in BASE_RATES {
        for traffic in TRAFFIC {
            for i in 0..sizes.other {
                // Alternating, so both kinds of outage meet every base rate and traffic level.
                let kind = if i % 2 == 0 {
                    OutageKind::Failing
                } else {
                    OutageKind::Dark
                };
                push(base, traffic, &|rng| {
                    let from_min = event(rng);
                    Scenario::ControlOutage {
                        kind,
                        control_rate: match kind {
                            OutageKind::Failing => (rng.between(0.2, 0.6) * 100.0).round() / 100.0,
                            OutageKind::Dark => 0.0,
                        },
                        from_min,
                        until_min: from_min + rng.range(15, 61),
                    }
                });
            }
        }
    }
    for base in BASE_RATES {
        for traffic in TRAFFIC {
            for _ in 0..sizes.other {
                push(base, traffic, &|_| Scenario::NightThin {
                    floor: 0.05,
                    fall_from_min: 60,
                    fall_until_min: 180,
                });
            }
        }
    }
    out
}
