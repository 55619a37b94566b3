//! Go `text/template` for `--format`, over `serde_json::Value`: a documented subset.
//!
//! Why not a crate: `gtmpl` (the one Rust port) was evaluated. It has been unreleased since
//! 2021, prints arrays and nil in Rust's Debug syntax (`[String("a")]`, `nil`) rather than
//! Go's (`[a]`, `<nil>`), and ranges over maps in hash order, so `--format` output would
//! neither match docker/podman nor be stable. The subset below is what docker and podman
//! users actually write, implemented with Go's semantics, and tested against Go's outputs.
//!
//! Supported:
//! - text and actions `{{ … }}`, trim markers `{{- … -}}`, comments `{{/* … */}}`;
//! - `.`, field chains `.State.Status`, `$`, variables `$x := …`, `$x.Field`, `(pipeline).Field`;
//! - literals: "strings" (Go escapes), `raw strings`, integers, floats, `true`, `false`, `nil`;
//! - pipelines `a | b` (the left value becomes the last argument of the right command);
//! - `if`/`else if`/`else`/`end`, `range` (arrays, maps in sorted key order, integers
//!   counting from 0; `$i, $v :=`; `else`), `with`/`else`/`end`;
//! - functions: `json`, `index`, `len`, `join`, `split`, `lower`, `upper`, `title`,
//!   `truncate`, `printf` (%s %v %d %q %f %x with width/`-`/precision; a width or
//!   precision above Go's 1 000 000 is an error), `print`, `println`,
//!   `eq` (any number of right operands), `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`.
//!
//! Values print like Go's `fmt` prints decoded JSON: `[a b]` for arrays, `map[k:v]` for
//! objects (sorted; the few objects that are Go structs in docker's output, such as an
//! image's RootFS, as `{v1 v2}`), `<nil>` for null, `<no value>` for a missing map key.
//!
//! - podman's one method, `.Label "key"`: the value of a label of `.Labels` ("" if unset).
//!
//! Not supported (an error says so): `define`, `template`, `block`, `break`, `continue`,
//! other method calls.
mod exec;
mod funcs;
mod parse;

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("template: {0}")]
    Parse(String),
    #[error("template: executing: {0}")]
    Exec(String),
}

/// A parsed template, to render many values (one per `ps` row) with one parse.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, Error> {
        Ok(Template {
            nodes: parse::parse(src)?,
        })
    }

    pub fn render(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        exec::run(&self.nodes, data, &mut out)?;
        Ok(out)
    }
}

/// Parse `tmpl` and render it with `data` as `.`.
pub fn render(tmpl: &str, data: &Value) -> Result<String, Error> {
    Template::parse(tmpl)?.render(data)
}

/// What a `--format` argument asks for, the way docker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The default table.
    Table,
    /// A JSON array of all objects.
    Json,
    /// A Go template; `table` is true for `table {{…}}` (print a header row too).
    Template { source: String, table: bool },
}

impl Format {
    /// Interpret `--format`: absent/`table` → table, `json` → JSON, `table TEMPLATE`, or a
    /// template. Literal `\t` and `\n` (as typed in a shell) become tab and newline, as in
    /// docker.
    pub fn from_arg(arg: Option<&str>) -> Format {
        let Some(arg) = arg else {
            return Format::Table;
        };
        let trimmed = arg.trim();
        match trimmed {
            "" | "table" => return Format::Table,
            // `{{json .}}` is a template, as podman's: one JSON object per row.
            "json" => return Format::Json,
            _ => {}
        }
        let (table, rest) = match trimmed.strip_prefix("table ") {
            Some(rest) => (true, rest),
            None => (false, arg),
        };
        Format::Template {
            source: rest.replace("\\t", "\t").replace("\\n", "\n"),
            table,
        }
    }
}

/// The header row for a `table {{.A}}\t{{.B}}` template: each field chain's last name.
pub fn table_header(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let action = rest[start + 2..start + end].trim_matches(|c: char| c == '-' || c == ' ');
        let word = action
            .split_whitespace()
            .rev()
            .find(|w| w.starts_with('.'))
            .map(|w| w.trim_start_matches('.'))
            .unwrap_or(action);
        out.push_str(&header_name(word.rsplit('.').next().unwrap_or(word)));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn header_name(field: &str) -> String {
    match field {
        "ID" | "Id" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        // stats' columns, as podman heads them.
        "PIDs" => "PIDS".into(),
        "CPUPerc" => "CPU %".into(),
        "MemUsage" => "MEM USAGE / LIMIT".into(),
        "MemPerc" => "MEM %".into(),
        "NetIO" => "NET IO".into(),
        "BlockIO" => "BLOCK IO".into(),
        other => {
            // CamelCase → UPPER CASE WORDS, as docker prints them.
            let mut s = String::new();
            let chars: Vec<char> = other.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                if i > 0
                    && c.is_uppercase()
                    && (chars[i - 1].is_lowercase()
                        || chars.get(i + 1).is_some_and(|n| n.is_lowercase()))
                {
                    s.push(' ');
                }
                s.extend(c.to_uppercase());
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({
            "Id": "abc",
            "State": {"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0},
            "Config": {
                "Cmd": ["sh", "-c", "echo hi"],
                "Labels": {"k": "v", "a": "b"},
                "Env": [],
                "Entrypoint": null,
            },
            "Mounts": [{"Destination": "/data"}, {"Destination": "/cache"}],
            "Memory": 67108864,
            "Cpus": 0.5,
        })
    }

    fn r(t: &str) -> String {
        render(t, &data()).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn fields_and_text() {
        assert_eq!(r("{{.State.Status}}"), "running");
        assert_eq!(r("id={{.Id}} pid={{.State.Pid}}\n"), "id=abc pid=42\n");
        assert_eq!(r("{{.State.Running}}"), "true");
        assert_eq!(r("{{.Memory}} {{.Cpus}}"), "67108864 0.5");
        assert_eq!(r("{{.Nope}}"), "<no value>");
        assert_eq!(r("{{.Config.Entrypoint}}"), "<nil>");
        assert_eq!(r("{{.Config.Cmd}}"), "[sh -c echo hi]");
        assert_eq!(r("{{.Config.Labels}}"), "map[a:b k:v]");
        assert_eq!(
            r("{{.Config.Label \"k\"}}|{{ .Config.Label \"nope\" }}|"),
            "v||"
        );
        // A struct of docker's output prints as Go prints a struct.
        assert_eq!(
            render(
                "{{.RootFS}}",
                &serde_json::json!({"RootFS": {"Type": "layers", "Layers": ["sha256:a", "sha256:b"]}})
            )
            .unwrap(),
            "{layers [sha256:a sha256:b]}"
        );
        assert!(r("{{.}}").len() > 10);
        assert!(r("{{.Id.X}}").starts_with("ERR"));
    }

    #[test]
    fn json_function() {
        assert_eq!(
            r("{{json .Config.Labels}}"),
            r#"{"a":"b","k":"v"}"#.to_string()
        );
        assert_eq!(r("{{json .State.Status}}"), "\"running\"");
        assert_eq!(r("{{.Config.Cmd | json}}"), r#"["sh","-c","echo hi"]"#);
    }

    #[test]
    fn range_if_with_index() {
        assert_eq!(
            r("{{range .Mounts}}{{.Destination}} {{end}}"),
            "/data /cache "
        );
        assert_eq!(
            r("{{range $i, $m := .Mounts}}{{$i}}={{$m.Destination}};{{end}}"),
            "0=/data;1=/cache;"
        );
        assert_eq!(
            r("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}"),
            "a=b,k=v,"
        );
        assert_eq!(r("{{range .Config.Env}}x{{else}}empty{{end}}"), "empty");
        assert_eq!(r(r#"{{index .Config.Labels "k"}}"#), "v");
        assert_eq!(r(r#"{{index .Config.Cmd 2}}"#), "echo hi");
        assert_eq!(r(r#"{{index .Config.Labels "zz"}}"#), "");
        assert_eq!(
            r(r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#),
            "up"
        );
        assert_eq!(
            r(r#"{{if eq .State.Status "exited" "running"}}one of{{end}}"#),
            "one of"
        );
        assert_eq!(
            r(r#"{{if .State.ExitCode}}bad{{else if .State.Running}}run{{else}}x{{end}}"#),
            "run"
        );
        assert_eq!(r("{{with .State}}{{.Pid}}{{end}}"), "42");
        assert_eq!(r("{{with .Nope}}y{{else}}n{{end}}"), "n");
        assert_eq!(r("{{$s := .State}}{{$s.Status}}"), "running");
        assert_eq!(r("{{range .Mounts}}{{$.Id}}{{end}}"), "abcabc");
    }

    #[test]
    fn functions() {
        assert_eq!(r("{{len .Mounts}} {{len .Id}}"), "2 3");
        assert_eq!(r(r#"{{join .Config.Cmd ","}}"#), "sh,-c,echo hi");
        assert_eq!(r("{{upper .State.Status}}"), "RUNNING");
        assert_eq!(r(r#"{{printf "%s:%d" .Id .State.Pid}}"#), "abc:42");
        assert_eq!(
            r(r#"{{printf "%-5s|%5d|%q" .Id .State.Pid .Id}}"#),
            "abc  |   42|\"abc\""
        );
        assert_eq!(r(r#"{{printf "%.2f" .Cpus}}"#), "0.50");
        assert_eq!(r(r#"{{.Id | printf "<%s>"}}"#), "<abc>");
        assert_eq!(r("{{not .State.Running}}"), "false");
        assert_eq!(r("{{and .State.Running .Id}}"), "abc");
        assert_eq!(r("{{or .Config.Entrypoint .Id}}"), "abc");
        assert_eq!(r("{{lt .State.Pid 100}} {{gt 1.5 .Cpus}}"), "true true");
        assert_eq!(r(r#"{{truncate .Id 2}}"#), "ab");
        assert_eq!(r(r#"{{index (split "a/b" "/") 1}}"#), "b");
        assert_eq!(r(r#"{{(index .Mounts 1).Destination}}"#), "/cache");
    }

    #[test]
    fn trim_comments_literals() {
        assert_eq!(r("a  {{- .Id -}}  b"), "aabcb");
        assert_eq!(r("{{/* nothing */}}x"), "x");
        assert_eq!(r(r#"{{"a\tb"}}{{`\t`}}"#), "a\tb\\t");
        assert_eq!(r("{{3}} {{-1}} {{true}} {{nil}}"), "3 -1 true <nil>");
    }

    #[test]
    fn errors_are_one_line() {
        for bad in [
            "{{.State",
            "{{if .Id}}x",
            "{{end}}",
            "{{nosuch .Id}}",
            "{{template \"x\"}}",
            "{{range .Mounts}}{{else}}{{else}}{{end}}",
        ] {
            let e = render(bad, &data()).unwrap_err().to_string();
            assert!(e.starts_with("template: "), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn printf_widths_and_precisions_stop_at_gos_limit() {
        for bad in [
            r#"{{printf "%.999999999f" 1.0}}"#,
            r#"{{printf "%.1000001s" .Id}}"#,
            r#"{{printf "%1000001d" 1}}"#,
            r#"{{printf "%-99999999999999999999999999s" .Id}}"#,
            r#"{{printf "%999999999s"}}"#,
        ] {
            let e = render(bad, &data()).unwrap_err().to_string();
            assert!(
                e.starts_with("template: executing: printf: the "),
                "{bad}: {e}"
            );
            assert!(e.contains("is too large (at most 1000000)"), "{bad}: {e}");
        }
        // Up to the limit: Go's output, exact past Rust's 65535-digit formatter limit.
        assert_eq!(r(r#"{{printf "%1000000d" 7}}"#).len(), 1_000_000);
        let f = r(r#"{{printf "%.1000000f" 1.5}}"#);
        assert_eq!(f.len(), 1_000_002);
        assert!(f.starts_with("1.5000") && f.ends_with("000"));
        for x in [f64::from_bits(1), 0.1, -1.5e300, 1.0 / 3.0] {
            assert_eq!(funcs::fixed(x, 1500), format!("{x:.1500}"));
        }
        assert_eq!(r(r#"{{printf "%.3s|%08.3f" .Id 3.14159}}"#), "abc|0003.142");
    }

    #[test]
    fn docker_format_args() {
        assert_eq!(Format::from_arg(None), Format::Table);
        assert_eq!(Format::from_arg(Some("json")), Format::Json);
        assert_eq!(
            Format::from_arg(Some("table {{.ID}}\\t{{.Names}}")),
            Format::Template {
                source: "{{.ID}}\t{{.Names}}".into(),
                table: true
            }
        );
        assert_eq!(
            table_header("{{.ID}}\t{{.Names}}\t{{.RunningFor}}\t{{.CreatedAt}}"),
            "CONTAINER ID\tNAMES\tCREATED\tCREATED AT"
        );
    }
}
