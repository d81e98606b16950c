//! The WGSL kernels against their references in a browser, on WebGPU: the same shader
//! text as the native lavapipe tests (`tests/tests/kernels.rs`), read back asynchronously
//! as a page must. Run by `scripts/test-browser.sh` (wasm-bindgen-test-runner driving
//! headless Chromium with `--enable-unsafe-webgpu`).
#![cfg(target_arch = "wasm32")]

use sparselab::burn::tensor::{Device, Distribution, Tensor, TensorData};
use sparselab::kernels::masked_step::{self, StepHyper};
use sparselab::kernels::sparse_conv::{reference_conv2d, sparse_conv2d};
use sparselab::kernels::sparse_index::{SparseIndex, WeightLayout};
use sparselab::kernels::topk::{self, TopKQuery};
use wasm_bindgen_test::*;

#[path = "../../kernel_inputs.rs"]
mod kernel_inputs;
use kernel_inputs::{Lcg, as_f32, max_abs_diff, tensor1};

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    /// A page initialises WebGPU once; every test shares that device.
    static DEVICE: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

async fn webgpu() -> Device {
    if let Some(device) = DEVICE.with(|d| d.borrow().clone()) {
        return device;
    }
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .expect("a WebGPU adapter (is --enable-unsafe-webgpu set?)");
    let info = setup.adapter.get_info();
    console_log!(
        "WebGPU adapter: {} ({:?}, {:?})",
        info.name,
        info.backend,
        info.device_type
    );
    DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    device
}

async fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let n = t.dims().iter().product::<usize>();
    t.reshape([n])
        .into_data_async()
        .await
        .expect("read back")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

#[wasm_bindgen_test]
async fn masked_step_matches_the_reference_on_webgpu() {
    let device = webgpu().await;
    let mut rng = Lcg(7);
    let n = 1000;
    let (w, m, g) = (rng.uniform_vec(n), rng.uniform_vec(n), rng.uniform_vec(n));
    let mask = rng.bools(n, 0.3);
    for version in [1u8, 2] {
        let hyper = StepHyper {
            version,
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: true,
        };
        let args = || {
            (
                tensor1(&w, &device),
                tensor1(&m, &device),
                tensor1(&g, &device),
            )
        };
        let mask_t = Some(tensor1(&as_f32(&mask), &device));
        let clip = tensor1(&[0.7], &device);
        let (w0, m0, g0) = args();
        let (kw, km) =
            masked_step::masked_sgd_step(w0, m0, g0, mask_t.clone(), clip.clone(), hyper);
        let (w1, m1, g1) = args();
        let (rw, rm) = masked_step::reference(w1, m1, g1, mask_t, clip, hyper);
        let (kw, km) = (host(kw).await, host(km).await);
        assert!(
            max_abs_diff(&kw, &host(rw).await) < 1e-6,
            "v{version} weights"
        );
        assert!(
            max_abs_diff(&km, &host(rm).await) < 1e-6,
            "v{version} momentum"
        );
        for i in 0..n {
            if !mask[i] {
                assert_eq!((kw[i], km[i]), (0.0, 0.0));
            }
        }
    }
}

#[wasm_bindgen_test]
async fn top_k_is_exact_on_webgpu() {
    let device = webgpu().await;
    let mut rng = Lcg(11);
    let n = 70_000;
    let mut scores: Vec<f32> = (0..n)
        .map(|_| ((rng.next() * 40.0).floor() - 20.0) / 8.0)
        .collect();
    scores[123] = f32::NAN;
    let eligible = as_f32(&rng.bools(n, 0.6));
    let ones = eligible.iter().filter(|e| **e == 1.0).count();
    for (k, smallest, among_ones) in [
        (37, true, true),
        (5_000, false, true),
        (ones + 1, true, true),
        (300, false, false),
    ] {
        let query = TopKQuery {
            k,
            smallest,
            among_ones,
        };
        let selected = host(topk::top_k_mask(
            tensor1(&scores, &device),
            tensor1(&eligible, &device),
            query,
        ))
        .await;
        let got: Vec<usize> = (0..n).filter(|&i| selected[i] == 1.0).collect();
        assert_eq!(got, topk::reference(&scores, &eligible, query), "{query:?}");
    }
}

#[wasm_bindgen_test]
async fn sparse_conv_matches_the_dense_masked_conv_on_webgpu() {
    let device = webgpu().await;
    let ad = device.clone().autodiff();
    for (seed, (kernel, stride, padding, density)) in
        [(3, 1, 1, 0.3f32), (3, 2, 1, 0.3), (1, 2, 0, 0.5)]
            .into_iter()
            .enumerate()
    {
        let mut rng = Lcg(100 + seed as u64);
        let dims = [6, 5, kernel, kernel];
        let layout = WeightLayout::conv(dims);
        let active = rng.bools(layout.numel(), density);
        let index = SparseIndex::new(layout, &active).to_device(&ad);
        let x_dims = [2, 5, 9, 9];
        let x_data = rng.uniform_vec(x_dims.iter().product());
        let w_data = rng.uniform_vec(layout.numel());
        let input = || {
            (
                Tensor::<4>::from_data(TensorData::new(x_data.clone(), x_dims), &ad).require_grad(),
                Tensor::<4>::from_data(TensorData::new(w_data.clone(), dims), &ad).require_grad(),
            )
        };
        let (x, w) = input();
        let y = sparse_conv2d(x.clone(), w.clone(), &index, [stride; 2], [padding; 2]);
        let (rx, rw) = input();
        let mask = Tensor::<4>::from_data(TensorData::new(as_f32(&active), dims), &ad);
        let ry = reference_conv2d(rx.clone(), rw.clone(), mask, [stride; 2], [padding; 2]);
        let r = Tensor::<4>::random(y.dims(), Distribution::Uniform(-1.0, 1.0), &ad);
        let grads = (y.clone() * r.clone()).sum().backward();
        let rgrads = (ry.clone() * r).sum().backward();
        let tol = 1e-4;
        assert!(max_abs_diff(&host(y.inner()).await, &host(ry.inner()).await) < tol);
        let gx = host(x.grad(&grads).unwrap()).await;
        assert!(max_abs_diff(&gx, &host(rx.grad(&rgrads).unwrap()).await) < tol);
        let gw = host(w.grad(&grads).unwrap()).await;
        let rgw = host(rw.grad(&rgrads).unwrap()).await;
        for i in 0..gw.len() {
            if active[i] {
                assert!((gw[i] - rgw[i]).abs() < tol, "weight gradient {i}");
            } else {
                assert_eq!(gw[i], 0.0);
            }
        }
    }
}
