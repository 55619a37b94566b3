//! Lock-free, read-only listing of containers, for callers that must never block or write
//! (shell completion): nothing is created, locked or corrected on disk.
//!
//! The rule for what a container is doing is [`State::effective_status`], the same one
//! `monitor::status::observe` applies before it writes a correction back.
use crate::paths::Paths;

use super::{Containers, Status};

/// What a listing needs to know about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The image as the user gave it.
    pub image: String,
    /// The effective status: a `running` record whose process is gone reads as exited.
    pub status: Status,
}

/// Every readable container of `paths`, by id. Records being created or removed (no or a
/// half-written `config.json`) are skipped; a missing or unreadable `state.json` reads as
/// `created`. A store that does not exist yet has no containers.
pub fn summaries(paths: &Paths) -> Vec<Summary> {
    // Not `Containers::open`: that creates directories.
    let containers = Containers {
        root: paths.containers(),
        runtime: paths.runtime.join("containers"),
        volumes: paths.volumes(),
    };
    let Ok(ids) = containers.ids() else {
        return Vec::new();
    };
    ids.iter()
        .filter_map(|id| containers.load(id).ok())
        .map(|rec| {
            let status = rec.state().unwrap_or_default().effective_status();
            Summary {
                id: rec.config.id,
                name: rec.config.name,
                image: rec.config.image,
                status,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::config_for_tests as config;
    use crate::container::{State, process_start_time};

    fn paths(t: &std::path::Path) -> Paths {
        Paths {
            data: t.join("data"),
            runtime: t.join("run"),
            config: t.join("config"),
        }
    }

    #[test]
    fn lists_what_the_writers_wrote_and_skips_the_half_written() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        assert!(
            summaries(&p).is_empty(),
            "no store yet: nothing, and no error"
        );
        assert!(!p.containers().exists(), "reading creates nothing");

        let c = Containers::open(&p).unwrap();
        let up = c.create(Some("up"), config).unwrap();
        let me = std::process::id() as i32;
        up.write_state(&State {
            status: Status::Running,
            pid: Some(me),
            pid_start: process_start_time(me),
            ..Default::default()
        })
        .unwrap();
        let gone = c.create(Some("gone"), config).unwrap();
        gone.write_state(&State {
            status: Status::Running,
            pid: Some(me),
            pid_start: process_start_time(me).map(|s| s + 1),
            ..Default::default()
        })
        .unwrap();
        let fresh = c.create(Some("fresh"), config).unwrap();
        std::fs::write(fresh.state_path(), b"{\"status\":").unwrap();
        // Being created: a directory without a (complete) config.json.
        std::fs::create_dir(p.containers().join("b".repeat(64))).unwrap();
        std::fs::create_dir(p.containers().join("c".repeat(64))).unwrap();
        std::fs::write(
            p.containers().join("c".repeat(64)).join("config.json"),
            b"{",
        )
        .unwrap();

        let mut got: Vec<(String, Status)> = summaries(&p)
            .into_iter()
            .map(|s| (s.name, s.status))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                ("fresh".to_string(), Status::Created),
                ("gone".to_string(), Status::Exited),
                ("up".to_string(), Status::Running),
            ]
        );
        let s = summaries(&p).into_iter().find(|s| s.name == "up").unwrap();
        assert_eq!((s.id.as_str(), s.image.as_str()), (up.id(), "alpine"));
        // Read only: the stale record is not corrected on disk (`observe` does that).
        assert_eq!(gone.state().unwrap().status, Status::Running);
    }
}
