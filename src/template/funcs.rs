//! The template functions: Go's builtins plus docker's `json`, `join`, `split`, `lower`,
//! `upper`, `title` and `truncate`.
use serde_json::Value;

use super::Error;
use super::exec::{Val, go_print, truthy, type_name};

const NAMES: &[&str] = &[
    "json", "index", "len", "join", "split", "lower", "upper", "title", "truncate", "printf",
    "print", "println", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
];

pub fn exists(name: &str) -> bool {
    NAMES.contains(&name)
}

fn fail(msg: impl Into<String>) -> Error {
    Error::Exec(msg.into())
}

fn want(name: &str, args: &[Val], n: usize) -> Result<(), Error> {
    if args.len() != n {
        return Err(fail(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn string_arg(name: &str, v: &Val) -> Result<String, Error> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(fail(format!(
            "{name}: expected a string, got {}",
            go_print(other)
        ))),
    }
}

fn int_arg(name: &str, v: &Val) -> Result<i64, Error> {
    match v {
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(0)),
        other => Err(fail(format!(
            "{name}: expected an integer, got {}",
            go_print(other)
        ))),
    }
}

pub fn call(name: &str, args: &[Val]) -> Result<Val, Error> {
    let s = |x: String| Ok(Some(Value::String(x)));
    let b = |x: bool| Ok(Some(Value::Bool(x)));
    match name {
        "json" => {
            want(name, args, 1)?;
            let v = args[0].clone().unwrap_or(Value::Null);
            s(serde_json::to_string(&v).map_err(|e| fail(e.to_string()))?)
        }
        "index" => {
            let (first, keys) = args
                .split_first()
                .ok_or_else(|| fail("wrong number of args for index"))?;
            let mut v = first.clone();
            for k in keys {
                v = match (v, k) {
                    (Some(Value::Array(a)), Some(Value::Number(n))) => {
                        let i = n.as_u64().ok_or_else(|| fail("index out of range"))? as usize;
                        Some(
                            a.get(i)
                                .cloned()
                                .ok_or_else(|| fail(format!("index out of range: {i}")))?,
                        )
                    }
                    // Missing keys give the empty string, as docker's map[string]string does.
                    (Some(Value::Object(m)), Some(Value::String(key))) => Some(
                        m.get(key)
                            .cloned()
                            .unwrap_or_else(|| Value::String(String::new())),
                    ),
                    (None | Some(Value::Null), _) => {
                        return Err(fail("index of untyped nil"));
                    }
                    (Some(other), k) => {
                        return Err(fail(format!(
                            "can't index item of type {} with {}",
                            type_name(&other),
                            go_print(k)
                        )));
                    }
                };
            }
            Ok(v)
        }
        "len" => {
            want(name, args, 1)?;
            let n = match &args[0] {
                Some(Value::String(x)) => x.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) => m.len(),
                other => return Err(fail(format!("len of {}", go_print(other)))),
            };
            Ok(Some(Value::from(n)))
        }
        "join" => {
            want(name, args, 2)?;
            let sep = string_arg(name, &args[1])?;
            let parts: Vec<String> = match &args[0] {
                Some(Value::Array(a)) => a.iter().map(|x| go_print(&Some(x.clone()))).collect(),
                None | Some(Value::Null) => Vec::new(),
                other => return Err(fail(format!("join: not a list: {}", go_print(other)))),
            };
            s(parts.join(&sep))
        }
        "split" => {
            want(name, args, 2)?;
            let text = string_arg(name, &args[0])?;
            let sep = string_arg(name, &args[1])?;
            Ok(Some(Value::Array(
                text.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            )))
        }
        "lower" | "upper" | "title" => {
            want(name, args, 1)?;
            let text = go_print(&args[0]);
            s(match name {
                "lower" => text.to_lowercase(),
                "upper" => text.to_uppercase(),
                _ => title(&text),
            })
        }
        "truncate" => {
            want(name, args, 2)?;
            let text = go_print(&args[0]);
            let n = int_arg(name, &args[1])?.max(0) as usize;
            s(text.chars().take(n).collect())
        }
        "printf" => {
            let (f, rest) = args
                .split_first()
                .ok_or_else(|| fail("wrong number of args for printf"))?;
            s(printf(&string_arg(name, f)?, rest)?)
        }
        "print" | "println" => {
            // Go's Print puts spaces between operands when neither is a string.
            let mut out = String::new();
            for (i, a) in args.iter().enumerate() {
                let is_str = |v: &Val| matches!(v, Some(Value::String(_)));
                if i > 0 && (name == "println" || (!is_str(a) && !is_str(&args[i - 1]))) {
                    out.push(' ');
                }
                out.push_str(&go_print(a));
            }
            if name == "println" {
                out.push('\n');
            }
            s(out)
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .filter(|(_, r)| !r.is_empty())
                .ok_or_else(|| fail("missing argument for comparison"))?;
            b(rest.iter().any(|r| equal(first, r)))
        }
        "ne" => {
            want(name, args, 2)?;
            b(!equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, args, 2)?;
            let ord = compare(&args[0], &args[1])?;
            b(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        "and" => {
            if args.is_empty() {
                return Err(fail("wrong number of args for and"));
            }
            Ok(args
                .iter()
                .find(|a| !truthy(a))
                .unwrap_or(&args[args.len() - 1])
                .clone())
        }
        "or" => {
            if args.is_empty() {
                return Err(fail("wrong number of args for or"));
            }
            Ok(args
                .iter()
                .find(|a| truthy(a))
                .unwrap_or(&args[args.len() - 1])
                .clone())
        }
        "not" => {
            want(name, args, 1)?;
            b(!truthy(&args[0]))
        }
        other => Err(fail(format!("function {other:?} not defined"))),
    }
}

fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn number(v: &Val) -> Option<f64> {
    match v {
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    }
}

fn equal(a: &Val, b: &Val) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.clone().unwrap_or(Value::Null) == b.clone().unwrap_or(Value::Null),
    }
}

fn compare(a: &Val, b: &Val) -> Result<std::cmp::Ordering, Error> {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| fail("incomparable numbers"));
    }
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x.cmp(y)),
        _ => Err(fail(format!(
            "incompatible types for comparison: {} and {}",
            go_print(a),
            go_print(b)
        ))),
    }
}

/// Go's limit on a printf width or precision (`fmt`'s `tooLarge`): a larger one is an
/// error here (Go prints `%!(BADWIDTH)`), not a gigabyte of padding.
pub const MAX_WIDTH: u64 = 1_000_000;

/// The digits of a width or precision, refused above [`MAX_WIDTH`].
fn width_of(digits: &str, what: &str) -> Result<usize, Error> {
    let mut n: u64 = 0;
    for d in digits.bytes() {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    if n > MAX_WIDTH {
        return Err(fail(format!(
            "printf: the {what} {digits} is too large (at most {MAX_WIDTH})"
        )));
    }
    Ok(n as usize)
}

/// `%.Nf`: Rust's formatter takes at most 65535 digits, and an f64 has at most 1074
/// fractional digits: the rest are zeros, appended.
pub(super) fn fixed(x: f64, precision: usize) -> String {
    const EXACT: usize = 1074;
    let mut t = format!("{:.*}", precision.min(EXACT), x);
    if precision > EXACT && x.is_finite() {
        t.push_str(&"0".repeat(precision - EXACT));
    }
    t
}

/// Go's `fmt.Sprintf` for the verbs people use in formats: %s %v %d %q %f %x %%, with
/// `-`, `0`, width and precision (at most [`MAX_WIDTH`]). Unknown verbs print as Go
/// does: `%!z(…)`.
pub fn printf(fmt: &str, args: &[Val]) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let w = width_of(&width, "width")?;
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(width_of(&p, "precision")?);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let body = match (verb, arg) {
            ('s' | 'v', a) => {
                let t = go_print(a);
                match precision {
                    Some(p) if verb == 's' => t.chars().take(p).collect(),
                    _ => t,
                }
            }
            ('q', a) => serde_json::to_string(&go_print(a)).unwrap_or_default(),
            ('d', Some(Value::Number(n))) if n.as_i64().is_some() => n.to_string(),
            ('f' | 'F', Some(Value::Number(n))) => {
                fixed(n.as_f64().unwrap_or(0.0), precision.unwrap_or(6))
            }
            ('x', Some(Value::Number(n))) if n.as_i64().is_some() => {
                format!("{:x}", n.as_i64().unwrap_or(0))
            }
            ('x', Some(Value::String(t))) => hex::encode(t.as_bytes()),
            (verb, a) => format!(
                "%!{verb}({}={})",
                a.as_ref().map(type_name).unwrap_or("<nil>"),
                go_print(a)
            ),
        };
        let len = body.chars().count();
        if len >= w {
            out.push_str(&body);
        } else if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - len));
        } else {
            let pad = if zero && matches!(verb, 'd' | 'f' | 'x') {
                "0"
            } else {
                " "
            };
            out.push_str(&pad.repeat(w - len));
            out.push_str(&body);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(go_print).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}
