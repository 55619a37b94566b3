//! Signal names and numbers as docker reads them (`--stop-signal`, an image's
//! `StopSignal`).

const SIGNAL_NUMBERS: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// SIGRTMIN and SIGRTMAX as docker numbers them on Linux (glibc keeps 32 and 33).
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// A signal as docker accepts it for `--stop-signal` and an image's `StopSignal`: a number
/// from 1 to 64, or a name with or without `SIG` in any case, including `RTMIN`, `RTMIN+N`
/// (N ≤ 15), `RTMAX-N` (N ≤ 14) and `RTMAX`. Returns the signal number.
pub fn signal_number(s: &str) -> Result<i32, String> {
    let bad = || {
        format!(
            "unknown signal {s:?}: use a name like TERM, QUIT or RTMIN+3, or a number from 1 to {SIGRTMAX}"
        )
    };
    if let Ok(n) = s.parse::<i64>() {
        return match i32::try_from(n) {
            Ok(n) if (1..=SIGRTMAX).contains(&n) => Ok(n),
            _ => Err(bad()),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNAL_NUMBERS.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    // RTMIN, RTMIN+N, RTMAX, RTMAX-N: (base, sign, the largest N).
    for (prefix, base, sign, max) in [("RTMIN", SIGRTMIN, '+', 15), ("RTMAX", SIGRTMAX, '-', 14)] {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() {
            return Ok(base);
        }
        let n = rest
            .strip_prefix(sign)
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<i32>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(bad)?;
        return Ok(if sign == '+' { base + n } else { base - n });
    }
    Err(bad())
}
