//! /etc/subuid and /etc/subgid: `name-or-uid:start:count`, one range a line.
use super::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SubidRange {
    pub start: u32,
    pub count: u32,
}

/// Every range in `text` that belongs to `user` (by name or numeric uid).
pub fn parse_subid_file(text: &str, user: &str, uid: u32) -> Vec<SubidRange> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut parts = line.split(':');
            let (owner, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() || (owner != user && owner != uid) {
                return None;
            }
            let start = start.trim().parse().ok()?;
            let count: u32 = count.trim().parse().ok()?;
            (count > 0).then_some(SubidRange { start, count })
        })
        .collect()
}

/// Where a range of `user` in `text` overlaps another user's: `(other user, their range)`.
/// Two users sharing ids can reach each other's container files (and processes).
pub fn overlaps(text: &str, user: &str, uid: u32) -> Vec<(String, SubidRange)> {
    let mine = parse_subid_file(text, user, uid);
    let uid = uid.to_string();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let mut parts = line.split(':');
        let (Some(owner), Some(start), Some(count)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if owner == user || owner == uid {
            continue;
        }
        let (Ok(start), Ok(count)) = (start.trim().parse::<u32>(), count.trim().parse::<u32>())
        else {
            continue;
        };
        let theirs = SubidRange { start, count };
        let end = |r: &SubidRange| r.start as u64 + r.count as u64;
        if count > 0
            && mine
                .iter()
                .any(|m| (m.start as u64) < end(&theirs) && (start as u64) < end(m))
        {
            found.push((owner.to_string(), theirs));
        }
    }
    found
}

/// The ranges of `user` in `file`; a missing file means none.
pub(super) fn ranges_for(
    file: &'static str,
    user: &str,
    uid: u32,
) -> Result<Vec<SubidRange>, Error> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(parse_subid_file(&text, user, uid)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::ReadSubids { file, source }),
    }
}

/// A free 65536-id range after every range already in `file` (first, last).
pub(super) fn suggest_range(file: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let end = text
        .lines()
        .filter_map(|l| {
            let mut p = l.trim().split(':').skip(1);
            let start: u64 = p.next()?.parse().ok()?;
            let count: u64 = p.next()?.parse().ok()?;
            Some(start + count)
        })
        .max()
        .unwrap_or(0)
        .max(100000);
    (end, end + 65535)
}

/// The /etc/subuid line to add for `user` starting at `first`.
pub fn suggest_line(user: &str, first: u64) -> String {
    format!("{user}:{first}:65536")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_of_other_users() {
        let text = "alice:100000:65536\nbob:165535:10\ncarol:200000:65536\n1000:100010:1\n";
        let o = overlaps(text, "alice", 1000);
        assert_eq!(
            o,
            [(
                "bob".to_string(),
                SubidRange {
                    start: 165535,
                    count: 10
                }
            )]
        );
        assert!(overlaps(text, "carol", 1002).is_empty());
    }

    #[test]
    fn parses_by_name_and_uid() {
        let text = "# comment\nalice:100000:65536\nbob:165536:65536\n1000:300000:10\nbad line\nalice:x:1\n";
        assert_eq!(
            parse_subid_file(text, "alice", 1000),
            vec![
                SubidRange {
                    start: 100000,
                    count: 65536
                },
                SubidRange {
                    start: 300000,
                    count: 10
                }
            ]
        );
        assert!(parse_subid_file(text, "carol", 1002).is_empty());
    }

    #[test]
    fn zero_count_ignored() {
        assert!(parse_subid_file("a:1:0", "a", 5).is_empty());
    }
}
