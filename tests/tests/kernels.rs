//! The kernel lab's correctness tests: every WGSL kernel against its reference, outputs and
//! gradients, on wgpu (lavapipe here, a real GPU elsewhere) and on Flex. Small shapes:
//! lavapipe is slow, but it runs the very shader text the browser runs. The sparse
//! convolution op's own tests: `sparse_conv.rs`.

use sparselab::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use sparselab::kernels::masked_step::{self, StepHyper};
use sparselab::kernels::sparse_index::{SparseIndex, WeightLayout};
use sparselab::kernels::topk::{self, TopKQuery};

#[path = "../kernel_inputs.rs"]
mod kernel_inputs;
use kernel_inputs::{Lcg, as_f32, max_abs_diff, tensor1};

#[path = "../kernel_devices.rs"]
mod kernel_devices;
use kernel_devices::{devices, host, wgpu};

#[test]
fn masked_step_matches_the_tensor_reference_and_zeroes_pruned_weights() {
    let mut rng = Lcg(7);
    let n = 1000;
    let (w, m, g) = (rng.uniform_vec(n), rng.uniform_vec(n), rng.uniform_vec(n));
    let mask = rng.bools(n, 0.3);
    for device in devices() {
        for (nesterov, has_mask, version) in [
            (true, true, 1),
            (true, true, 2),
            (false, true, 2),
            (true, false, 1),
            (true, false, 2),
        ] {
            let hyper = StepHyper {
                version,
                lr: 0.1,
                momentum: 0.9,
                weight_decay: 5e-4,
                nesterov,
            };
            let mask_t = has_mask.then(|| tensor1(&as_f32(&mask), &device));
            let clip = tensor1(&[0.7], &device);
            let args = || {
                (
                    tensor1(&w, &device),
                    tensor1(&m, &device),
                    tensor1(&g, &device),
                )
            };
            let (w0, m0, g0) = args();
            let (kw, km) =
                masked_step::masked_sgd_step(w0, m0, g0, mask_t.clone(), clip.clone(), hyper);
            let (w1, m1, g1) = args();
            let (rw, rm) = masked_step::reference(w1, m1, g1, mask_t, clip, hyper);
            let (kw, km, rw, rm) = (host(kw), host(km), host(rw), host(rm));
            let what = format!("{device:?}, {hyper:?}");
            assert!(max_abs_diff(&kw, &rw) < 1e-6, "weights differ: {what}");
            assert!(max_abs_diff(&km, &rm) < 1e-6, "momentum differs: {what}");
            // The step changed something, and pruned entries are exactly zero.
            assert!(max_abs_diff(&kw, &w) > 1e-3);
            for i in 0..n {
                if has_mask && !mask[i] {
                    assert_eq!((kw[i], km[i]), (0.0, 0.0), "pruned entry {i} not zero");
                } else {
                    assert!(kw[i].is_finite() && kw[i] != 0.0, "entry {i}: {}", kw[i]);
                }
            }
        }
    }
}

#[test]
fn masked_step_leaves_its_inputs_untouched() {
    // The kernel updates buffers in place (on wgpu and Flex), so it must copy buffers others
    // still hold.
    for device in [Some(Device::flex()), wgpu()].into_iter().flatten() {
        let w = tensor1(&[1.0, 2.0, 3.0], &device);
        let m = tensor1(&[0.0; 3], &device);
        let g = tensor1(&[1.0; 3], &device);
        let hyper = StepHyper {
            version: 0,
            lr: 0.5,
            momentum: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        };
        let (nw, _) =
            masked_step::masked_sgd_step(w.clone(), m, g, None, tensor1(&[1.0], &device), hyper);
        assert_eq!(host(nw), vec![0.5, 1.5, 2.5], "{device:?}");
        assert_eq!(host(w), vec![1.0, 2.0, 3.0], "{device:?}");
    }
}

#[test]
fn top_k_is_exact_with_ties_broken_by_index() {
    let mut rng = Lcg(11);
    // Several 256-element chunks; scores quantised so ties are common, zeros included
    // (freshly grown weights), negatives (magnitude is what counts) and one NaN.
    let n = 70_000;
    let mut scores: Vec<f32> = (0..n)
        .map(|_| ((rng.next() * 40.0).floor() - 20.0) / 8.0)
        .collect();
    scores[123] = f32::NAN;
    let eligible = as_f32(&rng.bools(n, 0.6));
    let ones = eligible.iter().filter(|e| **e == 1.0).count();
    let zeros = n - ones;
    let Some(device) = wgpu() else { return };
    let (s_t, e_t) = (tensor1(&scores, &device), tensor1(&eligible, &device));
    let cases = [
        (0, true, true),
        (1, false, true),
        (37, true, true),
        (5_000, false, true),
        (ones - 1, true, true),
        (ones, false, true),
        (ones + 10, true, true),
        (300, false, false),
        (zeros - 3, true, false),
    ];
    for (k, smallest, among_ones) in cases {
        let query = TopKQuery {
            k,
            smallest,
            among_ones,
        };
        let selected = host(topk::top_k_mask(s_t.clone(), e_t.clone(), query));
        let got: Vec<usize> = (0..n).filter(|&i| selected[i] == 1.0).collect();
        assert!(selected.iter().all(|&s| s == 0.0 || s == 1.0));
        let want = topk::reference(&scores, &eligible, query);
        assert_eq!(got.len(), want.len(), "count for {query:?}");
        assert_eq!(got, want, "selection for {query:?}");
        // Flex runs the reference through the same extension.
        let flex = Device::flex();
        let on_flex = host(topk::top_k_mask(
            tensor1(&scores, &flex),
            tensor1(&eligible, &flex),
            query,
        ));
        assert_eq!(on_flex, selected);
    }
}

#[test]
fn top_k_ranks_nan_below_zero_and_level_with_infinity_when_pruning() {
    let Some(device) = wgpu() else { return };
    let scores = [0.0, f32::NAN, 0.0, 1.0, f32::INFINITY, -0.0, f32::NAN];
    let eligible = [1.0; 7];
    for (k, smallest) in [(4, false), (5, false), (6, true), (2, true)] {
        let query = TopKQuery {
            k,
            smallest,
            among_ones: true,
        };
        let selected = host(topk::top_k_mask(
            tensor1(&scores, &device),
            tensor1(&eligible, &device),
            query,
        ));
        let got: Vec<usize> = (0..7).filter(|&i| selected[i] == 1.0).collect();
        assert_eq!(got, topk::reference(&scores, &eligible, query), "{query:?}");
    }
    // Largest 4 is inf, 1.0 and two zeros: never a NaN over a zero.
    assert_eq!(
        topk::reference(
            &scores,
            &eligible,
            TopKQuery {
                k: 4,
                smallest: false,
                among_ones: true
            }
        ),
        vec![0, 2, 3, 4]
    );
}

#[test]
fn index_tensors_are_32_bit_on_wgpu() {
    // The shaders read the index as array<i32>; a wider default int type would misread it.
    let Some(device) = wgpu() else { return };
    let t = Tensor::<1, Int>::from_data(TensorData::new(vec![1i32, 2], [2]), &device);
    assert_eq!(t.dtype(), sparselab::burn::tensor::DType::I32);
}

#[test]
fn uploaded_indexes_are_32_bit_on_every_device() {
    // The shaders read array<i32>, and Flex's loops borrow an i32 buffer in place.
    let layout = WeightLayout::conv([2, 2, 3, 3]);
    let active: Vec<bool> = (0..layout.numel()).map(|i| i % 2 == 0).collect();
    for device in devices() {
        let index = SparseIndex::new(layout, &active).to_device(&device);
        for t in [
            &index.row_start,
            &index.row_entries,
            &index.col_start,
            &index.col_entries,
        ] {
            assert_eq!(t.dtype(), sparselab::burn::tensor::DType::I32, "{device:?}");
        }
    }
}

#[test]
fn a_model_on_the_sparse_plan_gives_the_dense_masked_logits() {
    use sparselab::kernels::lab::uniform_masks;
    use sparselab::kernels::plan::SparsePlan;
    use sparselab::model::{Arch, ForwardCtx, LayerKernels, ModelConfig, map_params};
    for device in devices() {
        let model = ModelConfig {
            arch: Arch::Resnet8,
            ..Default::default()
        }
        .init(10, &device);
        let masks = uniform_masks(&model, 0.1, 3);
        // The dense masked model: pruned weights are zero, as in training.
        let dense = map_params(model, |path, w| match masks.get(path) {
            Some(m) => w * tensor1(&as_f32(&m.active), &device),
            None => w,
        });
        let all: Vec<&str> = masks.layers.iter().map(|l| l.path.as_str()).collect();
        let plan = SparsePlan::new(&masks, all.iter().copied(), &device);
        assert_eq!(plan.sparse_layers().count(), masks.layers.len());
        let sparse = ForwardCtx::new(None, Some(&plan as &dyn LayerKernels));
        let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let (want, got) = (
            dense.forward(x.clone(), &ForwardCtx::DENSE),
            dense.forward(x, &sparse),
        );
        let (want, got) = (host(want.reshape([30])), host(got.reshape([30])));
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f32::max);
        assert!(
            max_abs_diff(&want, &got) < 1e-4 * scale.max(1.0),
            "{device:?}: {want:?} vs {got:?}"
        );
    }
}

#[test]
fn training_on_the_sparse_kernels_follows_dense_masked_training() {
    use sparselab_e2e::{config_from, synthetic_trainer};
    // RigL with a grow step (dense gradients) at step 2: steps 0, 1 and 3 run the sparse
    // kernels forward and backward, step 2 the dense convolutions.
    let base = [
        "model.arch=\"resnet8\"",
        "method.name=\"rigl\"",
        "sparsity.sparsity=0.9",
        "method.update_every=2",
        "batch_size=16",
        "data.synthetic_size=400",
        "optim.clip_norm=1.0",
    ];
    let run = |kernels: &str| {
        let c = config_from(&base, &[&format!("run.kernels=\"{kernels}\"")]);
        let mut t = synthetic_trainer(&c);
        let losses: Vec<f64> = (0..4)
            .map(|_| pollster::block_on(t.train_step()).unwrap().loss)
            .collect();
        (t, losses)
    };
    let (dense, dense_losses) = run("dense");
    let (sparse, sparse_losses) = run("sparse");
    assert!(dense.sparse_kernel_layers().is_empty());
    assert_eq!(
        sparse.sparse_kernel_layers().len(),
        sparse.masks().layers.len()
    );
    assert!(
        sparse.mask_state().plan().is_some(),
        "the plan survives optimizer steps"
    );
    for (d, s) in dense_losses.iter().zip(&sparse_losses) {
        assert!(
            (d - s).abs() < 1e-3 * d.abs().max(1.0),
            "{dense_losses:?} vs {sparse_losses:?}"
        );
    }
    // The grow step ran dense in both, so it chose the same weights.
    assert_eq!(dense.masks(), sparse.masks());
    // Evaluation (inference mode, no autodiff) runs on the plan too, and agrees.
    let eval = |t: &sparselab::train::Trainer| {
        pollster::block_on(t.evaluate_validation())
            .unwrap()
            .expect("a validation split")
    };
    let (de, se) = (eval(&dense), eval(&sparse));
    assert!(
        (de.loss - se.loss).abs() < 1e-3 * de.loss.max(1.0),
        "{de:?} vs {se:?}"
    );
    // A resumed run keeps the layer choice written in its checkpoint (auto would measure
    // again, and a second measurement may choose differently).
    let mut ckpt = pollster::block_on(sparse.checkpoint()).unwrap();
    let kept = vec![sparse.sparse_kernel_layers()[1].clone()];
    ckpt.meta.sparse_kernel_layers = Some(kept.clone());
    let set = sparselab::data::synthetic::generate(400, 0);
    let resumed =
        sparselab::train::Trainer::from_checkpoint(&ckpt, set, Device::flex().autodiff()).unwrap();
    assert_eq!(resumed.sparse_kernel_layers(), kept);
    let plan = resumed.mask_state().plan().expect("a plan");
    assert_eq!(
        plan.sparse_layers().collect::<Vec<_>>(),
        vec![kept[0].as_str()]
    );
    // The losses moved, so the comparison is not between two untrained networks.
    assert!(
        dense_losses
            .iter()
            .any(|l| (l - dense_losses[0]).abs() > 1e-4)
    );
}

#[test]
fn training_on_the_wgsl_kernels_follows_dense_masked_training() {
    // The same comparison as above, on wgpu: the trainer runs the WGSL forward and backward
    // kernels and the masked-step kernel. Small: lavapipe is slow.
    let Some(device) = wgpu() else { return };
    let base = [
        "model.arch=\"resnet8\"",
        "model.width=0.5",
        "method.name=\"rigl\"",
        "sparsity.sparsity=0.95",
        "method.update_every=2",
        "batch_size=8",
        "data.synthetic_size=200",
    ];
    let run = |kernels: &str| {
        let c = sparselab_e2e::config_from(&base, &[&format!("run.kernels=\"{kernels}\"")]);
        let set = sparselab::data::synthetic::generate(c.data.synthetic_size, c.seed);
        let data = sparselab::train::TrainData::new(set, c.data.val_fraction, c.seed);
        let mut t = sparselab::train::Trainer::new(c, data, device.clone().autodiff()).unwrap();
        let losses: Vec<f64> = (0..3)
            .map(|_| pollster::block_on(t.train_step()).unwrap().loss)
            .collect();
        (t, losses)
    };
    let (dense, dense_losses) = run("dense");
    let (sparse, sparse_losses) = run("sparse");
    assert!(!sparse.sparse_kernel_layers().is_empty());
    for (d, s) in dense_losses.iter().zip(&sparse_losses) {
        assert!(
            (d - s).abs() < 1e-3 * d.abs().max(1.0),
            "{dense_losses:?} vs {sparse_losses:?}"
        );
    }
    assert_eq!(dense.masks(), sparse.masks());
}

#[test]
fn masked_step_on_flex_gives_the_references_bits_and_zeroes_pruned_entries() {
    // Flex's one-pass loop runs the reference's operations in its order, element by element,
    // on kept entries; pruned ones become +0.0 (the reference's `value * 0` can be -0.0).
    let device = Device::flex();
    let mut rng = Lcg(13);
    let n = 300_001; // several threads' chunks and a ragged end
    let (w, m, g) = (rng.uniform_vec(n), rng.uniform_vec(n), rng.uniform_vec(n));
    let mask = as_f32(&rng.bools(n, 0.1));
    for (nesterov, has_mask) in [(true, true), (false, true), (true, false)] {
        let hyper = StepHyper {
            version: 0,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov,
        };
        let t = |v: &[f32]| tensor1(v, &device);
        let mask_t = has_mask.then(|| t(&mask));
        let clip = t(&[0.7]);
        let (kw, km) =
            masked_step::masked_sgd_step(t(&w), t(&m), t(&g), mask_t.clone(), clip.clone(), hyper);
        let (rw, rm) = masked_step::reference(t(&w), t(&m), t(&g), mask_t, clip, hyper);
        let expected = |reference: Vec<f32>| -> Vec<u32> {
            reference
                .iter()
                .enumerate()
                .map(|(i, v)| match has_mask && mask[i] == 0.0 {
                    true => 0,
                    false => v.to_bits(),
                })
                .collect()
        };
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(
            bits(host(kw)),
            expected(host(rw)),
            "weights, nesterov {nesterov}, mask {has_mask}"
        );
        assert_eq!(
            bits(host(km)),
            expected(host(rm)),
            "momentum, nesterov {nesterov}, mask {has_mask}"
        );
    }
}

#[test]
fn masked_norm_on_flex_matches_the_tensor_ops() {
    use sparselab::kernels::masked_norm::{masked_sum_squares, reference};
    let device = Device::flex();
    let mut rng = Lcg(17);
    let n = 300_001; // several chunks and a ragged end
    let g = rng.uniform_vec(n);
    let mask = as_f32(&rng.bools(n, 0.1));
    let t = |v: &[f32]| tensor1(v, &device);
    for has_mask in [true, false] {
        let mask_t = has_mask.then(|| t(&mask));
        let fused = host(masked_sum_squares(t(&g), mask_t.clone()))[0];
        let tensor_ops = host(reference(t(&g), mask_t))[0];
        // About n / 3 (or a tenth of it with the mask): the two differ in summation order.
        assert!(
            (fused - tensor_ops).abs() <= 1e-4 * tensor_ops,
            "mask {has_mask}: {fused} vs {tensor_ops}"
        );
        assert!(fused > if has_mask { 8_000.0 } else { 90_000.0 }, "{fused}");
    }
}
