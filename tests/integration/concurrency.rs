//! Concurrency (issue 9): many box processes on one store at once, repeated.
//!
//! - 8 processes pull the same image at once, 3 rounds in fresh stores: all succeed, they
//!   agree on the id, and each layer exists once.
//! - 8 workers run (`--rm` and `-d`), list and remove containers in one store at once: no
//!   error, no hang (every command has a timeout), names stay unique, nothing is left.
use std::collections::BTreeSet;
use std::time::Duration;

use crate::crash::{mounts_under, wait_processes_gone};
use crate::harness::{self, Outcome, TestBox, images};
use crate::hostile::{assert_check_clean, entries, store};

const PARALLEL: usize = 8;
const ROUNDS: usize = 3;
/// Generous: 8 runs at once on a loaded 2-core CI machine.
const TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn eight_parallel_pulls_three_rounds_one_copy_of_each_layer() {
    let env = require_env!();
    let mut pulled = vec![images::LAYERS];
    if env.has_alpine() {
        pulled.push(images::ALPINE);
    }
    for round in 0..ROUNDS {
        let image = env.image(pulled[round % pulled.len()]);
        let tb = env.test_box();
        let running: Vec<_> = (0..PARALLEL)
            .map(|_| tb.cmd(["pull", "-q", &image]).timeout(TIMEOUT).spawn())
            .collect();
        let outs: Vec<Outcome> = running.into_iter().map(|r| r.wait()).collect();
        let mut ids = BTreeSet::new();
        for o in &outs {
            o.assert_success();
            assert!(o.err().is_empty(), "a quiet pull says nothing:\n{o}");
            ids.insert(o.out().to_string());
        }
        assert_eq!(ids.len(), 1, "round {round}: all pulls agree: {ids:?}");
        let id = ids.into_iter().next().unwrap();
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(store(&tb).join("images").join(format!("{id}.json"))).unwrap(),
        )
        .unwrap();
        let diff_ids: BTreeSet<String> = record["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                d.as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
                    .to_string()
            })
            .collect();
        let layers: BTreeSet<String> = entries(&store(&tb).join("layers")).into_iter().collect();
        assert_eq!(layers, diff_ids, "round {round}: one copy of each layer");
        assert_eq!(entries(&store(&tb).join("images")).len(), 1);
        assert!(
            entries(&store(&tb).join("tmp")).is_empty(),
            "round {round}: tmp/ is empty: {:?}",
            entries(&store(&tb).join("tmp"))
        );
        assert_check_clean(&tb, &format!("round {round}"));
    }
}

/// One worker's loop: a foreground `run --rm`, a detached container, listings, a removal.
fn worker(tb: &TestBox, image: &str, w: usize, round: usize) -> Result<(), String> {
    let check = |o: Outcome, what: &str| -> Result<Outcome, String> {
        if o.success() {
            Ok(o)
        } else {
            Err(format!("worker {w} round {round}: {what}:\n{o}"))
        }
    };
    let fg = format!("fg-{w}-{round}");
    let bg = format!("bg-{w}-{round}");
    let none = ["--network", "none"];
    let run = |args: &[&str]| tb.cmd(args).timeout(TIMEOUT).run();
    let o = check(
        run(&[
            &["run", "--rm", "--name", &fg][..],
            &none,
            &[image, "echo", &fg],
        ]
        .concat()),
        "run --rm",
    )?;
    if o.out() != fg {
        return Err(format!("worker {w}: run --rm printed {:?}", o.out()));
    }
    let o = check(
        run(&[
            &["run", "-d", "--name", &bg][..],
            &none,
            &[image, "sleep", "60"],
        ]
        .concat()),
        "run -d",
    )?;
    let id = o.out().to_string();
    check(run(&["ps", "-a"]), "ps -a")?;
    let ps = check(run(&["ps", "--format", "{{.Names}}"]), "ps")?;
    if !ps.stdout.lines().any(|l| l.trim() == bg) {
        return Err(format!("worker {w}: {bg} is not listed as running:\n{ps}"));
    }
    check(run(&["ps", "-a", "-q", "--no-trunc"]), "ps -q")?;
    check(run(&["rm", "-f", &id]), "rm -f")?;
    Ok(())
}

#[test]
fn eight_workers_run_list_and_remove_at_once() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    for round in 0..ROUNDS {
        let errors: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..PARALLEL)
                .map(|w| {
                    let (tb, image) = (&tb, &image);
                    s.spawn(move || worker(tb, image, w, round))
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(format!("round {round}: a worker panicked (timeout?)")),
                })
                .collect()
        });
        assert!(errors.is_empty(), "{}", errors.join("\n"));
        let ps = tb.cmd(["ps", "-a", "-q"]).run();
        ps.assert_success();
        assert!(
            ps.out().is_empty(),
            "round {round}: every container is gone:\n{ps}"
        );
    }
    let left = wait_processes_gone(&tb, Duration::from_secs(30));
    assert!(left.is_empty(), "processes left: {left:#?}");
    assert!(mounts_under(tb.dir()).is_empty());
    assert_check_clean(&tb, "after the workers");
}

#[test]
fn eight_creates_of_one_name_one_wins() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    for round in 0..ROUNDS {
        let name = format!("same-{round}");
        let running: Vec<_> = (0..PARALLEL)
            .map(|_| {
                tb.cmd([
                    "create",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    &image,
                    "true",
                ])
                .timeout(TIMEOUT)
                .spawn()
            })
            .collect();
        let outs: Vec<Outcome> = running.into_iter().map(|r| r.wait()).collect();
        let won: Vec<&Outcome> = outs.iter().filter(|o| o.success()).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one create of {name} wins:\n{}",
            outs.iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        for o in outs.iter().filter(|o| !o.success()) {
            o.assert_code(125)
                .assert_one_line_error()
                .stderr_contains(&name);
        }
        let ps = tb
            .cmd(["ps", "-a", "--format", "{{.Names}}"])
            .run()
            .assert_success()
            .clone();
        let names: Vec<&str> = ps.stdout.lines().map(str::trim).collect();
        assert_eq!(names, vec![name.as_str()], "one container named {name}");
        tb.cmd(["rm", &name]).run().assert_success();
    }
    harness::note("8 concurrent creates of one name: one wins, 7 fail naming it");
}
