//! The one table printer behind every `TABLE` output (`ps`, `images`, `top`, `stats`,
//! `system df`, `volume ls`) and `--format 'table ...'`: docker's tabwriter settings,
//! columns three spaces apart, the last one unpadded, no trailing blanks.
use std::io::Write;

/// `rows` (the header first) as aligned lines, each ending in `\n`.
pub fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Lines whose cells are separated by tabs (what a `table` template renders) as columns.
pub fn align_tabs(lines: &[String]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    columns(&rows)
}

/// A header (`&str`s) as the first row of a table.
pub fn header(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

/// Print `rows` as [`columns`]; a closed pipe (`box ps | head`) is not an error.
pub fn print(rows: &[Vec<String>]) {
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_all(columns(rows).as_bytes())
        .and_then(|_| out.flush());
}

/// `s` cut to its first `n` characters and `...`, as podman cuts long cells (`ps`'s
/// COMMAND at 17, `history`'s CREATED BY at 45).
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}...", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = columns(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "x".into(), "".into()],
        ]);
        assert_eq!(t, "A      BB   C\nlong   x\n");
    }

    #[test]
    fn tabs_align_and_wide_characters_count_once() {
        let t = align_tabs(&["NAME\tSIZE".into(), "é\t1kB".into()]);
        assert_eq!(t, "NAME   SIZE\né      1kB\n");
    }
}
