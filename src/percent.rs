//! Traffic shares, held as integer thousandths of a percent.
//!
//! flagd weights and LaunchDarkly rollout weights are both thousandths of a percent, and the spec
//! allows at most three decimals, so an integer here is exact where a float would drift.

use std::fmt;

use serde::{Serialize, Serializer};

/// A share of users in thousandths of a percent: `Percent(12_500)` is 12.5%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(u32);

impl Percent {
    /// 0%.
    pub const ZERO: Percent = Percent(0);
    /// 100%.
    pub const FULL: Percent = Percent(100_000);

    /// Builds a share from thousandths of a percent; `None` above 100%.
    pub fn from_millis(millis: u32) -> Option<Percent> {
        (millis <= Self::FULL.0).then_some(Percent(millis))
    }

    /// `part` of `total` (flagd's relative weights), rounded to the nearest thousandth; `None`
    /// when `total` is 0 or smaller than `part`. Exact for every pair of `u64`s.
    pub fn share(part: u64, total: u64) -> Option<Percent> {
        if total == 0 || part > total {
            return None;
        }
        let full = u128::from(Self::FULL.0);
        let millis = (u128::from(part) * full + u128::from(total) / 2) / u128::from(total);
        u32::try_from(millis).ok().and_then(Percent::from_millis)
    }

    /// Thousandths of a percent, as flagd and LaunchDarkly weights want them.
    pub fn millis(self) -> u32 {
        self.0
    }

    /// The share as a plain number of percent (`12.5`), for JSON and messages.
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }

    /// Parses a decimal such as `10`, `12.5` or `0.125` exactly.
    ///
    /// Fails with a message fit for a spec diagnostic when the text is not a plain decimal, has
    /// more than three decimals, or is outside (0, 100].
    pub fn parse_stage(text: &str) -> Result<Percent, PercentError> {
        let text = text.trim();
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits_ok =
            !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit());
        let error = |kind: fn(String) -> PercentError| kind(text.to_string());
        if !digits_ok {
            return Err(error(PercentError::NotANumber));
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > 3 {
            return Err(error(PercentError::TooPrecise));
        }
        let whole: u64 = whole.parse().map_err(|_| error(PercentError::OutOfRange))?;
        let frac_millis: u64 = format!("{frac:0<3}").parse().unwrap_or(0);
        let millis = whole.saturating_mul(1000).saturating_add(frac_millis);
        if millis == 0 || millis > 100_000 {
            return Err(error(PercentError::OutOfRange));
        }
        Ok(Percent(millis as u32))
    }

    /// True when the share is a whole number of percent.
    pub fn is_whole(self) -> bool {
        self.0.is_multiple_of(1000)
    }
}

/// A whole percentage for unit tests, `pct(10)` = 10 %.
#[cfg(test)]
pub(crate) fn pct(p: u32) -> Percent {
    Percent::from_millis(p * 1000).expect("at most 100 %")
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = self.0 % 1000;
        if frac == 0 {
            write!(f, "{whole}%")
        } else {
            let frac = format!("{frac:03}");
            write!(f, "{whole}.{}%", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole percents print as integers (`10`, not `10.0`), as people write them in specs.
        if self.is_whole() {
            serializer.serialize_u32(self.0 / 1000)
        } else {
            serializer.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Percent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        let millis = (value * 1000.0).round();
        if !(0.0..=100_000.0).contains(&millis) {
            return Err(serde::de::Error::custom(format!("percent {value} is outside [0, 100]")));
        }
        Ok(Percent(millis as u32))
    }
}

impl schemars::JsonSchema for Percent {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "description": "A share of users in percent, with at most three decimals; 0 when the flag is off."
        })
    }
}

/// Why a text is not a stage's percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentError {
    /// Not a plain decimal.
    #[error("`{0}` is not a number of percent")]
    NotANumber(String),
    /// More decimals than flag systems keep.
    #[error("{0}% has more than 3 decimals; flag systems store thousandths of a percent")]
    TooPrecise(String),
    /// 0, or more than 100.
    #[error("{0}% is outside (0, 100]")]
    OutOfRange(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_thousandths() {
        assert_eq!(Percent::parse_stage("10").unwrap().millis(), 10_000);
        assert_eq!(Percent::parse_stage("12.5").unwrap().millis(), 12_500);
        assert_eq!(Percent::parse_stage("0.125").unwrap().millis(), 125);
        assert_eq!(Percent::parse_stage("100.000").unwrap().millis(), 100_000);
        assert_eq!(Percent::parse_stage("0.0010").unwrap().millis(), 1);
    }

    #[test]
    fn rejects_out_of_range_and_too_precise() {
        for bad in ["0", "0.000", "100.001", "150", "-5", "1e2", "0.0001", "abc", ""] {
            assert!(Percent::parse_stage(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn shares_are_exact_for_the_largest_weights() {
        assert_eq!(Percent::share(u64::MAX, u64::MAX), Some(Percent::FULL));
        assert_eq!(Percent::share(u64::MAX / 2, u64::MAX), Some(Percent(50_000)));
        assert_eq!(Percent::share(1, u64::MAX), Some(Percent::ZERO));
        assert_eq!(Percent::share(25, 100), Some(Percent(25_000)));
        assert_eq!(Percent::share(1, 3), Some(Percent(33_333)));
        assert_eq!(Percent::share(0, 0), None);
        assert_eq!(Percent::share(2, 1), None);
    }

    #[test]
    fn displays_without_trailing_zeros() {
        assert_eq!(Percent(12_500).to_string(), "12.5%");
        assert_eq!(Percent(125).to_string(), "0.125%");
        assert_eq!(Percent(50_000).to_string(), "50%");
    }
}
