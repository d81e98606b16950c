//! Hostile files and faults through the library, one test per way they used to abort a
//! run, lose one, or give a silently wrong result. The crafted files come from
//! `sparselab_e2e::hostile` (the fuzz targets' seed corpus).

use sparselab::data::{DataConfig, DataKind, load_split_from_bytes};
use sparselab::train::run::{RunOptions, run};
use sparselab::train::{Checkpoint, TrainConfig};
use sparselab_e2e::{config_from, hostile, write_tar_gz};
use std::path::Path;

fn data(kind: DataKind) -> DataConfig {
    DataConfig {
        kind,
        ..DataConfig::default()
    }
}

#[test]
fn a_tar_header_declaring_exabytes_is_an_error_not_an_abort() {
    let bytes = hostile::huge_declared_entry();
    assert!(bytes.len() < 200, "{} bytes", bytes.len());
    let err = load_split_from_bytes(&data(DataKind::Cifar10), &bytes, "crafted.tar.gz", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("crafted.tar.gz") && err.contains("declares 4611686018427387904 bytes"),
        "{err}"
    );
}

#[test]
fn a_gzip_bomb_is_refused_at_the_entry_limit() {
    let bomb = hostile::bomb("train/cat/0.png", 40 << 20);
    assert!(bomb.len() < 200_000, "{} bytes", bomb.len());
    let err = load_split_from_bytes(&data(DataKind::Folder), &bomb, "bomb.tar.gz", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train/cat/0.png") && err.contains("limit of 32 MiB for one image"),
        "{err}"
    );
}

#[test]
fn a_bad_gzip_checksum_is_an_error_not_damaged_pixels() {
    let good = hostile::gzip(&hostile::tar(&hostile::cifar10_files(2)));
    load_split_from_bytes(&data(DataKind::Cifar10), &good, "good.tar.gz", false).unwrap();
    let bad = hostile::bad_crc(good);
    let err = load_split_from_bytes(&data(DataKind::Cifar10), &bad, "bad.tar.gz", false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.tar.gz") && err.contains("corrupt"),
        "{err}"
    );
}

fn small_run(out: &Path, extra: &[&str]) -> TrainConfig {
    let mut c = config_from(
        &[
            "model.arch=\"resnet8\"",
            "model.width=0.25",
            "batch_size=16",
            "epochs=2",
            "data.synthetic_size=160",
            "run.device=\"cpu\"",
        ],
        extra,
    );
    c.run.out = out.to_path_buf();
    c
}

fn resume() -> RunOptions {
    RunOptions {
        resume: true,
        ..Default::default()
    }
}

fn stop_after(n: usize) -> RunOptions {
    RunOptions {
        stop_after_steps: Some(n),
        ..Default::default()
    }
}

#[test]
fn test_classes_that_differ_from_training_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("folder.tar.gz");
    write_tar_gz(
        &tgz,
        &hostile::image_folder_files(&["cat", "dog"], &["cat", "emu"], 20),
    );
    let path = format!("data.path={:?}", tgz.display().to_string());
    let c = small_run(
        &dir.path().join("run"),
        &["data.kind=\"folder\"", &path, "data.val_fraction=0.0"],
    );
    let err = run(c, &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("emu") && err.contains("test split"), "{err}");
    // Nothing was trained: no checkpoint, no metrics.
    assert!(!dir.path().join("run/checkpoint.bin").exists());
}

#[test]
fn a_corrupt_cifar_test_split_fails_the_run_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = hostile::cifar10_files(20);
    let test = files
        .iter_mut()
        .find(|(p, _)| p.contains("test_batch"))
        .unwrap();
    test.1.truncate(test.1.len() - 7);
    let tgz = dir.path().join("cifar.tar.gz");
    write_tar_gz(&tgz, &files);
    let path = format!("data.path={:?}", tgz.display().to_string());
    let c = small_run(&dir.path().join("run"), &["data.kind=\"cifar10\"", &path]);
    let err = run(c, &RunOptions::default()).unwrap_err().to_string();
    assert!(
        err.contains("test_batch.bin") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn a_damaged_metrics_log_stops_the_resume_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = small_run(&dir.path().join("run"), &[]);
    run(c.clone(), &stop_after(5)).unwrap();
    let log = c.run.out.join("metrics.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.iter().position(|&b| b == b'"').unwrap();
    bytes[at] = 0xFF; // invalid UTF-8 in the first line
    std::fs::write(&log, &bytes).unwrap();
    let err = run(c.clone(), &resume()).unwrap_err().to_string();
    assert!(
        err.contains("metrics.jsonl") && err.contains("line 1"),
        "{err}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "the log is untouched");
}

#[test]
fn a_diverged_run_keeps_its_last_good_checkpoint_and_resumes_with_a_new_lr() {
    let dir = tempfile::tempdir().unwrap();
    let c = small_run(&dir.path().join("run"), &["epochs=3"]);
    run(c.clone(), &stop_after(4)).unwrap();
    let ckpt = c.run.out.join("checkpoint.bin");
    let good = std::fs::read(&ckpt).unwrap();
    let blow_up = RunOptions {
        resume: true,
        overrides: vec![sparselab::train::Setting::new("optim.lr", 1e38)],
        ..Default::default()
    };
    let err = run(c.clone(), &blow_up).unwrap_err().to_string();
    assert!(
        err.contains("diverged") && err.contains("--override"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        good,
        "the checkpoint is untouched"
    );
    let loaded = Checkpoint::load(&ckpt).unwrap();
    assert_eq!(loaded.meta.step, 4);

    // A plain setting that differs from the checkpoint's is refused, not ignored...
    let lr = sparselab::train::Setting::parse("optim.lr=0.01").unwrap();
    let requested = TrainConfig::explicit_settings(None, &[lr]).unwrap();
    let asked = RunOptions {
        resume: true,
        requested,
        ..Default::default()
    };
    let err = run(c.clone(), &asked).unwrap_err().to_string();
    assert!(
        err.contains("optim.lr") && err.contains("--override"),
        "{err}"
    );
    // ... and an override takes effect and is recorded.
    let lower = RunOptions {
        resume: true,
        overrides: vec![sparselab::train::Setting::new("optim.lr", 0.01)],
        ..Default::default()
    };
    let s = run(c.clone(), &lower).unwrap();
    assert!(s.finished);
    let saved = Checkpoint::load(&ckpt).unwrap();
    assert_eq!(saved.meta.config.optim.lr, 0.01);
}

#[test]
fn a_resume_on_changed_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("folder.tar.gz");
    let files = hostile::image_folder_files(&["cat", "dog"], &["cat", "dog"], 20);
    write_tar_gz(&tgz, &files);
    let path = format!("data.path={:?}", tgz.display().to_string());
    let c = small_run(&dir.path().join("run"), &["data.kind=\"folder\"", &path]);
    run(c.clone(), &stop_after(2)).unwrap();
    let mut changed = files.clone();
    changed[0].1 = hostile::png(8, [9, 9, 9]);
    write_tar_gz(&tgz, &changed);
    let err = run(c, &resume()).unwrap_err().to_string();
    assert!(err.contains("training images changed"), "{err}");
}

#[test]
fn resume_without_a_run_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let c = small_run(&dir.path().join("empty"), &[]);
    let err = run(c, &resume()).unwrap_err().to_string();
    assert!(err.contains("no run to continue"), "{err}");
}

#[test]
fn a_moved_dataset_resumes_with_an_overridden_path() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before.tar.gz");
    write_tar_gz(
        &before,
        &hostile::image_folder_files(&["cat", "dog"], &["cat", "dog"], 20),
    );
    let path = format!("data.path={:?}", before.display().to_string());
    let c = small_run(&dir.path().join("run"), &["data.kind=\"folder\"", &path]);
    run(c.clone(), &stop_after(2)).unwrap();
    let after = dir.path().join("after.tar.gz");
    std::fs::rename(&before, &after).unwrap();
    let err = run(c.clone(), &resume()).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    let moved = RunOptions {
        resume: true,
        overrides: vec![sparselab::train::Setting::new(
            "data.path",
            after.display().to_string(),
        )],
        ..Default::default()
    };
    assert!(run(c, &moved).unwrap().finished);
}
