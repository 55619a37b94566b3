//! Generated documentation stays generated: `completions/` and `man/` must equal what the code
//! produces from the clap definition. Regenerate with
//! `BOX_REGENERATE=1 cargo test --test integration docs::` and commit both directories.
//! Also: the man pages render cleanly, and the command-line conventions a docker user expects.
use std::path::{Path, PathBuf};
use std::process::Command;

use boxctr::cli::args::{Cli, Command as BoxCommand};
use clap::Parser;

const REGENERATE: &str = "BOX_REGENERATE=1 cargo test --test integration docs::";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files under the generated directories, relative to the repository.
fn checked_in(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| Path::new(dir).join(e.file_name()))
        .collect();
    out.sort();
    out
}

#[test]
fn generated_docs_are_current() {
    let generated = boxctr::commands::completion::generated_files();
    let regenerate = std::env::var_os("BOX_REGENERATE").is_some_and(|v| v != "0" && !v.is_empty());
    let mut problems = Vec::new();
    for (rel, bytes) in &generated {
        let path = repo().join(rel);
        match std::fs::read(&path) {
            Ok(old) if old == *bytes => {}
            Ok(_) => problems.push(format!("{} differs", rel.display())),
            Err(_) => problems.push(format!("{} is missing", rel.display())),
        }
        if regenerate {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let tmp = path.with_extension("regenerating");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
    }
    for rel in checked_in("man")
        .into_iter()
        .chain(checked_in("completions"))
    {
        if !generated.iter().any(|(g, _)| *g == rel) {
            problems.push(format!("{} is no longer generated", rel.display()));
            if regenerate {
                std::fs::remove_file(repo().join(&rel)).unwrap();
            }
        }
    }
    if regenerate {
        eprintln!(
            "NOTE: regenerated completions/ and man/ ({} changes): {}",
            problems.len(),
            problems.join(", ")
        );
        return;
    }
    assert!(
        problems.is_empty(),
        "the checked-in completions/man pages are out of date with the clap definition:\n  {}\n\
         regenerate them with `{REGENERATE}` and commit completions/ and man/",
        problems.join("\n  ")
    );
}

#[test]
fn box_completion_prints_the_checked_in_scripts() {
    for (shell, file) in [
        (clap_complete::Shell::Bash, "completions/box.bash"),
        (clap_complete::Shell::Zsh, "completions/_box"),
        (clap_complete::Shell::Fish, "completions/box.fish"),
    ] {
        let script = boxctr::cli::complete::script(shell);
        assert!(
            script.contains("BOX_COMPLETE="),
            "{shell} script does not call back into box:\n{script}"
        );
        let on_disk = std::fs::read_to_string(repo().join(file)).unwrap_or_default();
        assert_eq!(script, on_disk, "{file} is stale: run `{REGENERATE}`");
    }
}

/// Every page renders without groff warnings; the command pages have EXAMPLES where the
/// command has examples, and every one has EXIT STATUS.
#[test]
fn man_pages_render() {
    if Command::new("groff").arg("--version").output().is_err() {
        eprintln!("SKIP man_pages_render: groff is not installed");
        return;
    }
    let pages = boxctr::commands::completion::man_pages();
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in &pages {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    for (name, bytes) in &pages {
        if bytes.starts_with(b".so ") {
            continue;
        }
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
            .arg(dir.path().join(name))
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "groff warns about {name}:\n{stderr}"
        );
        let text = plain(&String::from_utf8_lossy(&out.stdout));
        if name.ends_with(".1") {
            for section in ["NAME", "SYNOPSIS", "EXIT STATUS", "SEE ALSO"] {
                assert!(text.contains(section), "{name} lacks {section}:\n{text}");
            }
        }
    }
    let text = |name: &str| {
        let (_, bytes) = pages.iter().find(|(n, _)| n == name).unwrap();
        String::from_utf8_lossy(bytes).into_owned()
    };
    for page in [
        "box.1",
        "box-run.1",
        "box-exec.1",
        "box-ps.1",
        "box-pull.1",
        "box-images.1",
        "box-image-list.1",
    ] {
        assert!(
            text(page).contains(".SH EXAMPLES"),
            "{page} has no EXAMPLES"
        );
    }
    let root = text("box.1");
    for needle in [
        "ENVIRONMENT",
        "FILES",
        "BOX_ROOT",
        "BOX_RUNROOT",
        "BOX_STORAGE_DRIVER",
        "BOX_LOG_LEVEL",
        "NO_COLOR",
        "registries.toml",
        "auth.json",
    ] {
        assert!(root.contains(needle), "box(1) does not mention {needle}");
    }
    let rootless = text("box-rootless.7");
    for needle in [
        "/etc/subuid",
        "alice:100000:65536",
        "/etc/systemd/system/user@.service.d/delegate.conf",
        "Delegate=cpu cpuset io memory pids",
        "XDG_RUNTIME_DIR",
    ] {
        assert!(
            rootless.contains(needle),
            "box-rootless(7) does not mention {needle}"
        );
    }
}

/// Terminal output without its overstrike (bold `N\bN`, underline `_\bx`).
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

/// `man -l man/box-run.1` renders, with an EXAMPLES section (the checked-in page).
#[test]
fn man_renders_box_run_with_examples() {
    let page = repo().join("man/box-run.1");
    let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8")
        .output()
    else {
        eprintln!("SKIP man_renders_box_run_with_examples: man is not installed");
        return;
    };
    let text = plain(&String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "man -l {} failed", page.display());
    assert!(
        text.contains("EXAMPLES") && text.contains("box run --rm -it alpine"),
        "{text}"
    );
    assert!(text.contains("EXIT STATUS"), "{text}");
}

fn parse(args: &[&str]) -> Result<BoxCommand, clap::Error> {
    Cli::try_parse_from(args).map(|c| c.command)
}

#[test]
fn short_flags_group_like_docker() {
    let BoxCommand::Run(r) = parse(&["box", "run", "-itd", "--rm", "alpine"]).unwrap() else {
        panic!()
    };
    assert!(r.container.interactive && r.container.tty && r.detach && r.rm);
    let BoxCommand::Exec(e) = parse(&["box", "exec", "-it", "web", "sh"]).unwrap() else {
        panic!()
    };
    assert!(e.interactive && e.tty);
    assert_eq!(
        (e.container.as_str(), e.command.as_slice()),
        ("web", &["sh".to_string()][..])
    );
}

#[test]
fn run_without_a_command_leaves_it_to_the_image() {
    let BoxCommand::Run(r) = parse(&["box", "run", "--rm", "-it", "alpine"]).unwrap() else {
        panic!()
    };
    assert_eq!(r.container.image, "alpine");
    assert!(r.container.command.is_empty(), "{:?}", r.container.command);
}

#[test]
fn double_dash_and_flags_after_the_image() {
    // Everything after the image is the container's, even what looks like box's flags.
    let BoxCommand::Run(r) = parse(&["box", "run", "alpine", "ls", "--rm", "-it"]).unwrap() else {
        panic!()
    };
    assert!(!r.rm && !r.container.interactive);
    assert_eq!(r.container.command, ["ls", "--rm", "-it"]);
    // `--` before the image ends box's options.
    let BoxCommand::Run(r) = parse(&["box", "run", "--rm", "--", "alpine", "ls", "-l"]).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.container.image, "alpine");
    assert_eq!(r.container.command, ["ls", "-l"]);
    // `--` after the container of exec is not part of the command.
    let BoxCommand::Exec(e) = parse(&["box", "exec", "web", "--", "ls", "-l"]).unwrap() else {
        panic!()
    };
    assert_eq!(e.command, ["ls", "-l"]);
}

#[test]
fn typos_get_suggestions_and_usage_errors_exit_125() {
    let err = parse(&["box", "pul", "alpine"]).unwrap_err();
    let text = err.render().to_string();
    assert!(text.contains("pull"), "no suggestion for `pul`: {text}");
    let err = parse(&["box", "ps", "--al"]).unwrap_err();
    assert!(err.render().to_string().contains("--all"));
    // The exit code of a usage error comes from cli::main (125), checked as boxtest in smoke.rs.
}

/// Colours follow NO_COLOR and whether the output is a terminal (clap's anstream); usage
/// errors are one line with clap's suggestion, and exit 125.
#[test]
fn no_color_is_respected() {
    let Some(env) = crate::harness::env() else {
        return;
    };
    let Some(script) = crate::harness::which("script") else {
        crate::harness::skip("script(1) is not installed: cannot give box a terminal");
        return;
    };
    let tb = env.test_box();
    let on_tty = |no_color: bool| {
        tb.sh(&format!(
            "{} -qec '{}\"$BOX\" --help' /dev/null",
            script.display(),
            if no_color { "NO_COLOR=1 " } else { "" }
        ))
        .env("TERM", "xterm")
        .run()
    };
    let colored = on_tty(false);
    colored.assert_success();
    assert!(
        colored.out().contains('\u{1b}'),
        "no colours on a terminal without NO_COLOR: {colored}"
    );
    let plain = on_tty(true);
    plain.assert_success();
    assert!(
        plain.out().contains("Usage:") && !plain.out().contains('\u{1b}'),
        "colours despite NO_COLOR: {plain}"
    );
    let piped = tb.cmd(["--help"]).run();
    assert!(
        !piped.out().contains('\u{1b}'),
        "colours into a pipe: {piped}"
    );
    let typo = tb.cmd(["pul", "alpine"]).run();
    typo.assert_code(125);
    assert!(
        typo.err().contains("'pull'") && typo.err().trim().lines().count() == 1,
        "a typo should get a one-line error suggesting pull: {typo}"
    );
}
