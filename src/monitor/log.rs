//! Container logs in podman's k8s-file format, bounded with one rotated file.
//!
//! One record per line: `<RFC 3339 time, nanoseconds, UTC> <stdout|stderr> <F|P> <text>`.
//! `F` ends a line; `P` is a piece of a longer line (or a last line without a newline)
//! that the next record of the same stream continues. When `ctr.log` grows past the
//! limit (`BOX_LOG_SIZE_MAX` bytes, default 8 MiB) it is renamed to `ctr.log.1`
//! (replacing the previous one) and a fresh `ctr.log` is started, so a container's logs
//! never take more than twice the limit.
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::units::{format_rfc3339, parse_rfc3339};

/// Longest piece written as one record; longer lines are split into `P` records.
pub const MAX_RECORD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The default size limit of one log file.
pub fn default_max_size() -> u64 {
    std::env::var("BOX_LOG_SIZE_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &u64| n >= 4096)
        .unwrap_or(8 * 1024 * 1024)
}

/// The writer of a container's output, as its `--log-driver` and `--log-opt` say: its
/// log file, or nothing kept (none, passthrough).
pub fn writer_for(rec: &crate::container::Record) -> io::Result<LogWriter> {
    let log = &rec.config.spec.settings.log;
    if !log.driver.keeps_log() {
        return LogWriter::discard();
    }
    LogWriter::open(
        &rec.log_path(),
        log.max_size.unwrap_or_else(default_max_size),
    )
}

/// The rotated file next to `path`.
pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// Appends records to a log file, rotating it past `max_size`.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
    /// Records not yet written: one write per `write` call, not one per line.
    out: Vec<u8>,
    /// The time of the records being made, formatted once.
    stamp: Option<(SystemTime, String)>,
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64) -> io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
            stamp: None,
        })
    }

    /// A writer that keeps nothing (`--log-driver none`).
    pub fn discard() -> io::Result<LogWriter> {
        Ok(LogWriter {
            path: PathBuf::from("/dev/null"),
            file: OpenOptions::new().write(true).open("/dev/null")?,
            size: 0,
            max_size: u64::MAX,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
            stamp: None,
        })
    }

    /// Record output of `stream`: complete lines become `F` records; a trailing piece is
    /// kept until its newline arrives (or it exceeds `MAX_RECORD`).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        self.write_at(stream, data, SystemTime::now())
    }

    pub fn write_at(&mut self, stream: Stream, data: &[u8], now: SystemTime) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + nl];
            self.emit_line(stream, line, now)?;
            start += nl + 1;
        }
        let mut rest = buf[start..].to_vec();
        while rest.len() >= MAX_RECORD {
            let piece: Vec<u8> = rest.drain(..MAX_RECORD).collect();
            self.record(stream, 'P', &piece, now)?;
        }
        self.pending[idx] = rest;
        self.flush_out()
    }

    fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            let r = self.file.write_all(&self.out);
            self.out.clear();
            r?;
        }
        Ok(())
    }

    fn emit_line(&mut self, stream: Stream, line: &[u8], now: SystemTime) -> io::Result<()> {
        let mut chunks = line.chunks(MAX_RECORD).peekable();
        if chunks.peek().is_none() {
            return self.record(stream, 'F', b"", now);
        }
        while let Some(c) = chunks.next() {
            let tag = if chunks.peek().is_some() { 'P' } else { 'F' };
            self.record(stream, tag, c, now)?;
        }
        Ok(())
    }

    /// Write out unfinished lines as `P` records (the stream ended without a newline).
    pub fn flush_partial(&mut self) -> io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.record(stream, 'P', &rest, SystemTime::now())?;
            }
        }
        self.flush_out()
    }

    fn record(
        &mut self,
        stream: Stream,
        tag: char,
        text: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        if self.stamp.as_ref().is_none_or(|(t, _)| *t != now) {
            self.stamp = Some((now, format_rfc3339(now)));
        }
        let stamp_len = self.stamp.as_ref().map_or(0, |(_, s)| s.len());
        let len = stamp_len + stream.name().len() + text.len() + 5;
        if self.size > 0 && self.size + len as u64 > self.max_size {
            self.flush_out()?;
            self.rotate()?;
        }
        let stamp = self.stamp.as_ref().map(|(_, s)| s.as_str()).unwrap_or("");
        let line = &mut self.out;
        line.extend_from_slice(stamp.as_bytes());
        line.push(b' ');
        line.extend_from_slice(stream.name().as_bytes());
        line.push(b' ');
        line.push(tag as u8);
        line.push(b' ');
        line.extend_from_slice(text);
        line.push(b'\n');
        self.size += len as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        fs::rename(&self.path, rotated(&self.path))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: String,
    pub stream: Stream,
    /// `F`: the text ends a line.
    pub full: bool,
    pub text: Vec<u8>,
}

impl Record {
    pub fn parse(line: &[u8]) -> Option<Record> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut parts = line.splitn(4, |&b| b == b' ');
        let time = std::str::from_utf8(parts.next()?).ok()?.to_string();
        let stream = match parts.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let full = match parts.next()? {
            b"F" => true,
            b"P" => false,
            _ => return None,
        };
        let text = parts.next().unwrap_or_default().to_vec();
        Some(Record {
            time,
            stream,
            full,
            text,
        })
    }

    pub fn system_time(&self) -> Option<SystemTime> {
        parse_rfc3339(&self.time)
    }
}

/// How to print records.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    /// `--until`: records written after it are left out.
    pub until: Option<SystemTime>,
    pub timestamps: bool,
    /// Written at the start of every line (`box logs` of several containers: the
    /// container's short id or, with `--names`, its name, then a space).
    pub prefix: String,
}

impl ReadOptions {
    /// Whether record `r` is within `--since` and `--until`.
    pub fn keeps(&self, r: &Record) -> bool {
        let t = r.system_time();
        self.since.is_none_or(|s| t.is_none_or(|t| t >= s))
            && self.until.is_none_or(|u| t.is_none_or(|t| t <= u))
    }
}

/// Print one record the way `box logs` does: the text with its newline on `F`, and the
/// time first with `-t` (only at the start of a line).
pub fn print_record(
    rec: &Record,
    opts: &ReadOptions,
    at_line_start: &mut [bool; 2],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    let w: &mut dyn Write = match rec.stream {
        Stream::Stdout => out,
        Stream::Stderr => err,
    };
    let idx = rec.stream as usize;
    if at_line_start[idx] && !opts.prefix.is_empty() {
        w.write_all(opts.prefix.as_bytes())?;
    }
    if opts.timestamps && at_line_start[idx] {
        w.write_all(rec.time.as_bytes())?;
        w.write_all(b" ")?;
    }
    w.write_all(&rec.text)?;
    if rec.full {
        w.write_all(b"\n")?;
    }
    at_line_start[idx] = rec.full;
    Ok(())
}

/// Every record currently in the log (rotated file first), filtered by `since` and
/// cut to the last `tail` lines.
pub fn read_all(path: &Path, opts: &ReadOptions) -> io::Result<Vec<Record>> {
    let mut records = Vec::new();
    for p in [rotated(path), path.to_path_buf()] {
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).split(b'\n') {
            if let Some(r) = Record::parse(&line?) {
                records.push(r);
            }
        }
    }
    records.retain(|r| opts.keeps(r));
    if let Some(n) = opts.tail {
        // Count whole lines (F records) from the end.
        let mut full = 0;
        let mut cut = 0;
        for (i, r) in records.iter().enumerate().rev() {
            if r.full {
                if full == n {
                    cut = i + 1;
                    break;
                }
                full += 1;
            }
        }
        if full < n {
            cut = 0;
        }
        records.drain(..cut);
    }
    Ok(records)
}

/// Follows a log file as it grows, across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<BufReader<File>>,
    inode: u64,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Start at the current end of `path` (what `read_all` returned is already shown).
    pub fn at_end(path: &Path) -> Follower {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            inode: 0,
            pos: 0,
            partial: Vec::new(),
        };
        if let Ok(file) = File::open(path) {
            if let Ok(md) = file.metadata() {
                f.inode = md.ino();
                f.pos = md.len();
            }
            let mut r = BufReader::new(file);
            let _ = r.seek(SeekFrom::Start(f.pos));
            f.file = Some(r);
        }
        f
    }

    /// Records appended since the last call. After a rotation, the rest of the old file
    /// is read first, then the new file from its start.
    pub fn poll(&mut self) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        self.drain(&mut out)?;
        let current = fs::metadata(&self.path).ok();
        let rotated_away = match &current {
            Some(md) => md.ino() != self.inode || md.len() < self.pos,
            None => false,
        };
        if (rotated_away || (self.file.is_none() && current.is_some()))
            && let Ok(file) = File::open(&self.path)
        {
            self.inode = file.metadata()?.ino();
            self.pos = 0;
            self.partial.clear();
            self.file = Some(BufReader::new(file));
            self.drain(&mut out)?;
        }
        Ok(out)
    }

    fn drain(&mut self, out: &mut Vec<Record>) -> io::Result<()> {
        let Some(r) = self.file.as_mut() else {
            return Ok(());
        };
        loop {
            let mut line = Vec::new();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            self.pos += n as u64;
            self.partial.extend_from_slice(&line);
            if self.partial.ends_with(b"\n") {
                let whole = std::mem::take(&mut self.partial);
                if let Some(rec) = Record::parse(&whole) {
                    out.push(rec);
                }
            }
        }
    }
}

/// Parse `--since`: an RFC 3339 time, a Unix timestamp, or a duration ago (`10m`, `1h30m`,
/// `45s`).
pub fn parse_since(s: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    let ago = parse_duration(s)?;
    now.checked_sub(ago)
}

/// `1h30m`, `10m`, `45s`, `500ms`, `2d`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..u_end] {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            "d" => n * 86400.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(secs);
        rest = &rest[u_end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200)
    }

    #[test]
    fn lines_become_records() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(&p, 1 << 20).unwrap();
        w.write_at(Stream::Stdout, b"hello\nwor", t0()).unwrap();
        w.write_at(Stream::Stderr, b"oops\n", t0()).unwrap();
        w.write_at(Stream::Stdout, b"ld\n\nlast", t0()).unwrap();
        w.flush_partial().unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2024-01-01T00:00:00.000000000Z stdout F hello");
        assert_eq!(lines[1], "2024-01-01T00:00:00.000000000Z stderr F oops");
        assert_eq!(lines[2], "2024-01-01T00:00:00.000000000Z stdout F world");
        assert_eq!(lines[3], "2024-01-01T00:00:00.000000000Z stdout F ");
        assert!(lines[4].ends_with(" stdout P last"));

        let recs = read_all(&p, &ReadOptions::default()).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut start = [true, true];
        let opts = ReadOptions::default();
        for r in &recs {
            print_record(r, &opts, &mut start, &mut out, &mut err).unwrap();
        }
        assert_eq!(out, b"hello\nworld\n\nlast");
        assert_eq!(err, b"oops\n");
    }

    #[test]
    fn long_lines_split_and_rejoin() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(&p, 1 << 20).unwrap();
        let long = vec![b'x'; MAX_RECORD * 2 + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let recs = read_all(&p, &ReadOptions::default()).unwrap();
        assert_eq!(recs.len(), 3);
        assert!(!recs[0].full && !recs[1].full && recs[2].full);
        let joined: Vec<u8> = recs.iter().flat_map(|r| r.text.clone()).collect();
        assert_eq!(joined, long);
    }

    #[test]
    fn rotation_bounds_size_and_keeps_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(&p, 4096).unwrap();
        for i in 0..500 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(fs::metadata(&p).unwrap().len() <= 4096);
        assert!(fs::metadata(rotated(&p)).unwrap().len() <= 4096);
        let recs = read_all(&p, &ReadOptions::default()).unwrap();
        assert!(recs.len() > 50 && recs.len() < 500);
        assert_eq!(recs.last().unwrap().text, b"line 499");
        let nums: Vec<u32> = recs
            .iter()
            .map(|r| String::from_utf8_lossy(&r.text)[5..].parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn tail_and_since() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(&p, 1 << 20).unwrap();
        for i in 0..10u64 {
            w.write_at(
                Stream::Stdout,
                format!("{i}\n").as_bytes(),
                t0() + Duration::from_secs(i),
            )
            .unwrap();
        }
        let tail = read_all(
            &p,
            &ReadOptions {
                tail: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            tail.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
            [b"7".to_vec(), b"8".to_vec(), b"9".to_vec()]
        );
        let since = read_all(
            &p,
            &ReadOptions {
                since: Some(t0() + Duration::from_secs(8)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(since.len(), 2);
        let all = read_all(
            &p,
            &ReadOptions {
                tail: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all.len(), 10);
        let mut out = Vec::new();
        let mut start = [true, true];
        let opts = ReadOptions {
            timestamps: true,
            ..Default::default()
        };
        print_record(&tail[0], &opts, &mut start, &mut out, &mut Vec::new()).unwrap();
        assert_eq!(out, b"2024-01-01T00:00:07.000000000Z 7\n");
    }

    #[test]
    fn follower_sees_appends_and_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(&p, 4096).unwrap();
        w.write(Stream::Stdout, b"before\n").unwrap();
        let mut f = Follower::at_end(&p);
        assert!(f.poll().unwrap().is_empty());
        w.write(Stream::Stdout, b"a\n").unwrap();
        let got = f.poll().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, b"a");
        let mut seen = 0;
        for i in 0..300 {
            w.write(Stream::Stdout, format!("n{i}\n").as_bytes())
                .unwrap();
            if i % 7 == 0 {
                seen += f.poll().unwrap().len();
            }
        }
        seen += f.poll().unwrap().len();
        assert_eq!(seen, 300);
    }

    #[test]
    fn since_forms() {
        let now = t0();
        assert_eq!(
            parse_since("10m", now),
            Some(now - Duration::from_secs(600))
        );
        assert_eq!(
            parse_since("1h30m", now),
            Some(now - Duration::from_secs(5400))
        );
        assert_eq!(parse_since("2024-01-01T00:00:00Z", now), Some(t0()));
        assert_eq!(
            parse_since("1704067200", now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200))
        );
        assert_eq!(parse_since("soon", now), None);
    }
}
