//! What the words typed so far say: walk them as the parser would, following subcommands
//! and skipping option values, and note what changes where names come from.
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::Command;

#[derive(Debug, Default)]
pub(in crate::cli) struct Typed {
    pub(super) root: Option<PathBuf>,
    pub(super) runroot: Option<PathBuf>,
    /// `inspect --type T`.
    pub(super) kind: Option<String>,
    /// The cursor is in the container's command line (after `run IMAGE`, `exec CONTAINER`).
    pub(super) in_container_command: bool,
    /// The subcommand names typed so far (`["image", "rm"]`).
    pub(in crate::cli) command: Vec<String>,
}

/// Walk `words[1..index]` like the parser would: follow subcommands, skip option values,
/// count positionals, and note the options that change where names come from.
pub(in crate::cli) fn scan(root_cmd: &Command, words: &[OsString], index: usize) -> Typed {
    let mut typed = Typed::default();
    let mut cmd = root_cmd;
    let mut positional = 0usize;
    let mut escaped = false;
    let mut i = 1;
    let record = |typed: &mut Typed, arg: &clap::Arg, value: &OsStr| match arg.get_id().as_str() {
        "root" => typed.root = Some(PathBuf::from(value)),
        "runroot" => typed.runroot = Some(PathBuf::from(value)),
        "kind" => typed.kind = Some(value.to_string_lossy().into_owned()),
        _ => {}
    };
    while i < index.min(words.len()) {
        let word = words[i].to_string_lossy();
        i += 1;
        if !escaped && word == "--" {
            escaped = true;
            continue;
        }
        if !escaped && word.len() > 1 && word.starts_with("--") {
            let (flag, value) = match word[2..].split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (&word[2..], None),
            };
            let Some(arg) = cmd.get_arguments().find(|a| {
                a.get_long_and_visible_aliases()
                    .is_some_and(|l| l.contains(&flag))
                    || a.get_all_aliases().is_some_and(|l| l.contains(&flag))
            }) else {
                continue;
            };
            if takes_value(arg) {
                match value {
                    Some(v) => record(&mut typed, arg, OsStr::new(v)),
                    None if arg.get_num_args().is_some_and(|n| n.min_values() == 0) => {}
                    None if i < index => {
                        record(&mut typed, arg, &words[i]);
                        i += 1;
                    }
                    None => {}
                }
            }
            continue;
        }
        if !escaped && word.len() > 1 && word.starts_with('-') {
            let chars: Vec<char> = word[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                let Some(arg) = cmd.get_arguments().find(|a| {
                    a.get_short_and_visible_aliases()
                        .is_some_and(|s| s.contains(c))
                }) else {
                    break;
                };
                if takes_value(arg) {
                    let rest: String = chars[k + 1..].iter().collect();
                    let rest = rest.strip_prefix('=').unwrap_or(&rest).to_string();
                    if !rest.is_empty() {
                        record(&mut typed, arg, OsStr::new(&rest));
                    } else if i < index {
                        record(&mut typed, arg, &words[i]);
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        if positional == 0
            && !escaped
            && let Some(sub) = cmd.find_subcommand(word.as_ref())
        {
            cmd = sub;
            typed.command.push(sub.get_name().to_string());
            continue;
        }
        positional += 1;
        // The positional after this one takes the rest of the line verbatim.
        let next = cmd
            .get_positionals()
            .find(|p| p.get_index() == Some(positional + 1));
        if next.is_some_and(|p| p.is_trailing_var_arg_set()) {
            typed.in_container_command = index >= i;
            break;
        }
    }
    typed
}

pub(super) fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::cli::complete::tests::words;

    #[test]
    fn scan_follows_globals_and_values() {
        let mut cmd = crate::cli::args::command();
        cmd.build();
        let w = words("box --root /tmp/x run -e A=1 --name web -it alpine sh");
        let t = scan(&cmd, &w, w.len() - 1);
        assert_eq!(t.root.as_deref(), Some(Path::new("/tmp/x")));
        assert!(t.in_container_command);
        let w = words("box run -e A=1 --name web -it ");
        let t = scan(&cmd, &w, w.len() - 1);
        assert!(!t.in_container_command);
        let w = words("box inspect --type=image ");
        assert_eq!(scan(&cmd, &w, w.len() - 1).kind.as_deref(), Some("image"));
    }
}
