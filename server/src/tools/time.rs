//! Times on the command line and in reports: epoch milliseconds (what Kinto
//! and the log store) or RFC 3339 (what people type), always shown in UTC.
//!
//! Hand-written rather than a date crate: the tools need only these two
//! conversions, and the well-kept date crates now ask for a newer Rust than
//! the workspace's `rust-version`.

use super::ToolError;

/// Parses `1735689600000`, `2025-01-01T00:00:00Z`,
/// `2025-01-01T01:00:00.250+01:00`, `2025-01-01 00:00:00Z` or
/// `2025-01-01` (midnight UTC) into epoch milliseconds. Fractions below a
/// millisecond are truncated.
pub fn parse_time(s: &str) -> Result<u64, ToolError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| ToolError::Usage(format!("time {s:?} is out of range")));
    }
    parse_rfc3339(s).ok_or_else(|| {
        ToolError::Usage(format!(
            "cannot read time {s:?}: give epoch milliseconds (1735689600000) or RFC 3339 \
             (2025-01-01T00:00:00Z, 2025-01-01T01:00:00+01:00, 2025-01-01)"
        ))
    })
}

fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let expect = |at: usize, c: u8| b.get(at) == Some(&c);
    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    if !expect(4, b'-') || !expect(7, b'-') || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return to_ms(days, 0, 0);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = num(11, 2)?;
    let minute = num(14, 2)?;
    let second = num(17, 2)?;
    if !expect(13, b':') || !expect(16, b':') || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if expect(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && expect(i + 3, b':') => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 60 + m;
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = (hour * 60 + minute - offset_min) * 60 + second;
    to_ms(days, secs, millis)
}

fn to_ms(days: i64, secs: i64, millis: i64) -> Option<u64> {
    let ms = (days * 86_400 + secs) * 1000 + millis;
    u64::try_from(ms).ok()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2025-01-01T00:00:00.000Z`.
pub fn format_ms(ms: u64) -> String {
    let ms = ms as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, rem) = (rem / 3_600_000, rem % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    let (s, milli) = (rem / 1000, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Wall-clock epoch milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ms_passes_through() {
        assert_eq!(parse_time("1735689600000").unwrap(), 1_735_689_600_000);
        assert_eq!(parse_time(" 0 ").unwrap(), 0);
    }

    #[test]
    fn rfc3339_forms() {
        let base = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        assert_eq!(parse_time("2025-01-01T00:00:00Z").unwrap(), base);
        assert_eq!(parse_time("2025-01-01").unwrap(), base);
        assert_eq!(parse_time("2025-01-01 00:00:00z").unwrap(), base);
        assert_eq!(parse_time("2025-01-01T01:00:00+01:00").unwrap(), base);
        assert_eq!(parse_time("2024-12-31T23:30:00-00:30").unwrap(), base);
        assert_eq!(parse_time("2025-01-01T00:00:00.5Z").unwrap(), base + 500);
        assert_eq!(
            parse_time("2025-01-01T00:00:00.123987Z").unwrap(),
            base + 123
        );
        assert_eq!(
            parse_time("2024-02-29T12:00:00Z").unwrap(),
            1_709_208_000_000
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-02-30",
            "2023-02-29T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+0100",
            "1969-12-31T23:59:59Z",
            "99999999999999999999999",
        ] {
            let e = parse_time(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        for ms in [
            0,
            1,
            999,
            1_735_689_600_000,
            1_709_208_000_123,
            951_782_400_000, // 2000-02-29
            4_102_444_799_999,
        ] {
            let s = format_ms(ms);
            assert_eq!(parse_time(&s).unwrap(), ms, "{s}");
        }
        assert_eq!(format_ms(1_735_689_600_250), "2025-01-01T00:00:00.250Z");
    }

    #[test]
    fn civil_days_agree_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
