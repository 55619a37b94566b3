//! Byte counts for people.
//!
//! [`human_size`] is what every column and total prints (`images`, `stats`, `system df`,
//! `prune`, pull messages): docker's `units.HumanSizeWithPrecision(size, 3)`, decimal units.
//! [`binary_size`] is for messages that put a size next to its exact byte count, in the
//! binary units of `df -h` and `ls -lh` (the free space on the store's filesystem).

/// docker's `HumanSizeWithPrecision(size, 3)`: three significant digits (Go's `%.3g`),
/// decimal units: "512B", "1.5kB", "12.3MB", "400MB". Where rounding reaches 1000 the next
/// unit is used ("1MB", not Go's "1e+03kB").
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    let mut digits = three_digits(v);
    if digits == "1000" && unit + 1 < UNITS.len() {
        unit += 1;
        digits = "1".into();
    }
    format!("{digits}{}", UNITS[unit])
}

/// `v` (0 or at least 1, below 1000) with three significant digits, trailing zeros dropped.
fn three_digits(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // The exponent after rounding to three digits, as `%g` decides it.
    let exp: i32 = format!("{v:.2e}")
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = (2 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `1.0 PiB` style sizes for messages: bytes below 1 KiB, else one decimal of the
/// largest binary unit.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(7_800_000), "7.8MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(78_000_000), "78MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(400_000_000), "400MB");
        assert_eq!(human_size(999_999), "1MB");
        assert_eq!(human_size(5_000_000_000), "5GB");
        assert_eq!(human_size(u64::MAX), "18.4EB");
    }

    #[test]
    fn binary_sizes_for_messages() {
        assert_eq!(binary_size(1000), "1000 B");
        assert_eq!(binary_size(24 << 20), "24.0 MiB");
        assert_eq!(binary_size(1 << 50), "1.0 PiB");
    }
}
