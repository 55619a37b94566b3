//! `box build` front end: Containerfile parsing, variable expansion, ignore files and the
//! stage plan. Pure functions over text and paths; the executor that runs the plan lives
//! elsewhere.
//!
//! - `parse`: the Containerfile → typed instructions (line numbers, original text, heredocs);
//!   `instructions` splits and checks each instruction's arguments and flags.
//! - `expand`: BuildKit's shell lexer (`$var`, `${var:-x}`, quotes, word splitting) and which
//!   instruction fields it applies to.
//! - `ignore`: `.containerignore` / `.dockerignore` matching (moby/patternmatcher rules).
//! - `plan`: stages, global ARGs, `--target` and the stages it needs, predefined ARGs.
pub mod expand;
pub mod ignore;
mod instructions;
pub mod parse;
pub mod plan;

/// Errors of the build front end. Each is one line; those about the Containerfile or an
/// ignore file start with `file:line`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Something wrong at a line of a Containerfile or ignore file.
    #[error("{file}:{line}: {msg}")]
    At {
        file: String,
        line: usize,
        msg: String,
    },
    /// The lexer's own complaint; callers that know the line turn it into `At` with `Error::at`.
    #[error("{0}")]
    Lex(String),
    /// A file of the build context could not be read.
    #[error("reading {path}: {msg}")]
    Read { path: String, msg: String },
    /// `--target` names no stage.
    #[error(
        "target stage {target:?} could not be found in {file}: use one of the stage names ({names})"
    )]
    Target {
        file: String,
        target: String,
        names: String,
    },
}

impl Error {
    /// Place a lexer error (or re-place any error) at `file:line`.
    pub fn at(self, file: &str, line: usize) -> Error {
        match self {
            Error::Lex(msg) => Error::At {
                file: file.to_string(),
                line,
                msg,
            },
            other => other,
        }
    }

    pub(crate) fn new_at(file: &str, line: usize, msg: impl Into<String>) -> Error {
        Error::At {
            file: file.to_string(),
            line,
            msg: msg.into(),
        }
    }
}
