//! The binary against hostile input and faults: impossible settings, odd paths, a second
//! process on a live run, a resume with other flags, a full disk, a bad download. Each
//! case ends in a clear error (exit 2, naming the key or file), never a panic or a lost run.

mod common;

use common::{SMALL, run_err, run_ok, sparselab};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn impossible_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let with_out = |args: &[&str]| {
        let mut c = sparselab();
        c.args(args).arg("--out").arg(&out);
        c
    };
    let err = run_err(&mut with_out(&[SMALL, &["--stop-after", "0"]].concat()));
    assert!(err.contains("--stop-after"), "{err}");
    let err = run_err(&mut with_out(&["train", "--quiet", "-c", "/dev/zero"]));
    assert!(
        err.contains("/dev/zero") && err.contains("not a regular file"),
        "{err}"
    );
    let err = run_err(&mut with_out(&[
        "train",
        "--quiet",
        "--set",
        "optim.lr=fast",
    ]));
    assert!(
        err.contains("optim.lr") && err.contains("invalid type"),
        "{err}"
    );
    let err = run_err(&mut with_out(&[
        "train",
        "--quiet",
        "--override",
        "optim.lr=1",
    ]));
    assert!(
        err.contains("--override") && err.contains("--resume"),
        "{err}"
    );
    let err = run_err(&mut with_out(&["train", "--quiet", "--resume"]));
    assert!(err.contains("no run to continue"), "{err}");
    assert!(!out.exists(), "a refused resume creates nothing");
    let err = run_err(sparselab().args(["train", "--quiet", "--out", "runs/a\nb"]));
    assert!(err.contains("control character"), "{err}");
    let err = run_err(sparselab().args(["bench", "train", "--steps", "0"]));
    assert!(err.contains("--steps"), "{err}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let err = run_err(
        sparselab()
            .args(["data", "fetch", "cifar10", "--to"])
            .arg(&file),
    );
    assert!(err.contains("is a file"), "{err}");
    // A model far larger than the machine (about 134 GiB to train) is refused before it
    // is built; on a machine with that much free memory the case does not apply.
    if available_gib().is_some_and(|g| g < 100) {
        let err = run_err(&mut with_out(&[
            "train", "--quiet", "--device", "cpu", "--model", "resnet50", "--width", "16",
        ]));
        assert!(err.contains("resnet50") && err.contains("GiB"), "{err}");
    }
}

fn available_gib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? >> 20)
}

/// SMALL training `epochs` epochs (clap refuses a flag given twice).
fn small(epochs: &'static str) -> Vec<&'static str> {
    SMALL
        .iter()
        .map(|a| if *a == "2" { epochs } else { a })
        .collect()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_live_run_folder_is_locked_against_a_second_run_and_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("live");
    let mut child = sparselab()
        .args(small("200"))
        .args(["--set", "run.checkpoint_every=2"])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first checkpoint", || {
        out.join("checkpoint.bin").exists()
    });
    let pid = child.id().to_string();
    for extra in [&[][..], &["--resume"][..]] {
        let err = run_err(sparselab().args(SMALL).args(extra).arg("--out").arg(&out));
        assert!(err.contains("in use") && err.contains(&pid), "{err}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock died with its process: the run resumes.
    run_ok(
        sparselab()
            .args(small("200"))
            .args(["--stop-after", "4"])
            .args(["--set", "run.checkpoint_every=2", "--resume", "--out"])
            .arg(&out),
    );
}

#[test]
fn a_resume_with_other_settings_is_refused_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    run_ok(
        sparselab()
            .args(SMALL)
            .args(["--stop-after", "3", "--out"])
            .arg(&out),
    );
    let args: Vec<&str> = small("5")
        .into_iter()
        .map(|a| if a == "resnet8" { "resnet14" } else { a })
        .collect();
    let err = run_err(
        sparselab()
            .args(&args)
            .args(["--resume", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("model.arch") && err.contains("resnet14") && err.contains("epochs"),
        "{err}"
    );
    let err = run_err(
        sparselab()
            .args(SMALL)
            .args(["--resume", "--override", "model.width=1", "--out"])
            .arg(&out),
    );
    assert!(err.contains("cannot change"), "{err}");
}

#[test]
fn a_full_disk_leaves_whole_metrics_lines_and_names_the_file() {
    // `ulimit -f` stands in for a full disk: writes past 256 KiB fail (SIGXFSZ ignored),
    // which the metrics log reaches after about 30 epochs; a checkpoint (~170 KiB) fits.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full");
    let script = "trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"";
    let output = std::process::Command::new("bash")
        .args(["-c", script, env!("CARGO_BIN_EXE_sparselab")])
        .args(small("80"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&out.display().to_string()), "{stderr}");
    let log = std::fs::read(out.join("metrics.jsonl")).unwrap();
    assert!(log.ends_with(b"\n"), "a torn last line");
    sparselab::train::metrics::parse_events(&log).unwrap();
}

/// Serves `body` to every request on a loopback port, without a Content-Length when
/// `endless` (then it streams zeros until the client hangs up).
fn serve(body: Vec<u8>, endless: bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            if endless {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let zeros = vec![0u8; 1 << 20];
                for _ in 0..400 {
                    if s.write_all(&zeros).is_err() {
                        break;
                    }
                }
            } else {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
            }
        }
    });
    url
}

#[test]
fn a_wrong_or_endless_download_is_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (body, endless, expect) in [
        (b"not the official tarball".to_vec(), false, "MD5"),
        (Vec::new(), true, "more than"),
    ] {
        let url = serve(body, endless);
        let to = dir.path().join(if endless { "endless" } else { "wrong" });
        let err = run_err(
            sparselab()
                .args(["data", "fetch", "cifar10", "--url", &url, "--to"])
                .arg(&to),
        );
        assert!(err.contains(expect), "{err}");
        let left: Vec<_> = std::fs::read_dir(&to)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    assert!(Path::new(&dir.path().join("wrong")).is_dir());
}

/// Writes an image folder (`<class>/<i>.png` under `split/`) as a `.tar.gz`.
fn image_folder(dest: &Path, splits: &[(&str, &[&str])]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dest).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for (split, classes) in splits {
        for (c, class) in classes.iter().enumerate() {
            for i in 0..12u8 {
                let px = image::Rgb([40 * c as u8, 7 * i, 99]);
                let mut png = Vec::new();
                image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(8, 8, px))
                    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .unwrap();
                let mut header = tar::Header::new_gnu();
                header.set_size(png.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                let path = format!("{split}/{class}/{i}.png");
                tar.append_data(&mut header, path, &png[..]).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn eval_on_data_with_other_class_names_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trained = dir.path().join("cats.tar.gz");
    image_folder(&trained, &[("train", &["cat", "dog"])]);
    let out = dir.path().join("r");
    run_ok(
        sparselab()
            .args(["train", "--quiet", "--device", "cpu", "--model", "resnet8"])
            .args(["--width", "0.25", "--epochs", "1", "--batch-size", "8"])
            .args(["--data", "folder", "--data-path"])
            .arg(&trained)
            .arg("--out")
            .arg(&out),
    );
    // Same number of classes, other names: the labels would silently not line up.
    let other = dir.path().join("emus.tar.gz");
    image_folder(&other, &[("test", &["cat", "emu"])]);
    let err = run_err(
        sparselab()
            .args(["eval", "--device", "cpu", "--data-path"])
            .arg(&other)
            .arg(out.join("checkpoint.bin")),
    );
    assert!(err.contains("emu") && err.contains("line up"), "{err}");
}

/// A sweep file of `cells` tiny synthetic runs (one variant, one sparsity, seeds 0..cells).
fn tiny_sweep(dir: &Path, cells: usize, epochs: usize) -> std::path::PathBuf {
    let seeds: Vec<String> = (0..cells).map(|s| s.to_string()).collect();
    let file = dir.join("sweep.toml");
    std::fs::write(
        &file,
        format!(
            r#"
title = "cells"
set = ['model.arch="resnet8"', "model.width=0.5", "epochs={epochs}", "batch_size=32",
       "data.synthetic_size=640", 'run.device="cpu"', "run.checkpoint_every=2"]
sparsities = [0.9]
seeds = [{}]
out = {:?}
[[variant]]
name = "rigl"
"#,
            seeds.join(", "),
            dir.join("out").display().to_string()
        ),
    )
    .unwrap();
    file
}

#[test]
fn a_sweep_cell_runs_alone_from_the_schedulers_index_and_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = tiny_sweep(dir.path(), 3, 1);
    let out = dir.path().join("out/rigl/sparsity-0.9");
    // Kubernetes' index picks the cell; nothing else runs, no report is written.
    run_ok(
        sparselab()
            .args(["sweep"])
            .arg(&file)
            .env("JOB_COMPLETION_INDEX", "1"),
    );
    assert!(out.join("seed-1/summary.json").exists());
    assert!(!out.join("seed-0").exists() && !out.join("seed-2").exists());
    assert!(!dir.path().join("out/results.md").exists());
    let err = run_err(sparselab().args(["sweep", "--cell", "3"]).arg(&file));
    assert!(err.contains("numbered 0 to 2"), "{err}");

    // A second attempt of a running cell is refused by its lock; the first finishes.
    let long = tiny_sweep(dir.path(), 1, 200);
    // Its own process group, so the cell's training process is killed with it.
    let mut first = sparselab()
        .args(["sweep", "--cell", "0"])
        .arg(&long)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let cell = out.join("seed-0");
    wait_for("the cell's first checkpoint", || {
        cell.join("checkpoint.bin").exists()
    });
    let second = sparselab()
        .args(["sweep", "--cell", "0"])
        .arg(&long)
        .output()
        .unwrap();
    let group = format!("-{}", first.id());
    std::process::Command::new("kill")
        .args(["-9", "--", &group])
        .status()
        .unwrap();
    first.wait().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        stderr.contains("busy") && stderr.contains("in use"),
        "{stderr}"
    );
}
