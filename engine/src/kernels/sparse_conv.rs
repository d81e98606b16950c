//! Kernels 3 and 4: convolution (and linear) layers that touch only the active weights.
//! Forward: `shaders/sparse_conv_forward.wgsl`; backward: the input gradient as a gather
//! over the index by input channel (`sparse_conv_input_grad.wgsl`) and the weight gradient
//! at active positions only (`sparse_conv_weight_grad.wgsl`). The op is registered with
//! Burn's autodiff, so a model built on it trains with `loss.backward()` as usual.
//!
//! The weight gradient is exactly zero at pruned positions: RigL-style growth, which needs
//! the dense gradient there, runs its update steps through the dense convolution instead.
//!
//! References: `reference_conv2d` (Burn's dense conv on the masked weight) is what every
//! output and gradient is tested against; Flex runs a CPU loop over the same index.

use super::sparse_index::{DeviceSparseIndex, WeightLayout};
use super::wgsl::{self, shader};
use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{
    AutodiffBackend, Backend, Dispatch, Flex, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Tensor, TensorData, read_sync};

/// Everything a sparse convolution launch needs to know about its shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub layout: WeightLayout,
    /// The weight tensor's own shape (conv `[out, in, kh, kw]`, linear `[in, out, 1, 1]`).
    pub weight_shape: [usize; 4],
    pub nnz: usize,
}

impl ConvGeometry {
    pub fn input_shape(&self) -> Shape {
        Shape::new([self.batch, self.layout.in_channels, self.in_h, self.in_w])
    }

    pub fn output_shape(&self) -> Shape {
        Shape::new([self.batch, self.layout.out_channels, self.out_h, self.out_w])
    }

    pub fn weight_shape(&self) -> Shape {
        Shape::new(self.weight_shape)
    }

    /// The shader's `params`: geometry, then the grid's x extent and the thread count.
    fn params(&self, groups_x: u32, count: usize) -> [u32; 17] {
        let l = &self.layout;
        [
            self.batch,
            l.in_channels,
            self.in_h,
            self.in_w,
            l.out_channels,
            self.out_h,
            self.out_w,
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1],
            l.stride_oc,
            l.stride_ic,
            groups_x as usize,
            count,
        ]
        .map(|v| u32::try_from(v).expect("sparse conv size exceeds u32"))
    }
}

#[backend_extension(Autodiff, Cube, Fusion, Flex)]
pub trait SparseConvBackend: Backend {
    #[fusion(dtype = x, shape = geometry_output_shape(geometry))]
    fn sparse_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    #[fusion(dtype = grad_out, shape = geometry_input_shape(geometry))]
    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;

    #[fusion(dtype = x, shape = geometry_weight_shape(geometry))]
    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self>;
}

fn geometry_output_shape(geometry: &ConvGeometry) -> Shape {
    geometry.output_shape()
}

fn geometry_input_shape(geometry: &ConvGeometry) -> Shape {
    geometry.input_shape()
}

fn geometry_weight_shape(geometry: &ConvGeometry) -> Shape {
    geometry.weight_shape()
}

/// Output size of a convolution along one axis.
pub fn conv_out_len(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (input + 2 * padding - kernel) / stride + 1
}

/// A 2-D convolution (no bias, dilation 1, one group) over the active weights in `index`.
/// `weight` is the dense `[out, in, kh, kw]` parameter; its pruned entries are never read.
pub fn sparse_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    index: &DeviceSparseIndex,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    let [batch, in_channels, in_h, in_w] = x.dims();
    let weight_shape: [usize; 4] = weight.dims();
    assert_eq!(
        index.layout,
        WeightLayout::conv(weight_shape),
        "sparse index built for another weight"
    );
    assert_eq!(in_channels, weight_shape[1], "input channels differ");
    let kernel = [weight_shape[2], weight_shape[3]];
    let geometry = ConvGeometry {
        batch,
        in_h,
        in_w,
        out_h: conv_out_len(in_h, kernel[0], stride[0], padding[0]),
        out_w: conv_out_len(in_w, kernel[1], stride[1], padding[1]),
        kernel,
        stride,
        padding,
        layout: index.layout,
        weight_shape,
        nnz: index.nnz,
    };
    run(x, weight, index, geometry)
}

/// A linear layer `x @ weight + bias` (Burn's `[in, out]` weight) over the active weights.
pub fn sparse_linear(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    index: &DeviceSparseIndex,
) -> Tensor<2> {
    let [batch, d_in] = x.dims();
    let [w_in, d_out] = weight.dims();
    assert_eq!(d_in, w_in, "input features differ");
    assert_eq!(index.layout, WeightLayout::linear([w_in, d_out]));
    let geometry = ConvGeometry {
        batch,
        in_h: 1,
        in_w: 1,
        out_h: 1,
        out_w: 1,
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
        layout: index.layout,
        weight_shape: [w_in, d_out, 1, 1],
        nnz: index.nnz,
    };
    let y = run(
        x.reshape([batch, d_in, 1, 1]),
        weight.reshape([w_in, d_out, 1, 1]),
        index,
        geometry,
    )
    .reshape([batch, d_out]);
    match bias {
        Some(b) => y + b.unsqueeze(),
        None => y,
    }
}

fn run(
    x: Tensor<4>,
    weight: Tensor<4>,
    index: &DeviceSparseIndex,
    geometry: ConvGeometry,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SparseConvBackend>::sparse_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        index.row_start.clone().into_dispatch(),
        index.row_entries.clone().into_dispatch(),
        index.col_start.clone().into_dispatch(),
        index.col_entries.clone().into_dispatch(),
        geometry,
    ))
}

/// The reference: Burn's dense convolution of the masked weight.
pub fn reference_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    mask: Tensor<4>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    conv2d(
        x,
        weight * mask,
        None,
        ConvOptions::new(stride, padding, [1, 1], 1),
    )
}

// ---------------------------------------------------------------------------------------
// wgpu: the WGSL kernels.

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

// ---------------------------------------------------------------------------------------
// Flex (CPU): the same loops as the shaders, over host copies.

fn host_f32(t: FloatTensor<Flex>) -> Vec<f32> {
    read_sync(Flex::float_into_data(t))
        .expect("reading a CPU tensor")
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

fn host_i32(t: IntTensor<Flex>) -> Vec<i32> {
    read_sync(Flex::int_into_data(t))
        .expect("reading a CPU tensor")
        .convert::<i32>()
        .try_into_vec::<i32>()
        .expect("i32 data")
}

fn to_flex(values: Vec<f32>, shape: Shape, like: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    Flex::float_from_data(
        TensorData::new(values, shape),
        &TensorMetadata::device(like),
    )
}

/// Calls `f(output_offset, input_offset)` for every output position of one image plane
/// whose input position under tap (kh, kw) lies inside the (unpadded) input plane: the
/// loop every CPU kernel below shares.
fn for_each_tap(g: &ConvGeometry, kh: usize, kw: usize, mut f: impl FnMut(usize, usize)) {
    for oh in 0..g.out_h {
        let Some(ih) = (oh * g.stride[0] + kh).checked_sub(g.padding[0]) else {
            continue;
        };
        if ih >= g.in_h {
            continue;
        }
        for ow in 0..g.out_w {
            let Some(iw) = (ow * g.stride[1] + kw).checked_sub(g.padding[1]) else {
                continue;
            };
            if iw < g.in_w {
                f(oh * g.out_w + ow, ih * g.in_w + iw);
            }
        }
    }
}

/// (ic or oc, kh, kw) of an index entry `channel * taps + tap`.
fn split_entry(g: &ConvGeometry, entry: i32) -> (usize, usize, usize) {
    let (entry, taps) = (entry as usize, g.layout.taps);
    let tap = entry % taps;
    (entry / taps, tap / g.kernel[1], tap % g.kernel[1])
}

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
        let like = x.clone();
        let (xs, ws) = (host_f32(x), host_f32(weight));
        let (rows, entries) = (host_i32(row_start), host_i32(row_entries));
        let (l, in_plane) = (g.layout, g.in_h * g.in_w);
        let mut out = vec![0.0f32; g.output_shape().num_elements()];
        for (slab, out_plane) in out.chunks_mut(g.out_h * g.out_w).enumerate() {
            let (n, oc) = (slab / l.out_channels, slab % l.out_channels);
            for &entry in &entries[rows[oc] as usize..rows[oc + 1] as usize] {
                let (ic, kh, kw) = split_entry(&g, entry);
                let w = ws[l.flat(oc, ic, kh * g.kernel[1] + kw)];
                let image = &xs[(n * l.in_channels + ic) * in_plane..][..in_plane];
                for_each_tap(&g, kh, kw, |o, i| out_plane[o] += w * image[i]);
            }
        }
        to_flex(out, g.output_shape(), &like)
    }

    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let like = grad_out.clone();
        let (dy, ws) = (host_f32(grad_out), host_f32(weight));
        let (cols, entries) = (host_i32(col_start), host_i32(col_entries));
        let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
        let mut dx = vec![0.0f32; g.input_shape().num_elements()];
        // Scatter form: each active weight adds its contribution to the input plane.
        for (slab, dx_plane) in dx.chunks_mut(in_plane).enumerate() {
            let (n, ic) = (slab / l.in_channels, slab % l.in_channels);
            for &entry in &entries[cols[ic] as usize..cols[ic + 1] as usize] {
                let (oc, kh, kw) = split_entry(&g, entry);
                let w = ws[l.flat(oc, ic, kh * g.kernel[1] + kw)];
                let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
                for_each_tap(&g, kh, kw, |o, i| dx_plane[i] += w * dy_plane[o]);
            }
        }
        to_flex(dx, g.input_shape(), &like)
    }

    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        let like = x.clone();
        let (xs, dy) = (host_f32(x), host_f32(grad_out));
        let (rows, entries) = (host_i32(row_start), host_i32(row_entries));
        let (l, in_plane, out_plane) = (g.layout, g.in_h * g.in_w, g.out_h * g.out_w);
        let mut dw = vec![0.0f32; g.weight_shape().num_elements()];
        for oc in 0..l.out_channels {
            for &entry in &entries[rows[oc] as usize..rows[oc + 1] as usize] {
                let (ic, kh, kw) = split_entry(&g, entry);
                let mut acc = 0.0f32;
                for n in 0..g.batch {
                    let image = &xs[(n * l.in_channels + ic) * in_plane..][..in_plane];
                    let dy_plane = &dy[(n * l.out_channels + oc) * out_plane..][..out_plane];
                    for_each_tap(&g, kh, kw, |o, i| acc += dy_plane[o] * image[i]);
                }
                dw[l.flat(oc, ic, kh * g.kernel[1] + kw)] = acc;
            }
        }
        to_flex(dw, g.weight_shape(), &like)
    }
}

// ---------------------------------------------------------------------------------------
// Autodiff: the backward pass of `sparse_conv2d` is the two gradient kernels.

#[derive(Debug)]
struct SparseConvBackward;

/// The index tensors and geometry the backward pass needs.
#[derive(Clone, Debug)]
struct SavedIndex<B: Backend> {
    row_start: IntTensor<B>,
    row_entries: IntTensor<B>,
    col_start: IntTensor<B>,
    col_entries: IntTensor<B>,
    geometry: ConvGeometry,
}

impl<B: Backend + SparseConvBackend> Backward<B, 2> for SparseConvBackward {
    type State = (NodeId, NodeId, SavedIndex<B>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, saved) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_x {
            let dx = B::sparse_conv2d_input_grad(
                grad.clone(),
                weight,
                saved.col_start,
                saved.col_entries,
                saved.geometry,
            );
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = B::sparse_conv2d_weight_grad(
                x,
                grad,
                saved.row_start,
                saved.row_entries,
                saved.geometry,
            );
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: Backend + SparseConvBackend, C: CheckpointStrategy> SparseConvBackend for Autodiff<B, C> {
    fn sparse_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        let forward =
            |x, w, rs: &IntTensor<B>, re: &IntTensor<B>, cs: &IntTensor<B>, ce: &IntTensor<B>| {
                B::sparse_conv2d(
                    x,
                    w,
                    rs.clone(),
                    re.clone(),
                    cs.clone(),
                    ce.clone(),
                    geometry,
                )
            };
        match SparseConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = forward(
                    x.into_primitive(),
                    weight.into_primitive(),
                    &row_start,
                    &row_entries,
                    &col_start,
                    &col_entries,
                );
                let saved = SavedIndex {
                    row_start,
                    row_entries,
                    col_start,
                    col_entries,
                    geometry,
                };
                prep.finish((x_state, weight_state, saved), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                &row_start,
                &row_entries,
                &col_start,
                &col_entries,
            )),
        }
    }

    fn sparse_conv2d_input_grad(
        grad_out: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        col_start: IntTensor<Self>,
        col_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        // Gradient kernels are not themselves differentiated.
        <Self as AutodiffBackend>::from_inner(B::sparse_conv2d_input_grad(
            grad_out.into_primitive(),
            weight.into_primitive(),
            col_start,
            col_entries,
            geometry,
        ))
    }

    fn sparse_conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        row_start: IntTensor<Self>,
        row_entries: IntTensor<Self>,
        geometry: ConvGeometry,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(B::sparse_conv2d_weight_grad(
            x.into_primitive(),
            grad_out.into_primitive(),
            row_start,
            row_entries,
            geometry,
        ))
    }
}
