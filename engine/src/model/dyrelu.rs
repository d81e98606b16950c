//! DyReLU-B (Chen et al., "Dynamic ReLU", 2020), the activation EAST phases out.
//!
//! Channel-wise and input-dependent: global average pool → FC(C→C/4) → ReLU →
//! FC(C/4→2K·C) → 2σ(·)−1 gives residuals (Δa_k, Δb_k) per sample and channel, and
//! y = max_k(a_k·x + b_k) with a_k = α_k + λ_a·Δa_k, b_k = β_k + λ_b·Δb_k, K = 2,
//! α = (1, 0), β = (0, 0), λ_a = 1, λ_b = 0.5.
//!
//! EAST's phase factor p blends these with plain ReLU's coefficients (a = (1, 0),
//! b = (0, 0)): coef = p·dyn + (1−p)·relu. Because α, β are ReLU's own coefficients this
//! is a_k = α_k + p·λ_a·Δa_k, b_k = p·λ_b·Δb_k. At p = 0 the layer is exactly ReLU and
//! is evaluated as one, so its parameters get no gradient: they are frozen.

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};

/// Linear pieces per channel.
pub const PIECES: usize = 2;
const LAMBDA_A: f32 = 1.0;
const LAMBDA_B: f32 = 0.5;
/// ReLU's coefficients (a_1, a_2, b_1, b_2), which are also DyReLU-B's α and β.
const RELU_COEFFICIENTS: [f32; 2 * PIECES] = [1.0, 0.0, 0.0, 0.0];
/// The hidden layer of the coefficient network is C / REDUCTION wide.
const REDUCTION: usize = 4;

#[derive(Module, Debug)]
pub struct DyRelu {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl DyRelu {
    pub fn new(channels: usize, device: &Device) -> Self {
        let hidden = (channels / REDUCTION).max(1);
        // Small initial residuals: DyReLU starts close to ReLU and learns away from it.
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3.0f64.sqrt(),
            fan_out_only: false,
        };
        Self {
            fc1: LinearConfig::new(channels, hidden)
                .with_initializer(init.clone())
                .init(device),
            fc2: LinearConfig::new(hidden, 2 * PIECES * channels)
                .with_initializer(init)
                .init(device),
        }
    }

    /// The activation at phase `phase` ∈ [0, 1]; `phase <= 0` is exactly ReLU.
    pub fn forward(&self, x: Tensor<4>, phase: f32) -> Tensor<4> {
        if phase <= 0.0 {
            return relu(x);
        }
        let coef = self.coefficient_table(x.clone(), phase);
        if crate::kernels::dyrelu::is_available(&x.device()) {
            crate::kernels::dyrelu::dyrelu_apply(x, coef)
        } else {
            apply_reference(x, coef)
        }
    }

    /// `forward` from Burn's tensor ops only, on every backend: the fused kernel's reference.
    pub fn forward_reference(&self, x: Tensor<4>, phase: f32) -> Tensor<4> {
        if phase <= 0.0 {
            return relu(x);
        }
        let coef = self.coefficient_table_reference(x.clone(), phase);
        apply_reference(x, coef)
    }

    /// The blended coefficients (a_1, a_2, b_1, b_2), each `[batch, C, 1, 1]`.
    pub fn coefficients(&self, x: Tensor<4>, phase: f32) -> [Tensor<4>; 2 * PIECES] {
        split(self.coefficient_table(x, phase))
    }

    /// The blended coefficients as one `[batch, C, 4]` table (a_1, a_2, b_1, b_2).
    pub fn coefficient_table(&self, x: Tensor<4>, phase: f32) -> Tensor<3> {
        let pooled = if crate::kernels::dyrelu::is_available(&x.device()) {
            crate::kernels::dyrelu::plane_means(x)
        } else {
            pooled_reference(x)
        };
        self.coefficients_of(pooled, phase)
    }

    /// `coefficient_table` from Burn's tensor ops only.
    fn coefficient_table_reference(&self, x: Tensor<4>, phase: f32) -> Tensor<3> {
        self.coefficients_of(pooled_reference(x), phase)
    }

    /// The table from the pooled activation `[batch, C]`.
    fn coefficients_of(&self, pooled: Tensor<2>, phase: f32) -> Tensor<3> {
        let [b, c] = pooled.dims();
        let device = pooled.device();
        let residuals = sigmoid(self.fc2.forward(relu(self.fc1.forward(pooled)))) * 2.0 - 1.0;
        let residuals = residuals.reshape([b, c, 2 * PIECES]);
        let scale = [LAMBDA_A, LAMBDA_A, LAMBDA_B, LAMBDA_B].map(|l| l * phase);
        let scale = constant(&scale, &device);
        let offset = constant(&RELU_COEFFICIENTS, &device);
        residuals * scale + offset
    }
}

/// Each plane's mean, `[batch, C]`, in tensor ops.
fn pooled_reference(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
}

/// `max(a1 x + b1, a2 x + b2)` from a `[batch, C, 4]` coefficient table, in tensor ops.
pub fn apply_reference(x: Tensor<4>, coef: Tensor<3>) -> Tensor<4> {
    let [a1, a2, b1, b2] = split(coef);
    (x.clone() * a1 + b1).max_pair(x * a2 + b2)
}

/// A `[batch, C, 4]` table as its four `[batch, C, 1, 1]` coefficients.
fn split(coef: Tensor<3>) -> [Tensor<4>; 2 * PIECES] {
    let [b, c, _] = coef.dims();
    std::array::from_fn(|k| coef.clone().narrow(2, k, 1).reshape([b, c, 1, 1]))
}

fn constant(values: &[f32; 2 * PIECES], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values.to_vec(), [1, 1, 2 * PIECES]), device)
}

/// Is this parameter path inside a DyReLU (dense, never masked, counted apart)?
pub fn is_dyrelu_path(path: &str) -> bool {
    path.split('.').any(|segment| segment.starts_with("dyrelu"))
}

/// EAST's phase schedule for DyReLU: 1 until `start` epochs, linear to 0 at `end`, then 0.
pub fn phase_at(epoch: f64, start: f64, end: f64) -> f64 {
    if epoch < start {
        1.0
    } else if epoch >= end {
        0.0
    } else {
        1.0 - (epoch - start) / (end - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::grads_by_path;
    use burn::optim::GradientsParams;

    fn input(device: &Device, seed: u64) -> Tensor<4> {
        let mut rng = crate::rng::Rng::new(seed);
        let data: Vec<f32> = (0..2 * 8 * 3 * 3)
            .map(|_| rng.next_f32() * 4.0 - 2.0)
            .collect();
        Tensor::from_data(TensorData::new(data, [2, 8, 3, 3]), device)
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn phase_zero_is_exactly_relu_on_both_paths() {
        let device = Device::flex();
        let act = DyRelu::new(8, &device);
        let x = input(&device, 3);
        let relu_values = values(relu(x.clone()));
        assert_eq!(values(act.forward(x.clone(), 0.0)), relu_values);
        // The blended formula itself (not just the shortcut) reduces to ReLU at p = 0.
        let [a1, a2, b1, b2] = act.coefficients(x.clone(), 0.0);
        let blended = (x.clone() * a1 + b1).max_pair(x.clone() * a2 + b2);
        assert_eq!(values(blended), relu_values);
        // At p = 1 it differs: the dynamic part is really used.
        assert_ne!(values(act.forward(x, 1.0)), relu_values);
    }

    /// Every parameter drawn from our seeded stream, so the check is the same on every run
    /// (Burn's initializers draw from an unseeded generator). The hidden layer's biases are
    /// positive so its units are live and the first layer's weights get a gradient.
    fn seeded(act: DyRelu, seed: u64) -> DyRelu {
        let mut rng = crate::rng::Rng::new(seed);
        crate::model::map_params(act, |path, w| {
            let n = w.dims()[0];
            let low = if path == "fc1.bias" { 0.1 } else { -0.5 };
            let v: Vec<f32> = (0..n).map(|_| low + rng.next_f32()).collect();
            Tensor::from_data(TensorData::new(v, [n]), &w.device())
        })
    }

    /// The central difference of `f` at 0, or None where `f` has a kink within ±eps
    /// (the one-sided slopes disagree): max and ReLU make the function piecewise linear,
    /// and a difference across a kink measures neither side's gradient.
    fn central_difference(f: impl Fn(f32) -> f32, eps: f32) -> Option<f32> {
        let (minus, zero, plus) = (f(-eps), f(0.0), f(eps));
        let (left, right) = ((zero - minus) / eps, (plus - zero) / eps);
        ((left - right).abs() < 1e-2 * (1.0 + left.abs())).then_some((plus - minus) / (2.0 * eps))
    }

    #[test]
    fn gradients_match_central_differences() {
        let device = Device::flex().autodiff();
        let act = seeded(DyRelu::new(8, &device), 11);
        let x = input(&device, 5);
        let direction = input(&device, 9);
        // A loss that mixes channels, so every coefficient matters.
        let loss = |m: &DyRelu, x: Tensor<4>| -> Tensor<1> {
            (m.forward(x, 0.7) * direction.clone()).sum()
        };
        let x_param = x.clone().require_grad();
        let grads = loss(&act, x_param.clone()).backward();
        let analytic_x = values(x_param.grad(&grads).unwrap());
        let param_grads = GradientsParams::from_grads(grads, &act);
        let by_path: std::collections::BTreeMap<_, _> =
            grads_by_path(&act, &param_grads).into_iter().collect();
        let analytic_w = |path: &str| -> Vec<f32> {
            by_path[path]
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };

        let eval = |m: &DyRelu, x: Tensor<4>| -> f32 { loss(m, x).into_scalar() };
        // Input gradient.
        let base: Vec<f32> = values(x.clone().inner());
        let indices: Vec<usize> = (0..base.len()).step_by(7).collect();
        let checked = compare_coordinates("x", &indices, &analytic_x, |i, d| {
            let mut v = base.clone();
            v[i] += d;
            eval(
                &act,
                Tensor::from_data(TensorData::new(v, [2, 8, 3, 3]), &device),
            )
        });
        assert!(
            checked >= 15,
            "only {checked} input coordinates were away from a kink"
        );
        // Weights of both layers of the coefficient network.
        for path in ["fc1.weight", "fc2.weight", "fc2.bias"] {
            let analytic = analytic_w(path);
            assert!(analytic.iter().any(|g| *g != 0.0), "{path} got no gradient");
            let indices: Vec<usize> = (0..analytic.len()).collect();
            let checked = compare_coordinates(path, &indices, &analytic, |i, d| {
                let m = crate::model::map_params(act.clone(), |p, w| {
                    if p != path {
                        return w;
                    }
                    let mut v = w.into_data().try_to_vec::<f32>().unwrap();
                    v[i] += d;
                    let n = v.len();
                    Tensor::from_data(TensorData::new(v, [n]), &device)
                });
                eval(&m, x.clone())
            });
            assert!(
                checked >= analytic.len() * 3 / 4,
                "only {checked} of {path}'s coordinates were away from a kink"
            );
        }
    }

    /// Asserts that autodiff's `analytic[i]` matches the central difference of
    /// `shifted(i, ·)` at every index away from a kink; returns how many were compared.
    fn compare_coordinates(
        name: &str,
        indices: &[usize],
        analytic: &[f32],
        shifted: impl Fn(usize, f32) -> f32,
    ) -> usize {
        let eps = 2e-3f32;
        let mut compared = 0;
        for &i in indices {
            let Some(numeric) = central_difference(|d| shifted(i, d), eps) else {
                continue;
            };
            assert!(
                (numeric - analytic[i]).abs() < 2e-2 * (1.0 + numeric.abs()),
                "d/d{name}[{i}]: numeric {numeric} vs autodiff {}",
                analytic[i]
            );
            compared += 1;
        }
        compared
    }

    #[test]
    fn phase_schedule() {
        assert_eq!(phase_at(0.0, 2.0, 4.0), 1.0);
        assert_eq!(phase_at(3.0, 2.0, 4.0), 0.5);
        assert_eq!(phase_at(4.0, 2.0, 4.0), 0.0);
        assert_eq!(phase_at(9.0, 2.0, 2.0), 0.0);
    }
}
