//! Containerfile parser, behaving as BuildKit's Dockerfile frontend (`frontend/dockerfile/parser`
//! and `instructions`): parser directives, comments, continuations, exec/shell forms, heredocs,
//! flags, and every instruction's arguments.
//!
//! Why not a crate: the best one (`parse-dockerfile`) takes a heredoc only at the very start of
//! RUN and only one per line, and leaves ENV/LABEL/ARG unsplit; `dockerfile-parser` has neither
//! heredocs nor the escape directive.
//!
//! Values that BuildKit expands later (ENV/LABEL/ARG values, COPY paths, FROM image…) are kept
//! as written, quotes included; `expand::expand_instruction` turns them into final strings.
use std::time::Duration;

use super::Error;
use super::expand::{Lexer, NoEnv};
use super::instructions;

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// Name used in errors (`Containerfile`, `sub/Dockerfile`…).
    pub file: String,
    /// `# syntax=` directive, if any (recorded, not acted on).
    pub syntax: Option<String>,
    /// `# escape=` directive: `\` (default) or `` ` ``.
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// Non-fatal findings (empty continuation lines), as `file:line: text`.
    pub warnings: Vec<String>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// First and last physical line (1-based); the last includes heredoc bodies.
    pub line: usize,
    pub end_line: usize,
    /// The logical line: continuations joined, comment lines dropped, trimmed. With the
    /// heredoc bodies, this is what history's `created_by` and the cache key are made of.
    pub original: String,
    /// Heredocs opened on this line, in order.
    pub heredocs: Vec<Heredoc>,
    pub kind: Kind,
}

/// A here-document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed.
    pub name: String,
    /// The body, each line with its newline; leading tabs already stripped for `<<-`.
    pub content: String,
    /// False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`).
    pub expand: bool,
    /// `<<-`: leading tabs stripped.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
}

/// RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// JSON array: run as is.
    Exec(Vec<String>),
    /// Anything else: given to the SHELL, escapes and quotes untouched.
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

/// ADD and COPY.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    pub sources: Vec<Source>,
    pub dest: String,
    /// COPY only: `--from=<stage|index|image>`.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// COPY only.
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub unpack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    /// `--mount=` values as written.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Cmd {
        command: Command,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    From {
        image: String,
        /// `AS name`, lowercased as docker does.
        name: Option<String>,
        platform: Option<String>,
    },
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    Label(Vec<KeyValue>),
    Env(Vec<KeyValue>),
    Expose(Vec<String>),
    Add(CopyArgs),
    Copy(CopyArgs),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    StopSignal(String),
    Maintainer(String),
    Arg(Vec<ArgDef>),
    /// `expression` is what goes in the image's OnBuild list (heredoc bodies appended).
    Onbuild {
        expression: String,
        inner: Box<Instruction>,
    },
    Healthcheck(Healthcheck),
}

/// Parse `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Containerfile, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut p = Parser {
        escape: '\\',
        syntax: None,
        directives_done: false,
        seen: Vec::new(),
    };
    let err = |line: usize, msg: String| Error::new_at(file, line, msg);
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = trim_newline(lines[i]).trim_start();
        p.directive(first).map_err(|m| err(i + 1, m))?;
        i += 1;
        let start = i;
        if is_comment(first) {
            continue;
        }
        let (mut buf, mut eol) = p.trim_continuation(first);
        if eol && buf.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let l = trim_newline(lines[i]);
            p.directive(l).map_err(|m| err(i + 1, m))?;
            i += 1;
            if is_comment(l) {
                continue;
            }
            if l.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, e) = p.trim_continuation(l);
            buf.push_str(&part);
            eol = e;
        }
        if empty_continuation {
            warnings.push(format!("{file}:{i}: empty continuation line"));
        }
        let mut inst = instruction(&buf, start, p.escape).map_err(|m| err(start, m))?;
        if can_contain_heredoc(&inst.kind) && buf.contains("<<") {
            for mut doc in heredocs_in(&buf).map_err(|m| err(start, m))? {
                let mut done = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let mut t = trim_newline(l);
                    if doc.chomp {
                        t = t.trim_start_matches('\t');
                    }
                    if t == doc.name {
                        done = true;
                        break;
                    }
                    doc.content.push_str(if doc.chomp {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    });
                }
                if !done {
                    return Err(err(
                        start,
                        format!(
                            "unterminated heredoc {:?}: end it with a line holding only {0:?}",
                            doc.name
                        ),
                    ));
                }
                inst.heredocs.push(doc);
            }
            attach_heredocs(&mut inst);
        }
        inst.end_line = i;
        out.push(inst);
    }
    if out.is_empty() {
        return Err(err(
            lines.len(),
            "file with no instructions: a Containerfile needs at least a FROM".into(),
        ));
    }
    Ok(Containerfile {
        file: file.to_string(),
        syntax: p.syntax,
        escape: p.escape,
        instructions: out,
        warnings,
    })
}

struct Parser {
    escape: char,
    syntax: Option<String>,
    directives_done: bool,
    seen: Vec<String>,
}

fn trim_newline(l: &str) -> &str {
    l.trim_end_matches(['\r', '\n'])
}

fn is_comment(l: &str) -> bool {
    l.trim_start().starts_with('#')
}

/// Only ADD, COPY and RUN (also under ONBUILD), in shell form, take heredocs.
fn can_contain_heredoc(kind: &Kind) -> bool {
    match kind {
        Kind::Onbuild { inner, .. } => can_contain_heredoc(&inner.kind),
        Kind::Run(r) => matches!(r.command, Command::Shell(_)),
        Kind::Add(_) | Kind::Copy(_) => true,
        _ => false,
    }
}

impl Parser {
    /// `# key=value` lines before anything else; the first other line ends them.
    fn directive(&mut self, line: &str) -> Result<(), String> {
        if self.directives_done {
            return Ok(());
        }
        let parsed = line.strip_prefix('#').and_then(|rest| {
            let (k, v) = rest.trim_start().split_once('=')?;
            let k = k.trim_end();
            let ok = k.chars().next()?.is_ascii_alphabetic()
                && k.chars().all(|c| c.is_ascii_alphanumeric());
            let v = v.trim();
            (ok && !v.is_empty()).then(|| (k.to_ascii_lowercase(), v.to_string()))
        });
        let Some((k, v)) =
            parsed.filter(|(k, _)| ["syntax", "escape", "check"].contains(&k.as_str()))
        else {
            self.directives_done = true;
            return Ok(());
        };
        if self.seen.contains(&k) {
            return Err(format!(
                "only one {k} parser directive can be used: remove the others"
            ));
        }
        self.seen.push(k.clone());
        match k.as_str() {
            "escape" if v == "\\" || v == "`" => self.escape = v.chars().next().unwrap_or('\\'),
            "escape" => return Err(format!("invalid escape token {v:?}: use ` or \\")),
            "syntax" => self.syntax = Some(v),
            _ => {}
        }
        Ok(())
    }

    /// Strip a trailing escape token (plus spaces/tabs) that is not itself escaped.
    fn trim_continuation(&self, line: &str) -> (String, bool) {
        let t = line.trim_end_matches([' ', '\t']);
        if let Some(before) = t.strip_suffix(self.escape)
            && (before.is_empty() || !before.ends_with(self.escape))
        {
            return (before.to_string(), false);
        }
        (line.to_string(), true)
    }
}

/// One logical line → an instruction (heredocs are attached by the caller).
pub(super) fn instruction(line: &str, at: usize, esc: char) -> Result<Instruction, String> {
    let line = line.trim();
    let (word, rest) = instructions::split_ws(line);
    let (flags, args) = instructions::extract_flags(rest, esc);
    let kind = instructions::kind(word, &flags, args.trim(), at, esc)?;
    Ok(Instruction {
        line: at,
        end_line: at,
        original: line.to_string(),
        heredocs: Vec::new(),
        kind,
    })
}

/// A word such as `<<EOF`, `<<-"EOF"` or `3<<'E'`, as a heredoc without content.
pub(super) fn heredoc_word(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lex = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lex.process_words(rest, &NoEnv).map_err(|e| e.to_string())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = Lexer {
        raw_quotes: true,
        ..lex
    }
    .process_words(rest, &NoEnv)
    .map_err(|e| e.to_string())?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.first().is_some_and(|r| quotes(r) == quotes(name));
    Ok(Some(Heredoc {
        name: name.clone(),
        content: String::new(),
        expand,
        chomp,
        fd: word[..digits].parse().unwrap_or(0),
    }))
}

/// Heredocs opened on a logical line, in order (BuildKit lexes the line with a backslash
/// escape whatever the escape directive says).
fn heredocs_in(line: &str) -> Result<Vec<Heredoc>, String> {
    let lex = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Lexer::new('\\')
    };
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(d) = heredoc_word(&w)? {
            docs.push(d);
        }
    }
    Ok(docs)
}

/// Give COPY/ADD their heredoc sources and ONBUILD its inner heredocs and expression.
fn attach_heredocs(inst: &mut Instruction) {
    let docs = inst.heredocs.clone();
    let fill = |a: &mut CopyArgs| {
        for s in &mut a.sources {
            if let Source::Path(p) = s
                && let Ok(Some(h)) = heredoc_word(p)
                && let Some(d) = docs.iter().find(|d| d.name == h.name)
            {
                *s = Source::Heredoc(d.clone());
            }
        }
    };
    match &mut inst.kind {
        Kind::Add(a) | Kind::Copy(a) => fill(a),
        Kind::Onbuild { expression, inner } => {
            inner.heredocs = docs.clone();
            attach_heredocs(inner);
            for d in &docs {
                expression.push('\n');
                expression.push_str(&d.content);
                expression.push_str(&d.name);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
