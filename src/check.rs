//! Pass conditions, verdicts and the readable text of a check's outcome.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The comparison in a check's `pass` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

/// A check's `pass` condition, such as `>= 0.95`, or `<= control * 1.1` against a control query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// How the value is compared.
    pub comparison: Comparison,
    /// What it is compared with; with a control, the constant added to the scaled control value.
    pub threshold: f64,
    /// `Some(factor)`: the value is compared with `factor × control + threshold`.
    pub control_factor: Option<f64>,
}

/// Why a text is not a pass condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// It does not start with a comparison.
    #[error("`{0}` is not a condition: start with <, <=, >, >=, == or != and a number, e.g. \">= 0.95\"")]
    NoComparison(String),
    /// What follows the comparison is not a finite number.
    #[error("`{text}` is not a condition: `{number}` is not a finite number, e.g. \">= 0.95\"")]
    NotFinite {
        /// The condition.
        text: String,
        /// The part that should be a number.
        number: String,
    },
    /// A comparison with `control` that is not `control`, `control * k`, `control + c` or
    /// `control * k + c`.
    #[error("`{0}` is not a condition: compare with `control`, `control * 1.1`, `control + 5` or `control * 1.1 + 5`")]
    BadControl(String),
}

impl Condition {
    /// Parses `(<|<=|>|>=|==|!=) number`, or the same comparison with
    /// `control [* factor] [(+|-) number]`.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let trimmed = text.trim();
        let (comparison, rest) = [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("==", Comparison::Equal),
            ("!=", Comparison::NotEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ]
        .into_iter()
        .find_map(|(sym, cmp)| trimmed.strip_prefix(sym).map(|rest| (cmp, rest)))
        .ok_or_else(|| ConditionError::NoComparison(trimmed.to_string()))?;
        let rest = rest.trim();
        if let Some(after) = rest.strip_prefix("control") {
            return Condition::parse_control(comparison, after, trimmed);
        }
        Ok(Condition {
            comparison,
            threshold: finite(rest, trimmed)?,
            control_factor: None,
        })
    }

    fn parse_control(comparison: Comparison, after: &str, text: &str) -> Result<Condition, ConditionError> {
        let bad = || ConditionError::BadControl(text.to_string());
        let mut rest = after.trim_start();
        if !after.is_empty() && rest.len() == after.len() {
            // `controls`, `control1`: not the word `control`.
            return Err(bad());
        }
        let mut factor = 1.0;
        if let Some(f) = rest.strip_prefix('*') {
            let f = f.trim_start();
            let end = f.find(['+', '-']).filter(|&i| i > 0).unwrap_or(f.len());
            factor = finite(f[..end].trim(), text)?;
            rest = &f[end..];
        }
        let rest = rest.trim();
        let threshold = if rest.is_empty() {
            0.0
        } else if let Some(n) = rest.strip_prefix('+') {
            finite(n.trim(), text)?
        } else if let Some(n) = rest.strip_prefix('-') {
            -finite(n.trim(), text)?
        } else {
            return Err(bad());
        };
        Ok(Condition {
            comparison,
            threshold,
            control_factor: Some(factor),
        })
    }

    /// What the value is compared with: the threshold, or `factor × control + threshold`.
    /// `None` when the condition needs a control value and has none.
    pub fn bound(&self, control: Option<f64>) -> Option<f64> {
        match self.control_factor {
            None => Some(self.threshold),
            Some(factor) => control.map(|c| factor * c + self.threshold),
        }
    }

    /// Whether `value` satisfies the condition against `bound` (see [`Condition::bound`]).
    pub fn holds_against(&self, value: f64, bound: f64) -> bool {
        match self.comparison {
            Comparison::Less => value < bound,
            Comparison::LessOrEqual => value <= bound,
            Comparison::Greater => value > bound,
            Comparison::GreaterOrEqual => value >= bound,
            Comparison::Equal => value == bound,
            Comparison::NotEqual => value != bound,
        }
    }

    /// Whether `value` satisfies a condition without a control.
    pub fn holds(&self, value: f64) -> bool {
        self.holds_against(value, self.threshold)
    }

    /// How `value` really relates to what it was compared with, for a reason: `0.8 < 0.95`, or
    /// `312 > 1.1 × control 270 = 297`.
    pub fn describe_actual(&self, value: f64, control: Option<f64>) -> String {
        let bound = self.bound(control).unwrap_or(self.threshold);
        let relation = if value < bound {
            "<"
        } else if value > bound {
            ">"
        } else {
            "=="
        };
        let against = match (self.control_factor, control) {
            (Some(factor), Some(c)) => {
                let scaled = if factor == 1.0 {
                    format!("control {}", sig4(c))
                } else {
                    format!("{} × control {}", sig4(factor), sig4(c))
                };
                let offset = match self.threshold {
                    t if t > 0.0 => format!(" + {}", sig4(t)),
                    t if t < 0.0 => format!(" - {}", sig4(-t)),
                    _ => String::new(),
                };
                if factor == 1.0 && offset.is_empty() {
                    scaled
                } else {
                    format!("{scaled}{offset} = {}", sig4(bound))
                }
            }
            _ => sig4(bound),
        };
        format!("{} {relation} {against}", sig4(value))
    }
}

/// `number` as a finite number, or the error naming it in `text`.
fn finite(number: &str, text: &str) -> Result<f64, ConditionError> {
    number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| ConditionError::NotFinite {
            text: text.to_string(),
            number: number.to_string(),
        })
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(factor) = self.control_factor else {
            return write!(f, "{} {}", self.comparison.symbol(), sig4(self.threshold));
        };
        write!(f, "{} control", self.comparison.symbol())?;
        if factor != 1.0 {
            write!(f, " * {}", sig4(factor))?;
        }
        match self.threshold {
            t if t > 0.0 => write!(f, " + {}", sig4(t)),
            t if t < 0.0 => write!(f, " - {}", sig4(-t)),
            _ => Ok(()),
        }
    }
}

/// Formats a value with at most 4 significant digits (`0.7999999999999999` → `0.8`).
pub fn sig4(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".into();
    }
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    let text = rounded.to_string();
    // Rust prints 1e21 and above in full; exponent form keeps reasons short.
    if rounded.abs() >= 1e9 {
        format!("{rounded:e}")
    } else {
        text
    }
}

/// The outcome of one check in one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The value satisfies the condition.
    Pass,
    /// The value does not satisfy the condition.
    Fail,
    /// No usable value: no series, null, NaN or infinite.
    NoData,
    /// The source failed: timeout, HTTP error, a bad answer, a command that failed.
    Error,
    /// A `compare` check without enough data to judge yet (below `min_samples`, or an empty
    /// window): it holds, like `no_data`.
    Insufficient,
    /// A `compare` check at 100%, where there is no control cohort: never a reason to hold.
    Skipped,
}

impl Verdict {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoData => "no_data",
            Verdict::Error => "error",
            Verdict::Insufficient => "insufficient",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What a metric source measured for one check, before the condition is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// A finite number.
    Value(f64),
    /// Nothing usable; the text says why (empty result, NaN, …).
    NoData(String),
    /// The source failed; the text says how and, where it can, what to do.
    Error(String),
}

/// What was measured for one check, and the time it is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The answers.
    pub what: Measurements,
    /// The time the values are for (the decision time minus the source's lag).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The answers a check's queries got.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurements {
    /// A threshold check: its own query or command, and its control query's answer when it
    /// compares with one.
    Value {
        /// The check's own query or command.
        own: Measurement,
        /// The control query's answer, for a check that has one.
        control: Option<Measurement>,
    },
    /// A `compare` check's counts over `[since, at]`.
    Counts(CountsMeasured),
}

/// A `compare` check's counts, one answer per query.
#[derive(Debug, Clone, PartialEq)]
pub struct CountsMeasured {
    /// Where the counted window starts (the stage's entry, or `at` minus the window). When it is
    /// not before `at`, the window is empty and nothing was queried.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The exposed cohort.
    pub canary: CohortMeasured,
    /// The cohort without the flag.
    pub control: CohortMeasured,
}

/// One cohort's count answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortMeasured {
    /// Events (such as failed requests).
    pub events: Measurement,
    /// What they are out of (such as requests).
    pub total: Measurement,
    /// Distinct users or sessions, when the check counts them.
    pub units: Option<Measurement>,
}

impl Measured {
    /// A threshold check's answer, without a control.
    pub fn value(own: Measurement, at: chrono::DateTime<chrono::Utc>) -> Measured {
        Measured {
            what: Measurements::Value { own, control: None },
            at,
        }
    }
}

impl Measurement {
    /// Turns raw text (`"NaN"`, `"+Inf"`, `"0.99"`) into a measurement, as Prometheus encodes values.
    pub fn from_number_text(text: &str) -> Measurement {
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Measurement::Value(v),
            Ok(v) => Measurement::NoData(format!("value is {v}")),
            Err(_) => Measurement::Error(format!("`{}` is not a number", text.trim())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_comparison() {
        for (text, cmp) in [
            ("< 1", Comparison::Less),
            ("<=1", Comparison::LessOrEqual),
            ("> 1", Comparison::Greater),
            (">= 0.95", Comparison::GreaterOrEqual),
            ("== 1", Comparison::Equal),
            ("!= 0", Comparison::NotEqual),
        ] {
            assert_eq!(Condition::parse(text).unwrap().comparison, cmp, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_conditions() {
        for bad in ["0.95", ">= ", "=> 1", ">= abc", ">= NaN", ">= inf", ""] {
            assert!(Condition::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn describes_the_failed_comparison() {
        let cond = Condition::parse(">= 0.95").unwrap();
        assert!(!cond.holds(0.7999999999999999));
        assert_eq!(cond.describe_actual(0.7999999999999999, None), "0.8 < 0.95");
        assert_eq!(cond.to_string(), ">= 0.95");
    }

    #[test]
    fn compares_with_a_control() {
        let cond = Condition::parse("<= control * 1.1").unwrap();
        assert_eq!(cond.control_factor, Some(1.1));
        assert_eq!(cond.to_string(), "<= control * 1.1");
        assert_eq!(cond.bound(Some(270.0)), Some(297.0));
        assert_eq!(cond.bound(None), None);
        assert!(!cond.holds_against(312.0, 297.0));
        assert_eq!(
            cond.describe_actual(312.0, Some(270.0)),
            "312 > 1.1 × control 270 = 297"
        );
        let plus = Condition::parse("< control + 0.5").unwrap();
        assert_eq!((plus.control_factor, plus.threshold), (Some(1.0), 0.5));
        assert_eq!(plus.describe_actual(3.0, Some(2.0)), "3 > control 2 + 0.5 = 2.5");
        let minus = Condition::parse(">= control - 2").unwrap();
        assert_eq!(minus.bound(Some(10.0)), Some(8.0));
        assert_eq!(minus.to_string(), ">= control - 2");
        let both = Condition::parse("<= control * 2 + 1").unwrap();
        assert_eq!(both.bound(Some(3.0)), Some(7.0));
        assert_eq!(both.to_string(), "<= control * 2 + 1");
        let bare = Condition::parse("<= control").unwrap();
        assert_eq!(bare.describe_actual(5.0, Some(4.0)), "5 > control 4");
        assert_eq!(bare.to_string(), "<= control");
        for bad in [
            "<= controls",
            "<= control *",
            "<= control * x",
            "<= control / 2",
            "<= control 5",
            "<= control * inf",
        ] {
            assert!(Condition::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn four_significant_digits() {
        assert_eq!(sig4(0.123456), "0.1235");
        assert_eq!(sig4(12345.6), "12350");
        assert_eq!(sig4(1.0), "1");
        assert_eq!(sig4(-0.000012346), "-0.00001235");
    }

    #[test]
    fn non_finite_text_is_no_data() {
        assert!(matches!(Measurement::from_number_text("NaN"), Measurement::NoData(_)));
        assert!(matches!(Measurement::from_number_text("+Inf"), Measurement::NoData(_)));
        assert_eq!(Measurement::from_number_text("0.5"), Measurement::Value(0.5));
        assert!(matches!(Measurement::from_number_text("x"), Measurement::Error(_)));
    }
}
