//! Bringing up `lo` inside a fresh network namespace (`--network none`), from the container's
//! side. No allocation: callable between clone and exec.
use super::Error;

/// Set IFF_UP on "lo" in the calling process's network namespace (needs CAP_NET_ADMIN there,
/// which the container's init has in its own user namespace).
pub fn bring_up_loopback() -> Result<(), Error> {
    // SAFETY: plain syscalls on a zeroed ifreq and a socket this function owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(Error::Loopback(nix::errno::Errno::last()));
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut res = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if res == 0 {
            let flags = ifr.ifr_ifru.ifru_flags;
            if flags & libc::IFF_UP as libc::c_short == 0 {
                ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
                res = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
            }
        }
        let err = nix::errno::Errno::last();
        libc::close(fd);
        if res != 0 {
            return Err(Error::Loopback(err));
        }
    }
    Ok(())
}

/// Whether "lo" is up in the calling process's network namespace.
pub fn loopback_is_up() -> Result<bool, Error> {
    let text = std::fs::read_to_string("/sys/class/net/lo/flags").map_err(|e| Error::Io {
        what: "cannot read /sys/class/net/lo/flags",
        source: e,
    })?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    Ok(flags & libc::IFF_UP as u32 != 0)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    /// Runs in a child `unshare --user --map-root-user --net` (see below); ignored otherwise.
    #[test]
    #[ignore = "run by loopback_comes_up_in_a_fresh_netns inside a new namespace"]
    fn loopback_child() {
        if std::env::var_os("BOX_NET_LO_CHILD").is_none() {
            return;
        }
        // /sys shows the netns of whoever mounted it, so ask the kernel through ioctl instead.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            let mut ifr: libc::ifreq = std::mem::zeroed();
            ifr.ifr_name[0] = b'l' as libc::c_char;
            ifr.ifr_name[1] = b'o' as libc::c_char;
            assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr), 0);
            assert_eq!(
                ifr.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short,
                0,
                "lo starts down"
            );
            super::bring_up_loopback().unwrap();
            // Twice is fine.
            super::bring_up_loopback().unwrap();
            assert_eq!(libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr), 0);
            assert_ne!(ifr.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short, 0);
            libc::close(fd);
        }
        // And it carries traffic.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        println!("LOOPBACK-CHILD-OK");
    }

    #[test]
    fn loopback_comes_up_in_a_fresh_netns() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net"])
            .arg(&exe)
            .args([
                "--exact",
                "network::lo::tests::loopback_child",
                "--ignored",
                "--nocapture",
            ])
            .env("BOX_NET_LO_CHILD", "1")
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                crate::network::live_tests::skip(&format!("cannot run unshare: {e}"));
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("unshare failed") {
            crate::network::live_tests::skip(&format!("no user namespaces here: {stderr}"));
            return;
        }
        assert!(
            stdout.contains("LOOPBACK-CHILD-OK"),
            "status {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
    }
}
