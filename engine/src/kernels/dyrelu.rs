//! Kernel 6: DyReLU-B's piecewise-linear activation, fused, and the pooling its
//! coefficients start from, on Flex. Burn builds
//! `max(a1 x + b1, a2 x + b2)` from five broadcast tensor ops, and its backward pass from a
//! dozen more, each a full pass over the activation and a new buffer. While EAST's DyReLU
//! phase is on, those passes made a ResNet-34 step at 99.9% more than twice as slow as
//! RigL's. Here the activation is one pass, its input gradient one, and the gradient of the
//! four coefficients one more (sums per image and channel).
//!
//! The coefficients come from Burn's linear layers (`model::dyrelu`), whose backward pass
//! receives the coefficient gradient, after a pooling of our own: Burn's mean over a
//! dimension takes the gradient back to the activation's shape in three full passes (a
//! tensor of ones, scaled, then multiplied), where `plane_means_grad` writes it in one.
//! Flex only; elsewhere, and as the reference the tests compare outputs and gradients
//! with, Burn's ops (`model::dyrelu::forward_reference`).

mod autodiff;
mod flex;

use burn::backend::{Backend, Dispatch, backend_extension, tensor::FloatTensor};
use burn::tensor::{Device, Tensor};

#[backend_extension(Autodiff, Flex)]
pub trait FusedDyReluBackend: Backend {
    /// `max(a1 x + b1, a2 x + b2)` for `x` `[N, C, H, W]` and `coef` `[N, C, 4]` holding
    /// `a1, a2, b1, b2` per image and channel. A tie takes the first piece, as Burn's
    /// `max_pair` does.
    fn dyrelu_apply(x: FloatTensor<Self>, coef: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of `x`: `grad_out` times the slope of the piece that won.
    fn dyrelu_input_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradient of `coef` (`[N, C, 4]`): per image and channel, the sums of
    /// `grad_out * x` and of `grad_out` over the positions where each piece won.
    fn dyrelu_coef_grad(
        x: FloatTensor<Self>,
        coef: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// Each `[H, W]` plane's mean: `[N, C]` from `x` `[N, C, H, W]`.
    fn plane_means(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient of `plane_means`' input, `[N, C, height, width]`, for its output's
    /// gradient `grad_out` (`[N, C]`): every value of plane (n, c) is `grad_out[n, c]`
    /// times `1 / (height width)` rounded to f32, as Burn's mean gives it.
    fn plane_means_grad(
        grad_out: FloatTensor<Self>,
        height: usize,
        width: usize,
    ) -> FloatTensor<Self>;
}

/// Whether `device` has the fused activation (Flex, with or without autodiff).
pub fn is_available(device: &Device) -> bool {
    super::runs_flex(device)
}

/// Each plane's mean, `[N, C]` from `[N, C, H, W]`: DyReLU's pooling. Flex only
/// (`is_available`).
pub fn plane_means(x: Tensor<4>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedDyReluBackend>::plane_means(
        x.into_dispatch(),
    ))
}

/// The fused activation; `coef` is `[N, C, 4]` (`a1, a2, b1, b2`). Flex only
/// (`is_available`).
pub fn dyrelu_apply(x: Tensor<4>, coef: Tensor<3>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as FusedDyReluBackend>::dyrelu_apply(
        x.into_dispatch(),
        coef.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dyrelu::DyRelu;
    use crate::model::params::grads_by_path;
    use burn::optim::GradientsParams;
    use burn::tensor::TensorData;
    use std::collections::BTreeMap;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Random values in [-2, 2), with one plane all zeros (a channel a sparse network cut
    /// off: every value there ties the pieces' offsets) and one value exactly 0.
    fn activation(dims: [usize; 4], seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        let plane = dims[2] * dims[3];
        let mut v: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.next_f32() * 4.0 - 2.0)
            .collect();
        v[plane..2 * plane].fill(0.0);
        v[3 * plane + 1] = 0.0;
        v
    }

    #[test]
    fn plane_means_match_burns_mean_in_outputs_and_gradients() {
        let device = Device::flex().autodiff();
        let dims = [3, 4, 5, 6];
        let weights: Vec<f32> = activation([3, 4, 1, 1], 7);
        let direction = Tensor::<2>::from_data(TensorData::new(weights, [3, 4]), &device);
        let run = |fused: bool| {
            let x = Tensor::<4>::from_data(TensorData::new(activation(dims, 5), dims), &device)
                .require_grad();
            let means = if fused {
                plane_means(x.clone())
            } else {
                x.clone().reshape([3, 4, 30]).mean_dim(2).reshape([3, 4])
            };
            let grads = (means.clone() * direction.clone()).sum().backward();
            let gx = values(x.grad(&grads).unwrap());
            let means = means
                .inner()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap();
            (means, gx)
        };
        let ((means, gx), (ref_means, ref_gx)) = (run(true), run(false));
        assert!(max_diff(&means, &ref_means) < 1e-6, "means differ");
        // Each plane's gradient is its weight over 30, the same product as Burn's.
        assert_eq!(gx, ref_gx, "input gradients differ");
        assert!(gx.iter().any(|&g| g != 0.0));
    }

    #[test]
    fn fused_dyrelu_matches_burns_ops_in_outputs_and_gradients() {
        let device = Device::flex().autodiff();
        assert!(is_available(&device));
        let act = DyRelu::new(6, &device);
        let dims = [3, 6, 5, 4];
        let direction = Tensor::<4>::from_data(TensorData::new(activation(dims, 9), dims), &device);
        for phase in [1.0, 0.35] {
            let run = |fused: bool| {
                let x = Tensor::<4>::from_data(TensorData::new(activation(dims, 4), dims), &device)
                    .require_grad();
                let y = if fused {
                    act.forward(x.clone(), phase)
                } else {
                    act.forward_reference(x.clone(), phase)
                };
                let grads = (y.clone() * direction.clone()).sum().backward();
                let gx = values(x.grad(&grads).unwrap());
                let params = GradientsParams::from_grads(grads, &act);
                let by_path: BTreeMap<String, Vec<f32>> = grads_by_path(&act, &params)
                    .into_iter()
                    .map(|(p, g)| (p, g.into_data().convert::<f32>().try_to_vec().unwrap()))
                    .collect();
                (values(y.inner()), gx, by_path)
            };
            let (y, gx, gp) = run(true);
            let (ry, rgx, rgp) = run(false);
            assert!(max_diff(&y, &ry) < 1e-6, "phase {phase}: outputs differ");
            assert!(
                max_diff(&gx, &rgx) < 1e-5,
                "phase {phase}: input gradients differ"
            );
            assert_eq!(
                gp.keys().collect::<Vec<_>>(),
                rgp.keys().collect::<Vec<_>>()
            );
            for (path, g) in &gp {
                let scale = rgp[path].iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let d = max_diff(g, &rgp[path]);
                assert!(
                    d < 1e-4 * scale,
                    "phase {phase}: {path} gradient differs by {d}"
                );
            }
            assert!(
                gp.values().flatten().any(|&v| v != 0.0),
                "no parameter gradient"
            );
        }
    }
}
