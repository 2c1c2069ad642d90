//! How late a scheduled workflow run started against the cron slot it belongs to. GitHub starts
//! scheduled runs minutes to hours after their slot under load, and a rollout whose bake is
//! shorter than that lag bakes longer than its spec says.
//!
//! A `schedule` event's payload names the cron (`"schedule": "17,47 * * * *"`) but no time: the
//! run's start is the runner's clock when flagramp starts, which is later than GitHub's own
//! `run_started_at` by the job's setup (seconds, usually), and costs no API request to learn.

use chrono::{DateTime, TimeDelta, Utc};
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde_json::Value;

use crate::duration::SpecDuration;

/// The longest cron text read from an event; GitHub's are a few dozen characters.
pub const MAX_CRON_LEN: usize = 256;

/// A scheduled run's slot and start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleLag {
    /// The cron, as the event names it (text from outside: escape it for each sink).
    pub cron: String,
    /// The latest time the cron fires at or before the start: the slot this run belongs to.
    pub slot: DateTime<Utc>,
    /// When the run started.
    pub started: DateTime<Utc>,
}

/// Why a scheduled run's lag is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The event has no `schedule` string.
    #[error("the event payload names no schedule")]
    NoSchedule,
    /// The cron is longer than [`MAX_CRON_LEN`].
    #[error("the event's schedule is longer than {MAX_CRON_LEN} characters")]
    TooLong,
    /// The cron is not five fields of POSIX cron, as GitHub reads them.
    #[error("the event's schedule is not a 5-field cron: {0}")]
    NotCron(String),
    /// The cron never fired before the start (it names a date that has not come).
    #[error("the event's schedule never fired before this run started")]
    NoSlot,
}

impl ScheduleLag {
    /// The run's lag behind its slot (never negative).
    pub fn lag(&self) -> TimeDelta {
        (self.started - self.slot).max(TimeDelta::zero())
    }

    /// Whether the lag is longer than `bake`: stages that bake this long bake longer than their
    /// spec says, since the next run comes late too.
    pub fn exceeds(&self, bake: SpecDuration) -> bool {
        bake.to_chrono().is_some_and(|bake| self.lag() > bake)
    }

    /// `12 min`, `2 h 5 min`, `less than a minute`: the lag as reports say it.
    pub fn lag_text(&self) -> String {
        let minutes = self.lag().num_minutes();
        match minutes {
            0 => "less than a minute".to_string(),
            m if m < 60 => format!("{m} min"),
            m => format!("{} h {} min", m / 60, m % 60),
        }
    }

    /// `10:17 UTC`, with the date in front when the slot is on another day than the start.
    pub fn slot_text(&self) -> String {
        if self.slot.date_naive() == self.started.date_naive() {
            self.slot.format("%H:%M UTC").to_string()
        } else {
            crate::window::human_time(self.slot)
        }
    }
}

/// The cron slot of a run of a `schedule` event that started at `started`.
pub fn from_event(event: &Value, started: DateTime<Utc>) -> Result<ScheduleLag, ScheduleError> {
    let cron = event
        .get("schedule")
        .and_then(Value::as_str)
        .ok_or(ScheduleError::NoSchedule)?;
    lag(cron, started)
}

/// The slot of `cron` (five fields, UTC, as GitHub reads it: day of month and day of week are
/// either-or when both are set) that a run starting at `started` belongs to.
pub fn lag(cron: &str, started: DateTime<Utc>) -> Result<ScheduleLag, ScheduleError> {
    if cron.len() > MAX_CRON_LEN {
        return Err(ScheduleError::TooLong);
    }
    let parsed: Cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| ScheduleError::NotCron(e.to_string()))?;
    let slot = parsed
        .find_previous_occurrence(&started, true)
        .map_err(|_| ScheduleError::NoSlot)?;
    Ok(ScheduleLag {
        cron: cron.to_string(),
        slot,
        started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_slot_is_the_latest_fire_time_at_or_before_the_start() {
        let late = lag("17,47 * * * *", t("2026-11-24T10:29:30Z")).unwrap();
        assert_eq!(late.slot, t("2026-11-24T10:17:00Z"));
        assert_eq!(late.lag_text(), "12 min");
        assert_eq!(late.slot_text(), "10:17 UTC");
        let on_time = lag("*/15 * * * *", t("2026-11-24T10:15:00Z")).unwrap();
        assert_eq!(on_time.lag(), TimeDelta::zero());
        assert_eq!(on_time.lag_text(), "less than a minute");
        // Across midnight, with the date.
        let hours = lag("30 22 * * *", t("2026-11-25T01:05:00Z")).unwrap();
        assert_eq!(hours.lag_text(), "2 h 35 min");
        assert_eq!(hours.slot_text(), "2026-11-24 22:30 UTC");
    }

    #[test]
    fn day_of_month_and_day_of_week_are_either_or_as_in_posix_cron() {
        // 2026-11-24 is a Tuesday, not the 1st: the weekday alone matches.
        let either = lag("0 9 1 * 2", t("2026-11-24T09:40:00Z")).unwrap();
        assert_eq!(either.slot, t("2026-11-24T09:00:00Z"));
    }

    #[test]
    fn the_lag_is_compared_with_a_bake() {
        let late = lag("17,47 * * * *", t("2026-11-24T10:29:30Z")).unwrap();
        assert!(late.exceeds(SpecDuration::from_secs(600)));
        assert!(!late.exceeds(SpecDuration::from_secs(3600)));
    }

    #[test]
    fn what_is_not_a_github_cron_says_so() {
        let started = t("2026-11-24T10:00:00Z");
        assert!(matches!(lag("0 */15 * * * *", started), Err(ScheduleError::NotCron(_))));
        assert!(matches!(lag("not a cron", started), Err(ScheduleError::NotCron(_))));
        assert_eq!(lag(&"1".repeat(300), started), Err(ScheduleError::TooLong));
        assert_eq!(
            from_event(&serde_json::json!({"schedule": 5}), started),
            Err(ScheduleError::NoSchedule)
        );
    }
}
