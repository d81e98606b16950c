//! The model's settings: which CIFAR ResNet, its width, activation and weight sharing.
//! `ModelConfig::init` (in `resnet.rs`) builds it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Resnet8,
    Resnet14,
    Resnet20,
    Resnet32,
    Resnet44,
    Resnet56,
    Resnet110,
    Resnet18,
    Resnet34,
    Resnet50,
}

impl Arch {
    pub const ALL: [Arch; 10] = [
        Arch::Resnet8,
        Arch::Resnet14,
        Arch::Resnet20,
        Arch::Resnet32,
        Arch::Resnet44,
        Arch::Resnet56,
        Arch::Resnet110,
        Arch::Resnet18,
        Arch::Resnet34,
        Arch::Resnet50,
    ];

    /// (stage widths, blocks per stage, bottleneck?)
    pub(crate) fn layout(self) -> (Vec<usize>, Vec<usize>, bool) {
        let small = |n: usize| (vec![16, 32, 64], vec![n; 3], false);
        match self {
            Arch::Resnet8 => small(1),
            Arch::Resnet14 => small(2),
            Arch::Resnet20 => small(3),
            Arch::Resnet32 => small(5),
            Arch::Resnet44 => small(7),
            Arch::Resnet56 => small(9),
            Arch::Resnet110 => small(18),
            Arch::Resnet18 => (vec![64, 128, 256, 512], vec![2, 2, 2, 2], false),
            Arch::Resnet34 => (vec![64, 128, 256, 512], vec![3, 4, 6, 3], false),
            Arch::Resnet50 => (vec![64, 128, 256, 512], vec![3, 4, 6, 3], true),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet8 => "resnet8",
            Arch::Resnet14 => "resnet14",
            Arch::Resnet20 => "resnet20",
            Arch::Resnet32 => "resnet32",
            Arch::Resnet44 => "resnet44",
            Arch::Resnet56 => "resnet56",
            Arch::Resnet110 => "resnet110",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet34 => "resnet34",
            Arch::Resnet50 => "resnet50",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    /// DyReLU-B, phased into ReLU over training (EAST).
    Dyrelu,
}

/// When DyReLU hands over to ReLU, in epochs. Unset: EAST's defaults, e_s = M/2 and
/// e_e = M − 1 with M the first LR milestone (half of training for schedules without one).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DyReluConfig {
    pub phase_start: Option<f64>,
    pub phase_end: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// Multiplies every stage width (and the stem); 0.25 makes a tiny browser model.
    pub width: f64,
    pub activation: Activation,
    pub dyrelu: DyReluConfig,
    /// EAST's weight sharing: in each stage, blocks from `own_blocks` on reuse the conv
    /// weights of block `own_blocks − 1`, each with its own learnable gain.
    pub shared_weights: bool,
    pub own_blocks: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: Arch::Resnet20,
            width: 1.0,
            activation: Activation::Relu,
            dyrelu: DyReluConfig::default(),
            shared_weights: false,
            own_blocks: 2,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(format!("model.width = {} must be in (0, 16]", self.width));
        }
        if self.shared_weights && self.own_blocks < 2 {
            // Block 0 may change the shape (stride 2, new width): it cannot be reused.
            return Err(format!(
                "model.own_blocks = {} must be at least 2 with model.shared_weights",
                self.own_blocks
            ));
        }
        if let (Some(s), Some(e)) = (self.dyrelu.phase_start, self.dyrelu.phase_end)
            && e < s
        {
            return Err(format!(
                "model.dyrelu.phase_end = {e} is before phase_start = {s}"
            ));
        }
        for (name, v) in [
            ("phase_start", self.dyrelu.phase_start),
            ("phase_end", self.dyrelu.phase_end),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(format!("model.dyrelu.{name} must be >= 0 (in epochs)"));
            }
        }
        Ok(())
    }

    pub(crate) fn scaled(&self, channels: usize) -> usize {
        ((channels as f64 * self.width).round() as usize).max(1)
    }

    /// Convolution and classifier weights of the model, counted from its layout without
    /// building it (sharing ignored: an upper bound), to refuse a model too large for the
    /// machine before allocating it.
    pub fn weight_count(&self, num_classes: usize) -> u64 {
        self.layer_weight_counts(num_classes).iter().sum()
    }

    /// Layers that reuse another block's convolutions (weight sharing: every block from
    /// `own_blocks` on), so they hold no weights of their own.
    pub fn shared_layer_count(&self) -> usize {
        if !self.shared_weights {
            return 0;
        }
        let (_, depths, bottleneck) = self.arch.layout();
        let convs = if bottleneck { 3 } else { 2 };
        depths
            .iter()
            .map(|&n| n.saturating_sub(self.own_blocks) * convs)
            .sum()
    }

    /// The prunable weights of each layer in the masks' order (stem, each block's
    /// convolutions, its projection shortcut, the classifier), from the layout alone; a
    /// shared block counts as its own layer.
    pub fn layer_weight_counts(&self, num_classes: usize) -> Vec<u64> {
        let (widths, depths, bottleneck) = self.arch.layout();
        let expansion = if bottleneck { 4 } else { 1 };
        let stem_out = self.scaled(widths[0]) as u64;
        let mut layers = vec![27 * stem_out];
        let mut in_ch = stem_out;
        for (s, (&w, &n)) in widths.iter().zip(&depths).enumerate() {
            let mid = self.scaled(w) as u64;
            let out = mid * expansion;
            for b in 0..n {
                let stride = s > 0 && b == 0;
                if bottleneck {
                    layers.extend([in_ch * mid, 9 * mid * mid, mid * out]);
                } else {
                    layers.extend([9 * in_ch * mid, 9 * mid * mid]);
                }
                if stride || in_ch != out {
                    layers.push(in_ch * out);
                }
                in_ch = out;
            }
        }
        layers.push(in_ch * num_classes as u64);
        layers
    }
}
