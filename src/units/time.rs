//! Times for records and people: RFC 3339 timestamps (UTC, without a date crate) and
//! docker's "3 minutes ago".
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now as `2024-05-01T12:34:56.123456789Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC): what container and volume records hold.
pub fn format_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}Z", date_time(d.as_secs()), d.subsec_nanos())
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds): what image
/// configs written by `import`/`commit` hold.
pub fn rfc3339_seconds(secs: u64) -> String {
    format!("{}Z", date_time(secs))
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` since the epoch.
fn date_time(secs: u64) -> String {
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parse an RFC 3339 time with a `Z` or numeric offset (none reads as UTC, as image
/// configs sometimes have it), with or without a fraction; what [`format_rfc3339`] and
/// [`rfc3339_seconds`] write reads back exactly.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Whole seconds since the epoch (0 for a time before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// go-units' `HumanDuration`, which docker and podman print: "Less than a second",
/// "1 second", "3 seconds", "About a minute", "5 minutes", "About an hour", "3 hours",
/// "2 days", "3 weeks", "4 months", "2 years". Seconds and minutes are truncated, hours
/// rounded, as there.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// The `CREATED` columns of `ps` and `images`: "3 seconds ago" (a time in the future reads
/// as now).
pub fn ago(then: SystemTime, now: SystemTime) -> String {
    let d = now.duration_since(then).unwrap_or_default();
    format!("{} ago", human_duration(d))
}

// Howard Hinnant's algorithms (public domain).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `t` as Go's `time.Time.String()` in UTC, which podman prints for events:
/// `2024-05-01 12:34:56.123456789 +0000 UTC` (trailing zeros of the fraction dropped).
pub fn go_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let frac = format!("{:09}", d.subsec_nanos());
    let frac = frac.trim_end_matches('0');
    let dot = if frac.is_empty() { "" } else { "." };
    format!(
        "{}{dot}{frac} +0000 UTC",
        date_time(d.as_secs()).replace('T', " ")
    )
}

/// Go's `time.ParseDuration`, which podman uses for `--health-interval` and friends:
/// a sequence of decimal numbers with a unit each (`ns`, `us`, `µs`, `ms`, `s`, `m`,
/// `h`), e.g. `1m30s`, `1.5h`, `500ms`; a bare `0` is zero. No sign: box has no use for
/// negative durations.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += n * unit;
        rest = &rest[u_end..];
    }
    if !nanos.is_finite() || nanos > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(nanos as u64))
}

/// A duration as Go's `time.Duration.String()` prints it: `30s`, `1m30s`, `1h0m0s`,
/// `500ms`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (v, unit) = if n < 1_000 {
            (n as f64, "ns")
        } else if n < 1_000_000 {
            (n as f64 / 1e3, "µs")
        } else {
            (n as f64 / 1e6, "ms")
        };
        return format!("{}{unit}", trim_float(v));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    let s = (secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let s = trim_float(s);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

fn trim_float(v: f64) -> String {
    let t = format!("{v:.9}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_000_000);
        let s = format_rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20.123000000Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2023-11-14T23:13:20+01").is_none());
        assert!(parse_rfc3339("2023-11-14T23:13:20Zjunk").is_none());
    }

    #[test]
    fn whole_seconds_and_offsets() {
        let secs = |s: &str| parse_rfc3339(s).map(unix_secs);
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(1_725_580_800), "2024-09-06T00:00:00Z");
        assert_eq!(secs(&rfc3339_seconds(1_000_000_007)), Some(1_000_000_007));
        assert_eq!(secs("2024-09-06T00:00:00Z"), Some(1_725_580_800));
        assert_eq!(secs("2024-09-06T00:00:00"), Some(1_725_580_800));
        assert_eq!(
            secs("2024-09-06T02:00:00.123456789+02:00"),
            Some(1_725_580_800)
        );
        assert_eq!(secs("junk"), None);
    }

    #[test]
    fn durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(Duration::from_millis(1999)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(150)), "2 minutes");
        assert_eq!(human_duration(s(3599)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(5399)), "About an hour");
        assert_eq!(human_duration(s(5400)), "2 hours");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(86400)), "24 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(15 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(21 * 86400)), "3 weeks");
        assert_eq!(human_duration(s(100 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
        assert_eq!(human_duration(s(100_000_000)), "3 years");
    }

    #[test]
    fn ago_reads_a_future_time_as_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ago(now - Duration::from_secs(5), now), "5 seconds ago");
        assert_eq!(
            ago(now - Duration::from_secs(90), now),
            "About a minute ago"
        );
        assert_eq!(
            ago(now + Duration::from_secs(5), now),
            "Less than a second ago"
        );
    }

    #[test]
    fn go_times_and_durations() {
        let t = UNIX_EPOCH + Duration::new(1_704_067_200, 123_450_000);
        assert_eq!(go_time(t), "2024-01-01 00:00:00.12345 +0000 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_704_067_200);
        assert_eq!(go_time(t), "2024-01-01 00:00:00 +0000 UTC");
        let p = |s: &str| parse_go_duration(s);
        assert_eq!(p("30s"), Some(Duration::from_secs(30)));
        assert_eq!(p("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(p("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(p("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(p("0"), Some(Duration::ZERO));
        for bad in ["", "10", "1x", "s", "-1s", "1d", "abc"] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
    }
}
