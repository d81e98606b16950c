//! The kernel lab's benchmark (`sparselab bench kernels`): per layer shape of ResNet-18/34,
//! dense masked convolution against the sparse kernel at each sparsity; then whole-network
//! inference and training-step (forward + backward) times with the layers chosen by
//! measurement; then the update kernels (masked step, top-k) against their references.

use super::choice::conv_shapes;
use super::masked_step::{self, StepHyper};
use super::plan::SparsePlan;
use super::timing::{ConvShape, LayerTiming, ShapeKey, time_layer, time_ms};
use super::topk::{self, TopKQuery};
use crate::model::{Arch, ForwardCtx, LayerKernels, ModelConfig, ResNet};
use crate::rng::Rng;
use crate::sparsity::{Masks, sparse_layers};
use burn::tensor::{Device, Distribution, Tensor};
use std::collections::BTreeMap;
use std::fmt::Write;

fn model(arch: Arch, device: &Device) -> ResNet {
    ModelConfig {
        arch,
        ..Default::default()
    }
    .init(10, device)
}

/// Uniform random masks at `density` (at least one weight per layer).
pub fn uniform_masks(model: &ResNet, density: f64, seed: u64) -> Masks {
    let layers = sparse_layers(model);
    let counts: Vec<usize> = layers
        .iter()
        .map(|l| ((l.numel() as f64 * density).round() as usize).clamp(1, l.numel()))
        .collect();
    Masks::random(&layers, &counts, &mut Rng::new(seed))
}

/// One unique conv shape: how often each benchmarked architecture has it, and its timings
/// at each sparsity.
pub struct ShapeTimings {
    pub shape: ConvShape,
    pub counts: Vec<usize>,
    pub timings: Vec<LayerTiming>,
}

/// An update kernel against its reference, in ms (mean, std).
pub struct UpdateRow {
    pub what: String,
    pub kernel: (f64, f64),
    pub reference: (f64, f64),
}

/// The unique conv shapes of `archs` (full width), in order of first appearance, each with
/// how often each architecture has it.
pub fn unique_shapes(archs: &[Arch]) -> Vec<(ConvShape, Vec<usize>)> {
    let flex = Device::flex();
    let mut unique: Vec<(ConvShape, Vec<usize>)> = Vec::new();
    for (a, arch) in archs.iter().enumerate() {
        for shape in conv_shapes(&model(*arch, &flex)) {
            match unique.iter_mut().find(|(u, _)| u.key() == shape.key()) {
                Some((_, counts)) => counts[a] += 1,
                None => {
                    let mut counts = vec![0; archs.len()];
                    counts[a] = 1;
                    unique.push((shape, counts));
                }
            }
        }
    }
    unique
}

/// Per unique conv shape of `archs`, at each sparsity: dense vs sparse forward time.
pub fn layer_timings(
    archs: &[Arch],
    sparsities: &[f64],
    batch: usize,
    repeats: usize,
    device: &Device,
) -> Vec<ShapeTimings> {
    unique_shapes(archs)
        .into_iter()
        .map(|(shape, counts)| {
            let numel: usize = shape.weight.iter().product();
            let timings = sparsities
                .iter()
                .enumerate()
                .map(|(i, &sparsity)| {
                    let mut rng = Rng::new(7 + i as u64);
                    let k = ((numel as f64 * (1.0 - sparsity)).round() as usize).max(1);
                    let mut active = vec![false; numel];
                    for j in rng.sample_indices(numel, k) {
                        active[j] = true;
                    }
                    time_layer(&shape, &active, batch, device, repeats, false)
                })
                .collect();
            ShapeTimings {
                shape,
                counts,
                timings,
            }
        })
        .collect()
}

/// Whole-network times for one architecture and sparsity.
#[derive(Clone, Debug)]
pub struct NetworkTiming {
    pub arch: Arch,
    pub sparsity: f64,
    pub sparse_layers: usize,
    pub layers: usize,
    pub inference_dense: (f64, f64),
    pub inference_sparse: (f64, f64),
    pub train_dense: (f64, f64),
    pub train_sparse: (f64, f64),
}

/// Times the dense masked network against the one whose layers run sparse where the
/// per-layer measurement said sparse wins (`sparse_wins(path)`).
pub fn network_timing(
    arch: Arch,
    sparsity: f64,
    batch: usize,
    repeats: usize,
    device: &Device,
    sparse_wins: &dyn Fn(&ConvShape, f64) -> bool,
) -> NetworkTiming {
    let cpu_model = model(arch, &Device::flex());
    let masks = uniform_masks(&cpu_model, 1.0 - sparsity, 11);
    let shapes = conv_shapes(&cpu_model);
    let chosen: Vec<&str> = shapes
        .iter()
        .filter(|s| sparse_wins(s, 1.0 - sparsity))
        .map(|s| s.path.as_str())
        .collect();
    let measure = |device: &Device, train: bool| {
        let net = model(arch, device);
        let plan = SparsePlan::new(&masks, chosen.iter().copied(), device);
        let x = Tensor::<4>::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
        let run = |ctx: ForwardCtx| {
            time_ms(device, 1, repeats, || {
                let logits = net.forward(x.clone(), &ctx);
                if train {
                    let grads = logits.sum().backward();
                    drop(grads);
                    None
                } else {
                    Some(logits)
                }
            })
        };
        // Both with the device's BatchNorm (the fused one on Flex, in either mode).
        let norm = super::batch_norm::for_device(device);
        let sparse = ForwardCtx::new(None, Some(&plan as &dyn LayerKernels)).with_batch_norm(norm);
        (run(ForwardCtx::DENSE.with_batch_norm(norm)), run(sparse))
    };
    let (inference_dense, inference_sparse) = measure(&device.clone().inner(), false);
    let (train_dense, train_sparse) = measure(&device.clone().autodiff(), true);
    NetworkTiming {
        arch,
        sparsity,
        sparse_layers: chosen.len(),
        layers: shapes.len(),
        inference_dense,
        inference_sparse,
        train_dense,
        train_sparse,
    }
}

/// Masked step and top-k on one layer of `numel` weights: kernel vs reference.
pub fn update_kernel_rows(numel: usize, repeats: usize, device: &Device) -> Vec<UpdateRow> {
    let rand =
        |std: f32| Tensor::<1>::random([numel], Distribution::Normal(0.0, std as f64), device);
    let (w, m, g) = (rand(0.1), rand(0.01), rand(0.01));
    let mask = Tensor::<1>::random([numel], Distribution::Bernoulli(0.01), device);
    let clip = Tensor::<1>::ones([1], device);
    let hyper = |version| StepHyper {
        version,
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
    };
    let step = |version| {
        time_ms(device, 2, repeats, || {
            let (w, m, g) = (w.clone(), m.clone(), g.clone());
            masked_step::masked_sgd_step(w, m, g, Some(mask.clone()), clip.clone(), hyper(version))
        })
    };
    let (v1, v2) = (step(1), step(2));
    // Burn's own version of the same step: tensor ops, which its Fusion backend compiles
    // into fused elementwise kernels of its own.
    let reference = time_ms(device, 2, repeats, || {
        let (w, m, g) = (w.clone(), m.clone(), g.clone());
        masked_step::reference(w, m, g, Some(mask.clone()), clip.clone(), hyper(0))
    });
    let k = numel / 100;
    let query = TopKQuery {
        k,
        smallest: false,
        among_ones: false,
    };
    let kernel = time_ms(device, 2, repeats, || {
        topk::top_k_mask(g.clone(), mask.clone(), query)
    });
    // The CPU path it replaces: read scores and mask back, select on the host.
    let host = time_ms(device, 1, repeats, || {
        let s = g.clone().into_data().try_to_vec::<f32>().expect("f32");
        let e = mask.clone().into_data().try_to_vec::<f32>().expect("f32");
        topk::reference(&s, &e, query)
    });
    let row = |what: String, kernel, reference| UpdateRow {
        what,
        kernel,
        reference,
    };
    vec![
        row(
            format!("masked SGD step v1 (scalar), {numel} weights, vs tensor ops"),
            v1,
            reference,
        ),
        row(
            format!("masked SGD step v2 (vec4), {numel} weights, vs tensor ops"),
            v2,
            reference,
        ),
        row(
            format!("top-k grow (k = 1%), {numel} weights: radix kernel vs read-back + CPU select"),
            kernel,
            host,
        ),
    ]
}

fn ms(v: (f64, f64)) -> String {
    if v.0 >= 100.0 {
        format!("{:.0} ± {:.0}", v.0, v.1)
    } else {
        format!("{:.2} ± {:.2}", v.0, v.1)
    }
}

fn pct(sparsity: f64) -> String {
    let s = format!("{:.2}", sparsity * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The layer table as markdown.
pub fn layer_table(archs: &[Arch], rows: &[ShapeTimings]) -> String {
    let mut out = String::new();
    let names: Vec<String> = archs.iter().map(|a| format!("# in {}", a.name())).collect();
    let _ = writeln!(
        out,
        "| layer [out, in, k, k] | input | stride | {} | sparsity | nnz | dense ms | sparse ms | dense / sparse | runs |",
        names.join(" | ")
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|{}---:|---:|---:|---:|---:|---|",
        "---:|".repeat(archs.len())
    );
    for ShapeTimings {
        shape,
        counts,
        timings,
    } in rows
    {
        for t in timings {
            let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
            let _ = writeln!(
                out,
                "| {:?} | {}x{} | {} | {} | {} | {} | {} | {} | {:.2}x | {} |",
                shape.weight,
                shape.in_side,
                shape.in_side,
                shape.stride,
                counts.join(" | "),
                pct(1.0 - t.density),
                t.nnz,
                ms(t.dense_ms),
                ms(t.sparse_ms),
                t.speedup(),
                if t.sparse_wins() { "sparse" } else { "dense" },
            );
        }
    }
    out
}

/// The whole-network table as markdown.
pub fn network_table(rows: &[NetworkTiming]) -> String {
    let mut out = String::from(
        "| model | sparsity | sparse layers | inference dense ms | inference sparse ms | ratio | train step dense ms | train step sparse ms | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | {} | {} | {:.2}x | {} | {} | {:.2}x |",
            r.arch.name(),
            pct(r.sparsity),
            r.sparse_layers,
            r.layers,
            ms(r.inference_dense),
            ms(r.inference_sparse),
            r.inference_dense.0 / r.inference_sparse.0,
            ms(r.train_dense),
            ms(r.train_sparse),
            r.train_dense.0 / r.train_sparse.0,
        );
    }
    out
}

/// The per-layer decisions as a lookup: for each shape, (density, sparse wins) at each
/// measured density; callers take the nearest density.
pub fn decision_table(rows: &[ShapeTimings]) -> BTreeMap<ShapeKey, Vec<(f64, bool)>> {
    rows.iter()
        .map(|r| {
            let decisions = r.timings.iter().map(|t| (t.density, t.sparse_wins()));
            (r.shape.key(), decisions.collect())
        })
        .collect()
}
