//! `Lab`: a test user's store with alpine pulled, for tests that run containers; every
//! container is removed when it is dropped. Plus the small waits those tests share.
use std::time::{Duration, Instant};

use super::{Env, Outcome, TestBox, images};

pub struct Lab {
    pub tb: TestBox,
    pub image: String,
}

impl Lab {
    pub fn new(env: &'static Env) -> Lab {
        let tb = env.test_box();
        let image = env.image(images::ALPINE);
        tb.cmd(["pull", "-q", &image]).run().assert_success();
        Lab { tb, image }
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        self.tb.cmd(args).run()
    }

    /// `box run -d --network none [extra...] IMAGE cmd...`; returns the id.
    pub fn detach(&self, extra: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(extra);
        args.push(&self.image);
        args.extend_from_slice(cmd);
        let out = self.run(&args);
        out.assert_success();
        let id = out.out().trim().to_string();
        assert_eq!(id.len(), 64, "run -d prints the full id:\n{out}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{out}");
        id
    }

    /// `{{.State.Status}}` of a container.
    pub fn status(&self, name: &str) -> String {
        let out = self.run(&["inspect", "--format", "{{.State.Status}}", name]);
        out.assert_success();
        out.out().trim().to_string()
    }

    /// The `ps -a` line of a container.
    pub fn ps_line(&self, name: &str) -> String {
        let out = self.run(&["ps", "-a", "--filter", &format!("name={name}")]);
        out.assert_success();
        out.out()
            .lines()
            .find(|l| l.trim_end().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in ps -a:\n{out}"))
            .to_string()
    }

    /// A container's state.json, by full id.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let p = self
            .tb
            .root()
            .join("containers")
            .join(id)
            .join("state.json");
        serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
    }

    /// A container's full id, by name.
    pub fn id(&self, name: &str) -> String {
        let out = self.run(&["inspect", "--format", "{{.Id}}", name]);
        out.assert_success();
        out.out().trim().to_string()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.tb.cmd(["rm", "-a", "-f"]).run();
    }
}

/// Wait until `f` holds, polling every 50 ms; fail the test after `within`.
pub fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` is a live process (not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for `-p 127.0.0.1:PORT:...`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a server on 127.0.0.1:port says (None when nothing answers, or only silence).
pub fn read_from(port: u16) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    (!out.is_empty()).then_some(out)
}
