//! Variable expansion as BuildKit's shell lexer (`frontend/dockerfile/shell/lex.go`) does it.
//!
//! `$var`, `${var}`, `${var:-word}`, `${var-word}`, `${var:+word}`, `${var+word}`,
//! `${var:?msg}`, `${var?msg}`, `${var#pat}`, `${var##pat}`, `${var%pat}`, `${var%%pat}`,
//! `${var/pat/rep}`, `${var//pat/rep}`; the escape token escapes anything outside quotes,
//! only `"`, `$` and itself inside double quotes, nothing inside single quotes (which also
//! stop expansion). Positional and special parameters (`$1`, `$@`, `$$`…) are never set.
//! `process_words` splits on whitespace *after* expansion, except inside quotes.
//!
//! Which instructions expand (and which fields) is `expand_instruction`'s business.
use std::collections::{BTreeMap, HashMap};

use super::Error;
use super::parse::{Instruction, Kind, Source};

/// Where variables come from.
pub trait Env {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// An ordered list of `(name, value)`; the first occurrence of a name wins.
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// The lexer, with BuildKit's switches.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output (they still group words and stop expansion).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub skip_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// Expand `word` to one string: quotes removed, whitespace kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, Error> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// Expand `word` and split it into words (quoted whitespace does not split).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, Error> {
        self.run(word, env).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), Error> {
        let mut sw = Scan {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
        };
        sw.stop_on(None, self.raw_escapes)
            .map_err(|e| Error::Lex(format!("failed to process {word:?}: {e}")))
    }
}

struct Scan<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
}

/// BuildKit's `wordsStruct`: whitespace from expansions splits, quoted text does not.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.dollar()?),
                '<' => Some(self.possible_heredoc()),
                '\'' if !self.lex.skip_quotes => Some(self.single_quote()?),
                '"' if !self.lex.skip_quotes => Some(self.double_quote(raw_escapes)?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            self.pos += 1;
            if ch == self.lex.escape {
                if raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                let Some(escaped) = self.next() else { break };
                words.add_raw_char(escaped);
                result.push(escaped);
            } else {
                words.add_char(ch);
                result.push(ch);
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            out.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self, raw_escapes: bool) -> Result<String, String> {
        let mut out = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            out.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(mut ch) => {
                    self.pos += 1;
                    if ch == self.lex.escape {
                        if raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.pos += 1;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut mods = ch.to_string();
        let value = self.lookup(&name);
        match ch {
            '}' => Ok(match value {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    ch = self.next().unwrap_or('\0');
                    mods.push(ch);
                }
                let pattern_op = ch == '#' || ch == '%';
                if null_is_unset && pattern_op {
                    return Err(format!("unsupported modifier ({mods}) in substitution"));
                }
                if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
                    return Err(format!("unsupported modifier ({mods}) in substitution"));
                }
                let (word, _) = self.stop_on(Some('}'), pattern_op).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                if value.is_none() && self.lex.skip_unset {
                    return Ok(format!("${{{name}{mods}{word}}}"));
                }
                let empty = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match ch {
                    '-' => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty { String::new() } else { word }),
                    '?' => {
                        if empty {
                            let why = match (&value, word.is_empty()) {
                                (_, false) => word,
                                (None, true) => "is not allowed to be unset".into(),
                                (Some(_), true) => "is not allowed to be empty".into(),
                            };
                            Err(format!("{name}: {why}"))
                        } else {
                            Ok(value.unwrap_or_default())
                        }
                    }
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = pattern(&pat)?;
                        Ok(if ch == '#' {
                            trim_prefix(&pat, &value, greedy)
                        } else {
                            trim_suffix(&pat, &value, greedy)
                        })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pat, _) = self.stop_on(Some('/'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '/' in ${}".to_string()
                    } else {
                        e
                    }
                })?;
                let (rep, _) = self.stop_on(Some('}'), true).map_err(|e| {
                    if self.peek().is_none() {
                        "syntax error: missing '}'".to_string()
                    } else {
                        e
                    }
                })?;
                let Some(value) = value else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pat}/{rep}}}"));
                    }
                    return Ok(String::new());
                };
                Ok(replace(&pattern(&pat)?, &value, &rep, all))
            }
            _ => Err(format!("unsupported modifier ({mods}) in substitution")),
        }
    }

    /// A name: letters, digits and `_`; or all digits (positional); or one special character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.pos += 1;
        }
        name
    }
}

/// Expand an instruction's fields as BuildKit does before dispatching it: FROM (image,
/// `--platform`), ADD/COPY (sources, dest, `--from`, `--chown`, `--chmod`, `--checksum`;
/// heredoc bodies whose delimiter was unquoted, with quotes left alone), ENV and LABEL (keys
/// and values), ARG (names and defaults), EXPOSE (each port, then split on whitespace),
/// STOPSIGNAL, USER, VOLUME, WORKDIR. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER
/// and ONBUILD come back unchanged (the shell or the later build expands those).
/// Errors carry `file:line`.
pub fn expand_instruction(
    inst: &Instruction,
    escape: char,
    env: &dyn Env,
    file: &str,
) -> Result<Instruction, Error> {
    let lex = Lexer::new(escape);
    let w = |s: &str| lex.process_word(s, env);
    let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
    let mut out = inst.clone();
    let done: Result<(), Error> = (|| {
        match &mut out.kind {
            Kind::From {
                image, platform, ..
            } => {
                *image = w(image)?;
                *platform = opt(platform)?;
            }
            Kind::Add(a) | Kind::Copy(a) => {
                let body = Lexer {
                    skip_quotes: true,
                    ..Lexer::new('\\')
                };
                for src in &mut a.sources {
                    match src {
                        Source::Path(p) => *p = w(p)?,
                        Source::Heredoc(h) if h.expand => {
                            h.content = body.process_word(&h.content, env)?
                        }
                        Source::Heredoc(_) => {}
                    }
                }
                a.dest = w(&a.dest)?;
                a.from = opt(&a.from)?;
                a.chown = opt(&a.chown)?;
                a.chmod = opt(&a.chmod)?;
                a.checksum = opt(&a.checksum)?;
            }
            Kind::Env(kvs) | Kind::Label(kvs) => {
                for kv in kvs {
                    kv.key = w(&kv.key)?;
                    kv.value = w(&kv.value)?;
                }
            }
            Kind::Arg(defs) => {
                for d in defs {
                    d.name = w(&d.name)?;
                    d.default = opt(&d.default)?;
                }
            }
            Kind::Expose(ports) => {
                let mut all = Vec::new();
                for p in ports.iter() {
                    all.extend(lex.process_words(p, env)?);
                }
                *ports = all;
            }
            Kind::Volume(vols) => {
                for v in vols {
                    *v = w(v)?;
                }
            }
            Kind::StopSignal(s) | Kind::User(s) | Kind::Workdir(s) => *s = w(s)?,
            _ => {}
        }
        Ok(())
    })();
    done.map_err(|e| e.at(file, inst.line))?;
    Ok(out)
}

/// A shell pattern for `#`, `%` and `/`: `*`, `?`, `\x` literal (no bracket expressions,
/// as BuildKit).
#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Lit(char),
    Any,
    Star,
}

fn pattern(p: &str) -> Result<Vec<Pat>, String> {
    let mut out = Vec::new();
    let mut it = p.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '*' => out.push(Pat::Star),
            '?' => out.push(Pat::Any),
            '\\' => match it.peek() {
                Some('}' | '/') => {}
                Some(&n @ ('*' | '?' | '\\')) => {
                    it.next();
                    out.push(Pat::Lit(n));
                }
                other => {
                    let n = other.copied().unwrap_or(' ');
                    return Err(format!(
                        "invalid pattern ({p}) in substitution: invalid escape '\\{n}'"
                    ));
                }
            },
            c => out.push(Pat::Lit(c)),
        }
    }
    Ok(out)
}

/// Does `pat` match all of `s`?
fn glob(pat: &[Pat], s: &[char]) -> bool {
    match pat.first() {
        None => s.is_empty(),
        Some(Pat::Star) => (0..=s.len()).any(|i| glob(&pat[1..], &s[i..])),
        Some(Pat::Any) => !s.is_empty() && glob(&pat[1..], &s[1..]),
        Some(Pat::Lit(c)) => s.first() == Some(c) && glob(&pat[1..], &s[1..]),
    }
}

fn trim_prefix(pat: &[Pat], value: &str, greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new((0..=v.len()).rev())
    } else {
        Box::new(0..=v.len())
    };
    match ends.find(|&i| glob(pat, &v[..i])) {
        Some(i) => v[i..].iter().collect(),
        None => value.to_string(),
    }
}

fn trim_suffix(pat: &[Pat], value: &str, greedy: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new(0..=v.len())
    } else {
        Box::new((0..=v.len()).rev())
    };
    match starts.find(|&i| glob(pat, &v[i..])) {
        Some(i) => v[..i].iter().collect(),
        None => value.to_string(),
    }
}

/// `${v/pat/rep}`: the leftmost match, longest there (`*` is greedy, as in BuildKit's
/// regex); `//` replaces every match, an empty one right after a match excepted (as Go's
/// `ReplaceAllString`).
fn replace(pat: &[Pat], value: &str, rep: &str, all: bool) -> String {
    let v: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut last_end = None;
    loop {
        let found = (i..=v.len()).rev().find(|&j| glob(pat, &v[i..j]));
        match found {
            Some(j) if !(j == i && last_end == Some(i)) => {
                out.push_str(rep);
                last_end = Some(j);
                if !all {
                    out.extend(&v[j..]);
                    return out;
                }
                if j > i {
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        let Some(c) = v.get(i) else { return out };
        out.push(*c);
        i += 1;
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
