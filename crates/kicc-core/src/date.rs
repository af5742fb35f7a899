//! Korea-time dates: `yyyyMMdd` and `yyyyMMddHHmmss`.
//!
//! KICC dates are Korea Standard Time, UTC+9, which has no daylight saving time. The
//! server's own timezone never matters: [`KoreaDate::of`] takes an instant and converts it
//! with the fixed offset. Nothing here reads a clock.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::field::{FieldError, Rule};

/// Korea's offset from UTC, in seconds (UTC+9, no DST).
pub const KST_OFFSET_SECONDS: i64 = 9 * 3600;

/// Seconds since the Unix epoch for `t`, negative before 1970.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration();
            // Round towards negative infinity so 0.5 s before the epoch is second -1.
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            if before.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

fn parse_digits<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], FieldError> {
    let bytes = s.as_bytes();
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(FieldError::new(field, Rule::Digits { expected: N }));
    }
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn number(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'))
}

fn write_number(out: &mut [u8], mut n: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// A Korea date, `yyyyMMdd` (e.g. `cancelReqDate`). Always a real calendar date.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KoreaDate([u8; 8]);

impl KoreaDate {
    /// The Korea date at instant `t`.
    pub fn of(t: SystemTime) -> Self {
        // The date part of `KoreaDateTime::of(t)`, without formatting the time of day.
        let secs = unix_seconds(t).saturating_add(KST_OFFSET_SECONDS);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let mut out = [b'0'; 8];
        write_number(&mut out[0..4], y.clamp(1, 9999) as u32);
        write_number(&mut out[4..6], m);
        write_number(&mut out[6..8], d);
        KoreaDate(out)
    }

    /// Parses `yyyyMMdd`, reporting errors under `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, FieldError> {
        let d = parse_digits::<8>(field, s)?;
        let (y, m, day) = (number(&d[0..4]), number(&d[4..6]), number(&d[6..8]));
        if y == 0 || !(1..=12).contains(&m) || day == 0 || day > days_in_month(y, m) {
            return Err(FieldError::new(field, Rule::NotACalendarDate));
        }
        Ok(KoreaDate(d))
    }

    /// The date as `yyyyMMdd`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("00000000")
    }
}

impl fmt::Display for KoreaDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KoreaDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KoreaDate({})", self.as_str())
    }
}

impl serde::Serialize for KoreaDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KoreaDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        KoreaDate::parse("date", &s).map_err(serde::de::Error::custom)
    }
}

/// A Korea date and time, `yyyyMMddHHmmss` (e.g. `transactionDate`, `cancelDate`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KoreaDateTime([u8; 14]);

impl KoreaDateTime {
    /// The Korea date and time at instant `t` (UTC+9).
    pub fn of(t: SystemTime) -> Self {
        let secs = unix_seconds(t).saturating_add(KST_OFFSET_SECONDS);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let y = y.clamp(1, 9999) as u32;
        let mut out = [b'0'; 14];
        write_number(&mut out[0..4], y);
        write_number(&mut out[4..6], m);
        write_number(&mut out[6..8], d);
        write_number(&mut out[8..10], sod / 3600);
        write_number(&mut out[10..12], sod / 60 % 60);
        write_number(&mut out[12..14], sod % 60);
        KoreaDateTime(out)
    }

    /// Parses `yyyyMMddHHmmss`, reporting errors under `field`.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, FieldError> {
        let d = parse_digits::<14>(field, s)?;
        KoreaDate::parse(field, s.get(0..8).unwrap_or(""))?;
        let (h, mi, se) = (number(&d[8..10]), number(&d[10..12]), number(&d[12..14]));
        if h > 23 || mi > 59 || se > 59 {
            return Err(FieldError::new(field, Rule::NotACalendarDate));
        }
        Ok(KoreaDateTime(d))
    }

    /// The date part.
    pub fn date(&self) -> KoreaDate {
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.0[0..8]);
        KoreaDate(d)
    }

    /// As `yyyyMMddHHmmss`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("00000000000000")
    }
}

impl fmt::Display for KoreaDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KoreaDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KoreaDateTime({})", self.as_str())
    }
}

impl serde::Serialize for KoreaDateTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The instant `secs` seconds after the Unix epoch (negative: before it).
fn from_unix_seconds(secs: i64) -> SystemTime {
    let magnitude = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(magnitude).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

/// Instants of Korea dates and times, for comparing a gateway's `transactionDate` with the
/// time a request was sent, and for the look-up window (today and yesterday in Korea).
impl KoreaDate {
    /// The instant this Korea date begins (00:00:00 KST).
    pub fn start(&self) -> SystemTime {
        let (y, m, d) = (
            number(&self.0[0..4]),
            number(&self.0[4..6]),
            number(&self.0[6..8]),
        );
        let days = days_from_civil(i64::from(y), m, d);
        from_unix_seconds(days * 86_400 - KST_OFFSET_SECONDS)
    }

    /// The following Korea date.
    pub fn next(&self) -> KoreaDate {
        KoreaDate::of(self.start() + std::time::Duration::from_secs(86_400))
    }

    /// Whole Korea days from `self` to `later` (negative if `later` is earlier).
    pub fn days_until(&self, later: KoreaDate) -> i64 {
        let a = unix_seconds(self.start());
        let b = unix_seconds(later.start());
        (b - a).div_euclid(86_400)
    }
}

impl KoreaDateTime {
    /// The instant this Korea date and time denotes (UTC+9).
    pub fn to_system_time(&self) -> SystemTime {
        let sod = i64::from(number(&self.0[8..10])) * 3600
            + i64::from(number(&self.0[10..12])) * 60
            + i64::from(number(&self.0[12..14]));
        let start = self.date().start();
        from_unix_seconds(unix_seconds(start) + sod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn date_of_an_instant_is_the_date_of_its_date_time() {
        for secs in [
            0u64,
            53_999,
            54_000,
            86_399,
            951_782_400,
            1_795_273_199,
            1_795_273_200,
            253_402_300_799,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            assert_eq!(KoreaDate::of(t), KoreaDateTime::of(t).date(), "{secs}");
        }
    }

    #[test]
    fn korea_date_across_utc_midnight() {
        // 2026-11-21T14:59:59Z is 23:59:59 KST on the 21st; one second later it is the 22nd in
        // Korea while still the 21st in UTC. Expected values computed independently with Python's datetime and a fixed +09:00 timezone.
        assert_eq!(KoreaDate::of(at(1_795_273_199)).as_str(), "20261121");
        assert_eq!(KoreaDate::of(at(1_795_273_200)).as_str(), "20261122");
        assert_eq!(
            KoreaDateTime::of(at(1_795_273_200)).as_str(),
            "20261122000000"
        );
        // 2026-11-21T23:30:00Z is already 08:30 on the 22nd in Korea.
        assert_eq!(
            KoreaDateTime::of(at(1_795_303_800)).as_str(),
            "20261122083000"
        );
        // The epoch is 09:00 KST.
        assert_eq!(KoreaDateTime::of(UNIX_EPOCH).as_str(), "19700101090000");
        // Leap day, year end.
        assert_eq!(KoreaDate::of(at(1_709_164_800)).as_str(), "20240229"); // 2024-02-29T00:00Z
        assert_eq!(
            KoreaDateTime::of(at(1_798_729_199)).as_str(),
            "20261231235959"
        );
        assert_eq!(
            KoreaDateTime::of(at(1_798_729_200)).as_str(),
            "20270101000000"
        );
    }

    /// Every February 29th from year 1 to 9999 against the `time` crate's leap-year rule,
    /// and the instants around each year's end.
    #[test]
    fn leap_days_and_year_ends_agree_with_the_time_crate() {
        for y in 1..=9999i32 {
            let text = format!("{y:04}0229");
            assert_eq!(
                KoreaDate::parse("d", &text).is_ok(),
                time::util::is_leap_year(y),
                "{text}"
            );
        }
        let kst = time::UtcOffset::from_hms(9, 0, 0).unwrap();
        for y in [1970, 1999, 2000, 2024, 2026, 2100, 2400, 9998] {
            let midnight = time::Date::from_calendar_date(y + 1, time::Month::January, 1)
                .unwrap()
                .midnight()
                .assume_offset(kst)
                .unix_timestamp();
            for secs in [midnight - 1, midnight] {
                let o = time::OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap()
                    .to_offset(kst);
                let t = at(u64::try_from(secs).unwrap());
                assert_eq!(
                    KoreaDate::of(t).as_str(),
                    format!("{:04}{:02}{:02}", o.year(), u8::from(o.month()), o.day())
                );
            }
        }
    }

    #[test]
    fn parse_rejects_non_dates() {
        assert!(KoreaDate::parse("cancelReqDate", "20240229").is_ok());
        for bad in [
            "20230229",
            "20261301",
            "20261100",
            "2026112",
            "2026-11-2",
            "２０２６１１２１",
            "",
        ] {
            let e = KoreaDate::parse("cancelReqDate", bad).unwrap_err();
            assert_eq!(e.field, "cancelReqDate");
        }
        assert!(KoreaDateTime::parse("transactionDate", "20261121235959").is_ok());
        assert!(KoreaDateTime::parse("transactionDate", "20261121240000").is_err());
        assert!(KoreaDateTime::parse("transactionDate", "20261121236000").is_err());
    }

    proptest! {
        // Many instants: these compare with an outside source, and each case is cheap.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn formatted_dates_parse_back(secs in 0u64..4_000_000_000) {
            let dt = KoreaDateTime::of(at(secs));
            prop_assert_eq!(KoreaDateTime::parse("t", dt.as_str()).unwrap(), dt);
            prop_assert_eq!(dt.date(), KoreaDate::of(at(secs)));
            // Korea is always 9 hours ahead of UTC: the KST date of t equals the UTC date of t+9h.
            let utc_days = (secs + 9 * 3600) / 86_400;
            let (y, m, d) = civil_from_days(utc_days as i64);
            let date = dt.date();
            prop_assert_eq!(date.as_str(), format!("{y:04}{m:02}{d:02}"));
        }

        /// The calendar arithmetic against an outside source: the `time` crate's conversion
        /// of the same instant to UTC+09:00, over the whole range the format can show
        /// (years 0001 to 9999), before and after the epoch.
        #[test]
        fn date_time_of_an_instant_agrees_with_the_time_crate(
            secs in -62_135_596_800i64 + 1..=253_402_300_799 - 9 * 3600,
        ) {
            let t = if secs >= 0 {
                UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
            } else {
                UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            };
            let kst = time::UtcOffset::from_hms(9, 0, 0).unwrap();
            let o = time::OffsetDateTime::from_unix_timestamp(secs).unwrap().to_offset(kst);
            let expected = format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}",
                o.year(),
                u8::from(o.month()),
                o.day(),
                o.hour(),
                o.minute(),
                o.second()
            );
            let (dt, date) = (KoreaDateTime::of(t), KoreaDate::of(t));
            prop_assert_eq!(dt.as_str(), expected.as_str());
            prop_assert_eq!(date.as_str(), &expected[..8]);
        }

        /// Which `yyyyMMdd` strings are real dates, against the `time` crate.
        #[test]
        fn parse_accepts_exactly_the_real_dates(y in 1i32..=9999, m in 1u8..=12, d in 0u8..=32) {
            let text = format!("{y:04}{m:02}{d:02}");
            let real = time::Month::try_from(m)
                .and_then(|month| time::Date::from_calendar_date(y, month, d))
                .is_ok();
            prop_assert_eq!(KoreaDate::parse("d", &text).is_ok(), real, "{}", text);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = KoreaDate::parse("d", &s);
            let _ = KoreaDateTime::parse("d", &s);
        }
    }

    #[test]
    fn korea_instants_round_trip() {
        for secs in [
            0u64,
            1_795_273_199,
            1_795_273_200,
            951_782_400,
            4_102_444_799,
        ] {
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let dt = KoreaDateTime::of(t);
            assert_eq!(dt.to_system_time(), t, "{dt}");
            let day = KoreaDate::of(t);
            assert!(day.start() <= t);
            assert_eq!(KoreaDate::of(day.start()), day);
            assert_eq!(day.days_until(day.next()), 1);
            assert_eq!(day.next().days_until(day), -1);
        }
        // 2026-11-21 15:00 UTC is 2026-11-22 00:00 KST.
        let d = KoreaDate::parse("d", "20261122").unwrap();
        assert_eq!(
            d.start(),
            UNIX_EPOCH + std::time::Duration::from_secs(1_795_273_200)
        );
        assert_eq!(
            KoreaDate::parse("d", "20261231").unwrap().next().as_str(),
            "20270101"
        );
        assert_eq!(
            KoreaDate::parse("d", "20280228").unwrap().next().as_str(),
            "20280229"
        );
    }
}
