//! Fuzz targets, one per parser of user files: CIFAR binary archives, image-folder
//! archives, checkpoints, safetensors weight files, run configs, sweep files (and the
//! metrics log a resume reads).
//! Each mutates a seed corpus (valid files and the crafted hostile ones) with proptest and
//! asserts the parser returns, Ok or a clear error: no panic, no abort, no unbounded
//! allocation. Archives are mutated before compression too, so the mutations reach the tar
//! headers instead of dying in the deflate stream.
//!
//! Each target runs for `SPARSELAB_FUZZ_SECONDS` (default 2) and prints its count;
//! `scripts/test.sh` gives each 20 s. A failing input is shrunk by proptest and printed.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use sparselab::data::{DataConfig, DataKind, load_split_from_bytes};
use sparselab::sweep::SweepConfig;
use sparselab::train::checkpoint::Checkpoint;
use sparselab::train::{TrainConfig, metrics};
use sparselab::weights::{
    ExportExtras, export_safetensors, read_exported_model, read_initial_weights,
};
use sparselab_e2e::{config_from, hostile, synthetic_trainer};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    /// Overwrite 8 bytes with a boundary integer (0, max, 2^31, 2^62, ...).
    Boundary(usize, u64),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    /// Copy a span of the input over another place (repeats headers, lengths).
    Duplicate(usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        (pos, any::<u8>()).prop_map(|(p, v)| Mutation::SetByte(p, v)),
        (
            pos,
            prop::sample::select(vec![0, u64::MAX, 1 << 31, 1 << 32, 1 << 62, 0x7fff_ffff])
        )
            .prop_map(|(p, v)| Mutation::Boundary(p, v)),
        (pos, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Mutation::Insert(p, b)),
        (pos, 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        pos.prop_map(Mutation::Truncate),
        (pos, pos, 1usize..600).prop_map(|(a, b, n)| Mutation::Duplicate(a, b, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::FlipBit(p, b) => {
                if let Some(x) = bytes.get_mut(p % len) {
                    *x ^= 1 << b;
                }
            }
            Mutation::SetByte(p, v) => {
                if let Some(x) = bytes.get_mut(p % len) {
                    *x = *v;
                }
            }
            Mutation::Boundary(p, v) => {
                let at = p % len;
                for (i, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = bytes.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            Mutation::Insert(p, b) => {
                let at = p % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(p, n) => {
                let at = p % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::Truncate(p) => bytes.truncate(p % len),
            Mutation::Duplicate(a, b, n) => {
                let (from, to) = (a % len, b % len);
                let span: Vec<u8> = bytes.iter().skip(from).take(*n).copied().collect();
                for (i, x) in span.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(to + i) {
                        *slot = x;
                    }
                }
            }
        }
    }
    bytes
}

/// Runs `target` on mutated seeds until the time budget is spent; returns the count.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) -> u64 {
    let seconds: u64 = std::env::var("SPARSELAB_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let n = seeds.len();
    let strategy = (0..n, prop::collection::vec(mutation(), 0..6));
    let runs = std::cell::Cell::new(0u64);
    while Instant::now() < deadline {
        // A runner stops counting at `cases`: a fresh one (fresh random seed) per round.
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |(seed, mutations)| {
            runs.set(runs.get() + 1);
            target(&apply(seeds[seed].clone(), &mutations));
            Ok::<(), TestCaseError>(())
        });
        if let Err(e) = result {
            panic!("fuzz target {name} failed: {e}");
        }
    }
    let runs = runs.get();
    eprintln!("fuzz {name}: {runs} inputs in {seconds} s, 0 crashes");
    runs
}

/// Archives: the seeds are uncompressed tars; each input is fed raw-gzipped, and (so that
/// the stream checks are fuzzed too) half the time with its compressed bytes damaged.
fn archive_target(kind: DataKind) -> impl Fn(&[u8]) {
    move |tar: &[u8]| {
        let config = DataConfig {
            kind,
            ..DataConfig::default()
        };
        let mut tgz = hostile::gzip(tar);
        let _ = load_split_from_bytes(&config, &tgz, "fuzz.tar.gz", false);
        if let Some(&b) = tar.first() {
            let at = b as usize % tgz.len();
            tgz[at] ^= 0x20;
            let _ = load_split_from_bytes(&config, &tgz, "fuzz.tar.gz", true);
        }
    }
}

fn raw_tar_of(tgz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(tgz), &mut out);
    out
}

#[test]
fn fuzz_cifar_binary_archives() {
    let seeds = vec![
        hostile::tar(&hostile::cifar10_files(3)),
        raw_tar_of(&hostile::huge_declared_entry()),
        hostile::tar(&hostile::cifar10_files(1)[..2]),
    ];
    assert!(fuzz("cifar-binary", seeds, archive_target(DataKind::Cifar10)) > 0);
}

#[test]
fn fuzz_image_folder_archives() {
    let seeds = vec![
        hostile::tar(&hostile::image_folder_files(&["a", "b"], &["a", "b"], 2)),
        hostile::tar(&[("train/a/x.png".into(), hostile::png(300, [1, 2, 3]))]),
    ];
    assert!(fuzz("image-folder", seeds, archive_target(DataKind::Folder)) > 0);
}

#[test]
fn fuzz_checkpoints() {
    let seeds = vec![hostile::checkpoint().encode(), hostile::checkpoint_v2()];
    let runs = fuzz("checkpoint", seeds, |bytes| {
        if let Ok(ckpt) = Checkpoint::decode(bytes, "fuzz.bin") {
            // Whatever decodes, re-encodes to a file that decodes to the same bytes.
            let bytes = ckpt.encode();
            let again = Checkpoint::decode(&bytes, "again").expect("re-decodes");
            assert_eq!(again.encode(), bytes);
            // Whatever decodes, exports or says why not.
            let _ = export_safetensors(&ckpt, &ExportExtras::default());
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_weight_files() {
    // A tiny trained EAST run's export (ResNet-20: its third blocks share, so the gains
    // are recovered from the file): what `--init-from` and `eval` read.
    let config = config_from(
        &[
            "model.arch=\"resnet20\"",
            "model.width=0.25",
            "batch_size=8",
            "data.synthetic_size=40",
            "method.name=\"east\"",
            "method.east.dyrelu=false",
        ],
        &[],
    );
    let mut trainer = synthetic_trainer(&config);
    pollster::block_on(trainer.train_step()).expect("a step");
    let ckpt = pollster::block_on(trainer.checkpoint()).expect("a checkpoint");
    let seed = export_safetensors(&ckpt, &ExportExtras::default()).expect("exports");
    let model = trainer.model().clone();
    let device = sparselab::burn::tensor::Device::flex();
    let runs = fuzz("weights", vec![seed], |bytes| {
        if let Ok(w) = read_initial_weights(bytes, "fuzz.safetensors", &model, "resnet20") {
            let _ = w.choose_masks(trainer.masks().clone());
        }
        let _ = read_exported_model(bytes, "fuzz.safetensors", &device);
    });
    assert!(runs > 0);
}

fn repo_files(prefix: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn fuzz_run_configs() {
    let mut seeds: Vec<Vec<u8>> = repo_files("")
        .into_iter()
        .filter(|b| !String::from_utf8_lossy(b).contains("[[variant]]"))
        .collect();
    seeds.push(b"length_multiplier = 1e300\n[schedule]\ngamma = nan\n".to_vec());
    seeds.push(b"[optim]\nlr = \"fast\"\nweight_decay = inf\n".to_vec());
    let runs = fuzz("config", seeds, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(c) = TrainConfig::from_toml(&text, "fuzz.toml") {
            // A config that validates has a bounded length and round-trips.
            assert!(c.total_epochs() <= 100_000);
            assert_eq!(TrainConfig::from_toml(&c.to_toml(), "again").unwrap(), c);
        }
        if let Ok(setting) = sparselab::train::Setting::parse(text.lines().next().unwrap_or("")) {
            let _ = TrainConfig::load(None, &[setting]);
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_sweep_files() {
    let seeds = repo_files("sweep-");
    assert!(!seeds.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.toml");
    let runs = fuzz("sweep", seeds, |bytes| {
        std::fs::write(&path, bytes).unwrap();
        if let Ok((sweep, root)) = SweepConfig::load(&path) {
            let _ = sweep.cells(&root, &dir.path().join("out"));
        }
    });
    assert!(runs > 0);
}

#[test]
fn fuzz_metrics_logs() {
    let line = |step| {
        serde_json::to_string(&sparselab::train::Event::Checkpoint {
            step,
            path: "c".into(),
        })
        .unwrap()
            + "\n"
    };
    let seeds = vec![(line(1) + &line(2)).into_bytes()];
    assert!(fuzz("metrics", seeds, |b| drop(metrics::parse_events(b))) > 0);
}
