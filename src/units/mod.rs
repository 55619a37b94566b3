//! How box shows quantities: byte counts (`size`) and times (`time`: RFC 3339 for
//! records, "3 minutes ago" for people).
//!
//! A leaf (it uses no other box module), so that records (`container`, `volume`), library
//! code (`monitor`, `storage`) and every command print sizes and times one way, docker's;
//! before it, four modules each had their own copy and rounded differently.
pub mod size;
pub mod time;

pub use size::{binary_size, human_size};
pub use time::{
    ago, format_rfc3339, go_duration, go_time, human_duration, now_rfc3339, parse_go_duration,
    parse_rfc3339, rfc3339_seconds, unix_secs,
};
