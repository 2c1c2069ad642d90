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

/// A check's `pass` condition, such as `>= 0.95`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// How the value is compared.
    pub comparison: Comparison,
    /// What it is compared with.
    pub threshold: f64,
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
}

impl Condition {
    /// Parses `(<|<=|>|>=|==|!=) number`.
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
        let number = rest.trim();
        let threshold: f64 =
            number
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| ConditionError::NotFinite {
                    text: trimmed.to_string(),
                    number: number.to_string(),
                })?;
        Ok(Condition { comparison, threshold })
    }

    /// Whether `value` satisfies the condition.
    pub fn holds(&self, value: f64) -> bool {
        let t = self.threshold;
        match self.comparison {
            Comparison::Less => value < t,
            Comparison::LessOrEqual => value <= t,
            Comparison::Greater => value > t,
            Comparison::GreaterOrEqual => value >= t,
            Comparison::Equal => value == t,
            Comparison::NotEqual => value != t,
        }
    }

    /// How `value` really relates to the threshold, for a failure reason: `0.8 < 0.95`.
    pub fn describe_actual(&self, value: f64) -> String {
        let relation = if value < self.threshold {
            "<"
        } else if value > self.threshold {
            ">"
        } else {
            "=="
        };
        format!("{} {relation} {}", sig4(value), sig4(self.threshold))
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.comparison.symbol(), sig4(self.threshold))
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
}

impl Verdict {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoData => "no_data",
            Verdict::Error => "error",
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
        assert_eq!(cond.describe_actual(0.7999999999999999), "0.8 < 0.95");
        assert_eq!(cond.to_string(), ">= 0.95");
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
