//! Flex (CPU): the loops of `cpu_loops.rs` (v11) run on the tensors' own buffers
//! (`flex_tensor.rs`): no host round trip per call.

use super::cpu_loops::{self, IndexList, LoopVersion};
use super::*;
use crate::kernels::flex_tensor::{f32_elements, i32_elements, tensor};
use burn::backend::{
    Flex,
    tensor::{FloatTensor, IntTensor},
};

/// The version Flex runs (the kernel lab times the others).
pub(crate) const VERSION: LoopVersion = LoopVersion::V11;

impl SparseConvBackend for Flex {
    fn sparse_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        _col_start: IntTensor<Self>,
        _col_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let (start, entries) = (i32_elements(&row_start), i32_elements(&row_entries));
        let rows = IndexList {
            start: &start,
            entries: &entries,
        };
        let y = cpu_loops::forward(VERSION, &g, &f32_elements(&x), &f32_elements(&weight), rows);
        tensor(y, g.output_shape())
    }

    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let (start, entries) = (i32_elements(&col_start), i32_elements(&col_entries));
        let cols = IndexList {
            start: &start,
            entries: &entries,
        };
        let dx = cpu_loops::input_grad(
            VERSION,
            &g,
            &f32_elements(&grad_out),
            &f32_elements(&weight),
            cols,
        );
        tensor(dx, g.input_shape())
    }

    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let (start, entries) = (i32_elements(&row_start), i32_elements(&row_entries));
        let rows = IndexList {
            start: &start,
            entries: &entries,
        };
        let dw = cpu_loops::weight_grad(
            VERSION,
            &g,
            &f32_elements(&x),
            &f32_elements(&grad_out),
            rows,
        );
        tensor(dw, g.weight_shape())
    }
}
