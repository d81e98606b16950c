//! What `run.kernels = "auto"` decides by: per backend and conv shape, the highest density
//! at which the sparse kernels still beat the dense masked convolution in training (forward
//! and backward, batch 128). The kernel lab measures it (`sparselab bench kernels --device
//! flex --crossover`) and the rows below are its output, so that two runs of one config
//! choose the same layers and give the same numbers, wherever they run.

use super::timing::ConvShape;

/// One measured shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crossover {
    /// `[out, in, kh, kw]`.
    pub weight: [usize; 4],
    pub in_side: usize,
    pub stride: usize,
    /// The highest density of the lab's grid at which sparse won, as it did at every lower
    /// one; 0: dense won everywhere.
    pub max_density: f64,
}

/// Which table a device reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossoverTable {
    Flex,
    Wgpu,
}

impl CrossoverTable {
    pub fn rows(self) -> &'static [Crossover] {
        match self {
            CrossoverTable::Flex => FLEX,
            // Not measured on GPU hardware yet (`scripts/gpu-check.sh` does): until then
            // "auto" keeps wgpu dense; "sparse" and "timed" choose otherwise.
            CrossoverTable::Wgpu => &[],
        }
    }

    /// The crossover density for `shape`: its own row, else the row of the same kernel,
    /// stride and output size whose channel product is nearest (the playground's narrower
    /// models); None where the table has nothing alike (the layer then runs dense).
    pub fn max_density(self, shape: &ConvShape) -> Option<f64> {
        let rows = self.rows();
        if let Some(row) = rows.iter().find(|r| {
            r.weight == shape.weight && r.in_side == shape.in_side && r.stride == shape.stride
        }) {
            return Some(row.max_density);
        }
        let channels = |w: [usize; 4]| ((w[0] * w[1]) as f64).ln();
        rows.iter()
            .filter(|r| {
                r.weight[2..] == shape.weight[2..]
                    && r.stride == shape.stride
                    && r.in_side / r.stride == shape.in_side / shape.stride
            })
            .min_by(|a, b| {
                let d = |r: &&Crossover| (channels(r.weight) - channels(shape.weight)).abs();
                d(a).total_cmp(&d(b))
            })
            .map(|r| r.max_density)
    }
}

/// The rows `scripts/sparselab bench kernels --device flex --models
/// resnet20,resnet18,resnet34,resnet50 --batch 128 --repeats 2 --crossover` printed on the
/// 2-core development machine on 2026-12-03, with loop v6 (the book's "Kernel lab on Flex" page has the
/// whole output). Another CPU would measure other crossovers; these are the shipped ones.
const FLEX: &[Crossover] = &[
    row([16, 3, 3, 3], 32, 1, 0.5),
    row([16, 16, 3, 3], 32, 1, 0.5),
    row([32, 16, 3, 3], 32, 2, 0.2),
    row([32, 32, 3, 3], 16, 1, 0.3),
    row([32, 16, 1, 1], 32, 2, 0.5),
    row([64, 32, 3, 3], 16, 2, 0.05),
    row([64, 64, 3, 3], 8, 1, 0.1),
    row([64, 32, 1, 1], 16, 2, 0.3),
    row([64, 3, 3, 3], 32, 1, 0.5),
    row([64, 64, 3, 3], 32, 1, 0.3),
    row([128, 64, 3, 3], 32, 2, 0.05),
    row([128, 128, 3, 3], 16, 1, 0.2),
    row([128, 64, 1, 1], 32, 2, 0.3),
    row([256, 128, 3, 3], 16, 2, 0.02),
    row([256, 256, 3, 3], 8, 1, 0.05),
    row([256, 128, 1, 1], 16, 2, 0.1),
    row([512, 256, 3, 3], 8, 2, 0.01),
    row([512, 512, 3, 3], 4, 1, 0.02),
    row([512, 256, 1, 1], 8, 2, 0.05),
    row([64, 64, 1, 1], 32, 1, 0.5),
    row([256, 64, 1, 1], 32, 1, 0.5),
    row([64, 256, 1, 1], 32, 1, 0.5),
    row([128, 256, 1, 1], 32, 1, 0.5),
    row([128, 128, 3, 3], 32, 2, 0.05),
    row([512, 128, 1, 1], 16, 1, 0.5),
    row([512, 256, 1, 1], 32, 2, 0.2),
    row([128, 512, 1, 1], 16, 1, 0.3),
    row([256, 512, 1, 1], 16, 1, 0.5),
    row([256, 256, 3, 3], 16, 2, 0.02),
    row([1024, 256, 1, 1], 8, 1, 0.3),
    row([1024, 512, 1, 1], 16, 2, 0.1),
    row([256, 1024, 1, 1], 8, 1, 0.2),
    row([512, 1024, 1, 1], 8, 1, 0.2),
    row([512, 512, 3, 3], 8, 2, 0.01),
    row([2048, 512, 1, 1], 4, 1, 0.05),
    row([2048, 1024, 1, 1], 8, 2, 0.05),
    row([512, 2048, 1, 1], 4, 1, 0.05),
];

const fn row(weight: [usize; 4], in_side: usize, stride: usize, max_density: f64) -> Crossover {
    Crossover {
        weight,
        in_side,
        stride,
        max_density,
    }
}

#[cfg(test)]
mod tests {
    use super::super::choice::conv_shapes;
    use super::*;
    use crate::model::{Arch, ModelConfig};

    fn shape(weight: [usize; 4], in_side: usize, stride: usize) -> ConvShape {
        ConvShape {
            path: "layer".into(),
            weight,
            in_side,
            stride,
        }
    }

    fn models(width: f64) -> Vec<(Arch, Vec<ConvShape>)> {
        [
            Arch::Resnet20,
            Arch::Resnet18,
            Arch::Resnet34,
            Arch::Resnet50,
        ]
        .into_iter()
        .map(|arch| {
            let model = ModelConfig {
                arch,
                width,
                ..Default::default()
            }
            .init(10, &burn::tensor::Device::flex());
            (arch, conv_shapes(&model))
        })
        .collect()
    }

    #[test]
    fn every_shape_of_the_measured_models_has_its_own_row() {
        for (arch, shapes) in models(1.0) {
            for s in shapes {
                let own = FLEX.iter().find(|r| {
                    r.weight == s.weight && r.in_side == s.in_side && r.stride == s.stride
                });
                let own = own.unwrap_or_else(|| panic!("{} of {} has no row", s.path, arch.name()));
                assert_eq!(CrossoverTable::Flex.max_density(&s), Some(own.max_density));
                assert!((0.0..=1.0).contains(&own.max_density));
            }
        }
    }

    #[test]
    fn a_narrower_shape_takes_a_row_of_its_own_kind() {
        for (arch, shapes) in models(0.5) {
            for s in shapes {
                let kind: Vec<f64> = FLEX
                    .iter()
                    .filter(|r| {
                        r.weight[2..] == s.weight[2..]
                            && r.stride == s.stride
                            && r.in_side / r.stride == s.in_side / s.stride
                    })
                    .map(|r| r.max_density)
                    .collect();
                let got = CrossoverTable::Flex.max_density(&s);
                let got = got.unwrap_or_else(|| panic!("{} of {} got none", s.path, arch.name()));
                assert!(kind.contains(&got), "{} of {}", s.path, arch.name());
            }
        }
        // A kernel size nobody measured, and the unmeasured wgpu table: dense.
        assert_eq!(
            CrossoverTable::Flex.max_density(&shape([8, 8, 7, 7], 32, 1)),
            None
        );
        let row = FLEX[0];
        let measured = shape(row.weight, row.in_side, row.stride);
        assert_eq!(CrossoverTable::Wgpu.max_density(&measured), None);
    }
}
