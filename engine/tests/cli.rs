//! The `sparselab` binary as a user runs it: real processes, real files, a real SIGKILL.

mod common;

use common::{SMALL, resnet20_quarter, run_err, run_ok, sparselab};
use std::path::Path;
use std::time::{Duration, Instant};

fn step_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step")
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("images_per_sec");
            v
        })
        .collect()
}

#[test]
fn sigkill_then_resume_matches_the_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    run_ok(sparselab().args(SMALL).arg("--out").arg(&straight));

    let killed = dir.path().join("killed");
    let mut child = sparselab()
        .args(SMALL)
        .args(["--set", "run.checkpoint_every=4"])
        .arg("--out")
        .arg(&killed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a checkpoint exists and a few more steps have run past it.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        let steps = std::fs::read_to_string(killed.join("metrics.jsonl"))
            .map(|t| t.matches("\"kind\":\"step\"").count())
            .unwrap_or(0);
        if killed.join("checkpoint.bin").exists() && steps >= 10 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("finished before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();

    let out = run_ok(
        sparselab()
            .args(SMALL)
            .args(["--set", "run.checkpoint_every=4", "--resume"])
            .arg("--out")
            .arg(&killed),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("best val acc"));
    assert_eq!(step_lines(&straight), step_lines(&killed));
    assert!(
        !std::fs::read_dir(&killed).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp"))
    );

    // `eval` on the finished checkpoint: accuracy and a per-class table.
    let out = run_ok(
        sparselab()
            .args(["eval", "--device", "cpu", "--split", "val"])
            .arg(killed.join("checkpoint.bin")),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("accuracy") && text.contains("| disc |"),
        "{text}"
    );
    // The synthetic test split (128 images, fewer than a training batch) evaluates too.
    let out = run_ok(
        sparselab()
            .args(["eval", "--device", "cpu", "--json"])
            .arg(killed.join("checkpoint.bin")),
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["images"], 128);
    assert!(e["accuracy"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[method]\nname = \"rigl\"\ndrop_fractoin = 0.3\n").unwrap();
    let err = run_err(sparselab().args(["train", "--quiet", "--config"]).arg(&cfg));
    assert!(
        err.contains("bad.toml") && err.contains("drop_fractoin"),
        "{err}"
    );

    let err = run_err(
        sparselab()
            .args([
                "train",
                "--quiet",
                "--sparsity",
                "0.99999",
                "--model",
                "resnet8",
                "--width",
                "0.25",
            ])
            .arg("--out")
            .arg(dir.path().join("x")),
    );
    assert!(err.contains("at most"), "{err}");

    let err = run_err(sparselab().args([
        "train",
        "--quiet",
        "--data",
        "cifar10",
        "--data-path",
        "/no/such/file.tar.gz",
    ]));
    assert!(err.contains("data fetch cifar10"), "{err}");

    let err = run_err(sparselab().args(["eval"]).arg(&cfg));
    assert!(err.contains("not a sparselab checkpoint"), "{err}");

    let err = run_err(
        sparselab()
            .args([
                "data",
                "fetch",
                "cifar10",
                "--url",
                "http://127.0.0.1:9/x.tar.gz",
                "--to",
            ])
            .arg(dir.path()),
    );
    assert!(err.contains("download"), "{err}");

    // No GPU: a clear error (on a machine with one, the run goes ahead).
    let gpu_args: Vec<&str> = SMALL
        .iter()
        .map(|a| if *a == "cpu" { "gpu" } else { a })
        .collect();
    let out = sparselab()
        .args(gpu_args)
        .args(["--stop-after", "1"])
        .arg("--out")
        .arg(dir.path().join("gpu"))
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no hardware GPU") && err.contains("--device cpu"),
            "{err}"
        );
    }
}

#[test]
fn info_and_methods_list_what_exists() {
    let out = run_ok(sparselab().arg("info"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--device auto trains on"), "{text}");
    let out = run_ok(sparselab().arg("methods"));
    let text = String::from_utf8_lossy(&out.stdout);
    for m in ["dense", "static", "set", "rigl"] {
        assert!(text.contains(m), "{text}");
    }
}

#[test]
fn wgpu_path_trains_on_a_software_adapter() {
    // The GPU code path (wgpu device, async read-backs, a RigL mask update, a checkpoint)
    // on lavapipe. Skipped where no wgpu adapter exists at all.
    let dir = tempfile::tempdir().unwrap();
    let out = sparselab()
        .args([
            "train",
            "--quiet",
            "--device",
            "wgpu",
            "--model",
            "resnet8",
            "--width",
            "0.25",
            "--batch-size",
            "8",
        ])
        .args([
            "--epochs",
            "1",
            "--set",
            "data.synthetic_size=100",
            "--set",
            "method.update_every=2",
            "--stop-after",
            "3",
        ])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("no wgpu adapter") {
        eprintln!("skipped: no wgpu adapter (install mesa-vulkan-drivers)");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"device\":\"wgpu"), "{metrics}");
    assert_eq!(metrics.matches("\"kind\":\"step\"").count(), 3);
    assert!(metrics.contains("\"kind\":\"mask_update\""));
    assert!(dir.path().join("checkpoint.bin").is_file());
}

#[test]
fn sweep_runs_a_grid_resumes_it_and_writes_the_table_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep.toml");
    let out = dir.path().join("grid");
    std::fs::write(
        &sweep,
        format!(
            r#"
title = "tiny grid"
set = ['model.arch="resnet8"', "model.width=0.25", "epochs=1", "batch_size=32",
       "data.synthetic_size=300", "method.update_every=3", 'run.device="cpu"']
sparsities = [0.8, 0.9]
seeds = [0, 1]
out = {out:?}
[[variant]]
name = "rigl"
set = ['method.name="rigl"']
[[variant]]
name = "static"
set = ['method.name="static"']
"#,
            out = out.display().to_string()
        ),
    )
    .unwrap();
    let first = run_ok(sparselab().args(["sweep", "--jobs", "2"]).arg(&sweep));
    let table = std::fs::read_to_string(out.join("results.md")).unwrap();
    // 2 variants x 2 sparsities, each over 2 seeds.
    for row in [
        "| rigl | 80% | 2 |",
        "| rigl | 90% | 2 |",
        "| static | 90% | 2 |",
    ] {
        assert!(table.contains(row), "{row} missing in\n{table}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let svg = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    // The axes, then one line per variant.
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 3);
    assert!(String::from_utf8_lossy(&first.stdout).contains("| static | 80% | 2 |"));

    // Run again: every cell is finished, nothing re-runs, the same table comes out.
    let again = run_ok(sparselab().args(["sweep"]).arg(&sweep));
    assert!(String::from_utf8_lossy(&again.stderr).contains("8 cells, 8 finished, 0 to run"));
    let rows = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with('|'))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        rows(&std::fs::read_to_string(out.join("results.md")).unwrap()),
        rows(&table)
    );

    // The sweep file changed under finished cells: refused, nothing is overwritten.
    let changed = dir.path().join("changed.toml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(&sweep)
            .unwrap()
            .replace("\"epochs=1\"", "\"epochs=2\""),
    )
    .unwrap();
    let refused = sparselab().args(["sweep"]).arg(&changed).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("different config"));
    assert_eq!(
        rows(&std::fs::read_to_string(out.join("results.md")).unwrap()),
        rows(&table)
    );

    // A wrong key in a variant is reported before anything runs.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&sweep)
            .unwrap()
            .replace("method.name=\"static\"", "method.nmae=\"static\""),
    )
    .unwrap();
    let out2 = sparselab().args(["sweep"]).arg(&bad).output().unwrap();
    assert_eq!(out2.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out2.stderr);
    assert!(err.contains("nmae") && err.contains("static"), "{err}");
}

#[test]
fn every_preset_config_is_valid() {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // Presets point at data the user downloads; any existing file passes the check.
        let data = sparselab::train::Setting::new("data.path", path.display().to_string());
        if name.starts_with("sweep-") {
            let (mut sweep, root) = sparselab::sweep::SweepConfig::load(&path).unwrap();
            sweep.set.push(data.to_string());
            let cells = sweep.cells(&root, Path::new("runs/check")).unwrap();
            assert!(cells.len() >= 4, "{name}");
        } else {
            let c = sparselab::train::TrainConfig::load(Some((&text, &name)), &[data])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // The method and the budget build for the preset's model and length.
            let model = c
                .resolved_model()
                .init(10, &sparselab::burn::tensor::Device::flex());
            let layers = sparselab::sparsity::sparse_layers(&model);
            let budget =
                sparselab::sparsity::Budget::new(layers, c.sparsity.clone(), model.reuse_counts());
            budget
                .target_counts()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let steps_per_epoch = 45_000 / c.batch_size;
            let timeline = sparselab::methods::Timeline {
                steps_per_epoch,
                total_steps: steps_per_epoch * c.total_epochs(),
            };
            if let Err(e) = sparselab::methods::build(&c.method, timeline) {
                panic!("{name}: {e}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} presets");
}

#[test]
fn east_checkpoint_evaluates_to_the_runs_own_validation_accuracy() {
    // DyReLU mid-phase and shared weights must both come back from the checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("east");
    resnet20_quarter(
        &out,
        &[
            "--method",
            "east",
            "--set",
            "model.dyrelu.phase_start=0.5",
            "--set",
            "model.dyrelu.phase_end=4.0",
        ],
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary["effective_nnz"].as_u64() > summary["nnz"].as_u64());
    let eval = run_ok(
        sparselab()
            .args(["eval", "--device", "cpu", "--split", "val", "--json"])
            .arg(out.join("checkpoint.bin")),
    );
    let e: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(e["accuracy"], summary["final_val_accuracy"]);
}

#[test]
fn bench_kernels_prints_its_tables_and_rejects_bad_arguments() {
    let out = run_ok(sparselab().args([
        "bench",
        "kernels",
        "--device",
        "flex",
        "--models",
        "resnet18",
        "--sparsities",
        "0.999",
        "--batch",
        "1",
        "--repeats",
        "1",
        "--layers-only",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    // One row per unique ResNet-18 conv shape (11), each with a measured ratio.
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| [")).collect();
    assert_eq!(rows.len(), 11, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains("| 99.") && r.contains("x |")),
        "{text}"
    );
    assert!(text.contains("masked SGD step v2"), "{text}");
    assert!(text.contains("command: sparselab bench kernels --device flex"));
    let err = run_err(sparselab().args(["bench", "kernels", "--sparsities", "1.5"]));
    assert!(err.contains("not in [0, 1)"), "{err}");
    let err = run_err(sparselab().args(["bench", "kernels", "--models", "resnet19"]));
    assert!(err.contains("unknown model 'resnet19'"), "{err}");
}

#[test]
fn timed_kernels_choose_layers_by_measurement_and_report_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        sparselab()
            .args(SMALL)
            .args(["--sparsity", "0.999", "--set", "run.kernels=\"timed\""])
            .arg("--out")
            .arg(dir.path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let start: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let chosen = start["sparse_kernel_layers"]
        .as_array()
        .expect("the start event lists them");
    // The console line says what the start event records, whichever way timing went.
    if chosen.is_empty() {
        assert!(stderr.contains("no layer was faster sparse"), "{stderr}");
    } else {
        assert!(
            stderr.contains(&format!("sparse kernels: {} of ", chosen.len())),
            "{stderr}"
        );
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("best val acc"));
}

#[test]
fn auto_kernels_follow_the_shipped_table_so_two_runs_agree() {
    // The default `run.kernels = "auto"`: the same layers and the same losses every run.
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let out = run_ok(
            sparselab()
                .args(SMALL)
                .args(["--sparsity", "0.999"])
                .arg("--out")
                .arg(dir.path()),
        );
        let text = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let chosen = events[0]["sparse_kernel_layers"].clone();
        let losses: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| e["kind"] == "step")
            .map(|e| e["loss"].clone())
            .collect();
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            chosen,
            losses,
        )
    };
    let (stderr, chosen, losses) = run();
    let n = chosen.as_array().expect("the start event lists them").len();
    // At 99.9% every conv of this small model is far below its crossover density.
    assert!(n > 0, "{stderr}");
    assert!(
        stderr.contains(&format!("sparse kernels: {n} of ")),
        "{stderr}"
    );
    assert!(!losses.is_empty());
    let (_, chosen_again, losses_again) = run();
    assert_eq!(chosen, chosen_again);
    assert_eq!(losses, losses_again);
}
