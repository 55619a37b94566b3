//! Shell completion: static registration scripts that call back into `box` for every Tab.
//!
//! The scripts in `completions/` (printed by `box completion SHELL`) run
//! `BOX_COMPLETE=<shell> box -- <words typed so far>`; [`handle_env`], called first thing in
//! `main`, answers that request and exits before any other work. Subcommands, flags and
//! enumerable values come from the one clap definition (clap_complete's engine); live names
//! (images, containers, volumes, registries) come from the owning modules' lock-free readers
//! (`storage::read`, `container::read`, `Volumes::names`, `registry::auth::registries`): no
//! lock is taken, nothing is written, the network is never touched.
//!
//! - `classify`: which kind of value an argument takes, and the fixed values of a kind;
//! - `scan`: what the words typed so far say (subcommands, `--root`, the container's command);
//! - `live`: the candidates for a kind, with live names from the store;
//! - `shells`: the bash/zsh/fish/elvish/powershell registration scripts and answer formats.
//!
//! `box __internal complete -- box exec ''` prints the same candidates as `value<TAB>help`
//! lines, for tests and debugging.
mod classify;
mod live;
pub(in crate::cli) mod scan;
mod shells;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;

use clap::Command;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{EnvCompleter, Shells};

use classify::classify;
use live::Live;
use shells::Adapter;

/// The environment variable that turns an invocation into a completion request.
pub const ENV_VAR: &str = "BOX_COMPLETE";

/// The shells `box completion` supports, in `clap_complete::Shell` terms.
const SHELLS: Shells<'static> = Shells(&[
    &Adapter(clap_complete::Shell::Bash),
    &Adapter(clap_complete::Shell::Zsh),
    &Adapter(clap_complete::Shell::Fish),
    &Adapter(clap_complete::Shell::Elvish),
    &Adapter(clap_complete::Shell::PowerShell),
]);

/// Answer a completion request (`BOX_COMPLETE=<shell> box -- WORDS`) and exit; return
/// without doing anything when `BOX_COMPLETE` is unset, empty or `0`.
pub fn handle_env() {
    // The factory only names the program: `complete` builds its own annotated command.
    clap_complete::CompleteEnv::with_factory(|| Command::new("box"))
        .var(ENV_VAR)
        .bin("box")
        .completer("box")
        .shells(SHELLS)
        .complete();
}

/// The registration script for `shell`: what `box completion SHELL` prints and what
/// `completions/` holds.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    Adapter(shell)
        .write_registration(ENV_VAR, "box", "box", "box", &mut buf)
        .expect("writing to a Vec cannot fail");
    String::from_utf8(buf).expect("scripts are UTF-8")
}

/// The candidates for `words[index]` (words[0] is `box`).
pub fn complete(
    words: Vec<OsString>,
    index: usize,
    current_dir: Option<&Path>,
) -> std::io::Result<Vec<CompletionCandidate>> {
    let live = Arc::new(Live::default());
    // Built first: the subcommands' arguments exist only then (they are deferred).
    let mut cmd = crate::cli::args::command();
    cmd.build();
    let mut cmd = annotate(cmd, &[], &live);
    let typed = scan::scan(&cmd, &words, index);
    if typed.in_container_command {
        // Everything after the image (run/create) or container (exec) is the container's
        // own command line: nothing of box's applies there.
        return Ok(Vec::new());
    }
    let current = words
        .get(index)
        .map(|w| w.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The engine keeps one candidate per subcommand, the alphabetically first of its name
    // and visible aliases (`list` for `ps`): offer the name itself where it matches.
    let mut names = std::collections::HashMap::new();
    let mut here = &cmd;
    for name in &typed.command {
        match here.find_subcommand(name) {
            Some(sub) => here = sub,
            None => break,
        }
    }
    for sub in here.get_subcommands() {
        if sub.get_name().starts_with(&current) {
            for alias in sub.get_visible_aliases() {
                names.insert(alias.to_string(), sub.get_name().to_string());
            }
        }
    }
    let _ = live.typed.set(typed);
    let mut out = clap_complete::engine::complete(&mut cmd, words, index, current_dir)?;
    for c in out.iter_mut() {
        if let Some(name) = names.get(&*c.get_value().to_string_lossy()) {
            *c = CompletionCandidate::new(name).help(c.get_help().cloned());
        }
    }
    // Flags only when a flag is being typed (as docker and podman do): `box exec <Tab>`
    // offers containers, not `--interactive`.
    if !current.starts_with('-') {
        out.retain(|c| !c.get_value().to_string_lossy().starts_with('-'));
    }
    Ok(out)
}

/// Attach live completers to every argument of `cmd` and its subcommands.
fn annotate(cmd: Command, path: &[String], live: &Arc<Live>) -> Command {
    // mut_args and mut_subcommands keep the order (positional indexes depend on it).
    let cmd = cmd.mut_args(|a| match classify(path, &a) {
        Some(kind) => {
            let live = live.clone();
            a.add(ArgValueCompleter::new(move |current: &OsStr| {
                live.candidates(kind, &current.to_string_lossy())
            }))
        }
        None => a,
    });
    cmd.mut_subcommands(|sub| {
        let mut sub_path = path.to_vec();
        sub_path.push(sub.get_name().to_string());
        annotate(sub, &sub_path, live)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `line` split at spaces, a trailing space giving an empty last word.
    pub(super) fn words(line: &str) -> Vec<OsString> {
        let mut w: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        if line.ends_with(' ') {
            w.pop();
            w.push(OsString::new());
        }
        w
    }

    fn values(line: &str) -> Vec<String> {
        let w = words(line);
        let index = w.len() - 1;
        complete(w, index, None)
            .unwrap()
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn subcommands_by_prefix() {
        let v = values("box r");
        for c in ["run", "rm", "rmi", "restart", "rename"] {
            assert!(v.contains(&c.to_string()), "{c} missing from {v:?}");
        }
        assert!(!v.iter().any(|c| c.starts_with('-')), "{v:?}");
    }

    #[test]
    fn long_flag_and_alias() {
        assert_eq!(values("box run --net"), ["--network", "--network-alias"]);
    }

    #[test]
    fn enumerable_values() {
        assert!(values("box run --network ").contains(&"slirp4netns".to_string()));
        assert!(values("box run --network=").contains(&"--network=pasta".to_string()));
        assert_eq!(values("box ps --format j"), ["json"]);
        assert_eq!(values("box kill -s TE"), ["TERM"]);
        assert_eq!(values("box kill -s SIGTE"), ["SIGTERM"]);
        assert!(values("box run --sdnotify ").contains(&"ready".to_string()));
        assert!(values("box run --userns ").contains(&"keep-id".to_string()));
        assert!(values("box run --pull ").contains(&"never".to_string()));
        assert!(values("box --storage-driver ").contains(&"fuse-overlayfs".to_string()));
        assert_eq!(values("box run --restart on"), ["on-failure"]);
        assert!(values("box pull --platform linux/arm").contains(&"linux/arm64".to_string()));
        assert!(values("box run --platform linux/arm").contains(&"linux/arm64".to_string()));
    }

    #[test]
    fn nothing_inside_the_container_command() {
        assert!(values("box run --rm alpine -").is_empty());
        assert!(values("box run -it alpine ls -").is_empty());
        assert!(values("box exec web --").is_empty());
        // ... but options before the image still complete.
        assert!(values("box run -").contains(&"--rm".to_string()));
    }
}
