//! Helpers shared by the CLI tests: the built binary, a small run, exit checks.

#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};

pub fn sparselab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sparselab"))
}

pub const SMALL: &[&str] = &[
    "train",
    "--quiet",
    "--device",
    "cpu",
    "--model",
    "resnet8",
    "--width",
    "0.5",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--set",
    "data.synthetic_size=640",
    "--set",
    "method.update_every=5",
];

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected a clean error exit; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    stderr
}

/// A small run on ResNet-20 x0.25 (deep enough for weight sharing, small enough to be
/// quick) in `out`, with `extra` arguments.
pub fn resnet20_quarter(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    run_ok(
        sparselab()
            .args(SMALL)
            .args([
                "--set",
                "model.arch=\"resnet20\"",
                "--set",
                "model.width=0.25",
            ])
            .args(extra)
            .arg("--out")
            .arg(out),
    )
}
