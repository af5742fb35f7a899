//! The sandbox's one clock: "now" as Unix seconds shifted by the clock
//! offset ([`unix_now`]), as a Korea Standard Time wall clock (UTC+9, no DST;
//! [`KoreaTime`]) and as WeChat Pay's China-time RFC 3339 ([`rfc3339_china`]).

use std::time::{SystemTime, UNIX_EPOCH};

const KST_OFFSET_SECS: i64 = 9 * 3600;
const SECS_PER_DAY: i64 = 86_400;
/// Largest accepted clock shift: about 100 years either way.
const MAX_OFFSET_SECS: i64 = 100 * 366 * SECS_PER_DAY;
/// The rule [`offset_in_range`] enforces, for error messages.
pub(crate) const OFFSET_RULE: &str = "must be within +/- 100 years (in seconds)";

/// Whether a clock shift is accepted.
pub(crate) fn offset_in_range(offset: i64) -> bool {
    (-MAX_OFFSET_SECS..=MAX_OFFSET_SECS).contains(&offset)
}

/// The sandbox's "now" as Unix seconds (real time plus the clock offset).
pub(crate) fn unix_now(offset: i64) -> i64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    real.saturating_add(offset)
}

/// Unix seconds as RFC 3339 in China time, as WeChat Pay writes times:
/// `2024-01-01T08:00:00+08:00`.
pub(crate) fn rfc3339_china(unix: i64) -> String {
    let local = unix.saturating_add(8 * 3_600);
    let (y, m, d) = civil_from_days(local.div_euclid(SECS_PER_DAY));
    let secs = local.rem_euclid(SECS_PER_DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+08:00",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// A moment as a wall-clock time in Korea.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KoreaTime {
    /// Days since 1970-01-01 in Korea's calendar (the key for "same day" rules).
    pub(crate) day: i64,
    year: i64,
    month: u32,
    dom: u32,
    secs_of_day: i64,
}

impl KoreaTime {
    /// Now, shifted by `offset` seconds.
    pub(crate) fn now(offset: i64) -> Self {
        Self::from_unix(unix_now(offset))
    }

    /// The Korea wall-clock time of a Unix timestamp.
    pub(crate) fn from_unix(unix: i64) -> Self {
        let local = unix.saturating_add(KST_OFFSET_SECS);
        let day = local.div_euclid(SECS_PER_DAY);
        let secs_of_day = local.rem_euclid(SECS_PER_DAY);
        let (year, month, dom) = civil_from_days(day);
        Self {
            day,
            year,
            month,
            dom,
            secs_of_day,
        }
    }

    /// `yyyyMMdd`.
    pub(crate) fn date_string(&self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.dom)
    }

    /// `yyyyMMddHHmmss`.
    pub(crate) fn datetime_string(&self) -> String {
        let h = self.secs_of_day / 3600;
        let m = (self.secs_of_day % 3600) / 60;
        let s = self.secs_of_day % 60;
        format!("{}{h:02}{m:02}{s:02}", self.date_string())
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // The ranges above make these conversions lossless.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses `yyyyMMdd` into days since 1970-01-01; `None` unless it is exactly
/// eight ASCII digits naming a real calendar date.
pub(crate) fn parse_yyyymmdd(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { s.get(r)?.parse().ok() };
    let year = i64::from(num(0..4)?);
    let month = num(4..6)?;
    let day = num(6..8)?;
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn china_time() {
        assert_eq!(rfc3339_china(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(rfc3339_china(1_700_000_000), "2023-11-15T06:13:20+08:00");
        assert_eq!(rfc3339_china(951_782_400), "2000-02-29T08:00:00+08:00");
    }

    #[test]
    fn known_instants_in_korea() {
        // 2021-03-26T00:02:00Z is 09:02 in Korea.
        let t = KoreaTime::from_unix(1_616_716_920);
        assert_eq!(t.datetime_string(), "20210326090200");
        // 2023-03-11T15:00:00Z is already midnight of 12 March in Korea.
        let t = KoreaTime::from_unix(1_678_546_800);
        assert_eq!(t.datetime_string(), "20230312000000");
        // One second earlier it is still the 11th.
        let t = KoreaTime::from_unix(1_678_546_799);
        assert_eq!(t.datetime_string(), "20230311235959");
        assert_eq!(KoreaTime::from_unix(0).datetime_string(), "19700101090000");
    }

    #[test]
    fn parses_only_real_dates() {
        assert_eq!(parse_yyyymmdd("19700101"), Some(0));
        assert_eq!(
            parse_yyyymmdd("20240229"),
            Some(days_from_civil(2024, 2, 29))
        );
        for bad in [
            "20230229",
            "20231301",
            "20230001",
            "20230100",
            "00000101",
            "2023011",
            "202301011",
            "2023-1-1",
            "２０２３０１０１",
            "+2023010",
            "",
        ] {
            assert_eq!(parse_yyyymmdd(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_are_bounded() {
        assert!(offset_in_range(0));
        assert!(offset_in_range(86_400 * 365 * 99));
        assert!(!offset_in_range(i64::MAX));
        assert!(!offset_in_range(i64::MIN));
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -1_000_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m));
            prop_assert!(d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn formatted_dates_parse_back(unix in -2_000_000_000i64..8_000_000_000) {
            let t = KoreaTime::from_unix(unix);
            prop_assert_eq!(parse_yyyymmdd(&t.date_string()), Some(t.day));
            prop_assert_eq!(t.datetime_string().len(), 14);
        }

        #[test]
        fn china_time_never_panics(unix in any::<i64>()) {
            let _ = rfc3339_china(unix);
        }

        #[test]
        fn date_parser_never_panics(s in "\\PC{0,12}") {
            let _ = parse_yyyymmdd(&s);
        }
    }
}
