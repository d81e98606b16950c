//! The sparse convolution and linear ops against Burn's dense convolution of the masked
//! weight: outputs, input gradients and weight gradients (at active positions, or at every
//! position when asked), on wgpu (lavapipe here) and on Flex.

use sparselab::burn::tensor::{Device, Distribution, Tensor, TensorData};
use sparselab::kernels::sparse_conv::{
    WeightGrad, reference_conv2d, sparse_conv2d_with, sparse_linear, sparse_linear_with,
};
use sparselab::kernels::sparse_index::{SparseIndex, WeightLayout};

#[path = "../kernel_inputs.rs"]
mod kernel_inputs;
use kernel_inputs::{Lcg, as_f32, max_abs_diff, tensor1};

#[path = "../kernel_devices.rs"]
mod kernel_devices;
use kernel_devices::{devices, host, wgpu};

fn host4(t: Tensor<4>) -> Vec<f32> {
    let n = t.dims().iter().product::<usize>();
    host(t.reshape([n]))
}

struct ConvCase {
    batch: usize,
    in_channels: usize,
    out_channels: usize,
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    density: f32,
}

fn check_conv(case: &ConvCase, device: &Device, seed: u64, weight_grad: WeightGrad) {
    let mut rng = Lcg(seed);
    let dims = [
        case.out_channels,
        case.in_channels,
        case.kernel,
        case.kernel,
    ];
    let layout = WeightLayout::conv(dims);
    let active = rng.bools(layout.numel(), case.density);
    let index = SparseIndex::new(layout, &active).to_device(device);
    let x_dims = [case.batch, case.in_channels, case.size, case.size];
    let x_data = rng.uniform_vec(x_dims.iter().product());
    let w_data = rng.uniform_vec(layout.numel());
    let ad = device.clone().autodiff();
    let input = |dev: &Device| {
        let x = Tensor::<4>::from_data(TensorData::new(x_data.clone(), x_dims), dev).require_grad();
        let w = Tensor::<4>::from_data(TensorData::new(w_data.clone(), dims), dev).require_grad();
        (x, w)
    };
    let stride = [case.stride; 2];
    let padding = [case.padding; 2];
    let (x, w) = input(&ad);
    let y = sparse_conv2d_with(x.clone(), w.clone(), &index, stride, padding, weight_grad);
    let (rx, rw) = input(&ad);
    let mask = Tensor::<4>::from_data(TensorData::new(as_f32(&active), dims), &ad);
    // The dense reference differentiates the masked weight itself: its gradient at a
    // pruned position is what growing that weight would see.
    let (rw, mask) = match weight_grad {
        WeightGrad::Active => (rw, mask),
        WeightGrad::Dense => (
            (rw * mask.clone()).detach().require_grad(),
            mask.ones_like(),
        ),
    };
    let ry = reference_conv2d(rx.clone(), rw.clone(), mask, stride, padding);
    assert_eq!(y.dims(), ry.dims());
    // A random projection of the output, so every output element gets its own gradient.
    let r = Tensor::<4>::random(y.dims(), Distribution::Uniform(-1.0, 1.0), &ad);
    let grads = (y.clone() * r.clone()).sum().backward();
    let rgrads = (ry.clone() * r).sum().backward();
    let tol = 1e-4;
    let what = format!("{} on {device:?}", case_name(case));
    let (yv, ryv) = (host4(y.inner()), host4(ry.inner()));
    assert!(max_abs_diff(&yv, &ryv) < tol, "forward differs: {what}");
    let gx = host4(x.grad(&grads).unwrap());
    let rgx = host4(rx.grad(&rgrads).unwrap());
    assert!(
        max_abs_diff(&gx, &rgx) < tol,
        "input gradient differs: {what}"
    );
    let gw = host4(w.grad(&grads).unwrap());
    let rgw = host4(rw.grad(&rgrads).unwrap());
    for i in 0..gw.len() {
        if active[i] || weight_grad == WeightGrad::Dense {
            assert!((gw[i] - rgw[i]).abs() < tol, "weight gradient {i}: {what}");
        } else {
            assert_eq!(gw[i], 0.0, "pruned weight {i} got a gradient: {what}");
        }
    }
    if weight_grad == WeightGrad::Dense && case.density < 1.0 && case.density > 0.0 {
        let pruned_nonzero = (0..gw.len())
            .filter(|&i| !active[i] && gw[i] != 0.0)
            .count();
        assert!(
            pruned_nonzero > 0,
            "no pruned weight got a gradient: {what}"
        );
    }
}

fn case_name(c: &ConvCase) -> String {
    format!(
        "{}x{}x{}x{} -> {} k{} s{} p{} density {}",
        c.batch,
        c.in_channels,
        c.size,
        c.size,
        c.out_channels,
        c.kernel,
        c.stride,
        c.padding,
        c.density
    )
}

fn conv_cases() -> Vec<ConvCase> {
    let case = |size, kernel, stride, padding, density| ConvCase {
        batch: 2,
        in_channels: 5,
        out_channels: 6,
        size,
        kernel,
        stride,
        padding,
        density,
    };
    vec![
        case(9, 3, 1, 1, 0.3),   // ResNet 3x3
        case(9, 3, 2, 1, 0.3),   // downsampling 3x3
        case(8, 1, 2, 0, 0.5),   // 1x1 shortcut
        case(7, 3, 1, 1, 1.0),   // dense mask
        case(7, 3, 1, 1, 0.0),   // everything pruned
        case(10, 5, 2, 2, 0.05), // wider kernel, very sparse
    ]
}

#[test]
fn sparse_conv_matches_dense_masked_conv_in_outputs_and_gradients_on_wgpu() {
    let Some(device) = wgpu() else { return };
    for (i, case) in conv_cases().iter().enumerate() {
        check_conv(case, &device, 100 + i as u64, WeightGrad::Active);
        check_conv(case, &device, 300 + i as u64, WeightGrad::Dense);
    }
}

#[test]
fn sparse_conv_matches_dense_masked_conv_in_outputs_and_gradients_on_flex() {
    for (i, case) in conv_cases().iter().enumerate() {
        check_conv(case, &Device::flex(), 200 + i as u64, WeightGrad::Active);
        check_conv(case, &Device::flex(), 400 + i as u64, WeightGrad::Dense);
    }
}

#[test]
fn sparse_linear_gives_the_weight_gradient_asked_for() {
    for device in devices() {
        let ad = device.clone().autodiff();
        let mut rng = Lcg(6);
        let (d_in, d_out, batch) = (9, 4, 3);
        let layout = WeightLayout::linear([d_in, d_out]);
        let active = rng.bools(layout.numel(), 0.3);
        let index = SparseIndex::new(layout, &active).to_device(&ad);
        let w_data = rng.uniform_vec(d_in * d_out);
        let x_data = rng.uniform_vec(batch * d_in);
        let r_data = rng.uniform_vec(batch * d_out);
        // d(sum(y * r))/dW = x^T r at every position; the active one keeps only the mask's.
        let mut want = vec![0f32; d_in * d_out];
        for b in 0..batch {
            for i in 0..d_in {
                for o in 0..d_out {
                    want[i * d_out + o] += x_data[b * d_in + i] * r_data[b * d_out + o];
                }
            }
        }
        for wg in [WeightGrad::Active, WeightGrad::Dense] {
            let w = Tensor::<2>::from_data(TensorData::new(w_data.clone(), [d_in, d_out]), &ad)
                .require_grad();
            let x = Tensor::<2>::from_data(TensorData::new(x_data.clone(), [batch, d_in]), &ad);
            let r = Tensor::<2>::from_data(TensorData::new(r_data.clone(), [batch, d_out]), &ad);
            let y = sparse_linear_with(x, w.clone(), None, &index, wg);
            let grads = (y * r).sum().backward();
            let gw = host(w.grad(&grads).unwrap().reshape([d_in * d_out]));
            for i in 0..gw.len() {
                let expected = if active[i] || wg == WeightGrad::Dense {
                    want[i]
                } else {
                    0.0
                };
                assert!(
                    (gw[i] - expected).abs() < 1e-5,
                    "{device:?} {wg:?} weight {i}: {} vs {expected}",
                    gw[i]
                );
            }
        }
    }
}

#[test]
fn sparse_linear_matches_the_masked_matmul() {
    for device in devices() {
        let mut rng = Lcg(5);
        let (d_in, d_out, batch) = (20, 7, 3);
        let layout = WeightLayout::linear([d_in, d_out]);
        let active = rng.bools(layout.numel(), 0.2);
        let index = SparseIndex::new(layout, &active).to_device(&device);
        let w = Tensor::<2>::from_data(
            TensorData::new(rng.uniform_vec(d_in * d_out), [d_in, d_out]),
            &device,
        );
        let x = Tensor::<2>::from_data(
            TensorData::new(rng.uniform_vec(batch * d_in), [batch, d_in]),
            &device,
        );
        let b = tensor1(&rng.uniform_vec(d_out), &device);
        let mask = Tensor::<2>::from_data(TensorData::new(as_f32(&active), [d_in, d_out]), &device);
        let y = sparse_linear(x.clone(), w.clone(), Some(b.clone()), &index);
        let want = x.matmul(w * mask) + b.unsqueeze();
        let diff = max_abs_diff(
            &host(y.reshape([batch * d_out])),
            &host(want.reshape([batch * d_out])),
        );
        assert!(diff < 1e-5, "{device:?}: {diff}");
    }
}
