//! Stages of a parsed Containerfile and which of them a build needs.
//!
//! - ARGs before the first FROM are global: usable in FROM lines (with the automatic
//!   platform ARGs), and inherited by a stage that declares `ARG NAME` without a default.
//! - Stage names are case-insensitive; `FROM <stage>` and `COPY --from=<stage|index>` must
//!   name an *earlier* stage (a stage naming itself or a later one is refused, as docker's
//!   classic builder and buildah do); any other `--from` is an image.
//! - `--target` picks a stage (default: the last); only the stages it needs through FROM and
//!   COPY --from, transitively, are built.
//! - Predefined ARGs: the proxy ones (usable without an ARG line, kept out of history) and
//!   the platform ones with the host's values.
use std::collections::BTreeMap;
use std::fmt;

use super::Error;
use super::expand::expand_instruction;
use super::parse::{Containerfile, Instruction, Kind};

/// Proxy build args: passed to RUN without an ARG line, never recorded in history.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// An OCI platform (`linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl Platform {
    /// The machine box runs on, in OCI terms.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", ""),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", ""),
            "arm" => ("arm", "v7"),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", ""),
            "loongarch64" => ("loong64", ""),
            other => (other, ""),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant: variant.to_string(),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The automatic platform ARGs (`BUILDPLATFORM`, `TARGETARCH`…); box builds for the host.
pub fn platform_args(host: &Platform) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for prefix in ["BUILD", "TARGET"] {
        out.push((format!("{prefix}PLATFORM"), host.to_string()));
        out.push((format!("{prefix}OS"), host.os.clone()));
        out.push((format!("{prefix}ARCH"), host.arch.clone()));
        out.push((format!("{prefix}VARIANT"), host.variant.clone()));
    }
    out
}

/// Is `name` one of the ARGs that exist without an ARG line?
pub fn is_predefined_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
        || platform_args(&Platform::host())
            .iter()
            .any(|(k, _)| k == name)
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// A `COPY --from=` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    Image(String),
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lowercase.
    pub name: Option<String>,
    /// The FROM instruction as written.
    pub from: Instruction,
    /// The base after global-ARG expansion.
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
    /// `COPY --from` sources, one per COPY that has one, with its line.
    pub copies_from: Vec<(usize, CopyFrom)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Global ARG values (build args over defaults), the predefined platform ARGs first;
    /// a stage's `ARG NAME` without default takes its value from here.
    pub global_args: Vec<(String, String)>,
    pub stages: Vec<Stage>,
    /// The stage `--target` chose (the last one by default).
    pub target: usize,
    /// Stages to build, in file order, ending with `target`.
    pub needed: Vec<usize>,
}

/// Plan the build of `file` for `--target` (or the last stage), with `build_args`
/// (`--build-arg`), on `host`.
pub fn plan(
    file: &Containerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    host: &Platform,
) -> Result<Plan, Error> {
    let name = file.file.as_str();
    let mut env: Vec<(String, String)> = platform_args(host);
    let mut stages: Vec<Stage> = Vec::new();
    for inst in &file.instructions {
        match (&inst.kind, stages.last_mut()) {
            (Kind::From { .. }, _) => {
                let index = stages.len();
                stages.push(from_stage(file, inst, index, &stages, &env)?);
            }
            (Kind::Arg(_), None) => declare_args(file, inst, build_args, &mut env, None)?,
            (_, None) => {
                return Err(Error::new_at(
                    name,
                    inst.line,
                    "no build stage in current context: start with FROM (only ARG may come before it)",
                ));
            }
            (_, Some(stage)) => stage.instructions.push(inst.clone()),
        }
    }
    if stages.is_empty() {
        return Err(Error::new_at(
            name,
            file.instructions.last().map_or(1, |i| i.line),
            "no FROM instruction: a Containerfile needs at least one stage",
        ));
    }
    for i in 0..stages.len() {
        let copies = copy_sources(file, &stages, i, build_args, &env)?;
        stages[i].copies_from = copies;
    }
    let target = match target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| Error::Target {
                file: name.to_string(),
                target: t.to_string(),
                names: stages
                    .iter()
                    .filter_map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
    };
    let mut need = vec![false; stages.len()];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if std::mem::replace(&mut need[i], true) {
            continue;
        }
        if let Base::Stage(b) = stages[i].base {
            todo.push(b);
        }
        for (_, c) in &stages[i].copies_from {
            if let CopyFrom::Stage(s) = c {
                todo.push(*s);
            }
        }
    }
    Ok(Plan {
        global_args: env,
        stages,
        target,
        needed: (0..need.len()).filter(|&i| need[i]).collect(),
    })
}

/// Find a stage by name (case-insensitive) or, when `by_index`, by number; refuse the
/// current stage or a later one.
fn stage_ref(
    file: &str,
    line: usize,
    what: &str,
    stages: &[Stage],
    all_names: &[(usize, Option<String>)],
    current: usize,
    by_index: bool,
) -> Result<Option<usize>, Error> {
    let lower = what.to_ascii_lowercase();
    let found = all_names
        .iter()
        .find(|(_, n)| n.as_deref() == Some(lower.as_str()))
        .map(|(i, _)| *i)
        .or_else(|| if by_index { what.parse().ok() } else { None });
    match found {
        None => Ok(None),
        Some(i) if i < current && i < stages.len() => Ok(Some(i)),
        Some(i) if i == current => Err(Error::new_at(
            file,
            line,
            format!("stage {what:?} refers to itself: a stage can only use earlier stages"),
        )),
        Some(_) if by_index && what.parse::<usize>().is_ok() => Err(Error::new_at(
            file,
            line,
            format!(
                "stage index {what} is not an earlier stage: use 0 to {}",
                current.saturating_sub(1)
            ),
        )),
        Some(_) => Err(Error::new_at(
            file,
            line,
            format!(
                "stage {what:?} is defined later in the file: move it above the stage that uses it"
            ),
        )),
    }
}

fn names(file: &Containerfile) -> Vec<(usize, Option<String>)> {
    file.instructions
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::From { name, .. } => Some(name.clone()),
            _ => None,
        })
        .enumerate()
        .collect()
}

fn from_stage(
    file: &Containerfile,
    inst: &Instruction,
    index: usize,
    stages: &[Stage],
    env: &[(String, String)],
) -> Result<Stage, Error> {
    let name = file.file.as_str();
    let expanded = expand_instruction(inst, file.escape, &env.to_vec(), name)?;
    let Kind::From {
        image,
        name: stage_name,
        platform,
    } = expanded.kind
    else {
        unreachable!("from_stage is only called for FROM")
    };
    if let Some(n) = &stage_name
        && let Some(prev) = stages.iter().find(|s| s.name.as_ref() == Some(n))
    {
        return Err(Error::new_at(
            name,
            inst.line,
            format!(
                "duplicate stage name {n:?} (also at line {}): rename one of them",
                prev.from.line
            ),
        ));
    }
    if image.is_empty() {
        return Err(Error::new_at(
            name,
            inst.line,
            "base name should not be blank: check the ARGs used in FROM",
        ));
    }
    let base = if image.eq_ignore_ascii_case("scratch") {
        Base::Scratch
    } else {
        match stage_ref(name, inst.line, &image, stages, &names(file), index, false)? {
            Some(i) => Base::Stage(i),
            None => Base::Image(image),
        }
    };
    Ok(Stage {
        index,
        name: stage_name,
        from: inst.clone(),
        base,
        platform,
        instructions: Vec::new(),
        copies_from: Vec::new(),
    })
}

/// ARG lines: a build arg wins over the default; `ARG X` alone takes the global value.
fn declare_args(
    file: &Containerfile,
    inst: &Instruction,
    build_args: &BTreeMap<String, String>,
    env: &mut Vec<(String, String)>,
    globals: Option<&[(String, String)]>,
) -> Result<(), Error> {
    let Kind::Arg(defs) = &inst.kind else {
        return Ok(());
    };
    for d in defs {
        let one = Instruction {
            kind: Kind::Arg(vec![d.clone()]),
            ..inst.clone()
        };
        let Kind::Arg(e) = expand_instruction(&one, file.escape, env, &file.file)?.kind else {
            continue;
        };
        let d = &e[0];
        let value = build_args
            .get(&d.name)
            .cloned()
            .or_else(|| d.default.clone())
            .or_else(|| {
                globals.and_then(|g| g.iter().find(|(k, _)| *k == d.name).map(|(_, v)| v.clone()))
            });
        env.retain(|(k, _)| *k != d.name);
        if let Some(v) = value {
            env.insert(0, (d.name.clone(), v));
        }
    }
    Ok(())
}

/// Resolve each `COPY --from` of stage `i`, expanding it with the stage's ARG/ENV so far.
fn copy_sources(
    file: &Containerfile,
    stages: &[Stage],
    i: usize,
    build_args: &BTreeMap<String, String>,
    globals: &[(String, String)],
) -> Result<Vec<(usize, CopyFrom)>, Error> {
    let all = names(file);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for inst in &stages[i].instructions {
        match &inst.kind {
            Kind::Arg(_) => declare_args(file, inst, build_args, &mut env, Some(globals))?,
            Kind::Env(_) => {
                if let Kind::Env(kvs) =
                    expand_instruction(inst, file.escape, &env, &file.file)?.kind
                {
                    for kv in kvs {
                        env.retain(|(k, _)| *k != kv.key);
                        env.insert(0, (kv.key, kv.value));
                    }
                }
            }
            Kind::Copy(c) if c.from.is_some() => {
                let Kind::Copy(c) = expand_instruction(inst, file.escape, &env, &file.file)?.kind
                else {
                    continue;
                };
                let from = c.from.unwrap_or_default();
                let dep = match stage_ref(&file.file, inst.line, &from, stages, &all, i, true)? {
                    Some(s) => CopyFrom::Stage(s),
                    None => CopyFrom::Image(from),
                };
                out.push((inst.line, dep));
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
