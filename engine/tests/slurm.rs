//! A sweep on a real SLURM: the emitted job array and report job, submitted to the
//! single-node SLURM that scripts/test-slurm.sh starts (it sets SPARSELAB_SLURM_CONF; without
//! it this test says so and returns). The table must equal a local `sweep --jobs 2` of the
//! same grid, and a cell cancelled mid-run must resume from its checkpoint when the sweep is
//! submitted again.

mod common;

use common::{run_ok, sparselab};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn slurm(conf: &str, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (bounded) until the private cluster has no job left.
fn wait_idle(conf: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !slurm(conf, "squeue", &["-h"]).trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: jobs still queued after 10 min"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// results.csv without the wall-time column (the one value that differs between runs).
fn table(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("results.csv"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

fn submit(conf: &str, out: &Path) -> (String, String) {
    let script = out.join("slurm/submit.sh");
    let said = slurm(conf, "bash", &[script.to_str().unwrap()]);
    // "cells: job array 12; report: job 13 (after the array)"
    let ids: Vec<String> = said
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "{said}");
    (ids[0].clone(), ids[1].clone())
}

#[test]
fn a_sweep_runs_as_a_slurm_job_array_and_a_cancelled_cell_resumes() {
    let Ok(conf) = std::env::var("SPARSELAB_SLURM_CONF") else {
        eprintln!("skipped: no SLURM to submit to (scripts/test-slurm.sh starts one)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let grid = |out: &Path| {
        format!(
            r#"
title = "slurm grid"
set = ['model.arch="resnet8"', "model.width=0.5", "epochs=12", "batch_size=32",
       "data.synthetic_size=640", "method.update_every=5", 'run.device="cpu"',
       "run.checkpoint_every=2"]
sparsities = [0.8, 0.9]
seeds = [0, 1]
out = {out:?}
[[variant]]
name = "rigl"
set = ['method.name="rigl"']
[[variant]]
name = "set"
set = ['method.name="set"']
"#,
            out = out.display().to_string()
        )
    };
    let out = dir.path().join("on-slurm");
    let file = dir.path().join("grid.toml");
    std::fs::write(&file, grid(&out)).unwrap();
    let list = run_ok(sparselab().args(["sweep", "--list"]).arg(&file));
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert_eq!(list.lines().count(), 8, "{list}");
    assert!(list.contains("set/sparsity-0.9/seed-1"), "{list}");
    run_ok(
        sparselab()
            .args(["sweep", "--emit", "slurm", "--cpus-per-task", "1"])
            .args(["--max-parallel", "2", "--time", "00:20:00"])
            .arg(&file),
    );

    let started = Instant::now();
    let (cells, report) = submit(&conf, &out);
    // Cancel one cell mid-run: the first seen with a checkpoint and no summary yet.
    let deadline = Instant::now() + Duration::from_secs(300);
    let cancelled = 'find: loop {
        assert!(Instant::now() < deadline, "no cell reached a checkpoint");
        for (i, line) in list.lines().enumerate() {
            let name = line.split_whitespace().nth(1).unwrap();
            let cell = out.join(name);
            if cell.join("checkpoint.bin").exists() && !cell.join("summary.json").exists() {
                slurm(&conf, "scancel", &[&format!("{cells}_{i}")]);
                break 'find cell;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_idle(&conf, "the first submission");
    let first = started.elapsed();
    assert!(
        !cancelled.join("summary.json").exists(),
        "the cancelled cell finished anyway"
    );
    let report_log = std::fs::read_to_string(out.join("slurm/logs/report.log")).unwrap();
    assert!(
        report_log.contains("table rows"),
        "report {report}: {report_log}"
    );

    // Submitted again: seven cells are finished and skipped, the cancelled one resumes.
    submit(&conf, &out);
    wait_idle(&conf, "the second submission");
    let events: Vec<serde_json::Value> = std::fs::read_to_string(cancelled.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["kind"] == "start")
        .collect();
    assert_eq!(events.len(), 2, "a fresh start, then the resume");
    assert!(
        events[1]["resumed_from"].as_u64().is_some_and(|s| s > 0),
        "resumed, not restarted: {}",
        events[1]
    );

    // The same grid run locally, two cells at a time: the same table.
    let local = dir.path().join("local");
    let local_file = dir.path().join("local.toml");
    std::fs::write(&local_file, grid(&local)).unwrap();
    run_ok(sparselab().args(["sweep", "--jobs", "2"]).arg(&local_file));
    assert_eq!(table(&out), table(&local));
    assert_eq!(table(&out).len(), 5);
    eprintln!(
        "slurm: first submission (8 cells, one cancelled) {:.0} s, whole test {:.0} s",
        first.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
