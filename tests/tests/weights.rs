//! Weights in and out: a trained model exported as safetensors under PyTorch's names and
//! read back as a new run's initial weights gives the same model (parameters, masks,
//! BatchNorm statistics, accuracy); a dense file is pruned by magnitude; damaged or
//! foreign files are refused with the tensor named.

use pollster::block_on;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sparselab::burn::module::Module;
use sparselab::burn::tensor::Device;
use sparselab::model::{ForwardCtx, for_each_param};
use sparselab::train::eval::evaluate_model;
use sparselab::train::{TrainConfig, TrainData, Trainer};
use sparselab::weights::{ExportExtras, export_safetensors};
use sparselab_e2e::{config_from, synthetic_trainer};
use std::collections::BTreeMap;

const BASE: &[&str] = &[
    "model.arch=\"resnet20\"",
    "model.width=0.25",
    "batch_size=32",
    "epochs=2",
    "data.synthetic_size=400",
    "sparsity.sparsity=0.9",
    "method.update_every=3",
    "run.device=\"cpu\"",
];

fn trained(extra: &[&str], steps: usize) -> (TrainConfig, Trainer, Vec<u8>) {
    let c = config_from(BASE, extra);
    let mut t = synthetic_trainer(&c);
    for _ in 0..steps {
        block_on(t.train_step()).unwrap();
    }
    let ckpt = block_on(t.checkpoint()).unwrap();
    let bytes = export_safetensors(&ckpt, &ExportExtras::default()).unwrap();
    (c, t, bytes)
}

fn starting_from(c: &TrainConfig, bytes: &[u8]) -> Result<Trainer, String> {
    let mut c = c.clone();
    c.run.init_from = Some("model.safetensors".into());
    let set = sparselab::data::synthetic::generate(c.data.synthetic_size, c.seed);
    Trainer::starting_from(
        c.clone(),
        TrainData::new(set, c.data.val_fraction, c.seed),
        Device::flex().autodiff(),
        bytes,
    )
    .map_err(|e| e.to_string())
}

fn values(t: &Trainer) -> BTreeMap<String, Vec<f32>> {
    let mut out = BTreeMap::new();
    let synced = t.model().valid();
    for_each_param(&synced, |path, _, v| {
        out.insert(path.to_string(), v.into_data().try_to_vec::<f32>().unwrap());
    });
    out
}

/// Every value of `a` equals `b`'s (0 and -0 alike), naming the first that does not.
fn assert_same_values(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, va) in a {
        if let Some(i) = va.iter().zip(&b[path]).position(|(x, y)| x != y) {
            panic!("{path}[{i}]: {} vs {}", va[i], b[path][i]);
        }
    }
}

/// Validation loss and accuracy of `t`'s model at DyReLU phase `phase`.
fn evaluation(t: &Trainer, phase: Option<f64>) -> (f64, f64) {
    let model = t.model().valid();
    let device = Device::flex();
    let e = block_on(evaluate_model(
        &model,
        &ForwardCtx::new(phase, None),
        &t.data().batcher,
        &t.data().set,
        &t.data().split.val,
        100,
        &device,
    ))
    .unwrap();
    (e.loss, e.accuracy)
}

#[test]
fn a_sparse_model_comes_back_from_its_export_unchanged() {
    let (c, before, bytes) = trained(&["method.name=\"rigl\""], 8);
    let after = starting_from(&c, &bytes).unwrap();
    assert_eq!(
        after.masks(),
        before.masks(),
        "the file's masks are the run's"
    );
    assert_eq!(
        values(&after),
        values(&before),
        "every parameter and statistic"
    );
    let (loss, acc) = evaluation(&before, None);
    assert_eq!(evaluation(&after, None), (loss, acc));
    // The model learned something, so equal evaluations are not two untrained models'.
    let fresh = synthetic_trainer(&c);
    assert_ne!(evaluation(&fresh, None).0, loss);
}

#[test]
fn shared_weights_leave_as_the_unshared_network_and_come_back_as_gains() {
    // EAST's weight sharing without DyReLU: ResNet-20's third block per stage reuses the
    // second's convolutions times a learned gain.
    let (c, before, bytes) = trained(
        &[
            "method.name=\"east\"",
            "method.east.dyrelu=false",
            "method.east.cyclic=false",
        ],
        9,
    );
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let gain = values(&before)["stages.0.blocks.2.gain1"][0];
    assert_ne!(gain, 1.0, "the gain trained away from its start");
    let owner = f32_tensor(&file, "layer1.1.conv1.weight");
    let shared = f32_tensor(&file, "layer1.2.conv1.weight");
    for (s, o) in shared.iter().zip(&owner) {
        assert_eq!(*s, o * gain);
    }
    let after = starting_from(&c, &bytes).unwrap();
    assert_eq!(after.masks(), before.masks());
    let (b, a) = (values(&before), values(&after));
    assert!(((a["stages.0.blocks.2.gain1"][0] - gain) / gain).abs() < 1e-6);
    assert_eq!(
        a["stages.0.blocks.1.conv1.weight"],
        b["stages.0.blocks.1.conv1.weight"]
    );
    let (loss, acc) = evaluation(&before, None);
    let (loss_after, acc_after) = evaluation(&after, None);
    assert_eq!(acc_after, acc);
    assert!(
        (loss_after - loss).abs() <= 1e-5 * loss,
        "{loss_after} vs {loss}"
    );

    // A shared convolution has one mask: a file that gives its reuse another is refused.
    let mut mask = file
        .tensor("masks.layer1.2.conv1.weight")
        .unwrap()
        .data()
        .to_vec();
    mask[0] ^= 1;
    let dims = file
        .tensor("masks.layer1.2.conv1.weight")
        .unwrap()
        .shape()
        .to_vec();
    let other = rewritten(
        &bytes,
        |_| true,
        &[("masks.layer1.2.conv1.weight", Dtype::BOOL, dims, mask)],
    );
    let e = refused(&c, &other);
    assert!(
        e.contains("masks.layer1.2.conv1.weight differs from the mask"),
        "{e}"
    );
}

#[test]
fn dyrelu_parameters_travel_while_the_activation_is_on() {
    // Mid-run EAST (early in a 20-epoch schedule): DyReLU's phase is above 0, so its
    // parameters are part of the model. Without the density cycles, so that a new run's
    // initial density is the exported one.
    let (c, before, bytes) = trained(
        &[
            "method.name=\"east\"",
            "model.own_blocks=3",
            "method.east.cyclic=false",
            "epochs=20",
        ],
        6,
    );
    let phase = before.phase().filter(|p| *p > 0.0).expect("DyReLU is on");
    let file = SafeTensors::deserialize(&bytes).unwrap();
    assert!(file.names().contains(&"layer1.0.dyrelu1.fc1.weight"));
    let after = starting_from(&c, &bytes).unwrap();
    assert_same_values(&values(&after), &values(&before));
    assert_eq!(
        evaluation(&after, Some(phase)),
        evaluation(&before, Some(phase))
    );
}

/// `bytes` with the tensors `keep` accepts, and `replace` swapped in.
fn rewritten(
    bytes: &[u8],
    keep: impl Fn(&str) -> bool,
    replace: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| keep(n))
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    for (name, dtype, dims, data) in replace {
        tensors.insert(name.to_string(), (*dtype, dims.clone(), data.clone()));
    }
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn a_dense_file_is_pruned_by_magnitude_to_the_methods_layer_densities() {
    let (c, _, bytes) = trained(&["method.name=\"dense\"", "sparsity.sparsity=0.0"], 4);
    let dense = rewritten(&bytes, |n| !n.starts_with("masks."), &[]);
    let rigl = config_from(BASE, &["method.name=\"rigl\""]);
    let t = starting_from(&rigl, &dense).unwrap();
    let fresh = synthetic_trainer(&rigl);
    let given = values(&starting_from(&c, &dense).unwrap());
    for (layer, fresh_layer) in t.masks().layers.iter().zip(&fresh.masks().layers) {
        assert_eq!(
            layer.nnz(),
            fresh_layer.nnz(),
            "{}: the method's count",
            layer.path
        );
        let w = &given[&layer.path];
        let kept = (0..w.len())
            .filter(|&i| layer.active[i])
            .map(|i| w[i].abs());
        let pruned = (0..w.len())
            .filter(|&i| !layer.active[i])
            .map(|i| w[i].abs());
        let (min_kept, max_pruned) = (
            kept.fold(f32::INFINITY, f32::min),
            pruned.fold(0.0f32, f32::max),
        );
        assert!(
            min_kept >= max_pruned,
            "{}: {min_kept} < {max_pruned}",
            layer.path
        );
    }
    assert!(t.masks().density() < 0.2);
}

/// A tensor swapped into a file (name, dtype, shape, bytes) and what the error must say.
type Swap = (&'static str, Dtype, Vec<usize>, Vec<u8>, &'static str);

fn refused(c: &TrainConfig, bytes: &[u8]) -> String {
    match starting_from(c, bytes) {
        Ok(_) => panic!("the file was accepted"),
        Err(e) => e,
    }
}

#[test]
fn damaged_and_foreign_files_are_refused_naming_the_tensor() {
    let (c, _, bytes) = trained(&["method.name=\"rigl\""], 2);
    let e = refused(&c, &bytes[..bytes.len() - 100]);
    assert!(
        e.contains("model.safetensors") && e.contains("cut short"),
        "{e}"
    );
    let e = refused(&c, b"not a model at all");
    assert!(e.contains("not a readable safetensors file"), "{e}");

    let nan: Vec<u8> = [1.0f32, f32::NAN, 0.5, 0.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let swaps: [Swap; 6] = [
        (
            "bn1.weight",
            Dtype::F32,
            vec![4],
            nan,
            "bn1.weight holds a non-finite value (NaN",
        ),
        (
            "bn1.weight",
            Dtype::F32,
            vec![2],
            vec![0; 8],
            "bn1.weight has shape [2], but the model needs [4]",
        ),
        (
            "bn1.weight",
            Dtype::F64,
            vec![4],
            vec![0; 32],
            "bn1.weight is F64; the weights must be float32",
        ),
        (
            "fc.weight",
            Dtype::F32,
            vec![1],
            vec![0; 4],
            "does not have: fc.weight",
        ),
        (
            "masks.bn1.weight",
            Dtype::BOOL,
            vec![4],
            vec![1; 4],
            "does not have: masks.bn1.weight",
        ),
        (
            "masks.conv1.weight",
            Dtype::U8,
            vec![4, 3, 3, 3],
            vec![2; 108],
            "masks.conv1.weight holds 2",
        ),
    ];
    for (name, dtype, dims, data, says) in swaps {
        let e = refused(
            &c,
            &rewritten(&bytes, |_| true, &[(name, dtype, dims, data)]),
        );
        assert!(e.contains(says), "{name}: {e}");
    }
    let e = refused(
        &c,
        &rewritten(&bytes, |n| n != "layer2.0.shortcut.0.weight", &[]),
    );
    assert!(
        e.contains("lacks 1 tensor(s) the model needs: layer2.0.shortcut.0.weight"),
        "{e}"
    );

    // Independent weights cannot fill a shared convolution.
    let east = config_from(BASE, &["method.name=\"east\"", "method.east.dyrelu=false"]);
    let e = refused(&east, &bytes);
    assert!(
        e.contains("layer1.2.conv1.weight is not a multiple of layer1.1.conv1.weight"),
        "{e}"
    );
}

#[test]
fn a_front_end_that_reads_no_files_refuses_init_from_instead_of_ignoring_it() {
    let mut c = config_from(BASE, &[]);
    c.run.init_from = Some("model.safetensors".into());
    let set = sparselab::data::synthetic::generate(c.data.synthetic_size, c.seed);
    let e = Trainer::new(
        c.clone(),
        TrainData::new(set, c.data.val_fraction, c.seed),
        Device::flex().autodiff(),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains("run.init_from = model.safetensors"), "{e}");
}

/// Little-endian f32 values of a tensor of `file`.
fn f32_tensor(file: &SafeTensors<'_>, name: &str) -> Vec<f32> {
    let v = file.tensor(name).unwrap();
    v.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn the_exported_tensors_mean_what_pytorch_means_by_them() {
    use sparselab::burn::tensor::{Distribution, Tensor};
    let (_, t, bytes) = trained(&["method.name=\"rigl\""], 4);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let model = t.model().valid();
    let device = Device::flex();

    // linear.weight is [out, in]: y[o] = Σ_i W[o, i] p[i], as nn.Linear computes it.
    let w = f32_tensor(&file, "linear.weight");
    let (out, inp) = {
        let shape = file.tensor("linear.weight").unwrap().shape().to_vec();
        (shape[0], shape[1])
    };
    let p = Tensor::<2>::random([1, inp], Distribution::Normal(0.0, 1.0), &device);
    let pv = p.clone().into_data().try_to_vec::<f32>().unwrap();
    let burn = model
        .classifier
        .forward(p)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for o in 0..out {
        let y: f32 = (0..inp).map(|i| w[o * inp + i] * pv[i]).sum();
        assert!(
            (y - burn[o]).abs() <= 1e-5 * (1.0 + y.abs()),
            "class {o}: {y} vs {}",
            burn[o]
        );
    }

    // conv1.weight is [out, in, kh, kw], a cross-correlation with padding 1, as nn.Conv2d.
    let w = f32_tensor(&file, "conv1.weight");
    let shape = file.tensor("conv1.weight").unwrap().shape().to_vec();
    let (co, ci) = (shape[0], shape[1]);
    let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let xv = x.clone().into_data().try_to_vec::<f32>().unwrap();
    let burn = model
        .stem
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let at = |c: usize, y: i64, x: i64| {
        if (0..32).contains(&y) && (0..32).contains(&x) {
            xv[(c * 32 + y as usize) * 32 + x as usize]
        } else {
            0.0
        }
    };
    for (o, y, x) in [(0, 0, 0), (1, 5, 31), (co - 1, 17, 9), (co / 2, 31, 31)] {
        let mut v = 0.0f32;
        for i in 0..ci {
            for ky in 0..3 {
                for kx in 0..3 {
                    let wv = w[((o * ci + i) * 3 + ky) * 3 + kx];
                    v += wv * at(i, y + ky as i64 - 1, x + kx as i64 - 1);
                }
            }
        }
        let b = burn[(o * 32 + y as usize) * 32 + x as usize];
        assert!(
            (v - b).abs() <= 1e-5 * (1.0 + v.abs()),
            "({o}, {y}, {x}): {v} vs {b}"
        );
    }
}

#[test]
fn the_files_masks_decide_before_magnitude() {
    // An alive weight set to exactly 0 and a pruned one revived with a large value: the
    // run still starts with the file's masks, and the revived weight stays pruned (0).
    let (c, before, bytes) = trained(&["method.name=\"rigl\""], 4);
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let name = "layer1.0.conv1.weight";
    let mask = file
        .tensor(&format!("masks.{name}"))
        .unwrap()
        .data()
        .to_vec();
    let mut w = f32_tensor(&file, name);
    let alive = mask.iter().position(|&m| m == 1).unwrap();
    let dead = mask.iter().position(|&m| m == 0).unwrap();
    w[alive] = 0.0;
    w[dead] = 100.0;
    let dims = file.tensor(name).unwrap().shape().to_vec();
    let data: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    let after = starting_from(
        &c,
        &rewritten(&bytes, |_| true, &[(name, Dtype::F32, dims, data)]),
    )
    .unwrap();
    assert_eq!(after.masks(), before.masks());
    let v = &values(&after)["stages.0.blocks.0.conv1.weight"];
    assert_eq!((v[alive], v[dead]), (0.0, 0.0));
}
