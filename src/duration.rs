//! Spec durations such as `0s`, `90s`, `1h30m` and `2d`.

use std::fmt;

/// A whole number of seconds, parsed from one or more `<number><unit>` parts (`s m h d`), at most
/// [`SpecDuration::MAX`] (365 days).
///
/// The bound is what keeps timestamp arithmetic safe: a bake of `99999999999d` once passed
/// `validate` and then made every later run panic when added to the stage's start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct SpecDuration {
    seconds: u64,
}

impl SpecDuration {
    /// The longest duration a spec may set: 365 days.
    pub const MAX: SpecDuration = SpecDuration { seconds: 365 * 86_400 };

    /// A duration of `seconds`, capped at [`SpecDuration::MAX`].
    pub const fn from_secs(seconds: u64) -> Self {
        if seconds > Self::MAX.seconds {
            Self::MAX
        } else {
            SpecDuration { seconds }
        }
    }

    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.seconds
    }

    /// As a chrono duration, for arithmetic on timestamps; `None` when chrono cannot hold it.
    pub fn to_chrono(self) -> Option<chrono::TimeDelta> {
        chrono::TimeDelta::try_seconds(i64::try_from(self.seconds).ok()?)
    }

    /// As a std duration, for timeouts.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }

    /// Parses `1h30m`-style text of at most 365 days; the message says what is wrong and shows
    /// valid forms.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        let too_long = || DurationError::TooLong { text: text.to_string() };
        let mut seconds: u64 = 0;
        let mut digits = String::new();
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => {
                    return Err(DurationError::UnknownUnit {
                        text: text.to_string(),
                        unit: ch,
                    })
                }
            };
            if digits.is_empty() {
                return Err(DurationError::NoNumber {
                    text: text.to_string(),
                    unit: ch,
                });
            }
            // Digits past u64 are too long a duration all the same.
            let n: u64 = digits.parse().map_err(|_| too_long())?;
            seconds = n
                .checked_mul(unit)
                .and_then(|part| seconds.checked_add(part))
                .filter(|total| *total <= Self::MAX.seconds)
                .ok_or_else(too_long)?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(DurationError::NoUnit {
                text: text.to_string(),
                digits,
            });
        }
        Ok(SpecDuration { seconds })
    }
}

/// Why a text is not a duration; each message shows valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration: write it as <number><unit>, e.g. 90s, 10m, 1h30m, 2d")]
    Empty,
    /// A letter that is not a unit.
    #[error("`{text}` is not a duration: unknown unit `{unit}` (use s, m, h or d, e.g. 90s, 1h30m)")]
    UnknownUnit {
        /// The text.
        text: String,
        /// The letter.
        unit: char,
    },
    /// A unit with no number before it.
    #[error("`{text}` is not a duration: a number must come before `{unit}` (e.g. 90s, 1h30m)")]
    NoNumber {
        /// The text.
        text: String,
        /// The unit.
        unit: char,
    },
    /// A number with no unit after it.
    #[error("`{text}` is not a duration: `{digits}` has no unit (write {digits}s, {digits}m, {digits}h or {digits}d)")]
    NoUnit {
        /// The text.
        text: String,
        /// The digits.
        digits: String,
    },
    /// More than [`SpecDuration::MAX`].
    #[error("`{text}` is longer than {max}, the longest duration a spec may set", max = SpecDuration::MAX)]
    TooLong {
        /// The text.
        text: String,
    },
}

impl fmt::Display for SpecDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return write!(f, "0s");
        }
        let mut rest = self.seconds;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(SpecDuration::parse("0s").unwrap().as_secs(), 0);
        assert_eq!(SpecDuration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(SpecDuration::parse("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(SpecDuration::parse("2d").unwrap().as_secs(), 172_800);
    }

    #[test]
    fn allows_365_days_and_nothing_longer() {
        assert_eq!(SpecDuration::parse("365d"), Ok(SpecDuration::MAX));
        assert_eq!(SpecDuration::parse("364d23h59m60s"), Ok(SpecDuration::MAX));
        for long in [
            "365d1s",
            "366d",
            "99999999999d",
            "106751991167d",
            "9999999999999999s",
            "8760h1m",
        ] {
            let err = SpecDuration::parse(long).expect_err(long).to_string();
            assert!(err.contains("longer than 365d"), "{long}: {err}");
        }
    }

    #[test]
    fn every_value_converts_to_chrono_and_std() {
        for d in [
            SpecDuration::from_secs(0),
            SpecDuration::MAX,
            SpecDuration::from_secs(u64::MAX),
        ] {
            assert!(d <= SpecDuration::MAX);
            assert_eq!(d.to_chrono().expect("in range").num_seconds() as u64, d.as_secs());
            assert_eq!(d.to_std().as_secs(), d.as_secs());
        }
        // The furthest a bake can reach from now stays inside chrono's range for millennia.
        assert!(chrono::Utc::now()
            .checked_add_signed(SpecDuration::MAX.to_chrono().expect("in range"))
            .is_some());
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in ["", "10", "h", "1x", "1.5h", "-1h", "99999999999999999999d"] {
            assert!(SpecDuration::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn converts_to_chrono_without_overflowing() {
        assert_eq!(
            SpecDuration::from_secs(90).to_chrono(),
            Some(chrono::TimeDelta::seconds(90))
        );
        // Larger values are capped at the 365-day maximum, which chrono always holds.
        let max = Some(chrono::TimeDelta::days(365));
        assert_eq!(SpecDuration::from_secs(9_999_999_999_999_999).to_chrono(), max);
        assert_eq!(SpecDuration::from_secs(u64::MAX).to_chrono(), max);
    }

    #[test]
    fn displays_compactly() {
        assert_eq!(SpecDuration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(SpecDuration::from_secs(90).to_string(), "1m30s");
        assert_eq!(SpecDuration::from_secs(0).to_string(), "0s");
    }
}
