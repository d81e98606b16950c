//! The fused BatchNorm of Flex's training step against Burn's own: outputs, the gradients
//! of the input, gamma and beta, and the running statistics it moves.

use sparselab::burn::module::Param;
use sparselab::burn::nn::BatchNormConfig;
use sparselab::burn::tensor::{Device, Tensor, TensorData};
use sparselab::kernels::batch_norm::batch_norm_train;

#[path = "../kernel_inputs.rs"]
#[allow(dead_code)] // shared with the kernel tests, which use more of it
mod kernel_inputs;
use kernel_inputs::{Lcg, max_abs_diff};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn fused_batch_norm_matches_burns_in_outputs_gradients_and_running_statistics() {
    let device = Device::flex().autodiff();
    let mut rng = Lcg(11);
    let dims = [3, 5, 4, 6];
    let n: usize = dims.iter().product();
    // Per-channel offsets and scales, so every channel has its own statistics.
    let x_data: Vec<f32> = rng
        .uniform_vec(n)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i / 24 % 5) as f32) + (i / 24 % 5) as f32 - 2.0)
        .collect();
    let r = Tensor::<4>::from_data(TensorData::new(rng.uniform_vec(n), dims), &device);
    let run = |fused: bool| {
        let mut bn = BatchNormConfig::new(5).with_momentum(0.3).init(&device);
        let gamma = Tensor::<1>::from_data(TensorData::new(rng_vec(21, 5, 0.5), [5]), &device);
        let beta = Tensor::<1>::from_data(TensorData::new(rng_vec(22, 5, 0.0), [5]), &device);
        bn.gamma = Param::from_tensor(gamma);
        bn.beta = Param::from_tensor(beta);
        let x =
            Tensor::<4>::from_data(TensorData::new(x_data.clone(), dims), &device).require_grad();
        let y = if fused {
            batch_norm_train(&bn, x.clone())
        } else {
            bn.forward(x.clone())
        };
        // A random projection, so every output element gets its own gradient.
        let grads = (y.clone() * r.clone()).sum().backward();
        let gx = host(x.grad(&grads).unwrap());
        let gg = host(bn.gamma.val().grad(&grads).unwrap());
        let gb = host(bn.beta.val().grad(&grads).unwrap());
        let running = (
            host(bn.running_mean.value_sync().inner()),
            host(bn.running_var.value_sync().inner()),
        );
        (host(y.inner()), gx, gg, gb, running)
    };
    let (fused, burns) = (run(true), run(false));
    let close = |a: &[f32], b: &[f32], what: &str| {
        let d = max_abs_diff(a, b);
        assert!(d < 1e-4, "{what} differs by {d}");
    };
    close(&fused.0, &burns.0, "output");
    close(&fused.1, &burns.1, "input gradient");
    close(&fused.2, &burns.2, "gamma gradient");
    close(&fused.3, &burns.3, "beta gradient");
    close(&fused.4.0, &burns.4.0, "running mean");
    close(&fused.4.1, &burns.4.1, "running variance");
    // Not trivially equal: the statistics moved and the gradients are not zero.
    assert!(fused.4.0.iter().any(|m| m.abs() > 0.05), "{:?}", fused.4.0);
    assert!(fused.1.iter().any(|g| g.abs() > 1e-3));
}

/// `n` values in [offset - 1, offset + 1), from their own seed.
fn rng_vec(seed: u64, n: usize, offset: f32) -> Vec<f32> {
    Lcg(seed)
        .uniform_vec(n)
        .iter()
        .map(|v| v + offset)
        .collect()
}
