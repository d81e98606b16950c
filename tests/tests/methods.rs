//! Every registered method through the real training loop (synthetic data, a tiny
//! ResNet-20): mask invariants after every step, the scheduled density hit exactly after
//! every update, EAST's DyReLU phase and weight sharing, and exact resume for the methods
//! with extra state (cycles, optimizer restarts, ever-active weights, FLOPs).

use pollster::block_on;
use sparselab::methods::REGISTRY;
use sparselab::train::run::{RunOptions, run};
use sparselab::train::{Event, TrainConfig, Trainer};
use sparselab_e2e::{config_from, synthetic_trainer};

const BASE: &[&str] = &[
    "model.arch=\"resnet20\"",
    "model.width=0.25",
    "batch_size=32",
    "epochs=3",
    "data.synthetic_size=700",
    "sparsity.sparsity=0.9",
    "method.update_every=3",
    "run.device=\"cpu\"",
];

fn config(method: &str, extra: &[&str]) -> TrainConfig {
    let name = format!("method.name=\"{method}\"");
    let mut sets = vec![name.as_str()];
    sets.extend(extra);
    config_from(BASE, &sets)
}

fn trainer(c: &TrainConfig) -> Trainer {
    synthetic_trainer(c)
}

#[test]
fn every_method_meets_its_scheduled_density_and_ends_at_the_target() {
    for entry in REGISTRY {
        let c = config(entry.name, &[]);
        let mut t = trainer(&c);
        let mut updates = 0;
        let mut lr_restarts = 0;
        let mut last_lr = f64::INFINITY;
        while !t.is_finished() {
            let o = block_on(t.train_step()).unwrap();
            if o.lr > last_lr * 1.5 {
                lr_restarts += 1;
            }
            last_lr = o.lr;
            if o.mask_update.is_some() {
                updates += 1;
                let want = t.budget().target_nnz(o.scheduled_density);
                assert_eq!(t.masks().nnz(), want, "{} at step {}", entry.name, o.step);
            }
        }
        let weights = block_on(t.count_nonzero_weights()).unwrap();
        assert!(
            weights <= t.masks().nnz(),
            "{}: pruned weights are zero",
            entry.name
        );
        let target = t.budget().target_nnz(c.sparsity.density());
        match entry.name {
            "dense" => assert_eq!(t.masks().nnz(), t.masks().numel()),
            name => {
                assert_eq!(t.masks().nnz(), target, "{name} ends at the target");
                // Methods that move the mask explored more weights than they keep.
                let explores = !matches!(name, "static");
                assert_eq!(
                    t.itop_rate() > t.masks().density(),
                    explores,
                    "{name}: ITOP {} vs density {}",
                    t.itop_rate(),
                    t.masks().density()
                );
                assert!(t.train_flops() > 0.0);
            }
        }
        let (want_updates, want_restarts) = match entry.name {
            "dense" | "static" => (0, 0),
            // One prune per level, LR rewound at each.
            "lrr" => (3, 3),
            // Pruned once before the last of 4 cycles; LR restarts at every cycle.
            "sculpt" => (1, 3),
            _ => (usize::MAX, 0),
        };
        if want_updates != usize::MAX {
            assert_eq!(updates, want_updates, "{}", entry.name);
        } else {
            assert!(updates >= 3, "{}: {updates} updates", entry.name);
        }
        assert_eq!(lr_restarts, want_restarts, "{}", entry.name);
    }
}

#[test]
fn east_shares_weights_at_equal_count_and_phases_dyrelu_out() {
    let c = config(
        "east",
        &["model.dyrelu.phase_start=1.0", "model.dyrelu.phase_end=2.0"],
    );
    let rigl = trainer(&config("rigl", &[]));
    let mut t = trainer(&c);
    // Weight sharing: fewer unique weights, the same learnable non-zero count as RigL's
    // unshared network at this sparsity.
    assert!(t.masks().numel() < rigl.masks().numel());
    assert_eq!(t.budget().unshared_total(), rigl.masks().numel());
    assert_eq!(t.masks().nnz(), rigl.masks().nnz());
    assert!(t.effective_nnz() > t.masks().nnz());
    assert!(
        t.dense_param_count() > rigl.dense_param_count(),
        "DyReLU + gains are dense"
    );

    let spe = t.steps_per_epoch();
    let mut phases = Vec::new();
    let mut peak_density = 0.0f64;
    let mut frozen: Option<Vec<(String, Vec<f32>)>> = None;
    while !t.is_finished() {
        let o = block_on(t.train_step()).unwrap();
        phases.push(o.phase.unwrap());
        peak_density = peak_density.max(t.budget_density());
        if o.phase == Some(0.0) {
            // DyReLU parameters are frozen once p = 0.
            let now = dyrelu_params(&t);
            if let Some(before) = &frozen {
                assert_eq!(before, &now, "DyReLU frozen at p = 0");
            }
            frozen = Some(now);
        }
    }
    assert_eq!(phases[0], 1.0);
    assert_eq!(phases[spe], 1.0);
    assert!((phases[spe + spe / 2] - 0.5).abs() < 0.1);
    assert_eq!(*phases.last().unwrap(), 0.0);
    assert!(frozen.is_some());
    // The masks reach d_max = 3 x the target density (counted unshared) mid-cycle.
    assert!((peak_density - 0.3).abs() < 0.03, "{peak_density}");
    assert_eq!(t.masks().nnz(), rigl.masks().nnz());
}

fn dyrelu_params(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    sparselab::model::for_each_param(t.model(), |path, _, v| {
        if path.contains("dyrelu") {
            out.push((path.to_string(), v.into_data().try_to_vec::<f32>().unwrap()));
        }
    });
    out
}

fn step_series(events: &[Event]) -> Vec<(usize, f64, f64, Option<f64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some((s.step, s.loss, s.target_density, s.phase)),
            _ => None,
        })
        .collect()
}

#[test]
fn east_and_sculpt_resume_exactly() {
    // EAST stopped mid-cycle and mid-phase; SCULPT-ing stopped right before a cycle
    // restart (19 steps per epoch, 4 cycles over 57 steps: restarts at 14, 28, 42).
    for (method, stop, extra) in [
        ("east", 13, vec!["model.dyrelu.phase_start=0.5"]),
        ("sculpt", 28, vec!["method.sculpt.init=\"snip\""]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut straight = config(method, &extra);
        straight.run.out = dir.path().join("straight");
        let full = run(straight.clone(), &RunOptions::default()).unwrap();
        let mut parted = straight.clone();
        parted.run.out = dir.path().join("parted");
        let stop = RunOptions {
            stop_after_steps: Some(stop),
            ..Default::default()
        };
        run(parted.clone(), &stop).unwrap();
        let resume = RunOptions {
            resume: true,
            ..Default::default()
        };
        let second = run(parted.clone(), &resume).unwrap();
        let read = |p: &std::path::Path| {
            sparselab::train::metrics::read_events(&p.join("metrics.jsonl")).unwrap()
        };
        let (a, b) = (read(&straight.run.out), read(&parted.run.out));
        assert_eq!(step_series(&a), step_series(&b), "{method}");
        assert_eq!(
            full.final_val_accuracy, second.final_val_accuracy,
            "{method}"
        );
        assert_eq!(full.itop, second.itop, "{method}");
        assert_eq!(full.train_flops, second.train_flops, "{method}");
        assert_eq!(full.effective_nnz, second.effective_nnz, "{method}");
        // Resuming a finished run only evaluates it: same figures (DyReLU phase included).
        let third = run(straight.clone(), &resume).unwrap();
        assert_eq!(third.steps, full.steps);
        assert_eq!(
            full.final_val_accuracy, third.final_val_accuracy,
            "{method}"
        );
    }
}
