//! Dates and timestamps of transaction lines.
//!
//! A line's time becomes a day number (days since 1970-01-01) and a timestamp in
//! microseconds, used only to tell orders apart when there is no order id. ISO 8601 text
//! is parsed by hand (it is the hot path of CSV loading); a user `strftime` format goes
//! through chrono. A timestamp's day is its calendar date *as written*: an offset such as
//! `+02:00` is accepted but not applied, so a store's local day stays its day.
//!
//! Not for: time zones databases (none are compiled in).

use chrono::{NaiveDate, NaiveDateTime};

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Day number of 0001-01-01: earlier times are rejected.
pub const MIN_DAY: i32 = -719_162;
/// Day number of 9999-12-31: later times are rejected.
pub const MAX_DAY: i32 = 2_932_896;

/// A parsed time: the day and a timestamp (microseconds since the epoch, as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTime {
    pub day: i32,
    pub micros: i64,
}

impl LineTime {
    pub fn from_day(day: i32) -> LineTime {
        LineTime {
            day,
            micros: i64::from(day) * MICROS_PER_DAY,
        }
    }

    pub fn from_micros(micros: i64) -> LineTime {
        LineTime {
            day: micros.div_euclid(MICROS_PER_DAY) as i32,
            micros,
        }
    }
}

/// Why a time value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    Empty,
    /// Looks like a date but the calendar has no such day (2023-02-30).
    Impossible,
    Unparsable,
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date")
}

/// Day number of year-month-day in the proleptic Gregorian calendar (years 0 to 9999),
/// or `None` when there is no such day: [`civil_from_days`] run backwards, without
/// building a date.
fn civil_day(year: i32, month: u32, day: u32) -> Option<i32> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(0..=9999).contains(&year) || day == 0 || day > days_in_month {
        return None;
    }
    // Years start in March, so the leap day ends a year; eras are 400 years.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year as i32;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Day number of a calendar date.
pub fn day_of(date: NaiveDate) -> i32 {
    (date - epoch()).num_days() as i32
}

/// `YYYY-MM-DD` text of a day number (`day N` beyond the calendar's range).
pub fn format_day(day: i32) -> String {
    let mut out = String::with_capacity(10);
    push_day(day, &mut out);
    out
}

/// Appends [`format_day`]'s text: years 0..=9999 directly from `civil_from_days` (the
/// hot path of every date column written as text), others as chrono writes them.
pub fn push_day(day: i32, out: &mut String) {
    let (y, m, d) = civil_from_days(day);
    if (0..=9999).contains(&y) {
        let digits = [
            y / 1000,
            y / 100 % 10,
            y / 10 % 10,
            y % 10,
            -1,
            m as i32 / 10,
            m as i32 % 10,
            -1,
            d as i32 / 10,
            d as i32 % 10,
        ];
        out.extend(digits.iter().map(|&k| {
            if k < 0 {
                '-'
            } else {
                char::from(b'0' + k as u8)
            }
        }));
        return;
    }
    match epoch().checked_add_signed(chrono::Duration::days(i64::from(day))) {
        Some(date) => out.push_str(&date.format("%Y-%m-%d").to_string()),
        None => out.push_str(&format!("day {day}")),
    }
}

/// Parses `YYYY-MM-DD` (used for `--as-of` and config dates).
pub fn parse_iso_date(text: &str) -> Option<i32> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .map(day_of)
}

/// Proleptic Gregorian `(year, month, day)` of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // |days| < 2^31 keeps the year far inside i32.
    (y as i32, m as u32, d as u32)
}

/// Year and month of a day number, for cohorts.
pub fn year_month(day: i32) -> (i32, u32) {
    let (year, month, _) = civil_from_days(day);
    (year, month)
}

/// How time text is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// ISO 8601 date or timestamp.
    #[default]
    Iso,
    /// A chrono `strftime` pattern, for a timestamp or a date.
    Custom(String),
}

impl TimeFormat {
    pub fn parse(&self, text: &str) -> Result<LineTime, TimeError> {
        // Times nearly always start with a digit and end with one (or a zone letter).
        let s = match text.as_bytes() {
            [first, .., last] if first.is_ascii_digit() && last.is_ascii_alphanumeric() => text,
            _ => text.trim(),
        };
        if s.is_empty() {
            return Err(TimeError::Empty);
        }
        match self {
            TimeFormat::Iso => parse_iso(s),
            TimeFormat::Custom(fmt) => parse_custom(s, fmt),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TimeFormat::Iso => "an ISO date (2024-03-31) or timestamp (2024-03-31T14:05:00)".into(),
            TimeFormat::Custom(f) => format!("a time in the format {f:?}"),
        }
    }
}

fn parse_custom(s: &str, fmt: &str) -> Result<LineTime, TimeError> {
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
        return Ok(LineTime::from_micros(dt.and_utc().timestamp_micros()));
    }
    match NaiveDate::parse_from_str(s, fmt) {
        Ok(d) => Ok(LineTime::from_day(day_of(d))),
        Err(e) if e.kind() == chrono::format::ParseErrorKind::OutOfRange => {
            Err(TimeError::Impossible)
        }
        Err(_) => Err(TimeError::Unparsable),
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn parse_iso(s: &str) -> Result<LineTime, TimeError> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(TimeError::Unparsable);
    }
    let (year, month, day) = match (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Some(y), Some(m), Some(d)) => (y as i32, m, d),
        _ => return Err(TimeError::Unparsable),
    };
    let day_number = civil_day(year, month, day).ok_or(TimeError::Impossible)?;
    if b.len() == 10 {
        return Ok(LineTime::from_day(day_number));
    }
    if b[10] != b'T' && b[10] != b' ' {
        return Err(TimeError::Unparsable);
    }
    let rest = &b[11..];
    let (tod, rest) = parse_time_of_day(rest)?;
    parse_offset(rest)?;
    Ok(LineTime {
        day: day_number,
        micros: i64::from(day_number) * MICROS_PER_DAY + tod,
    })
}

/// `HH:MM[:SS[.ffffff]]` → microseconds into the day, and what follows.
fn parse_time_of_day(b: &[u8]) -> Result<(i64, &[u8]), TimeError> {
    if b.len() < 5 || b[2] != b':' {
        return Err(TimeError::Unparsable);
    }
    let h = digits(&b[0..2]).ok_or(TimeError::Unparsable)?;
    let m = digits(&b[3..5]).ok_or(TimeError::Unparsable)?;
    let mut sec = 0;
    let mut micros = 0i64;
    let mut i = 5;
    if b.len() >= 8 && b[5] == b':' {
        sec = digits(&b[6..8]).ok_or(TimeError::Unparsable)?;
        i = 8;
        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
            i += 1;
            let start = i;
            let mut scale = 1_000_000i64;
            while i < b.len() && b[i].is_ascii_digit() {
                scale /= 10;
                micros += i64::from(b[i] - b'0') * scale;
                i += 1;
            }
            if i == start {
                return Err(TimeError::Unparsable);
            }
        }
    }
    if h > 23 || m > 59 || sec > 60 {
        return Err(TimeError::Impossible);
    }
    let tod =
        (i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec.min(59))) * 1_000_000 + micros;
    Ok((tod, &b[i..]))
}

fn parse_offset(b: &[u8]) -> Result<(), TimeError> {
    match b {
        [] | [b'Z'] | [b'z'] => Ok(()),
        [b'+' | b'-', rest @ ..] => {
            let ok = match rest {
                [h1, h2] => digits(&[*h1, *h2]).is_some(),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    digits(&[*h1, *h2, *m1, *m2]).is_some()
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(TimeError::Unparsable)
            }
        }
        _ => Err(TimeError::Unparsable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_text_agrees_with_chrono_across_the_range() {
        let chrono_text = |day: i32| {
            epoch()
                .checked_add_signed(chrono::Duration::days(i64::from(day)))
                .map(|d| d.format("%Y-%m-%d").to_string())
        };
        let days = (-800_000..3_000_000)
            .step_by(997)
            .chain([-719_528, -719_529, 0, 59, 60, 2_932_896, 2_932_897]);
        for day in days {
            assert_eq!(Some(format_day(day)), chrono_text(day), "day {day}");
        }
        assert_eq!(format_day(i32::MAX), "day 2147483647");
    }

    #[test]
    fn civil_days_agree_with_chrono_on_every_day_and_refuse_impossible_ones() {
        for year in 0..=9999 {
            for month in 0..=13 {
                for day in 0..=32 {
                    let chrono = NaiveDate::from_ymd_opt(year, month, day).map(day_of);
                    assert_eq!(civil_day(year, month, day), chrono, "{year}-{month}-{day}");
                }
            }
        }
    }

    fn iso(s: &str) -> Result<LineTime, TimeError> {
        TimeFormat::Iso.parse(s)
    }

    #[test]
    fn iso_dates_and_timestamps() {
        assert_eq!(iso("1970-01-02").unwrap().day, 1);
        assert_eq!(iso("1969-12-31").unwrap().day, -1);
        let t = iso("2024-03-31T14:05:06.5").unwrap();
        assert_eq!(t.day, day_of(NaiveDate::from_ymd_opt(2024, 3, 31).unwrap()));
        assert_eq!(t.micros - i64::from(t.day) * MICROS_PER_DAY, 50_706_500_000);
        assert_eq!(iso("2024-03-31 23:59").unwrap().day, t.day);
        // The offset is accepted but the date stays as written.
        assert_eq!(iso("2024-03-31T23:30:00+05:00").unwrap().day, t.day);
        assert_eq!(iso("2024-03-31T23:30:00Z").unwrap().day, t.day);
        assert_eq!(iso("2024-03-31T23:30:00-0800").unwrap().day, t.day);
    }

    #[test]
    fn iso_rejections() {
        assert_eq!(iso("2023-02-30"), Err(TimeError::Impossible));
        assert_eq!(iso("2023-13-01"), Err(TimeError::Impossible));
        assert_eq!(iso("2023-01-01T25:00"), Err(TimeError::Impossible));
        assert_eq!(iso("31/01/2023"), Err(TimeError::Unparsable));
        assert_eq!(iso("2023-01-01X"), Err(TimeError::Unparsable));
        assert_eq!(iso("2023-01-01T10:00+5"), Err(TimeError::Unparsable));
        assert_eq!(iso(""), Err(TimeError::Empty));
    }

    #[test]
    fn custom_formats() {
        let f = TimeFormat::Custom("%Y%m%d".into());
        assert_eq!(f.parse("19970101").unwrap().day, 9862);
        let f = TimeFormat::Custom("%d/%m/%Y %H:%M".into());
        let t = f.parse("02/01/1970 01:00").unwrap();
        assert_eq!((t.day, t.micros), (1, MICROS_PER_DAY + 3_600_000_000));
        assert!(f.parse("2024-01-01").is_err());
        assert_eq!(format_day(9862), "1997-01-01");
        assert_eq!(parse_iso_date("1997-01-01"), Some(9862));
        assert_eq!(parse_iso_date("0001-01-01"), Some(MIN_DAY));
        assert_eq!(parse_iso_date("9999-12-31"), Some(MAX_DAY));
    }
}
