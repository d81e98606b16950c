//! The network as a PyTorch user writes it: the CIFAR-ResNet names of the common
//! `pytorch-cifar` models (`conv1`, `bn1`, `layer1.0.conv1`, `layer1.0.shortcut.0`,
//! `linear`), each tensor's PyTorch shape, and where its values live in sparselab's model.
//!
//! | sparselab path                          | PyTorch name                         |
//! |-----------------------------------------|--------------------------------------|
//! | `stem.weight`                           | `conv1.weight`                       |
//! | `stem_bn.{gamma,beta,running_*}`        | `bn1.{weight,bias,running_*}`        |
//! | `stages.S.blocks.B.convI.weight`        | `layer{S+1}.B.convI.weight`          |
//! | `stages.S.blocks.B.bnI.*`               | `layer{S+1}.B.bnI.*`                 |
//! | `stages.S.blocks.B.shortcut.conv.weight`| `layer{S+1}.B.shortcut.0.weight`     |
//! | `stages.S.blocks.B.shortcut.bn.*`       | `layer{S+1}.B.shortcut.1.*`          |
//! | `classifier.weight` (`[in, out]`)       | `linear.weight` (`[out, in]`, no bias)|
//! | `dyrelu_stem.fcK.*`, `…dyreluI.fcK.*`   | `dyrelu.fcK.*`, `layer{S+1}.B.dyreluI.fcK.*` |
//!
//! A block that shares its stage's convolutions (EAST's weight sharing) runs its owner's
//! weight times a learnable gain; PyTorch sees the unshared network, that product.

use crate::model::ResNet;
use crate::model::block::Block;
use crate::model::dyrelu::DyRelu;
use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// Where a PyTorch tensor's values come from in sparselab's model.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The parameter or running statistic at this path, element for element.
    Param(String),
    /// A `Linear` weight: Burn keeps `[in, out]`, PyTorch `[out, in]`.
    Transposed(String),
    /// A shared block's convolution: the owner's weight times the block's gain.
    Shared { owner: String, gain: String },
    /// BatchNorm's `num_batches_tracked`, which sparselab does not keep.
    BatchCount,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PyTorchTensor {
    pub name: String,
    /// The shape PyTorch gives it.
    pub dims: Vec<usize>,
    pub source: Source,
    /// The sparselab layer whose mask zeroes it (`None`: never pruned).
    pub mask: Option<String>,
    /// Part of a DyReLU activation (not a plain ReLU network's parameter).
    pub dyrelu: bool,
}

impl PyTorchTensor {
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
}

/// Every tensor of `model` under its PyTorch name, in the model's order.
pub fn pytorch_layout(model: &ResNet) -> Vec<PyTorchTensor> {
    let mut out = Layout(Vec::new());
    out.conv("conv1", "stem", &model.stem);
    out.batch_norm("bn1", "stem_bn", &model.stem_bn);
    out.dyrelu("dyrelu", "dyrelu_stem", &model.dyrelu_stem);
    for (s, stage) in model.stages.iter().enumerate() {
        for (b, block) in stage.blocks.iter().enumerate() {
            out.block(
                model,
                &format!("layer{}.{b}", s + 1),
                &format!("stages.{s}.blocks.{b}"),
                block,
                &stage.blocks,
            );
        }
    }
    let dims = lazy_dims(&model.classifier.weight);
    out.0.push(PyTorchTensor {
        name: "linear.weight".into(),
        dims: vec![dims[1], dims[0]],
        source: Source::Transposed("classifier.weight".into()),
        mask: Some("classifier.weight".into()),
        dyrelu: false,
    });
    out.0
}

fn lazy_dims<const D: usize>(p: &Param<Tensor<D>>) -> Vec<usize> {
    p.lazy_shape().to_vec()
}

struct Layout(Vec<PyTorchTensor>);

impl Layout {
    fn push(&mut self, name: String, dims: Vec<usize>, source: Source, mask: Option<String>) {
        self.0.push(PyTorchTensor {
            name,
            dims,
            source,
            mask,
            dyrelu: false,
        });
    }

    fn conv(&mut self, name: &str, path: &str, conv: &Conv2d) {
        let path = format!("{path}.weight");
        self.push(
            format!("{name}.weight"),
            lazy_dims(&conv.weight),
            Source::Param(path.clone()),
            Some(path),
        );
    }

    fn batch_norm(&mut self, name: &str, path: &str, bn: &BatchNorm) {
        let dims = lazy_dims(&bn.gamma);
        for (theirs, ours) in [
            ("weight", "gamma"),
            ("bias", "beta"),
            ("running_mean", "running_mean"),
            ("running_var", "running_var"),
        ] {
            let source = Source::Param(format!("{path}.{ours}"));
            self.push(format!("{name}.{theirs}"), dims.clone(), source, None);
        }
        let count = format!("{name}.num_batches_tracked");
        self.push(count, Vec::new(), Source::BatchCount, None);
    }

    fn linear(&mut self, name: &str, path: &str, linear: &Linear) {
        let dims = lazy_dims(&linear.weight);
        let weight = Source::Transposed(format!("{path}.weight"));
        self.push(
            format!("{name}.weight"),
            vec![dims[1], dims[0]],
            weight,
            None,
        );
        if let Some(bias) = &linear.bias {
            let source = Source::Param(format!("{path}.bias"));
            self.push(format!("{name}.bias"), lazy_dims(bias), source, None);
        }
    }

    fn dyrelu(&mut self, name: &str, path: &str, dyrelu: &Option<DyRelu>) {
        let Some(d) = dyrelu else { return };
        let first = self.0.len();
        self.linear(&format!("{name}.fc1"), &format!("{path}.fc1"), &d.fc1);
        self.linear(&format!("{name}.fc2"), &format!("{path}.fc2"), &d.fc2);
        for t in &mut self.0[first..] {
            t.dyrelu = true;
        }
    }

    fn block(&mut self, model: &ResNet, name: &str, path: &str, block: &Block, stage: &[Block]) {
        let convs = [&block.conv1, &block.conv2, &block.conv3];
        let gains = [&block.gain1, &block.gain2, &block.gain3];
        let bns = [Some(&block.bn1), Some(&block.bn2), block.bn3.as_ref()];
        let dyrelus = [&block.dyrelu1, &block.dyrelu2, &None];
        for i in 0..3 {
            let n = i + 1;
            match (convs[i], gains[i], block.ids.convs[i]) {
                (Some(c), _, _) => {
                    self.conv(&format!("{name}.conv{n}"), &format!("{path}.conv{n}"), c)
                }
                (None, Some(_), Some(id)) => {
                    let owner = model.layers[id.0].path.clone();
                    let dims = owner_dims(stage, &owner, i);
                    let source = Source::Shared {
                        owner: owner.clone(),
                        gain: format!("{path}.gain{n}"),
                    };
                    self.push(format!("{name}.conv{n}.weight"), dims, source, Some(owner));
                }
                _ => {}
            }
            if let Some(bn) = bns[i] {
                self.batch_norm(&format!("{name}.bn{n}"), &format!("{path}.bn{n}"), bn);
            }
            self.dyrelu(
                &format!("{name}.dyrelu{n}"),
                &format!("{path}.dyrelu{n}"),
                dyrelus[i],
            );
        }
        if let Some(sc) = &block.shortcut {
            let (theirs, ours) = (format!("{name}.shortcut"), format!("{path}.shortcut"));
            self.conv(&format!("{theirs}.0"), &format!("{ours}.conv"), &sc.conv);
            self.batch_norm(&format!("{theirs}.1"), &format!("{ours}.bn"), &sc.bn);
        }
        self.dyrelu(
            &format!("{name}.dyrelu_out"),
            &format!("{path}.dyrelu_out"),
            &block.dyrelu_out,
        );
    }
}

/// The shape of the owner block's conv `i` (`owner` is its weight's path).
fn owner_dims(stage: &[Block], owner: &str, i: usize) -> Vec<usize> {
    let b: usize = owner
        .split('.')
        .nth(3)
        .and_then(|b| b.parse().ok())
        .expect("a conv path reads stages.S.blocks.B.convI.weight");
    let conv = [&stage[b].conv1, &stage[b].conv2, &stage[b].conv3][i]
        .as_ref()
        .expect("an owner block has its convolutions");
    lazy_dims(&conv.weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Arch, ModelConfig, param_infos};
    use burn::tensor::Device;
    use std::collections::BTreeSet;

    fn model(arch: Arch, shared_weights: bool, activation: Activation) -> ResNet {
        ModelConfig {
            arch,
            width: 0.25,
            shared_weights,
            activation,
            ..Default::default()
        }
        .init(10, &Device::flex())
    }

    #[test]
    fn every_parameter_has_one_pytorch_name_and_shapes_agree() {
        for arch in [Arch::Resnet20, Arch::Resnet18, Arch::Resnet50] {
            for activation in [Activation::Relu, Activation::Dyrelu] {
                let m = model(arch, false, activation);
                let layout = pytorch_layout(&m);
                let names: BTreeSet<&str> = layout.iter().map(|t| t.name.as_str()).collect();
                assert_eq!(names.len(), layout.len(), "names are unique");
                let mut covered = BTreeSet::new();
                for t in &layout {
                    if let Source::Param(p) | Source::Transposed(p) = &t.source {
                        covered.insert(p.clone());
                    }
                }
                for p in param_infos(&m) {
                    let t = layout
                        .iter()
                        .find(|t| matches!(&t.source, Source::Param(q) | Source::Transposed(q) if *q == p.path))
                        .unwrap_or_else(|| panic!("{arch:?}: {} has no PyTorch name", p.path));
                    assert_eq!(t.numel(), p.numel(), "{}", t.name);
                    if matches!(t.source, Source::Param(_)) {
                        assert_eq!(t.dims, p.dims, "{}", t.name);
                    } else {
                        assert_eq!(t.dims, vec![p.dims[1], p.dims[0]], "{}", t.name);
                    }
                }
                assert_eq!(covered.len(), param_infos(&m).len());
            }
        }
    }

    #[test]
    fn names_follow_the_pytorch_cifar_convention() {
        let m = model(Arch::Resnet20, false, Activation::Relu);
        let names: Vec<String> = pytorch_layout(&m).into_iter().map(|t| t.name).collect();
        for expected in [
            "conv1.weight",
            "bn1.weight",
            "bn1.num_batches_tracked",
            "layer1.0.conv1.weight",
            "layer2.0.shortcut.0.weight",
            "layer2.0.shortcut.1.running_var",
            "layer3.2.bn2.bias",
            "linear.weight",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("gain")));
    }

    #[test]
    fn a_shared_block_appears_as_its_owner_times_its_gain() {
        let m = model(Arch::Resnet20, true, Activation::Relu);
        let layout = pytorch_layout(&m);
        let shared = layout
            .iter()
            .find(|t| t.name == "layer1.2.conv1.weight")
            .unwrap();
        assert_eq!(
            shared.source,
            Source::Shared {
                owner: "stages.0.blocks.1.conv1.weight".into(),
                gain: "stages.0.blocks.2.gain1".into()
            }
        );
        assert_eq!(
            shared.mask.as_deref(),
            Some("stages.0.blocks.1.conv1.weight")
        );
        let unshared = pytorch_layout(&model(Arch::Resnet20, false, Activation::Relu));
        let names = |l: &[PyTorchTensor]| {
            l.iter()
                .map(|t| (t.name.clone(), t.dims.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&layout),
            names(&unshared),
            "PyTorch sees the unshared network"
        );
    }
}
