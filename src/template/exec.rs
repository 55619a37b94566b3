//! Executing a parsed template over a JSON value, with Go's semantics.
use serde_json::Value;

use super::Error;
use super::funcs;
use super::parse::{Arg, Cmd, Node, Pipeline};

/// A value during execution: `None` is Go's "no value" (a missing map key).
pub type Val = Option<Value>;

struct State<'a> {
    root: &'a Value,
    vars: Vec<(String, Value)>,
}

pub fn run(nodes: &[Node], data: &Value, out: &mut String) -> Result<(), Error> {
    let mut st = State {
        root: data,
        vars: Vec::new(),
    };
    walk(&mut st, nodes, data, out)
}

fn walk(st: &mut State, nodes: &[Node], dot: &Value, out: &mut String) -> Result<(), Error> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = pipeline(st, p, dot)?;
                if p.decl.is_empty() {
                    out.push_str(&go_print(&v));
                }
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let mark = st.vars.len();
                let v = pipeline(st, cond, dot)?;
                let branch = if truthy(&v) { then } else { otherwise };
                walk(st, branch, dot, out)?;
                st.vars.truncate(mark);
            }
            Node::With {
                pipe,
                body,
                otherwise,
            } => {
                let mark = st.vars.len();
                let v = pipeline(st, pipe, dot)?;
                if truthy(&v) {
                    let inner = v.unwrap_or(Value::Null);
                    walk(st, body, &inner, out)?;
                } else {
                    walk(st, otherwise, dot, out)?;
                }
                st.vars.truncate(mark);
            }
            Node::Range {
                pipe,
                body,
                otherwise,
            } => {
                let mark = st.vars.len();
                let items = iterate(&pipeline_value(st, pipe, dot)?)?;
                if items.is_empty() {
                    walk(st, otherwise, dot, out)?;
                }
                for (key, item) in items {
                    let inner = st.vars.len();
                    match pipe.decl.as_slice() {
                        [v] => st.vars.push((v.clone(), item.clone())),
                        [k, v] => {
                            st.vars.push((k.clone(), key));
                            st.vars.push((v.clone(), item.clone()));
                        }
                        _ => {}
                    }
                    walk(st, body, &item, out)?;
                    st.vars.truncate(inner);
                }
                st.vars.truncate(mark);
            }
        }
    }
    Ok(())
}

/// The value of a range's pipeline without binding its declared variables (range binds
/// them per element).
fn pipeline_value(st: &mut State, p: &Pipeline, dot: &Value) -> Result<Val, Error> {
    let mut prev: Option<Val> = None;
    for cmd in &p.cmds {
        prev = Some(command(st, cmd, dot, prev)?);
    }
    Ok(prev.flatten())
}

fn pipeline(st: &mut State, p: &Pipeline, dot: &Value) -> Result<Val, Error> {
    let v = pipeline_value(st, p, dot)?;
    if let [name] = p.decl.as_slice() {
        st.vars
            .push((name.clone(), v.clone().unwrap_or(Value::Null)));
    }
    Ok(v)
}

fn iterate(v: &Val) -> Result<Vec<(Value, Value)>, Error> {
    Ok(match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (Value::from(i), x.clone()))
            .collect(),
        Some(Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| (Value::String(k.clone()), m[k].clone()))
                .collect()
        }
        Some(Value::Number(n)) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
            .map(|i| (Value::from(i), Value::from(i)))
            .collect(),
        Some(other) => {
            return Err(Error::Exec(format!(
                "range can't iterate over {}",
                go_print(&Some(other.clone()))
            )));
        }
    })
}

fn command(st: &mut State, cmd: &Cmd, dot: &Value, piped: Option<Val>) -> Result<Val, Error> {
    if let Some(Arg::Func(name)) = cmd.args.first() {
        let mut args = Vec::with_capacity(cmd.args.len());
        for a in &cmd.args[1..] {
            args.push(arg(st, a, dot)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        return funcs::call(name, &args);
    }
    if let [Arg::Field(chain), key] = cmd.args.as_slice()
        && chain.last().is_some_and(|n| n == "Label")
        && piped.is_none()
    {
        // podman's `.Label "key"`: the value of label key ("" when it is not set).
        let key = match arg(st, key, dot)? {
            Some(Value::String(k)) => k,
            other => go_print(&other),
        };
        let mut labels = chain[..chain.len() - 1].to_vec();
        labels.push("Labels".into());
        let v = match fields(Some(dot.clone()), &labels)? {
            Some(Value::Object(m)) => m.get(&key).cloned(),
            _ => None,
        };
        return Ok(Some(v.unwrap_or_else(|| Value::String(String::new()))));
    }
    if piped.is_some() {
        return Err(Error::Exec("can't give argument to non-function".into()));
    }
    match cmd.args.first() {
        Some(a) => arg(st, a, dot),
        None => Err(Error::Exec("empty command".into())),
    }
}

fn arg(st: &mut State, a: &Arg, dot: &Value) -> Result<Val, Error> {
    match a {
        Arg::Field(chain) => fields(Some(dot.clone()), chain),
        Arg::Var(name, chain) => {
            let base = if name.is_empty() {
                st.root.clone()
            } else {
                st.vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| Error::Exec(format!("undefined variable ${name}")))?
            };
            fields(Some(base), chain)
        }
        Arg::Literal(v) => Ok(Some(v.clone())),
        Arg::Func(name) => funcs::call(name, &[]),
        Arg::Sub(p, chain) => {
            let v = pipeline_value(st, p, dot)?;
            fields(v, chain)
        }
    }
}

fn fields(mut v: Val, chain: &[String]) -> Result<Val, Error> {
    for name in chain {
        v = match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(mut m)) => m.remove(name),
            Some(other) => {
                return Err(Error::Exec(format!(
                    "can't evaluate field {name} in type {}",
                    type_name(&other)
                )));
            }
        };
    }
    Ok(v)
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's truth: false, 0, nil, "" and empty collections are false.
pub fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// Objects that are Go structs in docker's and podman's output (JSON cannot say so),
/// by their fields in declaration order: Go prints a struct as `{v1 v2}`, not as a map.
const STRUCTS: &[&[&str]] = &[
    // An image's RootFS: `{layers [sha256:...]}`.
    &["Type", "Layers"],
];

fn struct_fields(m: &serde_json::Map<String, Value>) -> Option<&'static [&'static str]> {
    STRUCTS
        .iter()
        .find(|f| f.len() == m.len() && f.iter().all(|k| m.contains_key(*k)))
        .copied()
}

/// How Go's `fmt.Print` shows a decoded JSON value.
pub fn go_print(v: &Val) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => go_value(v),
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) if struct_fields(m).is_some() => {
            let fields = struct_fields(m).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|k| go_value(&m[*k])).collect();
            format!("{{{}}}", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_value(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}
