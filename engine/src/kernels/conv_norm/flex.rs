//! Flex: v6's forward loops (`sparse_conv::cpu_loops`) with each output plane normalised
//! as it is finished, by the BatchNorm's own per-element expressions.

use super::ConvNormBackend;
use crate::kernels::batch_norm::{Affine, normalise_add_relu_in_place, normalise_in_place};
use crate::kernels::flex_tensor::{f32_elements, i32_elements, tensor};
use crate::kernels::sparse_conv::cpu_loops::{self, IndexList, PlaneFinish};
use crate::kernels::sparse_conv::{ConvGeometry, FLEX_LOOPS};
use burn::backend::{
    Flex, TensorMetadata,
    tensor::{FloatTensor, IntTensor},
};

/// The convolution, each output plane finished by `finish` (which first scales it by
/// `gain`, as the model multiplies a shared convolution's output).
fn convolved(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    row_start: &IntTensor<Flex>,
    row_entries: &IntTensor<Flex>,
    g: &ConvGeometry,
    finish: PlaneFinish,
) -> FloatTensor<Flex> {
    let (start, entries) = (i32_elements(row_start), i32_elements(row_entries));
    let rows = IndexList {
        start: &start,
        entries: &entries,
    };
    let (xs, ws) = (f32_elements(x), f32_elements(weight));
    let y = cpu_loops::forward_finished(FLEX_LOOPS, g, &xs, &ws, rows, finish);
    tensor(y, g.output_shape())
}

/// `plane * gain`, elementwise (nothing to do for a gain of 1).
fn scaled(plane: &mut [f32], gain: f32) {
    if gain != 1.0 {
        plane.iter_mut().for_each(|v| *v *= gain);
    }
}

impl ConvNormBackend for Flex {
    fn sparse_conv2d_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        gain: f32,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let channels = g.layout.out_channels;
        let finish = |slab: usize, plane: &mut [f32]| {
            let c = slab % channels;
            scaled(plane, gain);
            normalise_in_place(plane, affine.scale[c], affine.shift[c], relu);
        };
        convolved(&x, &weight, &row_start, &row_entries, &g, &finish)
    }

    fn sparse_conv2d_norm_add_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        gain: f32,
        stats: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        epsilon: f64,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        assert_eq!(
            residual.shape(),
            g.output_shape(),
            "a residual of the convolution's output shape"
        );
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let rs = f32_elements(&residual);
        let (channels, plane_len) = (g.layout.out_channels, g.out_h * g.out_w);
        let finish = |slab: usize, plane: &mut [f32]| {
            let c = slab % channels;
            scaled(plane, gain);
            let residual = &rs[slab * plane_len..(slab + 1) * plane_len];
            normalise_add_relu_in_place(plane, residual, affine.scale[c], affine.shift[c]);
        };
        convolved(&x, &weight, &row_start, &row_entries, &g, &finish)
    }
}
