//! Each instruction's arguments and flags, as BuildKit's `parser/line_parsers.go` splits them
//! and `instructions/parse.go` + `bflag.go` check them.
use std::time::Duration;

use super::parse::{self, ArgDef, Command, CopyArgs, Healthcheck, KeyValue, Kind, Run, Source};

pub(super) fn kind(
    word: &str,
    flags: &[String],
    args: &str,
    at: usize,
    esc: char,
) -> Result<Kind, String> {
    let upper = word.to_ascii_uppercase();
    let need_one = |v: &str| {
        if v.is_empty() {
            Err(format!("{upper} requires exactly one argument"))
        } else {
            Ok(v.to_string())
        }
    };
    let plain = || Flags::parse(flags, &[]).map(|_| ());
    Ok(match upper.as_str() {
        "FROM" => {
            let mut f = Flags::parse(flags, &[("platform", Ty::Str)])?;
            let w: Vec<&str> = split_all_ws(args);
            let name = match w.as_slice() {
                [_] => None,
                [_, as_, n] if as_.eq_ignore_ascii_case("as") => {
                    let n = n.to_ascii_lowercase();
                    let valid = n.starts_with(|c: char| c.is_ascii_lowercase())
                        && n.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !valid {
                        return Err(format!("invalid name for build stage {n:?}: it must start with a letter and hold only letters, digits, '-', '_' and '.'"));
                    }
                    Some(n)
                }
                _ => return Err("FROM requires either one or three arguments: FROM [--platform=p] image [AS name]".into()),
            };
            Kind::From {
                image: w[0].to_string(),
                name,
                platform: f.one("platform"),
            }
        }
        "RUN" => {
            let mut f = Flags::parse(
                flags,
                &[
                    ("mount", Ty::Strs),
                    ("network", Ty::Str),
                    ("security", Ty::Str),
                    ("device", Ty::Strs),
                ],
            )?;
            Kind::Run(Run {
                command: maybe_json(args)?,
                mounts: f.all("mount"),
                network: f.one("network"),
                security: f.one("security"),
                devices: f.all("device"),
            })
        }
        "CMD" => {
            plain()?;
            Kind::Cmd(maybe_json(args)?)
        }
        "ENTRYPOINT" => {
            plain()?;
            Kind::Entrypoint(maybe_json(args)?)
        }
        "SHELL" => {
            plain()?;
            match maybe_json(args)? {
                Command::Exec(v) if !v.is_empty() => Kind::Shell(v),
                Command::Exec(_) => return Err("SHELL requires at least one argument".into()),
                Command::Shell(_) => return Err("SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]".into()),
            }
        }
        "LABEL" | "ENV" => {
            plain()?;
            let kv = name_values(args, &upper, esc)?;
            if upper == "ENV" {
                Kind::Env(kv)
            } else {
                Kind::Label(kv)
            }
        }
        "EXPOSE" => {
            plain()?;
            let ports: Vec<String> = split_all_ws(args).into_iter().map(str::to_string).collect();
            if ports.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            Kind::Expose(ports)
        }
        "ADD" | "COPY" => copy(&upper, flags, args)?,
        "VOLUME" => {
            plain()?;
            let vols = json_or_words(args)?;
            if vols.is_empty() {
                return Err("VOLUME requires at least one argument".into());
            }
            if vols.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Kind::Volume(vols.iter().map(|v| v.trim().to_string()).collect())
        }
        "USER" => plain().and_then(|_| need_one(args)).map(Kind::User)?,
        "WORKDIR" => plain().and_then(|_| need_one(args)).map(Kind::Workdir)?,
        "MAINTAINER" => plain().and_then(|_| need_one(args)).map(Kind::Maintainer)?,
        "STOPSIGNAL" => need_one(args).map(Kind::StopSignal)?,
        "ARG" => {
            let words = parse_words(args, esc);
            if words.is_empty() {
                return Err("ARG requires at least one argument".into());
            }
            let mut defs = Vec::new();
            for w in words {
                let (name, default) = match w.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (w, None),
                };
                if name.is_empty() {
                    return Err("ARG names can not be blank".into());
                }
                defs.push(ArgDef { name, default });
            }
            Kind::Arg(defs)
        }
        "ONBUILD" => {
            plain()?;
            let (sub, _) = split_ws(args);
            match sub.to_ascii_uppercase().as_str() {
                "" => return Err("ONBUILD requires at least one argument".into()),
                "ONBUILD" => {
                    return Err("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                s @ ("MAINTAINER" | "FROM") => {
                    return Err(format!("{s} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            let inner = parse::instruction(args, at, esc)?;
            Kind::Onbuild {
                expression: inner.original.clone(),
                inner: Box::new(inner),
            }
        }
        "HEALTHCHECK" => Kind::Healthcheck(healthcheck(flags, args)?),
        _ => {
            return Err(format!(
                "unknown instruction {word:?}: check its spelling (ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            ));
        }
    })
}

fn copy(upper: &str, flags: &[String], args: &str) -> Result<Kind, String> {
    let copy = upper == "COPY";
    let spec: &[(&str, Ty)] = if copy {
        &[
            ("chown", Ty::Str),
            ("from", Ty::Str),
            ("chmod", Ty::Str),
            ("link", Ty::Bool),
            ("exclude", Ty::Strs),
            ("parents", Ty::Bool),
        ]
    } else {
        &[
            ("chown", Ty::Str),
            ("chmod", Ty::Str),
            ("link", Ty::Bool),
            ("keep-git-dir", Ty::Bool),
            ("checksum", Ty::Str),
            ("unpack", Ty::Bool),
            ("exclude", Ty::Strs),
        ]
    };
    let mut f = Flags::parse(flags, spec)?;
    let mut words = json_or_words(args)?;
    if words.len() < 2 {
        return Err(format!(
            "{upper} requires at least two arguments: a source and a destination"
        ));
    }
    let dest = words.pop().unwrap_or_default();
    if parse::heredoc_word(&dest)?.is_some() {
        return Err(format!("{upper} cannot accept a heredoc as a destination"));
    }
    let a = CopyArgs {
        sources: words.into_iter().map(Source::Path).collect(),
        dest,
        from: f.one("from"),
        chown: f.one("chown"),
        chmod: f.one("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        exclude: f.all("exclude"),
        checksum: f.one("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        unpack: f.bool("unpack"),
    };
    Ok(if copy { Kind::Copy(a) } else { Kind::Add(a) })
}

fn healthcheck(flags: &[String], args: &str) -> Result<Healthcheck, String> {
    let (typ, rest) = split_ws(args);
    match typ.to_ascii_uppercase().as_str() {
        "" => Err("HEALTHCHECK requires at least one argument".into()),
        "NONE" if rest.trim().is_empty() => Ok(Healthcheck::None),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => {
            let mut f = Flags::parse(
                flags,
                &[
                    ("interval", Ty::Str),
                    ("timeout", Ty::Str),
                    ("start-period", Ty::Str),
                    ("start-interval", Ty::Str),
                    ("retries", Ty::Str),
                ],
            )?;
            let command = maybe_json(rest.trim())?;
            if matches!(&command, Command::Exec(v) if v.is_empty())
                || command == Command::Shell(String::new())
            {
                return Err("missing command after HEALTHCHECK CMD".into());
            }
            let mut dur = |n: &str| {
                f.one(n)
                    .map(|v| duration(n, &v))
                    .transpose()
                    .map(Option::flatten)
            };
            let (interval, timeout, start_period, start_interval) = (
                dur("interval")?,
                dur("timeout")?,
                dur("start-period")?,
                dur("start-interval")?,
            );
            let retries =
                match f.one("retries") {
                    None => None,
                    Some(r) => Some(r.parse::<u32>().map_err(|_| {
                        format!("--retries must be a non-negative number, not {r:?}")
                    })?),
                };
            Ok(Healthcheck::Cmd {
                command,
                interval,
                timeout,
                start_period,
                start_interval,
                retries,
            })
        }
        t => Err(format!(
            "unknown type {t:?} in HEALTHCHECK: use CMD or NONE"
        )),
    }
}

/// Go's `time.ParseDuration` for HEALTHCHECK (`1m30s`, `0.5s`, `300ms`); zero means unset;
/// anything from 0 to 1ms is refused, as BuildKit does.
fn duration(flag: &str, v: &str) -> Result<Option<Duration>, String> {
    let bad = || {
        format!(
            "invalid duration {v:?} for --{flag}: use a number with a unit such as 30s, 1m30s or 500ms"
        )
    };
    if v.is_empty() || v == "0" {
        return Ok(None);
    }
    let mut total = 0f64;
    let mut s = v;
    while !s.is_empty() {
        let n = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = s[..n].parse().map_err(|_| bad())?;
        s = &s[n..];
        let u = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let scale = match &s[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * scale;
        s = &s[u..];
    }
    let d = Duration::from_secs_f64(total);
    if d.is_zero() {
        return Ok(None);
    }
    if d < Duration::from_millis(1) {
        return Err(format!("--{flag} cannot be less than 1ms"));
    }
    Ok(Some(d))
}

/// Split off the first word (BuildKit's `[\t\v\f\r ]+`).
pub(super) fn split_ws(s: &str) -> (&str, &str) {
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r');
    let s = s.trim_start_matches(is_ws);
    match s.find(is_ws) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_ws)),
        None => (s, ""),
    }
}

fn split_all_ws(s: &str) -> Vec<&str> {
    s.split([' ', '\t', '\x0b', '\x0c', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Leading `--flag[=value]` words (quotes and escapes removed); `--` ends them.
pub(super) fn extract_flags(line: &str, esc: char) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = line.trim_start();
    while rest.starts_with("--") {
        let chars: Vec<(usize, char)> = rest.char_indices().collect();
        let mut word = String::new();
        let mut quote = None;
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k].1;
            match quote {
                None if c.is_whitespace() => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == esc => {
                    if let Some(&(_, n)) = chars.get(k + 1) {
                        word.push(n);
                        k += 1;
                    }
                }
                _ => word.push(c),
            }
            k += 1;
        }
        let end = chars.get(k).map_or(rest.len(), |&(i, _)| i);
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        flags.push(word);
    }
    (flags, rest)
}

#[derive(Clone, Copy, PartialEq)]
enum Ty {
    Bool,
    Str,
    Strs,
}

/// BuildKit's `BFlags`: typed flags of one instruction, unknown ones refused.
struct Flags(Vec<(String, String)>);

impl Flags {
    fn parse(raw: &[String], spec: &[(&str, Ty)]) -> Result<Flags, String> {
        let mut got: Vec<(String, String)> = Vec::new();
        for a in raw {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            let bare = name.trim_start_matches('-');
            let Some(&(_, ty)) = spec.iter().find(|(n, _)| *n == bare) else {
                return Err(format!("unknown flag: {name}"));
            };
            if ty != Ty::Strs && got.iter().any(|(n, _)| n == bare) {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let v = match (ty, value) {
                (_, Some("")) | (Ty::Str | Ty::Strs, None) => {
                    return Err(format!("missing a value on flag: {name}"));
                }
                (Ty::Bool, None) => "true".to_string(),
                (Ty::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    b @ ("true" | "false") => b.to_string(),
                    _ => return Err(format!("expecting boolean value for flag {name}, not: {v}")),
                },
                (_, Some(v)) => v.to_string(),
            };
            got.push((bare.to_string(), v));
        }
        Ok(Flags(got))
    }
    fn one(&mut self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn all(&mut self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn bool(&mut self, name: &str) -> Option<bool> {
        self.one(name).map(|v| v == "true")
    }
}

/// A JSON array of strings, or `None` when `args` is not one.
fn json_array(args: &str) -> Result<Option<Vec<String>>, String> {
    if !args.trim_start().starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(args) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(args: &str) -> Result<Command, String> {
    Ok(match json_array(args)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(args.to_string()),
    })
}

fn json_or_words(args: &str) -> Result<Vec<String>, String> {
    Ok(match json_array(args)? {
        Some(v) => v,
        None => split_all_ws(args).into_iter().map(str::to_string).collect(),
    })
}

/// BuildKit's `parseWords`: split on unquoted whitespace, keeping quotes and escapes.
fn parse_words(rest: &str, esc: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut it = rest.chars().peekable();
    while let Some(c) = it.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                continue;
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                blank_ok = true;
            }
            Some(q) if c == q => quote = None,
            _ => {}
        }
        if c == esc && quote != Some('\'') {
            match it.next() {
                None => continue,
                Some(n) => {
                    word.push(c);
                    word.push(n);
                    continue;
                }
            }
        }
        word.push(c);
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// ENV and LABEL: `k=v k2="v 2"` or the legacy `k v w` (one pair, value the rest).
fn name_values(args: &str, cmd: &str, esc: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(args, esc);
    let Some(first) = words.first() else {
        return Err(format!("{cmd} requires at least one argument"));
    };
    if !first.contains('=') {
        let (k, v) = split_ws(args);
        if v.is_empty() {
            return Err(format!("{cmd} {k} needs a value: use {cmd} {k}=value"));
        }
        return Ok(vec![KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        }]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{cmd} names can not be blank")),
            Some((k, v)) => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            None => Err(format!(
                "syntax error: can't find = in {w:?}, use name=value"
            )),
        })
        .collect()
}
