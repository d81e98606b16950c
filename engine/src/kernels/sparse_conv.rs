//! Kernels 3 and 4: convolution (and linear) layers that touch only the active weights.
//! Forward: `shaders/sparse_conv_forward.wgsl`; backward: the input gradient as a gather
//! over the index by input channel (`sparse_conv_input_grad.wgsl`) and the weight gradient
//! at active positions only (`sparse_conv_weight_grad.wgsl`). The op is registered with
//! Burn's autodiff, so a model built on it trains with `loss.backward()` as usual.
//!
//! The weight gradient is exactly zero at pruned positions (`WeightGrad::Active`). A step
//! whose method reads the dense gradient (RigL's grow) asks for `WeightGrad::Dense`: the
//! forward and the input gradient stay sparse, and only the weight gradient is Burn's dense
//! convolution backward, a third of a dense step's arithmetic instead of all of it.
//!
//! References: `reference_conv2d` (Burn's dense conv on the masked weight) is what every
//! output and gradient is tested against; Flex runs CPU loops over the same index.
//!
//! Here: the op and its geometry. Its implementations: `cube.rs` (the WGSL kernels on
//! wgpu), `flex.rs` (Flex's tensors handed to `cpu_loops.rs`, the CPU loops in numbered
//! versions), `autodiff.rs` (the backward pass).

mod autodiff;
pub mod cpu_loops;
mod cube;
mod flex;

pub(crate) use flex::VERSION as FLEX_LOOPS;

use super::sparse_index::{DeviceSparseIndex, WeightLayout};
use burn::backend::{
    Backend, Dispatch, backend_extension,
    tensor::{FloatTensor, IntTensor},
};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Shape, Tensor};

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
    pub weight_grad: WeightGrad,
}

/// Which weight gradient the backward pass computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightGrad {
    /// At active positions only; zero elsewhere (every ordinary step).
    #[default]
    Active,
    /// At every position, as the dense convolution of the masked weight would give it.
    Dense,
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
    sparse_conv2d_with(x, weight, index, stride, padding, WeightGrad::Active)
}

/// `sparse_conv2d` with the weight gradient of choice.
pub fn sparse_conv2d_with(
    x: Tensor<4>,
    weight: Tensor<4>,
    index: &DeviceSparseIndex,
    stride: [usize; 2],
    padding: [usize; 2],
    weight_grad: WeightGrad,
) -> Tensor<4> {
    let geometry = conv_geometry(&x, &weight, index, stride, padding, weight_grad);
    run(x, weight, index, geometry)
}

/// The geometry of a sparse convolution of `x` by `weight` over `index`.
pub(crate) fn conv_geometry(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    index: &DeviceSparseIndex,
    stride: [usize; 2],
    padding: [usize; 2],
    weight_grad: WeightGrad,
) -> ConvGeometry {
    conv_geometry_of(x.dims(), weight.dims(), index, stride, padding, weight_grad)
}

/// `conv_geometry` of an input of shape `x` and a weight of shape `weight_shape`.
pub(crate) fn conv_geometry_of(
    x: [usize; 4],
    weight_shape: [usize; 4],
    index: &DeviceSparseIndex,
    stride: [usize; 2],
    padding: [usize; 2],
    weight_grad: WeightGrad,
) -> ConvGeometry {
    let [batch, in_channels, in_h, in_w] = x;
    assert_eq!(
        index.layout,
        WeightLayout::conv(weight_shape),
        "sparse index built for another weight"
    );
    assert_eq!(in_channels, weight_shape[1], "input channels differ");
    let kernel = [weight_shape[2], weight_shape[3]];
    ConvGeometry {
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
        weight_grad,
    }
}

/// A linear layer `x @ weight + bias` (Burn's `[in, out]` weight) over the active weights.
pub fn sparse_linear(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    index: &DeviceSparseIndex,
) -> Tensor<2> {
    sparse_linear_with(x, weight, bias, index, WeightGrad::Active)
}

/// `sparse_linear` with the weight gradient of choice.
pub fn sparse_linear_with(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    index: &DeviceSparseIndex,
    weight_grad: WeightGrad,
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
        weight_grad,
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

/// The weight gradient at every position (`WeightGrad::Dense`): Burn's convolution weight
/// backward, or `x^T grad` for a linear layer's `[in, out]` weight. Pruned weights are 0,
/// so this is the gradient the dense convolution of the masked weight would give.
pub(crate) fn dense_weight_grad<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    g: &ConvGeometry,
) -> FloatTensor<B> {
    if g.layout == WeightLayout::conv(g.weight_shape) {
        B::conv2d_weight_backward(
            x,
            weight,
            grad_out,
            ConvOptions::new(g.stride, g.padding, [1, 1], 1),
        )
    } else {
        let l = &g.layout;
        let x = B::float_reshape(x, Shape::new([g.batch, l.in_channels]));
        let grad = B::float_reshape(grad_out, Shape::new([g.batch, l.out_channels]));
        let dw = B::float_matmul(B::float_transpose(x), grad);
        B::float_reshape(dw, g.weight_shape())
    }
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
