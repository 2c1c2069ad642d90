//! Metric sources: where check values come from. One module per source behind [`MetricSource`].
//!
//! A source never fails an evaluation: whatever goes wrong becomes [`Measurement::Error`], which
//! the engine treats as a reason to hold, never as a metric failure.

mod command;
mod datadog;
mod json;
mod pool;
mod prometheus;

use chrono::{DateTime, Utc};

pub use command::CommandSource;
pub use datadog::DatadogSource;
pub use json::JsonSource;
pub use pool::{PooledSource, SourceIdentity, SourcePool};
pub use prometheus::PrometheusSource;

use crate::check::Measurement;
use crate::percent::Percent;
use crate::spec::Probe;

/// One measurement to take.
#[derive(Debug, Clone, Copy)]
pub struct MeasureRequest<'a> {
    /// The query or command.
    pub probe: &'a Probe,
    /// The time the value is for: queries are evaluated at it (the decision time minus the
    /// source's lag), commands get it as `FLAGRAMP_NOW`.
    pub at: DateTime<Utc>,
    /// The span the query covers, ending at `at`, when the check sets one.
    pub window: Option<std::time::Duration>,
    /// How long the measurement may take in all.
    pub timeout: std::time::Duration,
    /// The rollout, for `FLAGRAMP_ROLLOUT`.
    pub rollout: &'a str,
    /// The flag's current percentage, for `FLAGRAMP_PERCENT`.
    pub percent: Percent,
}

/// Produces a check's value.
#[async_trait::async_trait]
pub trait MetricSource: std::fmt::Debug + Send + Sync {
    /// Measures; every failure is a [`Measurement::Error`] with a readable message.
    async fn measure(&self, request: &MeasureRequest<'_>) -> Measurement;
}

/// Longest piece of a server's text quoted in a message.
pub(crate) const MAX_QUOTED: usize = 500;

/// At most [`MAX_QUOTED`] characters of a server's text, on one line. Secrets are redacted
/// later, where the message enters a record (`Runner::admit`).
pub(crate) fn quote(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX_QUOTED {
        format!("{}… (cut)", one_line.chars().take(MAX_QUOTED).collect::<String>())
    } else {
        one_line
    }
}
