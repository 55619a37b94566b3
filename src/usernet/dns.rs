//! aardvark-dns's records, as netavark writes them: `<config>/aardvark-dns/<network>` holds
//! the network's gateway (the server's addresses) on its first line and then one line per
//! container, `<id> <ipv4s> <ipv6s> <names>`; `aardvark.pid` names the server, which rereads
//! the records on SIGHUP. box only ever removes a container's line (see
//! `Attached::forget_names`); netavark adds them.
use std::fs;
use std::io::Write;
use std::path::Path;

use super::Error;

/// Remove container `id`'s line from the records at `path`; whether there was one.
pub fn forget(path: &Path, id: &str) -> Result<bool, Error> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(super::io_err("read", path)(e)),
    };
    let (kept, gone) = without(&text, id);
    if !gone {
        return Ok(false);
    }
    // A new file renamed over the old: the server never reads half a file. It is written
    // next to the records' directory, whose every file the server would read as records.
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join(format!(".aardvark-{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(kept.as_bytes())?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        super::io_err("write", path)(e)
    })?;
    Ok(true)
}

/// `text` without container `id`'s lines (never the first, the server's own), and whether
/// any went.
fn without(text: &str, id: &str) -> (String, bool) {
    let mut kept = String::with_capacity(text.len());
    let mut gone = false;
    for (i, line) in text.lines().enumerate() {
        if i > 0 && line.split_whitespace().next() == Some(id) {
            gone = true;
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    (kept, gone)
}

/// The running aardvark-dns of the records in `dir`, if any.
pub fn server(dir: &Path) -> Option<nix::unistd::Pid> {
    let pid = fs::read_to_string(dir.join("aardvark.pid")).ok()?;
    let pid = pid.trim().parse::<i32>().ok()?;
    fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("aardvark-dns"))
        .then(|| nix::unistd::Pid::from_raw(pid))
}

/// Have the server reread its records.
pub fn reload(dir: &Path) {
    if let Some(pid) = server(dir) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_own_line_goes() {
        let text = "10.89.0.1\naaa 10.89.0.2  web,web\nbbb 10.89.0.3  db,redis\n";
        assert_eq!(
            without(text, "aaa"),
            ("10.89.0.1\nbbb 10.89.0.3  db,redis\n".to_string(), true)
        );
        assert_eq!(without(text, "ccc"), (text.to_string(), false));
        // The first line is the server's, even if it looked like an id.
        assert_eq!(without("aaa\n", "aaa"), ("aaa\n".to_string(), false));
    }

    #[test]
    fn forget_rewrites_the_file_and_leaves_no_temporary() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("aardvark-dns");
        fs::create_dir(&dir).unwrap();
        let path = dir.join("net");
        assert!(!forget(&path, "aaa").unwrap(), "no records yet");
        fs::write(&path, "10.89.0.1\naaa 10.89.0.2  web\n").unwrap();
        assert!(forget(&path, "aaa").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "10.89.0.1\n");
        assert!(!forget(&path, "aaa").unwrap());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(
            fs::read_dir(top.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
