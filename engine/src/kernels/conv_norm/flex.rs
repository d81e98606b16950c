//! Flex: the sparse convolution's forward loops (`sparse_conv::cpu_loops`, the version Flex
//! runs) with each output plane normalised as it is finished, by the BatchNorm's own
//! per-element expressions.

use super::ConvNormBackend;
use crate::kernels::batch_norm::{Affine, normalise_add_relu_in_place, normalise_in_place};
use crate::kernels::flex_tensor::{f32_elements, i32_elements, tensor};
use crate::kernels::sparse_conv::cpu_loops::{self, IndexList, LoopVersion};
use crate::kernels::sparse_conv::{ConvGeometry, FLEX_LOOPS};
use burn::backend::{
    Flex, TensorMetadata,
    tensor::{FloatTensor, IntTensor},
};

// A block's pair (`cpu_loops::pair_forward`) sums as v11 does: its bits equal the two
// convolutions apart only while Flex runs v11.
const _: () = assert!(matches!(FLEX_LOOPS, LoopVersion::V11));

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
    let finish = finisher(
        gain,
        &inputs.affine,
        rs.as_deref(),
        relu,
        g.layout.out_channels,
        g.out_h * g.out_w,
    );
    let (start, entries) = (
        i32_elements(inputs.row_start),
        i32_elements(inputs.row_entries),
    );
    let (xs, ws) = (f32_elements(inputs.x), f32_elements(inputs.weight));
    let y = cpu_loops::forward_finished(FLEX_LOOPS, g, &xs, &ws, rows(&start, &entries), &finish);
    tensor(y, g.output_shape())
}

/// What a convolution's output plane goes through once summed (plane number `n * C + c`):
/// times `gain` (as the model multiplies a shared convolution's output), normalised by
/// channel `c`'s scale and shift, then added to the residual's plane and through the ReLU,
/// or through the ReLU if `relu`.
fn finisher<'a>(
    gain: f32,
    affine: &'a Affine,
    residual: Option<&'a [f32]>,
    relu: bool,
    channels: usize,
    plane_len: usize,
) -> impl Fn(usize, &mut [f32]) + Sync + 'a {
    let Affine { scale, shift, .. } = affine;
    move |slab: usize, plane: &mut [f32]| {
        let c = slab % channels;
        // A gain of 1 multiplies nothing: `v * 1.0` is `v`.
        if gain != 1.0 {
            plane.iter_mut().for_each(|v| *v *= gain);
        }
        match residual {
            Some(rs) => {
                let residual = &rs[slab * plane_len..(slab + 1) * plane_len];
                normalise_add_relu_in_place(plane, residual, scale[c], shift[c]);
            }
            None => normalise_in_place(plane, scale[c], shift[c], relu),
        }
    }
}

/// The index's rows as the loops read them.
fn rows<'a>(start: &'a [i32], entries: &'a [i32]) -> IndexList<'a> {
    IndexList { start, entries }
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

    fn sparse_conv2d_pair_norm_add_relu(
        x: FloatTensor<Self>,
        weight1: FloatTensor<Self>,
        row_start1: IntTensor<Self>,
        row_entries1: IntTensor<Self>,
        gain1: f32,
        stats1: FloatTensor<Self>,
        gamma1: FloatTensor<Self>,
        beta1: FloatTensor<Self>,
        epsilon1: f64,
        weight2: FloatTensor<Self>,
        row_start2: IntTensor<Self>,
        row_entries2: IntTensor<Self>,
        gain2: f32,
        stats2: FloatTensor<Self>,
        gamma2: FloatTensor<Self>,
        beta2: FloatTensor<Self>,
        epsilon2: f64,
        residual: FloatTensor<Self>,
        first: ConvGeometry,
        second: ConvGeometry,
    ) -> FloatTensor<Self> {
        assert_eq!(
            residual.shape(),
            second.output_shape(),
            "a residual of the second convolution's output shape"
        );
        let (affine1, affine2) = (
            Affine::of(&stats1, &gamma1, &beta1, epsilon1),
            Affine::of(&stats2, &gamma2, &beta2, epsilon2),
        );
        let residual = f32_elements(&residual);
        let middle_plane = first.out_h * first.out_w;
        let finish1 = finisher(
            gain1,
            &affine1,
            None,
            true,
            first.layout.out_channels,
            middle_plane,
        );
        let finish2 = finisher(
            gain2,
            &affine2,
            Some(&residual),
            true,
            second.layout.out_channels,
            second.out_h * second.out_w,
        );
        let (start1, entries1) = (i32_elements(&row_start1), i32_elements(&row_entries1));
        let (start2, entries2) = (i32_elements(&row_start2), i32_elements(&row_entries2));
        let (x, w1, w2) = (
            f32_elements(&x),
            f32_elements(&weight1),
            f32_elements(&weight2),
        );
        let y = cpu_loops::pair_forward(
            &first,
            &x,
            &w1,
            rows(&start1, &entries1),
            &finish1,
            &second,
            &w2,
            rows(&start2, &entries2),
            &finish2,
        )
        .expect("the caller checked `pair_runs`");
        tensor(y, second.output_shape())
    }
}
