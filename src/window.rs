//! The `policy.window`: when a rollout may start or advance (rollbacks ignore it).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Days of the week and a half-open time range in an IANA timezone.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Indexed Monday first: the days on which the window opens.
    pub days: [bool; 7],
    /// Minutes after local midnight when the window opens.
    pub open_minute: u32,
    /// Minutes after local midnight when it closes; at or before `open_minute` it closes next day.
    pub close_minute: u32,
    /// The timezone the days and hours are read in.
    pub timezone: Tz,
}

/// Parses one day name: `Mon` or `Monday`, in any case.
pub fn parse_day(text: &str) -> Result<usize, WindowError> {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = text.trim().to_ascii_lowercase();
    FULL.iter()
        .position(|full| lower == *full || lower == full[..3])
        .ok_or_else(|| WindowError::NotADay(text.trim().to_string()))
}

/// Parses `Mon-Fri` (wrapping ranges such as `Fri-Mon` allowed) or a single day.
pub fn parse_day_range(text: &str) -> Result<[bool; 7], WindowError> {
    let mut days = [false; 7];
    match text.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (parse_day(from)?, parse_day(to)?);
            let mut d = from;
            loop {
                days[d] = true;
                if d == to {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
        None => days[parse_day(text)?] = true,
    }
    Ok(days)
}

fn parse_clock(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

/// Parses `HH:MM-HH:MM` into (open, close) minutes; `24:00` may close a range.
pub fn parse_hours(text: &str) -> Result<(u32, u32), WindowError> {
    let bad = || WindowError::NotHours(text.to_string());
    let (open, close) = text.split_once('-').ok_or_else(bad)?;
    let (open, close) = (parse_clock(open).ok_or_else(bad)?, parse_clock(close).ok_or_else(bad)?);
    if open == 24 * 60 {
        return Err(bad());
    }
    if open == close {
        return Err(WindowError::EmptyHours(text.to_string()));
    }
    Ok((open, if close == 24 * 60 { 0 } else { close }))
}

/// Parses an IANA timezone name.
pub fn parse_timezone(text: &str) -> Result<Tz, WindowError> {
    text.trim()
        .parse::<Tz>()
        .map_err(|_| WindowError::NotATimezone(text.to_string()))
}

/// Why a part of `policy.window` cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not a day name.
    #[error("`{0}` is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun")]
    NotADay(String),
    /// Not `HH:MM-HH:MM`.
    #[error("`{0}` is not an hour range: write HH:MM-HH:MM in 24-hour time, e.g. \"09:00-17:00\" or \"22:00-06:00\"")]
    NotHours(String),
    /// Opens and closes at once.
    #[error("`{0}` is an empty range: the window would never open")]
    EmptyHours(String),
    /// Not a tz database name.
    #[error("`{0}` is not an IANA timezone: use a name such as Europe/Berlin, America/New_York or UTC")]
    NotATimezone(String),
}

impl Window {
    fn overnight(&self) -> bool {
        self.close_minute <= self.open_minute
    }

    /// `at` in the window's timezone; `None` at the edges of chrono's range, where the offset
    /// would push the local time past what chrono can represent.
    fn local(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        let offset = self.timezone.offset_from_utc_datetime(&at.naive_utc()).fix();
        at.naive_utc().checked_add_offset(offset)
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let Some(local) = self.local(at) else { return false };
        let minute = local.hour() * 60 + local.minute();
        let today = local.weekday().num_days_from_monday() as usize;
        let yesterday = (today + 6) % 7;
        if self.overnight() {
            (self.days[today] && minute >= self.open_minute) || (self.days[yesterday] && minute < self.close_minute)
        } else {
            self.days[today] && minute >= self.open_minute && minute < self.close_minute
        }
    }

    /// `at` itself when inside the window, else the next moment the window opens; `None` when
    /// it does not open again within the dates chrono can represent.
    pub fn next_open_at_or_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(at) {
            return Some(at);
        }
        let local_date = self.local(at)?.date();
        (-1..=8)
            .filter_map(|offset| {
                let date = local_date.checked_add_signed(Duration::days(offset))?;
                let weekday = date.weekday().num_days_from_monday() as usize;
                self.days[weekday].then(|| self.opening_on(date)).flatten()
            })
            .filter(|open| *open > at)
            .min()
    }

    fn opening_on(&self, date: NaiveDate) -> Option<DateTime<Utc>> {
        let time = NaiveTime::from_hms_opt(self.open_minute / 60, self.open_minute % 60, 0)?;
        let mut local = date.and_time(time);
        // A spring-forward gap has no such local time; the window opens when clocks resume.
        for _ in 0..4 {
            if let Some(t) = self.timezone.from_local_datetime(&local).earliest() {
                return Some(t.with_timezone(&Utc));
            }
            local = local.checked_add_signed(Duration::minutes(30))?;
        }
        None
    }

    /// The window as the spec would write it: `Mon-Fri 09:00-17:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        let days = days_as_written(&self.days);
        let clock = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let close = if self.close_minute == 0 {
            "24:00".into()
        } else {
            clock(self.close_minute)
        };
        format!("{days} {}-{close} {}", clock(self.open_minute), self.timezone)
    }
}

/// Days as a person writes them: runs of three or more as a range (`Mon-Fri`, `Fri-Mon`),
/// others listed (`Mon, Wed`), all seven as `every day`.
fn days_as_written(days: &[bool; 7]) -> String {
    if days.iter().all(|d| *d) {
        return "every day".to_string();
    }
    // A run starts on a day whose day before is not in the window (weeks wrap around).
    let mut parts = Vec::new();
    for start in (0..7).filter(|d| days[*d] && !days[(d + 6) % 7]) {
        let mut end = start;
        while days[(end + 1) % 7] {
            end = (end + 1) % 7;
        }
        let length = (end + 7 - start) % 7 + 1;
        match length {
            1 => parts.push(DAY_NAMES[start].to_string()),
            2 => parts.push(format!("{}, {}", DAY_NAMES[start], DAY_NAMES[end])),
            _ => parts.push(format!("{}-{}", DAY_NAMES[start], DAY_NAMES[end])),
        }
    }
    parts.join(", ")
}

/// A time as people read it, the one format of docs/rules.md §4: `2026-11-24 10:30 UTC`.
pub fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_print_as_written() {
        let shown = |text: &str| days_as_written(&parse_day_range(text).unwrap());
        assert_eq!(shown("Mon-Fri"), "Mon-Fri");
        assert_eq!(shown("Fri-Mon"), "Fri-Mon");
        assert_eq!(shown("Sat-Sun"), "Sat, Sun");
        assert_eq!(shown("Wed"), "Wed");
        assert_eq!(shown("Mon-Sun"), "every day");
        let mut mon_wed_fri = [false; 7];
        for d in [0, 2, 4] {
            mon_wed_fri[d] = true;
        }
        assert_eq!(days_as_written(&mon_wed_fri), "Mon, Wed, Fri");
        assert_eq!(berlin_office().describe(), "Mon-Fri 09:00-17:00 Europe/Berlin");
    }

    fn berlin_office() -> Window {
        let (open, close) = parse_hours("09:00-17:00").unwrap();
        Window {
            days: parse_day_range("Mon-Fri").unwrap(),
            open_minute: open,
            close_minute: close,
            timezone: parse_timezone("Europe/Berlin").unwrap(),
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn office_hours_in_berlin() {
        let w = berlin_office();
        // 2026-11-24 is a Tuesday; Berlin is UTC+1 in November.
        assert!(w.contains(utc("2026-11-24T08:00:00Z")));
        assert!(
            !w.contains(utc("2026-11-24T16:00:00Z")),
            "17:00 local is closed (half-open)"
        );
        assert!(!w.contains(utc("2026-11-28T10:00:00Z")), "Saturday");
        assert_eq!(
            w.next_open_at_or_after(utc("2026-11-27T17:00:00Z")),
            Some(utc("2026-11-30T08:00:00Z"))
        );
    }

    #[test]
    fn overnight_range_belongs_to_the_day_it_opens() {
        let (open, close) = parse_hours("22:00-06:00").unwrap();
        let w = Window {
            days: parse_day_range("Fri").unwrap(),
            open_minute: open,
            close_minute: close,
            timezone: Tz::UTC,
        };
        assert!(w.contains(utc("2026-11-27T23:00:00Z")));
        assert!(
            w.contains(utc("2026-11-28T05:59:00Z")),
            "Saturday morning is Friday's night"
        );
        assert!(!w.contains(utc("2026-11-28T23:00:00Z")));
    }

    #[test]
    fn daylight_saving_uses_the_tz_database() {
        let w = berlin_office();
        // 2026-03-30 is the Monday after Berlin moves to UTC+2.
        assert_eq!(
            w.next_open_at_or_after(utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-30T07:00:00Z"))
        );
    }

    #[test]
    fn the_last_representable_days_have_no_opening_and_do_not_panic() {
        let w = berlin_office();
        let end = DateTime::<Utc>::MAX_UTC;
        for back in [0, 1, 60, 3600, 86_400, 7 * 86_400] {
            let at = end - Duration::seconds(back);
            let _ = w.contains(at);
            if let Some(open) = w.next_open_at_or_after(at) {
                assert!(open >= at);
            }
        }
        assert_eq!(
            w.next_open_at_or_after(end),
            None,
            "no Monday-to-Friday opening after the last moment"
        );
        let start = DateTime::<Utc>::MIN_UTC;
        for ahead in [0, 1, 3600, 86_400] {
            let at = start + Duration::seconds(ahead);
            let _ = (w.contains(at), w.next_open_at_or_after(at));
        }
    }

    #[test]
    fn rejects_bad_parts() {
        assert!(parse_day("Funday").is_err());
        assert!(parse_hours("9-17").is_err());
        assert!(parse_hours("09:00-09:00").is_err());
        assert!(parse_hours("25:00-26:00").is_err());
        assert!(parse_timezone("Mars/Olympus").is_err());
        assert_eq!(
            parse_day_range("Fri-Mon").unwrap(),
            [true, false, false, false, true, true, true]
        );
    }
}
