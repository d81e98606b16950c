//! wgpu: the sparse convolution's WGSL kernels, launched through Burn's custom-kernel API.

use super::super::wgsl::{self, shader};
use super::*;
use burn::backend::ops::FloatTensorOps;
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::tensor::DType;

impl SparseConvBackend for CubeBackend {
    fn sparse_conv2d(
        x: CubeTensor,
        weight: CubeTensor,
        row_start: CubeTensor,
        row_entries: CubeTensor,
        _col_start: CubeTensor,
        _col_entries: CubeTensor,
        geometry: ConvGeometry,
    ) -> CubeTensor {
        let x = wgsl::contiguous(x, "input", &[DType::F32]);
        let weight = wgsl::contiguous(weight, "weight", &[DType::F32]);
        let (rows, entries) = index_buffers(row_start, row_entries);
        let out = wgsl::empty_f32(&x, geometry.output_shape());
        let count = geometry.output_shape().num_elements();
        let (grid, groups_x) = wgsl::grid(wgsl::groups_for(count));
        wgsl::launch(
            &x,
            shader!("sparse_conv_forward", "sparse_conv_common"),
            wgsl::WORKGROUP,
            grid,
            vec![
                x.handle.clone(),
                weight.handle.clone(),
                rows.handle,
                entries.handle,
                out.handle.clone(),
            ],
            &geometry.params(groups_x, count),
        );
        out
    }

    fn sparse_conv2d_input_grad(
        grad_out: CubeTensor,
        weight: CubeTensor,
        col_start: CubeTensor,
        col_entries: CubeTensor,
        geometry: ConvGeometry,
    ) -> CubeTensor {
        let grad_out = wgsl::contiguous(grad_out, "output gradient", &[DType::F32]);
        let weight = wgsl::contiguous(weight, "weight", &[DType::F32]);
        let (cols, entries) = index_buffers(col_start, col_entries);
        let grad_in = wgsl::empty_f32(&grad_out, geometry.input_shape());
        let count = geometry.input_shape().num_elements();
        let (grid, groups_x) = wgsl::grid(wgsl::groups_for(count));
        wgsl::launch(
            &grad_out,
            shader!("sparse_conv_input_grad", "sparse_conv_common"),
            wgsl::WORKGROUP,
            grid,
            vec![
                grad_out.handle.clone(),
                weight.handle.clone(),
                cols.handle,
                entries.handle,
                grad_in.handle.clone(),
            ],
            &geometry.params(groups_x, count),
        );
        grad_in
    }

    fn sparse_conv2d_weight_grad(
        x: CubeTensor,
        grad_out: CubeTensor,
        row_start: CubeTensor,
        row_entries: CubeTensor,
        geometry: ConvGeometry,
    ) -> CubeTensor {
        let x = wgsl::contiguous(x, "input", &[DType::F32]);
        let grad_out = wgsl::contiguous(grad_out, "output gradient", &[DType::F32]);
        let (rows, entries) = index_buffers(row_start, row_entries);
        let grad_weight = Self::float_zeros(
            geometry.weight_shape(),
            &x.device,
            burn::tensor::FloatDType::F32,
        );
        if geometry.nnz > 0 {
            // One workgroup per active weight.
            let (grid, groups_x) = wgsl::grid(geometry.nnz as u32);
            wgsl::launch(
                &x,
                shader!("sparse_conv_weight_grad", "sparse_conv_common"),
                wgsl::WORKGROUP,
                grid,
                vec![
                    x.handle.clone(),
                    grad_out.handle.clone(),
                    rows.handle,
                    entries.handle,
                    grad_weight.handle.clone(),
                ],
                &geometry.params(groups_x, geometry.nnz),
            );
        }
        grad_weight
    }
}

fn index_buffers(start: CubeTensor, entries: CubeTensor) -> (CubeTensor, CubeTensor) {
    let ints = [DType::I32];
    (
        wgsl::contiguous(start, "index", &ints),
        wgsl::contiguous(entries, "index", &ints),
    )
}
