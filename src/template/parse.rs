//! Lexer and parser: template text → a tree of `Node`s.
use serde_json::Value;

use super::Error;
use super::funcs;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    /// `{{pipeline}}`: print the result (nothing when the pipeline only declares).
    Action(Pipeline),
    If {
        cond: Pipeline,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Variables declared by `$x :=` (or `$i, $v :=` in range), without the `$`.
    pub decl: Vec<String>,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.Field.Sub` (empty chain: `.`).
    Field(Vec<String>),
    /// `$name.Field…` (`$` alone is name "").
    Var(String, Vec<String>),
    Literal(Value),
    Func(String),
    /// `(pipeline).Field…`
    Sub(Pipeline, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Ident(String),
    /// `.Field…` right after `)`.
    Chain(Vec<String>),
    LParen,
    RParen,
    Pipe,
    Declare,
    Comma,
}

enum Item {
    Text(String),
    Action(Vec<Tok>),
}

pub fn parse(src: &str) -> Result<Vec<Node>, Error> {
    let items = lex(src)?;
    let mut pos = 0;
    let (nodes, end) = parse_list(&items, &mut pos)?;
    match end {
        None => Ok(nodes),
        Some(End::End) => Err(err("unexpected {{end}}")),
        Some(End::Else(_)) => Err(err("unexpected {{else}}")),
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::Parse(msg.into())
}

// ---------------------------------------------------------------- lexer

fn lex(src: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let mut text = if trim_next { text.trim_start() } else { text };
        let Some(after) = after else {
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            break;
        };
        let mut inner = after;
        if let Some(s) = inner
            .strip_prefix("- ")
            .or_else(|| inner.strip_prefix("-\t"))
        {
            text = text.trim_end();
            inner = s;
        } else if let Some(s) = inner.strip_prefix("-\n") {
            text = text.trim_end();
            inner = s;
        }
        if !text.is_empty() {
            items.push(Item::Text(text.to_string()));
        }
        let trimmed = inner.trim_start();
        if let Some(c) = trimmed.strip_prefix("/*") {
            let end = c.find("*/").ok_or_else(|| err("unclosed comment"))?;
            let tail = c[end + 2..].trim_start();
            if let Some(t) = tail.strip_prefix("-}}") {
                trim_next = true;
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                trim_next = false;
                rest = t;
            } else {
                return Err(err("comment ends before closing delimiter"));
            }
            continue;
        }
        let (toks, t, trim) = lex_action(inner)?;
        items.push(Item::Action(toks));
        trim_next = trim;
        rest = t;
    }
    Ok(items)
}

/// Lex one action up to `}}`; returns the tokens, the text after it, and whether it ended
/// with ` -}}`.
fn lex_action(s: &str) -> Result<(Vec<Tok>, &str, bool), Error> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    loop {
        if i >= b.len() {
            return Err(err("unclosed action: missing }}"));
        }
        let c = b[i];
        if s[i..].starts_with("}}") {
            return Ok((toks, &s[i + 2..], false));
        }
        if c.is_ascii_whitespace() {
            let ws = i;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if s[i..].starts_with("-}}") && i > ws {
                return Ok((toks, &s[i + 3..], true));
            }
            continue;
        }
        match c {
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
                if b.get(i) == Some(&b'.') {
                    let (chain, n) = lex_chain(&s[i..]);
                    toks.push(Tok::Chain(chain));
                    i += n;
                }
            }
            b'|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            b'=' => {
                toks.push(Tok::Declare);
                i += 1;
            }
            b'.' if !b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let (chain, n) = lex_chain(&s[i..]);
                toks.push(Tok::Field(chain));
                i += n;
            }
            b'$' => {
                let start = i + 1;
                i = start;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let name = s[start..i].to_string();
                let (chain, n) = if b.get(i) == Some(&b'.') {
                    lex_chain(&s[i..])
                } else {
                    (Vec::new(), 0)
                };
                i += n;
                toks.push(Tok::Var(name, chain));
            }
            b'"' => {
                let (v, n) = lex_quoted(&s[i..])?;
                toks.push(Tok::Str(v));
                i += n;
            }
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| err("unterminated raw string"))?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            b'-' | b'+' | b'0'..=b'9' | b'.' => {
                let start = i;
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                let text = &s[start..i];
                let v = parse_number(text).ok_or_else(|| err(format!("bad number {text:?}")))?;
                toks.push(Tok::Num(v));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                toks.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(err(format!("unexpected {ch:?} in action")));
            }
        }
    }
}

/// `.A.B` → ["A", "B"]; `.` → []. Returns the byte length consumed.
fn lex_chain(s: &str) -> (Vec<String>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut chain = Vec::new();
    while b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == start {
            i += 1;
            break;
        }
        chain.push(s[start..j].to_string());
        i = j;
    }
    (chain, i)
}

fn lex_quoted(s: &str) -> Result<(String, usize), Error> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next().ok_or_else(|| err("unterminated string"))?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '\\' => '\\',
                    '"' => '"',
                    '\'' => '\'',
                    '0' => '\0',
                    other => return Err(err(format!("unknown escape \\{other} in string"))),
                });
            }
            '\n' => return Err(err("newline in string")),
            c => out.push(c),
        }
    }
    Err(err("unterminated string"))
}

fn parse_number(text: &str) -> Option<Value> {
    let clean = text.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Some(hex) = clean.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    clean
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

// ---------------------------------------------------------------- parser

enum End {
    End,
    /// `{{else}}` (empty) or `{{else if …}}` / `{{else with …}}` (the rest of the tokens).
    Else(Vec<Tok>),
}

fn parse_list(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Option<End>), Error> {
    let mut nodes = Vec::new();
    while *pos < items.len() {
        let item = &items[*pos];
        *pos += 1;
        let toks = match item {
            Item::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Item::Action(toks) => toks,
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(k)) => k.as_str(),
            _ => "",
        };
        match keyword {
            "end" => {
                if toks.len() > 1 {
                    return Err(err("unexpected tokens after end"));
                }
                return Ok((nodes, Some(End::End)));
            }
            "else" => return Ok((nodes, Some(End::Else(toks[1..].to_vec())))),
            "if" | "range" | "with" => nodes.push(parse_block(keyword, &toks[1..], items, pos)?),
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(err(format!("{{{{{keyword}}}}} is not supported")));
            }
            _ => nodes.push(Node::Action(parse_pipeline(toks, false)?)),
        }
    }
    Ok((nodes, None))
}

fn parse_block(kind: &str, toks: &[Tok], items: &[Item], pos: &mut usize) -> Result<Node, Error> {
    let pipe = parse_pipeline(toks, kind == "range")?;
    if pipe.cmds.is_empty() {
        return Err(err(format!("missing value for {kind}")));
    }
    let (body, end) = parse_list(items, pos)?;
    let otherwise = match end {
        None => {
            return Err(err(format!(
                "unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}"
            )));
        }
        Some(End::End) => Vec::new(),
        Some(End::Else(rest)) if rest.is_empty() => {
            let (otherwise, end) = parse_list(items, pos)?;
            match end {
                Some(End::End) => otherwise,
                Some(End::Else(_)) => return Err(err("expected end; found else")),
                None => return Err(err(format!("unexpected EOF in {{{{{kind}}}}}"))),
            }
        }
        Some(End::Else(rest)) => match rest.first() {
            // `{{else if …}}` is an `if` nested in the else branch sharing our `end`.
            Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                vec![parse_block(k, &rest[1..], items, pos)?]
            }
            _ => return Err(err("unexpected tokens after else")),
        },
    };
    Ok(match kind {
        "if" => Node::If {
            cond: pipe,
            then: body,
            otherwise,
        },
        "range" => Node::Range {
            pipe,
            body,
            otherwise,
        },
        _ => Node::With {
            pipe,
            body,
            otherwise,
        },
    })
}

fn parse_pipeline(toks: &[Tok], allow_two_vars: bool) -> Result<Pipeline, Error> {
    let mut decl = Vec::new();
    let mut rest = toks;
    // `$x :=` or `$i, $v :=`
    let decl_at = toks.iter().position(|t| *t == Tok::Declare);
    if let Some(at) = decl_at {
        let names = &toks[..at];
        let mut expect_var = true;
        for t in names {
            match (t, expect_var) {
                (Tok::Var(n, chain), true) if chain.is_empty() && !n.is_empty() => {
                    decl.push(n.clone());
                    expect_var = false;
                }
                (Tok::Comma, false) => expect_var = true,
                _ => return Err(err("bad variable declaration")),
            }
        }
        if decl.is_empty() || expect_var || (decl.len() > 1 && !allow_two_vars) || decl.len() > 2 {
            return Err(err("bad variable declaration"));
        }
        rest = &toks[at + 1..];
    }
    let mut cmds = Vec::new();
    for part in split_top(rest, &Tok::Pipe)? {
        if part.is_empty() {
            return Err(err("missing command in pipeline"));
        }
        cmds.push(parse_cmd(part)?);
    }
    if decl_at.is_some() && cmds.is_empty() {
        return Err(err("missing value in declaration"));
    }
    Ok(Pipeline { decl, cmds })
}

/// Split at `sep` outside parentheses. An empty token list gives no parts.
fn split_top<'a>(toks: &'a [Tok], sep: &Tok) -> Result<Vec<&'a [Tok]>, Error> {
    if toks.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::LParen => depth += 1,
            Tok::RParen => depth -= 1,
            t if t == sep && depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(err("unexpected )"));
        }
    }
    if depth != 0 {
        return Err(err("unclosed ("));
    }
    parts.push(&toks[start..]);
    Ok(parts)
}

fn parse_cmd(toks: &[Tok]) -> Result<Cmd, Error> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let arg = match &toks[i] {
            Tok::Field(c) => Arg::Field(c.clone()),
            Tok::Var(n, c) => Arg::Var(n.clone(), c.clone()),
            Tok::Str(s) => Arg::Literal(Value::String(s.clone())),
            Tok::Num(n) => Arg::Literal(n.clone()),
            Tok::Ident(id) => match id.as_str() {
                "true" => Arg::Literal(Value::Bool(true)),
                "false" => Arg::Literal(Value::Bool(false)),
                "nil" => Arg::Literal(Value::Null),
                name if funcs::exists(name) => Arg::Func(name.to_string()),
                name => return Err(err(format!("function {name:?} not defined"))),
            },
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(err("unclosed (")),
                    }
                    j += 1;
                }
                let inner = parse_pipeline(&toks[i + 1..j], false)?;
                if !inner.decl.is_empty() || inner.cmds.is_empty() {
                    return Err(err("bad parenthesized pipeline"));
                }
                let chain = match toks.get(j + 1) {
                    Some(Tok::Chain(c)) => {
                        j += 1;
                        c.clone()
                    }
                    _ => Vec::new(),
                };
                i = j;
                Arg::Sub(inner, chain)
            }
            Tok::RParen => return Err(err("unexpected )")),
            Tok::Pipe | Tok::Declare | Tok::Comma | Tok::Chain(_) => {
                return Err(err("unexpected token in command"));
            }
        };
        args.push(arg);
        i += 1;
    }
    // `.Label "key"`: podman's Label method, the one method call supported.
    let method = matches!(&args[0], Arg::Field(c) if c.last().is_some_and(|n| n == "Label"));
    if args.len() > 1 && !matches!(args[0], Arg::Func(_)) && !(method && args.len() == 2) {
        return Err(err("can't give argument to non-function"));
    }
    Ok(Cmd { args })
}
