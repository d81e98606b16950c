//! Connectivity: which alive weights lie on at least one path from the input image to the
//! logits. At extreme sparsity many do not: a channel whose inputs are all pruned carries
//! nothing of the image (BatchNorm's shift makes it a constant), and a channel nobody reads
//! is never used, so the weights feeding it are dead ends. Their count, the *connected*
//! non-zeros, is what the network computes with; 0 means no path at all.
//!
//! The network is reduced to channels and edges: an alive weight `(o, i, ·, ·)` of a
//! convolution joins its input channel `i` to its output channel `o`; BatchNorm, ReLU and
//! pooling keep channels apart; a residual sum joins the same channel of both branches.
//! (DyReLU's coefficient network, which mixes channels, is left out: EAST phases it out.)
//! A weight is connected when its input channel is reachable from the image and its
//! output channel reaches the logits. A shared convolution counts a weight once if any
//! of its uses connects it.

use super::Masks;
use crate::model::{LayerId, ResNet};

/// Connected non-zeros per layer (in the masks' order) and in all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connectivity {
    pub layers: Vec<usize>,
    pub total: usize,
}

impl Connectivity {
    /// No alive weight lies on an input→output path: the logits cannot depend on the image.
    pub fn disconnected(&self) -> bool {
        self.total == 0
    }
}

/// An operation on channel sets: tensors are indices into a list of channel counts.
enum Op {
    /// `output = layer(input)` through the alive weights of a convolution or the classifier.
    Layer {
        layer: usize,
        input: usize,
        output: usize,
    },
    /// `output = a + b`, channel by channel (a residual sum).
    Add { a: usize, b: usize, output: usize },
}

/// A layer's alive (output, input) channel pairs: any alive weight between them.
struct Pairs {
    outputs: usize,
    inputs: usize,
    alive: Vec<bool>,
}

impl Pairs {
    fn of(mask: &super::LayerMask, linear: bool) -> Self {
        let d = &mask.dims;
        // Convolutions are [out, in, kh, kw]; Burn's Linear weight is [in, out].
        let (outputs, inputs) = if linear { (d[1], d[0]) } else { (d[0], d[1]) };
        let per_pair = mask.active.len() / (outputs * inputs).max(1);
        let mut alive = vec![false; outputs * inputs];
        for (k, &a) in mask.active.iter().enumerate() {
            if a {
                let pair = if linear {
                    let (i, o) = (k / outputs, k % outputs);
                    o * inputs + i
                } else {
                    k / per_pair
                };
                alive[pair] = true;
            }
        }
        Self {
            outputs,
            inputs,
            alive,
        }
    }

    fn pair(&self, o: usize, i: usize) -> bool {
        self.alive[o * self.inputs + i]
    }
}

/// The connected non-zeros of `model` under `masks` (its layers in the layer table's order).
pub fn connectivity(model: &ResNet, masks: &Masks) -> Connectivity {
    let n_layers = model.layers.len();
    let classifier = n_layers - 1;
    let pairs: Vec<Pairs> = masks
        .layers
        .iter()
        .enumerate()
        .map(|(k, m)| Pairs::of(m, k == classifier))
        .collect();
    let mut channels = vec![3usize];
    let mut ops = Vec::new();
    let layer = |layer: LayerId, input: usize, channels: &mut Vec<usize>, ops: &mut Vec<Op>| {
        channels.push(pairs[layer.0].outputs);
        ops.push(Op::Layer {
            layer: layer.0,
            input,
            output: channels.len() - 1,
        });
        channels.len() - 1
    };
    let mut x = layer(LayerId(0), 0, &mut channels, &mut ops);
    for block in model.stages.iter().flat_map(|s| &s.blocks) {
        let mut h = x;
        for id in block.ids.convs.into_iter().flatten() {
            h = layer(id, h, &mut channels, &mut ops);
        }
        let shortcut = match block.ids.shortcut {
            Some(id) => layer(id, x, &mut channels, &mut ops),
            None => x,
        };
        channels.push(channels[h]);
        ops.push(Op::Add {
            a: h,
            b: shortcut,
            output: channels.len() - 1,
        });
        x = channels.len() - 1;
    }
    let logits = layer(LayerId(classifier), x, &mut channels, &mut ops);

    // Forward: channels the image reaches.
    let mut reach: Vec<Vec<bool>> = channels.iter().map(|&c| vec![false; c]).collect();
    reach[0].fill(true);
    for op in &ops {
        match *op {
            Op::Layer {
                layer,
                input,
                output,
            } => {
                let p = &pairs[layer];
                reach[output] = (0..p.outputs)
                    .map(|o| (0..p.inputs).any(|i| reach[input][i] && p.pair(o, i)))
                    .collect();
            }
            Op::Add { a, b, output } => {
                reach[output] = reach[a]
                    .iter()
                    .zip(&reach[b])
                    .map(|(x, y)| *x || *y)
                    .collect();
            }
        }
    }
    // Backward: channels that reach the logits.
    let mut reaches_out: Vec<Vec<bool>> = channels.iter().map(|&c| vec![false; c]).collect();
    reaches_out[logits].fill(true);
    for op in ops.iter().rev() {
        match *op {
            Op::Layer {
                layer,
                input,
                output,
            } => {
                let p = &pairs[layer];
                for i in 0..p.inputs {
                    if (0..p.outputs).any(|o| reaches_out[output][o] && p.pair(o, i)) {
                        reaches_out[input][i] = true;
                    }
                }
            }
            Op::Add { a, b, output } => {
                let out = reaches_out[output].clone();
                for side in [a, b] {
                    for (r, &o) in reaches_out[side].iter_mut().zip(&out) {
                        *r |= o;
                    }
                }
            }
        }
    }
    // A pair is connected in a use when its input is reached and its output reaches out.
    let mut connected: Vec<Vec<bool>> = pairs.iter().map(|p| vec![false; p.alive.len()]).collect();
    for op in &ops {
        if let Op::Layer {
            layer,
            input,
            output,
        } = *op
        {
            let p = &pairs[layer];
            for o in (0..p.outputs).filter(|&o| reaches_out[output][o]) {
                for i in (0..p.inputs).filter(|&i| reach[input][i]) {
                    if p.pair(o, i) {
                        connected[layer][o * p.inputs + i] = true;
                    }
                }
            }
        }
    }
    let layers: Vec<usize> = masks
        .layers
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let p = &pairs[k];
            let linear = k == classifier;
            let per_pair = m.active.len() / (p.outputs * p.inputs).max(1);
            m.active
                .iter()
                .enumerate()
                .filter(|&(idx, &a)| {
                    let pair = if linear {
                        (idx % p.outputs) * p.inputs + idx / p.outputs
                    } else {
                        idx / per_pair
                    };
                    a && connected[k][pair]
                })
                .count()
        })
        .collect();
    Connectivity {
        total: layers.iter().sum(),
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, ModelConfig};
    use crate::sparsity::{LayerMask, sparse_layers};
    use burn::tensor::Device;

    /// ResNet-8 at width 0.125: stem 2 channels, stages of 2, 4, 8; 2 classes.
    fn resnet8() -> ResNet {
        ModelConfig {
            arch: Arch::Resnet8,
            width: 0.125,
            ..Default::default()
        }
        .init(2, &Device::flex())
    }

    fn empty(model: &ResNet) -> Masks {
        Masks {
            layers: sparse_layers(model)
                .into_iter()
                .map(|l| LayerMask {
                    active: vec![false; l.numel()],
                    path: l.path,
                    dims: l.dims,
                })
                .collect(),
        }
    }

    /// Turns on weight (o, i) (kernel position 0) of the layer at `path`.
    fn on(masks: &mut Masks, path: &str, o: usize, i: usize) {
        let m = masks.layers.iter_mut().find(|m| m.path == path).unwrap();
        let k = if path == "classifier.weight" {
            i * m.dims[1] + o
        } else {
            (o * m.dims[1] + i) * m.dims[2] * m.dims[3]
        };
        m.active[k] = true;
    }

    /// A path through every stage: stem 0→0, stage 1's convs 0→0, stage 2's and 3's
    /// projection shortcuts 0→0, classifier 0→class 0. Every one of them connected.
    fn one_path(model: &ResNet) -> Masks {
        let mut m = empty(model);
        on(&mut m, "stem.weight", 0, 0);
        on(&mut m, "stages.1.blocks.0.shortcut.conv.weight", 0, 0);
        on(&mut m, "stages.2.blocks.0.shortcut.conv.weight", 0, 0);
        on(&mut m, "classifier.weight", 0, 0);
        m
    }

    #[test]
    fn a_single_path_through_the_residual_bypasses_is_all_connected() {
        let model = resnet8();
        let masks = one_path(&model);
        let c = connectivity(&model, &masks);
        // Stage 0's block has no projection: its identity shortcut carries channel 0.
        assert_eq!(c.total, 4);
        assert_eq!(c.total, masks.nnz());
        assert!(!c.disconnected());
    }

    #[test]
    fn dead_ends_and_dead_starts_are_counted_by_hand() {
        let model = resnet8();
        let mut masks = one_path(&model);
        let stage0 = "stages.0.blocks.0";
        // conv1 1←0 reads stem channel 0 (reached) but writes channel 1, which conv2 does
        // not read yet: a dead end.
        on(&mut masks, &format!("{stage0}.conv1.weight"), 1, 0);
        // conv2 1←0 reads conv1's channel 0, which no weight writes: a dead start.
        on(&mut masks, &format!("{stage0}.conv2.weight"), 1, 0);
        // Stage 1's shortcut 1←1 reads the sum's channel 1: conv2's (never reached) plus
        // the identity's (stem channel 1, never written): a dead start.
        on(&mut masks, "stages.1.blocks.0.shortcut.conv.weight", 1, 1);
        let c = connectivity(&model, &masks);
        assert_eq!(by_path(&c, &masks, &format!("{stage0}.conv1.weight")), 0);
        assert_eq!(by_path(&c, &masks, &format!("{stage0}.conv2.weight")), 0);
        assert_eq!(
            by_path(&c, &masks, "stages.1.blocks.0.shortcut.conv.weight"),
            1
        );
        assert_eq!((c.total, masks.nnz()), (4, 7));

        // conv2 0←1 reads conv1's channel 1 and writes the sum's channel 0, which reaches
        // the logits: conv1 1←0 and conv2 0←1 join the path; conv2 1←0 stays a dead start.
        on(&mut masks, &format!("{stage0}.conv2.weight"), 0, 1);
        let c = connectivity(&model, &masks);
        assert_eq!(by_path(&c, &masks, &format!("{stage0}.conv1.weight")), 1);
        assert_eq!(by_path(&c, &masks, &format!("{stage0}.conv2.weight")), 1);
        assert_eq!((c.total, masks.nnz()), (6, 8));
    }

    fn by_path(c: &Connectivity, masks: &Masks, p: &str) -> usize {
        c.layers[masks.layers.iter().position(|m| m.path == p).unwrap()]
    }

    #[test]
    fn a_mask_that_cuts_every_path_is_disconnected() {
        let model = resnet8();
        let mut masks = one_path(&model);
        // Stage 2's block: its projection shortcut is cut, its convs are empty.
        let sc = masks
            .layers
            .iter_mut()
            .find(|m| m.path == "stages.2.blocks.0.shortcut.conv.weight")
            .unwrap();
        sc.active.fill(false);
        let c = connectivity(&model, &masks);
        assert!(c.disconnected());
        assert_eq!(c.layers, vec![0; masks.layers.len()]);
        assert_eq!(masks.nnz(), 3, "weights alive, none on a path");
    }

    #[test]
    fn a_dense_network_is_connected_everywhere() {
        let model = resnet8();
        let mut masks = empty(&model);
        for m in &mut masks.layers {
            m.active.fill(true);
        }
        let c = connectivity(&model, &masks);
        assert_eq!(c.total, masks.nnz());
    }

    #[test]
    fn a_shared_convolution_counts_a_weight_connected_in_any_use() {
        let model = ModelConfig {
            arch: Arch::Resnet20,
            width: 0.125,
            shared_weights: true,
            ..Default::default()
        }
        .init(2, &Device::flex());
        let mut masks = empty(&model);
        on(&mut masks, "stem.weight", 0, 0);
        // Block 1 owns stage 0's convs and block 2 reuses them: conv1 0←0, conv2 0←0.
        on(&mut masks, "stages.0.blocks.1.conv1.weight", 0, 0);
        on(&mut masks, "stages.0.blocks.1.conv2.weight", 0, 0);
        on(&mut masks, "stages.1.blocks.0.shortcut.conv.weight", 0, 0);
        on(&mut masks, "stages.2.blocks.0.shortcut.conv.weight", 0, 0);
        on(&mut masks, "classifier.weight", 1, 0);
        let c = connectivity(&model, &masks);
        assert_eq!(c.total, masks.nnz());
        assert_eq!(c.total, 6);
    }
}
