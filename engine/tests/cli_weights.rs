//! The `sparselab` binary and weights files: `export` and `eval` of an export, a run
//! started with `--init-from`, and the warning of a network with no input→output path.

mod common;

use common::{SMALL, resnet20_quarter, run_err, run_ok, sparselab};
use std::path::Path;

#[test]
fn export_evaluates_as_its_checkpoint_and_starts_a_new_run() {
    // EAST with weight sharing: the export unfolds the shared weights, and evaluating it
    // must still give the checkpoint's accuracy.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("east");
    resnet20_quarter(
        &out,
        &["--method", "east", "--set", "method.east.dyrelu=false"],
    );
    let ckpt = out.join("checkpoint.bin");
    let exported = run_ok(sparselab().arg("export").arg(&ckpt));
    let text = String::from_utf8_lossy(&exported.stdout);
    assert!(
        text.contains("checkpoint.safetensors: east resnet20"),
        "{text}"
    );
    assert!(text.contains("learnable non-zeros"), "{text}");
    let file = out.join("checkpoint.safetensors");
    let eval = |path: &Path| -> serde_json::Value {
        let o = run_ok(
            sparselab()
                .args(["eval", "--device", "cpu", "--split", "val", "--json"])
                .arg(path),
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (from_ckpt, from_export) = (eval(&ckpt), eval(&file));
    assert_eq!(from_export["accuracy"], from_ckpt["accuracy"]);
    assert_eq!(from_export["confusion"], from_ckpt["confusion"]);

    // A new run from the file starts with its masks: as many weights alive as it had.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let init_from = file.display().to_string();
    let again = resnet20_quarter(
        &dir.path().join("again"),
        &[
            "--method",
            "east",
            "--set",
            "method.east.dyrelu=false",
            "--set",
            "method.east.cyclic=false",
            "--set",
            "epochs=1",
            "--init-from",
            &init_from,
        ],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    let alive = format!("{} of ", summary["nnz"]);
    assert!(
        stderr.contains("initial weights: ") && stderr.contains(&alive),
        "{stderr}"
    );

    // The wrong model, a cut file, an unknown format, the checkpoint as --out.
    let e = run_err(
        sparselab()
            .args(SMALL)
            .arg("--init-from")
            .arg(&file)
            .arg("--out")
            .arg(dir.path().join("wrong")),
    );
    assert!(
        e.contains("checkpoint.safetensors: holds 84 tensor(s) this model does not have"),
        "{e}"
    );
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = run_err(sparselab().args(["eval", "--device", "cpu"]).arg(&cut));
    assert!(
        e.contains("cut.safetensors: not a readable safetensors file"),
        "{e}"
    );
    let e = run_err(sparselab().args(["export", "--format", "onnx"]).arg(&ckpt));
    assert!(e.contains("--format onnx"), "{e}");
    let e = run_err(sparselab().arg("export").arg(&ckpt).arg("--out").arg(&ckpt));
    assert!(e.contains("is the checkpoint itself"), "{e}");
}

#[test]
fn a_network_with_no_input_to_output_path_says_so_before_training() {
    // ResNet-20 x0.25 at 99.5%: 86 weights, ERK-random, none on a path (see the book's
    // connectivity page); the warning comes before the first step.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut");
    let o = resnet20_quarter(&out, &["--sparsity", "0.995", "--stop-after", "1"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: no alive weight lies on a path from the input to the output"),
        "{stderr}"
    );
    let start: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(start["connected_nnz"], 0);
    assert!(start["nnz"].as_u64().unwrap() > 0);
}
