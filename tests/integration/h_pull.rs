//! What `box pull` and `box run` show of a pull (now `storage::pull`, reported through the
//! command's `Progress`): the plain-mode lines in order, the layers already stored, and
//! the one-line errors of the pipeline and of `--pull never`.
use crate::harness::images;

/// The index of the first stderr line starting with `prefix`, after `from`.
fn line_at(lines: &[&str], from: usize, prefix: &str, all: &str) -> usize {
    lines[from..]
        .iter()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + from)
        .unwrap_or_else(|| panic!("no line {prefix:?} after line {from}:\n{all}"))
}

#[test]
fn plain_pull_reports_every_step_in_order() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    let out = tb.cmd(["pull", &image]).run();
    out.assert_success();
    let id = out.out().trim();
    assert_eq!(id.len(), 64, "the id on stdout:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let all = &out.stderr;
    let start = line_at(&lines, 0, &format!("Trying to pull {image}..."), all);
    // Every layer: announced, downloaded, extracted (layers interleave; each in order).
    let blobs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("Copying blob "))
        .filter(|rest| rest.len() == 12)
        .collect();
    assert!(blobs.len() >= 2, "test/layers has several layers:\n{all}");
    for b in &blobs {
        let announced = line_at(&lines, start, &format!("Copying blob {b}"), all);
        let done = line_at(&lines, announced, &format!("Copying blob {b} done ("), all);
        let extracting = line_at(&lines, done, &format!("Extracting {b}"), all);
        line_at(&lines, extracting, &format!("Extracted {b} ("), all);
    }
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("Extracted "))
        .unwrap();
    line_at(&lines, last, "Writing manifest to image destination", all);

    // Again: every layer is already there, nothing is downloaded.
    let again = tb.cmd(["pull", &image]).run();
    again.assert_success();
    assert_eq!(again.out().trim(), id);
    for b in &blobs {
        again.stderr_contains(&format!("Copying blob {b} skipped: already exists"));
    }
    again
        .stderr_lacks(" done (")
        .stderr_lacks("Extracting")
        .stderr_contains("Writing manifest to image destination");
}

#[test]
fn a_failed_unpack_is_one_line_naming_the_pull() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::EVIL_DOTDOT);
    let out = tb.cmd(["pull", "-q", &image]).run();
    out.assert_code(125).assert_one_line_error();
    assert!(
        out.stderr
            .trim()
            .starts_with(&format!("box: pull {image}: layer entry ")),
        "{out}"
    );
    out.stderr_contains("../escape");
}

#[test]
fn run_with_pull_never_names_the_fix() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    let out = tb
        .cmd(["run", "--rm", "--pull", "never", &image, "true"])
        .run();
    out.assert_code(125).assert_one_line_error().stderr_contains(&format!(
        "image {image} is not in the store and the pull policy is never: run `box pull {image}` first"
    ));
}
