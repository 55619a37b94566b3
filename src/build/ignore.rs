//! `.containerignore` / `.dockerignore`: which context paths `box build` leaves out, with
//! docker's rules (moby/patternmatcher and its `ignorefile` reader).
//!
//! - Lines starting with `#` are comments; blank lines are skipped; each pattern is trimmed,
//!   cleaned like Go's `filepath.Clean` (`./a` → `a`, `a//b/../c` → `a/c`, trailing `/` gone)
//!   and a leading `/` dropped.
//! - `*` matches within one path element, `?` one character but `/`, `**` any number of
//!   elements, `[a-c]`/`[^a-c]` a class, `\x` the character x.
//! - A pattern matching a directory matches everything below it.
//! - `!pattern` re-includes; the last matching pattern wins.
use std::path::Path;

use super::Error;

/// The parsed ignore file (empty when the context has none).
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    /// Which file the patterns came from, for messages.
    pub file: Option<String>,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    text: String,
    kind: MatchKind,
    toks: Vec<Tok>,
}

/// patternmatcher's shortcuts; they differ from the glob in corner cases, which is why they
/// are kept (`**foo` matches `barfoo` as a suffix match, as docker does).
#[derive(Debug, Clone, Copy, PartialEq)]
enum MatchKind {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    Any,
    /// `*`: any run without `/`.
    Star,
    /// `**/` (or `**` before more pattern): nothing, or anything ending in `/`.
    DeepDir,
    /// `**` at the end: anything.
    DeepEnd,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Ignore {
    /// Read `<context>/.containerignore`, or else `<context>/.dockerignore`; neither is fine.
    pub fn load(context_dir: &Path) -> Result<Ignore, Error> {
        for name in [".containerignore", ".dockerignore"] {
            let path = context_dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => return Ignore::parse(&String::from_utf8_lossy(&bytes), name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Read {
                        path: path.display().to_string(),
                        msg: e.to_string(),
                    });
                }
            }
        }
        Ok(Ignore::default())
    }

    /// Parse ignore-file text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Ignore, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(Error::new_at(
                        file,
                        n + 1,
                        "illegal exclusion pattern \"!\": write the path to re-include after it",
                    ));
                }
            }
            let mut text = clean(p);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            let (kind, toks) = compile(&text)
                .map_err(|m| Error::new_at(file, n + 1, format!("bad pattern {p:?}: {m}")))?;
            patterns.push(Pattern {
                exclusion,
                text,
                kind,
                toks,
            });
        }
        Ok(Ignore {
            patterns,
            file: Some(file.to_string()),
        })
    }

    /// Is `rel_path` (relative to the context, `/`-separated) left out? The path or any of
    /// its parents may match; the last matching pattern decides.
    pub fn excluded(&self, rel_path: &str) -> bool {
        let file = clean(rel_path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&file);
            let mut i = 0;
            while !hit && i < parents.len() {
                hit = p.matches(&parents[..=i].join("/"));
                i += 1;
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// What a context walker asks. For a file: is it left out. For a directory: can the
    /// whole subtree be skipped — it is left out and no `!` pattern could re-include anything
    /// below it. An excluded directory that gets `false` must be walked; keep it in the
    /// context only when something below it is kept.
    pub fn matches(&self, rel_path: &str, is_dir: bool) -> bool {
        if !self.excluded(rel_path) {
            return false;
        }
        !is_dir || !self.exception_may_match_below(&clean(rel_path))
    }

    /// Could some `!` pattern match a path under `dir`? Element by element, each pattern
    /// element must match the directory's; `**` could match anything. (Docker checks only a
    /// literal prefix; this also keeps `!*/keep` working.)
    fn exception_may_match_below(&self, dir: &str) -> bool {
        let dir: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let segs: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dir.iter().enumerate() {
                let Some(s) = segs.get(i) else { return true };
                if s.contains("**") {
                    return true;
                }
                match compile(s) {
                    Ok((_, toks)) if glob(&toks, &d.chars().collect::<Vec<_>>()) => {}
                    _ => return false,
                }
            }
            true
        })
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            MatchKind::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            MatchKind::Glob => glob(&self.toks, &path.chars().collect::<Vec<_>>()),
        }
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for e in p.split('/') {
        match e {
            "" | "." => {}
            ".." => match out.last() {
                Some(&l) if l != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            e => out.push(e),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// patternmatcher's `compile`: the tokens and which shortcut applies.
fn compile(pattern: &str) -> Result<(MatchKind, Vec<Tok>), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut kind = MatchKind::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == MatchKind::Exact {
                        kind = MatchKind::Prefix;
                    } else {
                        toks.push(Tok::DeepEnd);
                        kind = MatchKind::Glob;
                    }
                } else {
                    toks.push(Tok::DeepDir);
                    kind = MatchKind::Glob;
                }
                if first {
                    kind = MatchKind::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = MatchKind::Glob;
            }
            '?' => {
                toks.push(Tok::Any);
                kind = MatchKind::Glob;
            }
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                    kind = MatchKind::Glob;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unclosed '['".into());
                    };
                    i += 1;
                    let lo = match c {
                        ']' if !ranges.is_empty() => break,
                        '\\' => {
                            i += 1;
                            *chars.get(i - 1).ok_or("'\\' at the end of a class")?
                        }
                        c => c,
                    };
                    let hi = if chars.get(i) == Some(&'-')
                        && chars.get(i + 1).is_some_and(|&c| c != ']')
                    {
                        i += 2;
                        chars[i - 1]
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(format!("bad range {lo}-{hi}"));
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
                kind = MatchKind::Glob;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                kind = MatchKind::Glob;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Ok((kind, toks))
}

/// Do `toks` match all of `s`? Dynamic programming, so `*` runs cannot blow up.
fn glob(toks: &[Tok], s: &[char]) -> bool {
    // ok[j] = toks[t..] matches s[j..], computed for t from the end.
    let mut ok = vec![false; s.len() + 1];
    ok[s.len()] = true;
    for t in toks.iter().rev() {
        let mut next = vec![false; s.len() + 1];
        for j in (0..=s.len()).rev() {
            next[j] = match t {
                Tok::Lit(c) => s.get(j) == Some(c) && ok[j + 1],
                Tok::Any => s.get(j).is_some_and(|&c| c != '/') && ok[j + 1],
                Tok::Class { negated, ranges } => {
                    s.get(j).is_some_and(|&c| {
                        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
                    }) && ok[j + 1]
                }
                Tok::Star => ok[j] || (s.get(j).is_some_and(|&c| c != '/') && next[j + 1]),
                Tok::DeepEnd => true,
                Tok::DeepDir => ok[j] || (j..s.len()).any(|k| s[k] == '/' && ok[k + 1]),
            };
        }
        ok = next;
    }
    ok[0]
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
