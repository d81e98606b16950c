//! Flex: the sparse convolution's forward loops (`sparse_conv::cpu_loops`, the version Flex
//! runs) with each output plane normalised as it is finished, by the BatchNorm's own
//! per-element expressions.

use super::ConvNormBackend;
use crate::kernels::batch_norm::{Affine, normalise_add_relu_in_place, normalise_in_place};
use crate::kernels::flex_tensor::{f32_elements, i32_elements, tensor};
use crate::kernels::sparse_conv::cpu_loops::{self, IndexList};
use crate::kernels::sparse_conv::{ConvGeometry, FLEX_LOOPS};
use burn::backend::{
    Flex, TensorMetadata,
    tensor::{FloatTensor, IntTensor},
};

/// The tensors both ops take besides the residual, by reference.
struct Inputs<'a> {
    x: &'a FloatTensor<Flex>,
    weight: &'a FloatTensor<Flex>,
    row_start: &'a IntTensor<Flex>,
    row_entries: &'a IntTensor<Flex>,
    affine: Affine,
}

/// The convolution, each output plane times `gain` (as the model multiplies a shared
/// convolution's output), normalised, then added to `residual` and through the ReLU, or
/// through the ReLU if `relu`.
fn normalised_convolution(
    inputs: Inputs,
    gain: f32,
    residual: Option<&FloatTensor<Flex>>,
    relu: bool,
    g: &ConvGeometry,
) -> FloatTensor<Flex> {
    if let Some(r) = residual {
        assert_eq!(
            r.shape(),
            g.output_shape(),
            "a residual of the convolution's output shape"
        );
    }
    let rs = residual.map(f32_elements);
    let (channels, plane_len) = (g.layout.out_channels, g.out_h * g.out_w);
    let Affine { scale, shift, .. } = &inputs.affine;
    let finish = |slab: usize, plane: &mut [f32]| {
        let c = slab % channels;
        // A gain of 1 multiplies nothing: `v * 1.0` is `v`.
        if gain != 1.0 {
            plane.iter_mut().for_each(|v| *v *= gain);
        }
        match &rs {
            Some(rs) => {
                let residual = &rs[slab * plane_len..(slab + 1) * plane_len];
                normalise_add_relu_in_place(plane, residual, scale[c], shift[c]);
            }
            None => normalise_in_place(plane, scale[c], shift[c], relu),
        }
    };
    let (start, entries) = (
        i32_elements(inputs.row_start),
        i32_elements(inputs.row_entries),
    );
    let rows = IndexList {
        start: &start,
        entries: &entries,
    };
    let (xs, ws) = (f32_elements(inputs.x), f32_elements(inputs.weight));
    let y = cpu_loops::forward_finished(FLEX_LOOPS, g, &xs, &ws, rows, &finish);
    tensor(y, g.output_shape())
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
        let inputs = Inputs {
            x: &x,
            weight: &weight,
            row_start: &row_start,
            row_entries: &row_entries,
            affine,
        };
        normalised_convolution(inputs, gain, None, relu, &g)
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
        let affine = Affine::of(&stats, &gamma, &beta, epsilon);
        let inputs = Inputs {
            x: &x,
            weight: &weight,
            row_start: &row_start,
            row_entries: &row_entries,
            affine,
        };
        normalised_convolution(inputs, gain, Some(&residual), true, &g)
    }
}
