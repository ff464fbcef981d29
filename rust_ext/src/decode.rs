//! Column conversions for row decoding: the text forms of datetimes, dates, times and UUIDs.
//!
//! Barrier: plain Rust, no Python. Each parser reads the text a driver hands back and returns the
//! parts of the value, or `None` when the text is not in the subset it reads with certainty. The
//! bindings then call the field's own Python converter, so an unusual form (an ISO week date, a
//! seven-digit fraction, an out-of-range day) gets exactly Python's answer or Python's error, and
//! a value from here is always the one Python's `fromisoformat` would give.
//!
//! What is read here (the forms CovetPy writes, and the common ISO 8601 spellings):
//!
//! * date: `YYYY-MM-DD`, a real calendar day of years 1 to 9999;
//! * time: `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` with one to six fraction digits;
//! * datetime: a date, optionally followed by `T` or a space and a time, optionally followed by
//!   `Z`, `±HH:MM` or `±HH:MM:SS`; the result is shifted to UTC (a naive value is taken as UTC);
//! * UUID: the canonical `8-4-4-4-12` hexadecimal form, in either case.

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

/// A time of day without a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
}

/// A UTC date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub date: Date,
    pub time: Time,
}

/// `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    parse_date_bytes(text.as_bytes())
}

fn parse_date_bytes(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = Date {
        year: i32::from(digits(&b[0..2])?) * 100 + i32::from(digits(&b[2..4])?),
        month: digits(&b[5..7])?,
        day: digits(&b[8..10])?,
    };
    let valid = date.year >= 1
        && (1..=12).contains(&date.month)
        && date.day >= 1
        && date.day <= days_in_month(date.year, date.month);
    valid.then_some(date)
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.f` (one to six fraction digits).
pub fn parse_time(text: &str) -> Option<Time> {
    let b = text.as_bytes();
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let mut time = Time {
        hour: digits(&b[0..2])?,
        minute: digits(&b[3..5])?,
        second: 0,
        microsecond: 0,
    };
    let rest = &b[5..];
    if !rest.is_empty() {
        if rest.len() < 3 || rest[0] != b':' {
            return None;
        }
        time.second = digits(&rest[1..3])?;
        let fraction = &rest[3..];
        if !fraction.is_empty() {
            let places = &fraction[1..];
            if fraction[0] != b'.' || places.is_empty() || places.len() > 6 {
                return None;
            }
            let mut micros = 0u32;
            for &c in places {
                micros = micros * 10 + u32::from(digit(c)?);
            }
            time.microsecond = micros * 10u32.pow(6 - places.len() as u32);
        }
    }
    (time.hour <= 23 && time.minute <= 59 && time.second <= 59).then_some(time)
}

/// A date, or a date and a time with an optional UTC offset, as a UTC date and time.
pub fn parse_datetime(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    if b.len() < 10 {
        return None;
    }
    parse_stored_datetime(b).or_else(|| parse_any_datetime(text))
}

/// `parse_datetime` without the fixed-position shortcut.
fn parse_any_datetime(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    if b.len() < 10 {
        return None;
    }
    let date = parse_date(text.get(..10)?)?;
    let midnight = Time {
        hour: 0,
        minute: 0,
        second: 0,
        microsecond: 0,
    };
    if b.len() == 10 {
        return Some(DateTime {
            date,
            time: midnight,
        });
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let rest = &text[11..];
    // The offset starts at the first `Z`, `+` or `-` after the time.
    let (time, offset) = match rest.find(['Z', '+', '-']) {
        None => (rest, 0),
        Some(at) => (&rest[..at], parse_offset(&rest[at..])?),
    };
    let local = DateTime {
        date,
        time: parse_time(time)?,
    };
    shift(local, -offset)
}

/// The form CovetPy stores on SQLite, `YYYY-MM-DD HH:MM:SS.ffffff+00:00` (a `T` also accepted
/// between date and time), read at fixed positions; `None` for anything else, which the general
/// reader then handles (it gives the same value for this form).
fn parse_stored_datetime(b: &[u8]) -> Option<DateTime> {
    if b.len() != 32
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || &b[26..] != b"+00:00"
    {
        return None;
    }
    let date = parse_date_bytes(&b[..10])?;
    let mut micros = 0u32;
    for &c in &b[20..26] {
        micros = micros * 10 + u32::from(digit(c)?);
    }
    let time = Time {
        hour: digits(&b[11..13])?,
        minute: digits(&b[14..16])?,
        second: digits(&b[17..19])?,
        microsecond: micros,
    };
    (time.hour <= 23 && time.minute <= 59 && time.second <= 59).then_some(DateTime { date, time })
}

/// `Z`, `±HH:MM` or `±HH:MM:SS`, in seconds east of UTC (always less than a day).
fn parse_offset(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b == b"Z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if b.len() != 6 && b.len() != 9 {
        return None;
    }
    if b[3] != b':' {
        return None;
    }
    let hours = i64::from(digits(&b[1..3])?);
    let minutes = i64::from(digits(&b[4..6])?);
    let seconds = if b.len() == 9 {
        if b[6] != b':' {
            return None;
        }
        i64::from(digits(&b[7..9])?)
    } else {
        0
    };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// `dt` moved by `seconds`; `None` when that leaves the years 1 to 9999.
fn shift(dt: DateTime, seconds: i64) -> Option<DateTime> {
    if seconds == 0 {
        return Some(dt);
    }
    let t = dt.time;
    let total = i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second) + seconds;
    let days = days_from_civil(dt.date) + total.div_euclid(86_400);
    let in_day = total.rem_euclid(86_400);
    let date = civil_from_days(days)?;
    Some(DateTime {
        date,
        time: Time {
            hour: (in_day / 3600) as u8,
            minute: (in_day / 60 % 60) as u8,
            second: (in_day % 60) as u8,
            microsecond: t.microsecond,
        },
    })
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A PostgreSQL date (days since 2000-01-01, as asyncpg's `tuple` format gives it); `None` when
/// it leaves the years 1 to 9999.
pub fn pg_date(days: i64) -> Option<Date> {
    civil_from_days(PG_EPOCH_DAYS.checked_add(days)?)
}

/// A PostgreSQL timestamp (microseconds since 2000-01-01 00:00); `None` when it leaves the years
/// 1 to 9999.
pub fn pg_timestamp(micros: i64) -> Option<DateTime> {
    let date = pg_date(micros.div_euclid(MICROS_PER_DAY))?;
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let seconds = in_day / 1_000_000;
    Some(DateTime {
        date,
        time: Time {
            hour: (seconds / 3600) as u8,
            minute: (seconds / 60 % 60) as u8,
            second: (seconds % 60) as u8,
            microsecond: (in_day % 1_000_000) as u32,
        },
    })
}

/// The canonical `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` form as the UUID's 128-bit integer.
pub fn parse_uuid(text: &str) -> Option<u128> {
    let b = text.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut value = 0u128;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        value = value << 4 | u128::from(nibble);
    }
    Some(value)
}

fn digit(c: u8) -> Option<u8> {
    c.is_ascii_digit().then(|| c - b'0')
}

/// Two ASCII digits.
fn digits(pair: &[u8]) -> Option<u8> {
    Some(digit(pair[0])? * 10 + digit(pair[1])?)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(d: Date) -> i64 {
    let (m, day) = (i64::from(d.month), i64::from(d.day));
    let y = i64::from(d.year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01, if its year is 1 to 9999.
fn civil_from_days(days: i64) -> Option<Date> {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some(Date {
        year: year as i32,
        month: month as u8,
        day: day as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: i32, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> DateTime {
        DateTime {
            date: Date {
                year: y,
                month: mo,
                day: d,
            },
            time: Time {
                hour: h,
                minute: mi,
                second: s,
                microsecond: us,
            },
        }
    }

    #[test]
    fn dates() {
        let d = |y, m, d| {
            Some(Date {
                year: y,
                month: m,
                day: d,
            })
        };
        assert_eq!(parse_date("2024-02-29"), d(2024, 2, 29));
        assert_eq!(parse_date("0001-01-01"), d(1, 1, 1));
        assert_eq!(parse_date("9999-12-31"), d(9999, 12, 31));
        for bad in [
            "2023-02-29",
            "1900-02-29",
            "0000-01-01",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-01-00",
            "2024-1-01",
            "20240101",
            "2024-01-01 ",
            "２０２４-01-02",
            "2024/01/01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2000-02-29"), d(2000, 2, 29));
    }

    #[test]
    fn times() {
        let t = |h, m, s, us| {
            Some(Time {
                hour: h,
                minute: m,
                second: s,
                microsecond: us,
            })
        };
        assert_eq!(parse_time("03:04"), t(3, 4, 0, 0));
        assert_eq!(parse_time("23:59:59"), t(23, 59, 59, 0));
        assert_eq!(parse_time("03:04:05.1"), t(3, 4, 5, 100_000));
        assert_eq!(parse_time("03:04:05.000123"), t(3, 4, 5, 123));
        assert_eq!(parse_time("03:04:05.1234"), t(3, 4, 5, 123_400));
        for bad in [
            "24:00",
            "12:60",
            "12:00:60",
            "3:04",
            "03",
            "0304",
            "03:04:05.",
            "03:04:05.1234567",
            "03:04:05,1",
            "03:04:05+00:00",
            "03:04:05Z",
            "03:04:5",
            "03:04:05.12a",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            parse_datetime("2024-01-02 03:04:05.123456+00:00"),
            Some(dt(2024, 1, 2, 3, 4, 5, 123_456))
        );
        assert_eq!(
            parse_datetime("2024-01-02"),
            Some(dt(2024, 1, 2, 0, 0, 0, 0))
        );
        assert_eq!(
            parse_datetime("2024-01-02T03:04Z"),
            Some(dt(2024, 1, 2, 3, 4, 0, 0))
        );
        assert_eq!(
            parse_datetime("2024-01-01T01:30:00+05:30"),
            Some(dt(2023, 12, 31, 20, 0, 0, 0))
        );
        assert_eq!(
            parse_datetime("2024-02-28 23:00:00.5-01:00:30"),
            Some(dt(2024, 2, 29, 0, 0, 30, 500_000))
        );
        assert_eq!(
            parse_datetime("2024-01-02 03:04:05-00:00"),
            Some(dt(2024, 1, 2, 3, 4, 5, 0))
        );
        // Shifted out of the years 1 to 9999: Python raises OverflowError, so leave it to Python.
        assert_eq!(parse_datetime("0001-01-01 00:00:00+01:00"), None);
        assert_eq!(parse_datetime("9999-12-31 23:00:00-01:00"), None);
        assert_eq!(
            parse_datetime("9999-12-31 22:59:59-01:00"),
            Some(dt(9999, 12, 31, 23, 59, 59, 0))
        );
        for bad in [
            "2024-01-02x03:04",
            "2024-01-02 03",
            "2024-01-02 03:04:05+05",
            "2024-01-02 03:04+0530",
            "2024-01-02 03:04:05+24:00",
            "2024-01-02 03:04:05 +00:00",
            "2024-01-02 03:04:05z",
            "2024-01-02 03:04:05+05:30:15.5",
            "2024-01-02 ",
            "2024-01-02T",
            "2024-01-0203:04",
            "2024-01-02 03:04:05.1234567",
            "2024-01-02 03:04:05+00:00 ",
            "2024-01-02 03:04Z+01:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_datetimes_read_as_the_general_reader_reads_them() {
        assert_eq!(
            parse_stored_datetime(b"2024-01-02 03:04:05.123456+00:00"),
            Some(dt(2024, 1, 2, 3, 4, 5, 123_456))
        );
        assert_eq!(
            parse_stored_datetime(b"9999-12-31T23:59:59.999999+00:00"),
            Some(dt(9999, 12, 31, 23, 59, 59, 999_999))
        );
        for text in [
            "2024-01-02 03:04:05.123456+00:00",
            "0001-01-01 00:00:00.000000+00:00",
            "2024-02-29 12:00:00.000001+00:00",
            "2024-01-02T03:04:05.123456+00:00",
            // Not the stored form: the general reader decides.
            "2023-02-29 12:00:00.000000+00:00",
            "2024-01-02 24:00:00.000000+00:00",
            "2024-01-02 03:60:00.000000+00:00",
            "2024-01-02 03:04:60.000000+00:00",
            "2024-01-02 03:04:05.12345a+00:00",
            "2024-01-02x03:04:05.123456+00:00",
            "2024-01-02 03:04:05,123456+00:00",
            "2024-01-02 03:04:05.123456+01:00",
            "2024-01-02 03:04:05.123456-00:00",
            "2024-01-02 03:04:05.123456+00:0Z",
            "2024-01-02 03:04:05.1234567+00:00",
            "2024-01-02 03:04:05.12345+00:00",
            "2024-01-02 03:-4:05.123456+00:00",
            "2024-01-02 +3:04:05.123456+00:00",
            "2024-01-02 03:04:05.+23456+00:00",
        ] {
            let fixed = parse_stored_datetime(text.as_bytes());
            if fixed.is_some() {
                assert_eq!(fixed, parse_any_datetime(text), "{text}");
            }
            assert_eq!(parse_datetime(text), parse_any_datetime(text), "{text}");
        }
        assert_eq!(
            parse_stored_datetime(b"2024-01-02 03:04:05.123456+01:00"),
            None
        );
        assert_eq!(
            parse_stored_datetime(b"2024-01-02 24:04:05.123456+00:00"),
            None
        );
        assert_eq!(
            parse_stored_datetime(b"2024-01-02 03:04:05.12345a+00:00"),
            None
        );
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-719_162, -1, 0, 1, 11_016, 2_932_896] {
            let date = civil_from_days(days).unwrap();
            assert_eq!(days_from_civil(date), days);
        }
        assert_eq!(civil_from_days(-719_163), None);
        let at = |y, mo, d, h, mi, s, us| DateTime {
            date: Date {
                year: y,
                month: mo,
                day: d,
            },
            time: Time {
                hour: h,
                minute: mi,
                second: s,
                microsecond: us,
            },
        };
        assert_eq!(pg_timestamp(0), Some(at(2000, 1, 1, 0, 0, 0, 0)));
        assert_eq!(
            pg_timestamp(-1),
            Some(at(1999, 12, 31, 23, 59, 59, 999_999))
        );
        assert_eq!(
            pg_timestamp(86_400_000_000 + 3_723_000_004),
            Some(at(2000, 1, 2, 1, 2, 3, 4))
        );
        assert_eq!(pg_timestamp(i64::MAX), None);
        assert_eq!(pg_timestamp(i64::MIN), None);
        assert_eq!(
            pg_date(-730_119),
            Some(Date {
                year: 1,
                month: 1,
                day: 1
            })
        );
        assert_eq!(pg_date(-730_120), None);
        assert_eq!(pg_date(i64::MAX), None);
        assert_eq!(civil_from_days(2_932_897), None);
    }

    #[test]
    fn uuids() {
        assert_eq!(
            parse_uuid("12345678-9abc-DEF0-1234-56789abcdef0"),
            Some(0x1234_5678_9abc_def0_1234_5678_9abc_def0)
        );
        assert_eq!(parse_uuid("00000000-0000-0000-0000-000000000000"), Some(0));
        for bad in [
            "123456789abcdef0123456789abcdef0",
            "{12345678-9abc-def0-1234-56789abcdef0}",
            "12345678-9abc-def0-1234-56789abcdef",
            "12345678+9abc-def0-1234-56789abcdef0",
            "1234567g-9abc-def0-1234-56789abcdef0",
            "12345678-9abc-def0-1234-56789abcdef0 ",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
        }
    }
}
