//! `box completion SHELL` and the generated documentation: completion scripts and man pages,
//! all from the one clap definition in `cli::args`.
//!
//! `completions/` and `man/` in the repository hold [`generated_files`]; the drift test in
//! `tests/integration/docs.rs` fails when they differ and says how to regenerate them:
//! `BOX_REGENERATE=1 cargo test --test integration docs::`.
use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Command;
use roff::{Roff, bold, italic, roman};

use crate::cli::args::{self, CompletionArgs};
use crate::cli::complete;

pub fn completion(args: CompletionArgs) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    out.write_all(complete::script(args.shell).as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// `box __internal complete -- box WORDS...`: the candidates for the last word, one
/// `value<TAB>help` line each.
pub fn print_candidates(mut words: Vec<String>) -> Result<u8> {
    if words.is_empty() {
        words.push("box".into());
    }
    if words.len() == 1 {
        words.push(String::new());
    }
    let index = words.len() - 1;
    let cwd = std::env::current_dir().ok();
    let candidates = complete::complete(
        words.into_iter().map(Into::into).collect(),
        index,
        cwd.as_deref(),
    )?;
    let mut out = std::io::stdout().lock();
    for c in candidates {
        write!(out, "{}", c.get_value().to_string_lossy())?;
        if let Some(h) = c.get_help() {
            write!(
                out,
                "\t{}",
                h.to_string().lines().next().unwrap_or_default()
            )?;
        }
        writeln!(out)?;
    }
    Ok(0)
}

/// Every generated file, relative to the repository root: `completions/*` and `man/*`.
pub fn generated_files() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![
        (
            PathBuf::from("completions/box.bash"),
            complete::script(clap_complete::Shell::Bash).into_bytes(),
        ),
        (
            PathBuf::from("completions/_box"),
            complete::script(clap_complete::Shell::Zsh).into_bytes(),
        ),
        (
            PathBuf::from("completions/box.fish"),
            complete::script(clap_complete::Shell::Fish).into_bytes(),
        ),
    ];
    files.extend(
        man_pages()
            .into_iter()
            .map(|(name, bytes)| (PathBuf::from("man").join(name), bytes)),
    );
    files
}

// ------------------------------------------------------------------------------------------
// Man pages
// ------------------------------------------------------------------------------------------

const MANUAL: &str = "box manual";

fn source() -> String {
    format!("box {}", env!("CARGO_PKG_VERSION"))
}

/// box(1), one page per subcommand (box-run(1), box-image-list(1), ...), `.so` pages for
/// visible aliases (box-image-ls(1) → box-image-list(1)) and box-rootless(7).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut root = args::command().disable_help_subcommand(true);
    root.build();
    let mut pages = Vec::new();
    walk(&root, None, &mut pages);
    pages.push(("box-rootless.7".to_string(), rootless_page()));
    pages.sort_by(|a, b| a.0.cmp(&b.0));
    pages
}

fn walk(cmd: &Command, parent: Option<&Command>, pages: &mut Vec<(String, Vec<u8>)>) {
    let name = display_name(cmd);
    pages.push((format!("{name}.1"), page(cmd, parent)));
    if let Some(parent) = parent {
        for alias in cmd.get_visible_aliases() {
            let alias_name = format!("{}-{alias}", display_name(parent));
            pages.push((
                format!("{alias_name}.1"),
                format!(".so man1/{name}.1\n").into_bytes(),
            ));
        }
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, Some(cmd), pages);
    }
}

fn display_name(cmd: &Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// One command's page: clap_mangen's NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS,
/// then EXAMPLES (from the command's `after_help`), EXIT STATUS, and for box(1) itself
/// ENVIRONMENT and FILES, then SEE ALSO.
fn page(cmd: &Command, parent: Option<&Command>) -> Vec<u8> {
    let is_root = parent.is_none();
    let mut cmd = cmd.clone();
    let usage = cmd
        .render_usage()
        .to_string()
        .trim_start_matches("Usage:")
        .trim()
        .to_string();
    // Options every command takes are described once, in box(1).
    if !is_root {
        cmd = cmd.mut_args(|a| {
            if a.is_global_set() || a.get_id() == "version" {
                a.hide(true)
            } else {
                a
            }
        });
    }
    let cmd = cmd.override_usage(usage);
    let name = display_name(&cmd);
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .source(source())
        .manual(MANUAL);
    let mut buf = Vec::new();
    let render = |buf: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(buf)?;
        man.render_name_section(buf)?;
        man.render_synopsis_section(buf)?;
        man.render_description_section(buf)?;
        if cmd
            .get_arguments()
            .any(|a| !a.is_hide_set() && a.get_id() != "help")
        {
            man.render_options_section(buf)?;
        }
        if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            man.render_subcommands_section(buf)?;
        }
        Ok(())
    };
    render(&mut buf).expect("writing to a Vec cannot fail");

    let mut roff = Roff::new();
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let help = parse_after_help(&after);
    if !help.examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        render_examples(&mut roff, &help.examples);
    }
    for (title, text) in &help.notes {
        roff.control("SH", [title.to_uppercase().as_str()]);
        paragraphs(&mut roff, text);
    }
    exit_status(&mut roff, &cmd, is_root);
    if is_root {
        environment(&mut roff);
        files(&mut roff);
        roff.control("SH", ["VERSION"]);
        roff.text([roman(format!("v{}", env!("CARGO_PKG_VERSION")))]);
    }
    see_also(&mut roff, &cmd, parent);
    buf.extend_from_slice(roff.to_roff().as_bytes());
    buf
}

#[derive(Debug, Default)]
struct AfterHelp {
    /// (description, commands)
    examples: Vec<(String, Vec<String>)>,
    /// Other "Title:" blocks, e.g. "Notes".
    notes: Vec<(String, String)>,
}

/// Split an `after_help` text into its "Examples:" block and any other "Title:" blocks.
/// In "Examples:", `  # text` describes the command lines (`  box ...`) that follow it; a
/// command may also carry its description after two or more spaces. "Exit status:" is left
/// out: EXIT STATUS is generated for every page.
fn parse_after_help(text: &str) -> AfterHelp {
    let mut out = AfterHelp::default();
    let mut section: Option<String> = None;
    let mut pending: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let header = if line.starts_with(' ') {
            None
        } else {
            line.split_once(':')
                .filter(|(t, _)| !t.trim().is_empty() && t.split_whitespace().count() <= 2)
        };
        if let Some((title, rest)) = header {
            section = Some(title.to_string());
            if !title.eq_ignore_ascii_case("examples") && !rest.trim().is_empty() {
                out.notes.push((title.to_string(), rest.trim().to_string()));
            }
            continue;
        }
        match section.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("examples") => {
                let body = line.trim();
                if let Some(comment) = body.strip_prefix('#') {
                    pending = Some(comment.trim().to_string());
                } else if line.starts_with("      ") && pending.is_none() {
                    // A continuation of the previous description.
                    if let Some((desc, _)) = out.examples.last_mut() {
                        desc.push(' ');
                        desc.push_str(body);
                    }
                } else {
                    let (cmdline, trailing) = match body.find("  ") {
                        Some(i) => (body[..i].trim(), body[i..].trim()),
                        None => (body, ""),
                    };
                    let desc = pending.take().unwrap_or_else(|| trailing.to_string());
                    // A command with no description of its own continues the example
                    // before it.
                    match out.examples.last_mut() {
                        Some((_, cmds)) if desc.is_empty() => cmds.push(cmdline.to_string()),
                        _ => out.examples.push((desc, vec![cmdline.to_string()])),
                    }
                }
            }
            Some(title) => {
                if let Some((t, text)) = out.notes.last_mut()
                    && t == title
                {
                    text.push(' ');
                    text.push_str(line.trim());
                } else {
                    out.notes.push((title.to_string(), line.trim().to_string()));
                }
            }
            None => out.notes.push(("Notes".into(), line.trim().to_string())),
        }
    }
    out.notes
        .retain(|(t, _)| !t.eq_ignore_ascii_case("exit status"));
    out
}

fn render_examples(roff: &mut Roff, examples: &[(String, Vec<String>)]) {
    for (desc, cmds) in examples {
        roff.control("PP", []);
        if !desc.is_empty() {
            let mut d = desc.clone();
            if !d.ends_with(['.', ':']) {
                d.push(':');
            }
            let mut chars = d.chars();
            let d = match chars.next() {
                Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
                None => d,
            };
            roff.text([roman(d)]);
        }
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        for c in cmds {
            roff.text([roman("$ "), bold(c.as_str())]);
        }
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

fn paragraphs(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text([roman(text)]);
}

fn tp(roff: &mut Roff, tag: impl Into<String>, body: impl Into<String>) {
    roff.control("TP", []);
    roff.text([bold(tag.into())]);
    roff.text([roman(body.into())]);
}

/// Commands with podman's statuses for things that do not exist (1) or are in use (2).
const RM_FAMILY: &[&str] = &[
    "box-rm",
    "box-rmi",
    "box-image-remove",
    "box-image-rm",
    "box-volume-rm",
    "box-pod-rm",
    "box-network-rm",
    "box-network-remove",
];

/// Commands whose exit status is the container's.
const PASSES_CONTAINER_STATUS: &[&str] = &["box", "box-run", "box-exec", "box-start"];

fn exit_status(roff: &mut Roff, cmd: &Command, is_root: bool) {
    // `box container run` is `box run`.
    let name = display_name(cmd).replace("box-container-", "box-");
    roff.control("SH", ["EXIT STATUS"]);
    if cmd.get_name() == "exists" {
        tp(roff, "0", "It exists.");
        tp(roff, "1", "It does not exist.");
        tp(
            roff,
            "125",
            "box failed: a usage error, an invalid name, or the store cannot be read. The \
             one-line message on standard error says what failed and what to do.",
        );
    } else if PASSES_CONTAINER_STATUS.contains(&name.as_str()) {
        let (before, flag, after) = match name.as_str() {
            "box-run" => (
                "With ",
                "--detach",
                ", 0 once the container started. Otherwise box waits for the container and \
                 exits as it did:",
            ),
            "box-exec" => (
                "With ",
                "--detach",
                ", 0 once the process started. Otherwise box exits as the process did:",
            ),
            "box-start" => (
                "Without ",
                "--attach",
                ", 0 when every container started. With it, box exits as the container did:",
            ),
            _ => (
                "box follows docker's convention. Commands that wait for a container (run, \
                 exec, start ",
                "--attach",
                ") exit as the container did:",
            ),
        };
        roff.control("PP", []);
        roff.text([roman(before), bold(flag), roman(after)]);
        tp(roff, "0", "Success (the container's command exited 0).");
        tp(
            roff,
            "125",
            "box itself failed: a usage error, an image or container that does not exist, a \
             registry, storage or namespace error. The one-line message on standard error says \
             what failed and what to do.",
        );
        tp(
            roff,
            "126",
            "The container's command exists but cannot be invoked.",
        );
        tp(roff, "127", "The container's command was not found.");
        tp(
            roff,
            "N",
            "Any other status is the container's own; 128+N when it was killed by signal N \
             (137 for SIGKILL, 143 for SIGTERM).",
        );
        if is_root {
            roff.control("PP", []);
            roff.text([roman(
                "Every other command exits 0 on success and 125 when it fails, except the \
                 rm family (rm, rmi, volume rm, pod rm, network rm), which exits 1 when a thing \
                 named does not exist and 2 when one is running or in use, as podman's.",
            )]);
        }
    } else if RM_FAMILY.contains(&name.as_str()) {
        tp(
            roff,
            "0",
            "Everything named was removed (with --force, also when some did not exist).",
        );
        tp(
            roff,
            "1",
            "One of them does not exist, and nothing else failed.",
        );
        tp(
            roff,
            "2",
            "One of them is running or in use (a container running, an image, volume or \
             network a container uses, a pod with running containers), and nothing worse \
             failed.",
        );
        tp(
            roff,
            "125",
            "box failed otherwise. Every failure is said on standard error, one line each, the \
             one that decides the status last.",
        );
    } else {
        tp(roff, "0", "Success.");
        tp(
            roff,
            "125",
            "box failed: a usage error, or the operation failed. The one-line message on \
             standard error says what failed and what to do.",
        );
    }
}

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "BOX_ROOT",
        "Data directory (images, layers, container records, volumes); the same as --root. \
         Default: $XDG_DATA_HOME/box, that is ~/.local/share/box.",
    ),
    (
        "BOX_RUNROOT",
        "Runtime directory (pid files, locks, mount points; emptied by a reboot); the same as \
         --runroot. Default: $XDG_RUNTIME_DIR/box, or /tmp/box-$UID when XDG_RUNTIME_DIR is \
         unset or not writable (as under su).",
    ),
    (
        "BOX_STORAGE_DRIVER",
        "overlay, fuse-overlayfs or vfs; the same as --storage-driver. Default: the best one \
         that works here (box info shows which).",
    ),
    (
        "BOX_LOG_LEVEL",
        "error, warn, info or debug; the same as --log-level. Default: warn.",
    ),
    (
        "BOX_CONFIG_DIR",
        "Configuration directory. Default: $XDG_CONFIG_HOME/box, that is ~/.config/box.",
    ),
    (
        "BOX_LOCK_TIMEOUT",
        "Seconds to wait for a lock (on the store, the containers or the volumes) held by another box process before giving up (default 60); the error names the lock file and the process holding it.",
    ),
    (
        "NO_COLOR",
        "When set (to anything), box prints no colours. Colours are also off when the output \
         is not a terminal.",
    ),
    (
        "BOX_COMPLETE",
        "Set by the shell completion scripts to ask box for completions (bash, zsh, fish); \
         never set it yourself.",
    ),
    (
        "XDG_DATA_HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME",
        "The base directories the defaults above derive from.",
    ),
];

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, text) in ENVIRONMENT {
        tp(roff, *name, *text);
    }
}

const FILES: &[(&str, &str)] = &[
    (
        "$XDG_DATA_HOME/box/storage/",
        "The image store: blobs/sha256/ (verified blobs), layers/<diff_id>/diff (unpacked \
         layers, shared between images), images/<id>.json (one record per image), tmp/ and \
         storage.lock.",
    ),
    (
        "$XDG_DATA_HOME/box/containers/<id>/",
        "One container: config.json (what it runs), state.json (status, pid, exit code), \
         userdata/ (hostname, hosts, resolv.conf), upper/ and work/ (its writable layer), \
         ctr.log (its output when detached).",
    ),
    ("$XDG_DATA_HOME/box/volumes/<name>/", "Named volumes."),
    (
        "$XDG_RUNTIME_DIR/box/ or /tmp/box-$UID/",
        "Runtime state: mount points, pid files and sockets of running containers.",
    ),
    (
        "$XDG_CONFIG_HOME/box/auth.json",
        "Registry credentials written by box login (docker's config.json format: \
         {\"auths\": {\"host\": {\"auth\": base64(user:password)}}}).",
    ),
    (
        "$XDG_CONFIG_HOME/box/registries.toml",
        "Per-registry settings: [[registry]] tables with location = \"host[:port]\", \
         insecure = true to allow plain http, mirrors = [\"host[:port][/prefix]\", ...].",
    ),
    (
        "/etc/subuid, /etc/subgid",
        "Your subordinate user and group id ranges, mapped into the container's user \
         namespace by newuidmap(1) and newgidmap(1). See box-rootless(7).",
    ),
];

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    for (name, text) in FILES {
        tp(roff, *name, *text);
    }
}

fn see_also(roff: &mut Roff, cmd: &Command, parent: Option<&Command>) {
    let mut refs: Vec<String> = Vec::new();
    if let Some(p) = parent {
        refs.push(format!("{}(1)", display_name(p)));
    }
    if display_name(cmd) != "box" && parent.is_some_and(|p| display_name(p) != "box") {
        refs.push("box(1)".into());
    }
    refs.push("box-rootless(7)".into());
    let extra: &[&str] = match cmd.get_name() {
        "run" | "create" => &["box-ps(1)", "box-exec(1)", "box-logs(1)", "box-rm(1)"],
        "exec" => &["box-run(1)"],
        "pull" => &["box-images(1)", "box-login(1)"],
        "box" => &["podman(1)", "newuidmap(1)", "subuid(5)", "subgid(5)"],
        _ => &[],
    };
    refs.extend(extra.iter().map(|s| s.to_string()));
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        let (page, section) = r.split_once('(').unwrap_or((r, ""));
        line.push(bold(page));
        line.push(roman(format!("({section}")));
    }
    roff.text(line);
}

/// box-rootless(7): what a host needs for rootless containers and where box keeps things.
fn rootless_page() -> Vec<u8> {
    let mut r = Roff::new();
    r.control("TH", ["BOX-ROOTLESS", "7", "", source().as_str(), MANUAL]);
    r.control("SH", ["NAME"]);
    r.text([roman(
        "box-rootless - what box needs from the host to run containers as an ordinary user",
    )]);

    r.control("SH", ["DESCRIPTION"]);
    r.text([roman(
        "box runs every container inside a user namespace owned by you. Inside it, the \
         container's root is your own uid; the other ids the image uses (files owned by \
         daemon, nobody, a service user) map to a range of subordinate ids the administrator \
         gave you. Nothing runs as root on the host and no daemon is involved: the container \
         is a direct child of the box process that started it.",
    )]);
    r.control("PP", []);
    r.text([
        roman("Run "),
        bold("box info"),
        roman(
            " to see what box found on this host: your ranges, the storage driver, \
               cgroup controllers and network helpers.",
        ),
    ]);

    r.control("SH", ["SUBORDINATE IDS"]);
    r.text([roman(
        "Each user needs a range of at least 65536 subordinate user ids and group ids, one \
         line per user in /etc/subuid and /etc/subgid, in the form USER:FIRST:COUNT. For \
         the user alice:",
    )]);
    example_block(&mut r, &["alice:100000:65536"]);
    r.text([roman(
        "Put that same line in both files; ranges of different users must not overlap (the \
         next user gets 165536:65536). As root, either edit the files or run:",
    )]);
    example_block(
        &mut r,
        &["usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"],
    );
    r.text([
        roman("The setuid helpers "),
        bold("newuidmap"),
        roman(" and "),
        bold("newgidmap"),
        roman(
            " (Debian and Ubuntu package uidmap, Fedora shadow-utils) write the mapping; box \
             says which line is missing when a range is absent. With ",
        ),
        bold("--userns=keep-id"),
        roman(" your uid keeps its number inside the container; with "),
        bold("--userns=single"),
        roman(
            " only your uid is mapped (as root in the container) and no ranges are \
             needed; images that run as or ship files for other users may then fail. \
             Without ranges, box pull still works but stores every file as yours (it \
             says so); after adding the ranges, remove the image and pull it again to get the owners back.",
        ),
    ]);
    r.control("PP", []);
    r.text([roman(
        "As root, box maps ids one to one and needs none of this.",
    )]);

    r.control("SH", ["STORAGE"]);
    r.text([roman(
        "Images, layers and containers live in your data directory, by default \
         $XDG_DATA_HOME/box (~/.local/share/box); change it with --root or BOX_ROOT. Files \
         in it that belong to subordinate ids (unpacked layers, container upper directories) \
         are removed through box (box rm, box rmi, box system prune); a plain rm fails with \
         permission denied.",
    )]);
    r.control("PP", []);
    r.text([roman(
        "Runtime state goes to $XDG_RUNTIME_DIR/box, or /tmp/box-$UID (mode 0700) where \
         XDG_RUNTIME_DIR is unset, as after su. Configuration is read from \
         $XDG_CONFIG_HOME/box (~/.config/box): auth.json holds the credentials box login \
         stores, registries.toml per-registry settings such as insecure registries and \
         mirrors.",
    )]);
    r.control("PP", []);
    r.text([roman(
        "The overlay storage driver needs a kernel that mounts overlayfs inside a user \
         namespace (5.11 or later); otherwise box uses fuse-overlayfs when installed, and \
         copies layers (vfs) as a last resort.",
    )]);

    r.control("SH", ["CGROUP DELEGATION"]);
    r.text([roman(
        "Resource limits (--memory, --cpus, --pids-limit, pause) need cgroup v2 with the \
         controllers delegated to your user session. systemd delegates only memory and pids \
         by default; to delegate cpu, cpuset and io as well, as root create \
         /etc/systemd/system/user@.service.d/delegate.conf containing:",
    )]);
    example_block(&mut r, &["[Service]", "Delegate=cpu cpuset io memory pids"]);
    r.text([roman("then run")]);
    example_block(&mut r, &["systemctl daemon-reload"]);
    r.text([roman("and log in again. Check what you have with")]);
    example_block(
        &mut r,
        &[
            "cat /sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service/cgroup.controllers",
        ],
    );
    r.text([roman(
        "Without delegation box still runs containers, and fails with a message naming the \
         missing controller when a limit asks for it.",
    )]);

    r.control("SH", ["NETWORK"]);
    r.text([
        roman(
            "An unprivileged user cannot create network interfaces on the host. box gives a \
               container user-mode networking through ",
        ),
        bold("pasta"),
        roman(" (package passt) or "),
        bold("slirp4netns"),
        roman(
            "; published ports (-p) are forwarded by that helper. Host ports below 1024 \
               need net.ipv4.ip_unprivileged_port_start lowered.",
        ),
    ]);

    r.control("SH", ["ENVIRONMENT"]);
    for (name, text) in ENVIRONMENT {
        tp(&mut r, *name, *text);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("box"),
        roman("(1), "),
        bold("subuid"),
        roman("(5), "),
        bold("subgid"),
        roman("(5), "),
        bold("newuidmap"),
        roman("(1), "),
        bold("user_namespaces"),
        roman("(7), "),
        bold("systemd.resource-control"),
        roman("(5)"),
    ]);
    r.to_roff().into_bytes()
}

fn example_block(r: &mut Roff, lines: &[&str]) {
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    for l in lines {
        r.text([italic(""), bold(*l)]);
    }
    r.control("fi", []);
    r.control("RE", []);
    r.control("PP", []);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_help_examples_and_notes() {
        let h = parse_after_help(
            "Examples:\n  # A shell\n  box run --rm -it alpine sh\n  box ps -a            all of them\n  box a\n  box b\n\nExit status: 125 when box fails.",
        );
        assert_eq!(h.examples.len(), 2, "{h:?}");
        assert_eq!(h.examples[0].0, "A shell");
        assert_eq!(h.examples[1].0, "all of them");
        assert_eq!(h.examples[1].1, ["box ps -a", "box a", "box b"]);
        assert!(h.notes.is_empty(), "{h:?}");
    }

    #[test]
    fn every_command_has_a_page() {
        let pages = man_pages();
        let names: Vec<&str> = pages.iter().map(|p| p.0.as_str()).collect();
        for n in [
            "box.1",
            "box-run.1",
            "box-image-list.1",
            "box-image-ls.1",
            "box-rootless.7",
        ] {
            assert!(names.contains(&n), "{n} missing: {names:?}");
        }
        assert!(
            !names
                .iter()
                .any(|n| n.contains("internal") || n.contains("help"))
        );
        let run = &pages.iter().find(|p| p.0 == "box-run.1").unwrap().1;
        let run = String::from_utf8_lossy(run);
        assert!(run.contains(".SH EXAMPLES"), "{run}");
        assert!(run.contains(".SH \"EXIT STATUS\""), "{run}");
    }
}
