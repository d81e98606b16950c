//! The fused BatchNorm of Flex's training step against Burn's own, alone, with the ReLU it
//! can run in its passes, and with a residual block's sum and ReLU: outputs, the gradients
//! of the input (and the residual), gamma and beta, and the running statistics it moves.
//! Then the same three in inference mode, over running statistics.

use sparselab::burn::module::{Module, Param};
use sparselab::burn::nn::BatchNormConfig;
use sparselab::burn::tensor::activation::relu;
use sparselab::burn::tensor::{Device, Tensor, TensorData};
use sparselab::kernels::batch_norm::{
    batch_norm_add_relu_inference, batch_norm_add_relu_train, batch_norm_inference,
    batch_norm_train,
};

#[path = "../kernel_inputs.rs"]
#[allow(dead_code)] // shared with the kernel tests, which use more of it
mod kernel_inputs;
use kernel_inputs::{Lcg, max_abs_diff};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// What follows the BatchNorm.
#[derive(Clone, Copy, PartialEq)]
enum After {
    Nothing,
    Relu,
    /// `relu(bn(x) + residual)`.
    AddRelu,
}

#[test]
fn fused_batch_norm_matches_burns_in_outputs_gradients_and_running_statistics() {
    compare_with_burns(After::Nothing);
}

#[test]
fn fused_batch_norm_with_relu_matches_burns_batch_norm_then_relu() {
    compare_with_burns(After::Relu);
}

#[test]
fn fused_residual_end_matches_burns_batch_norm_plus_residual_then_relu() {
    compare_with_burns(After::AddRelu);
}

fn compare_with_burns(after: After) {
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
    let residual_data = rng.uniform_vec(n);
    let run = |fused: bool| {
        let mut bn = BatchNormConfig::new(5).with_momentum(0.3).init(&device);
        let gamma = Tensor::<1>::from_data(TensorData::new(rng_vec(21, 5, 0.5), [5]), &device);
        let beta = Tensor::<1>::from_data(TensorData::new(rng_vec(22, 5, 0.0), [5]), &device);
        bn.gamma = Param::from_tensor(gamma);
        bn.beta = Param::from_tensor(beta);
        let x =
            Tensor::<4>::from_data(TensorData::new(x_data.clone(), dims), &device).require_grad();
        let residual =
            Tensor::<4>::from_data(TensorData::new(residual_data.clone(), dims), &device)
                .require_grad();
        let y = match (fused, after) {
            (true, After::AddRelu) => batch_norm_add_relu_train(&bn, x.clone(), residual.clone()),
            (true, _) => batch_norm_train(&bn, x.clone(), after == After::Relu),
            (false, After::Nothing) => bn.forward(x.clone()),
            (false, After::Relu) => relu(bn.forward(x.clone())),
            (false, After::AddRelu) => relu(bn.forward(x.clone()) + residual.clone()),
        };
        // A random projection, so every output element gets its own gradient.
        let grads = (y.clone() * r.clone()).sum().backward();
        let gx = host(x.grad(&grads).unwrap());
        let gg = host(bn.gamma.val().grad(&grads).unwrap());
        let gb = host(bn.beta.val().grad(&grads).unwrap());
        let gr = residual.grad(&grads).map(host);
        let running = (
            host(bn.running_mean.value_sync().inner()),
            host(bn.running_var.value_sync().inner()),
        );
        (host(y.inner()), gx, gg, gb, running, gr)
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
    assert_eq!(
        fused.5.is_some(),
        after == After::AddRelu,
        "a residual gradient"
    );
    if let (Some(a), Some(b)) = (&fused.5, &burns.5) {
        close(a, b, "residual gradient");
        assert!(a.contains(&0.0) && a.iter().any(|g| g.abs() > 1e-3));
    }
    // Not trivially equal: the statistics moved and the gradients are not zero.
    assert!(fused.4.0.iter().any(|m| m.abs() > 0.05), "{:?}", fused.4.0);
    assert!(fused.1.iter().any(|g| g.abs() > 1e-3));
    if after != After::Nothing {
        // The ReLU cut some outputs and passed others, so both branches were compared.
        let cut = fused.0.iter().filter(|&&y| y == 0.0).count();
        assert!(
            cut > 0 && cut < fused.0.len(),
            "{cut} of {} cut",
            fused.0.len()
        );
    }
}

/// `n` values in [offset - 1, offset + 1), from their own seed.
fn rng_vec(seed: u64, n: usize, offset: f32) -> Vec<f32> {
    Lcg(seed)
        .uniform_vec(n)
        .iter()
        .map(|v| v + offset)
        .collect()
}

#[test]
fn fused_inference_matches_burns_with_the_running_statistics() {
    for after in [After::Nothing, After::Relu, After::AddRelu] {
        compare_inference_with_burns(after);
    }
}

/// Inference (no autodiff): the normalisation by the running statistics, which a few
/// training steps have moved away from their initial zeros and ones.
fn compare_inference_with_burns(after: After) {
    let train_device = Device::flex().autodiff();
    let device = Device::flex();
    let dims = [2, 4, 3, 5];
    let n: usize = dims.iter().product();
    let mut bn = BatchNormConfig::new(4)
        .with_momentum(0.5)
        .init(&train_device);
    bn.gamma = Param::from_tensor(Tensor::from_data(
        TensorData::new(rng_vec(31, 4, 0.5), [4]),
        &train_device,
    ));
    bn.beta = Param::from_tensor(Tensor::from_data(
        TensorData::new(rng_vec(32, 4, 0.0), [4]),
        &train_device,
    ));
    for seed in 0..3 {
        let x: Vec<f32> = rng_vec(40 + seed, n, 1.5).iter().map(|v| v * 3.0).collect();
        let _ = bn.forward(Tensor::<4>::from_data(
            TensorData::new(x, dims),
            &train_device,
        ));
    }
    let bn = bn.valid();
    let mean = host(bn.running_mean.value_sync());
    let var = host(bn.running_var.value_sync());
    assert!(mean.iter().all(|m| m.abs() > 0.1), "running mean {mean:?}");
    assert!(
        var.iter().all(|v| (v - 1.0).abs() > 0.1),
        "running variance {var:?}"
    );

    // Around the running mean (about 3.9), so the ReLU passes some and cuts others.
    let x = Tensor::<4>::from_data(TensorData::new(rng_vec(50, n, 4.0), dims), &device);
    let residual = Tensor::<4>::from_data(TensorData::new(rng_vec(51, n, 0.0), dims), &device);
    let (fused, burns) = match after {
        After::Nothing => (batch_norm_inference(&bn, x.clone(), false), bn.forward(x)),
        After::Relu => (
            batch_norm_inference(&bn, x.clone(), true),
            relu(bn.forward(x)),
        ),
        After::AddRelu => (
            batch_norm_add_relu_inference(&bn, x.clone(), residual.clone()),
            relu(bn.forward(x) + residual),
        ),
    };
    let (fused, burns) = (host(fused), host(burns));
    let d = max_abs_diff(&fused, &burns);
    assert!(d < 1e-5, "inference output differs by {d}");
    if after != After::Nothing {
        let cut = fused.iter().filter(|&&y| y == 0.0).count();
        assert!(cut > 0 && cut < fused.len(), "{cut} of {} cut", fused.len());
    }
}
