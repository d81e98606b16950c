//! The squared L2 norm of a masked gradient, `sum((grad * mask)^2)`, which the optimizer's
//! global clipping adds up over every parameter. As tensor ops that is three passes over
//! each gradient and two new buffers of its size (multiply, square, sum): at ResNet-34's 21
//! million weights, hundreds of megabytes per step for 21 thousand live gradients at 99.9%.
//! Flex reads the mask once and the gradient only where the mask keeps it, summing in f64
//! over fixed chunks in order (so no result depends on the thread count). Elsewhere the
//! tensor ops run (`reference`), which the tests compare with.

use super::parallel;
use crate::kernels::flex_tensor::{f32_elements, tensor};
use burn::backend::{Backend, Dispatch, Flex, backend_extension, tensor::FloatTensor};
use burn::tensor::{Shape, Tensor};

/// Elements per thread's chunk.
const CHUNK: usize = 1 << 16;

#[backend_extension(Flex)]
pub trait MaskedNormBackend: Backend {
    /// `sum((grad * mask)^2)` as a one-element tensor; without `has_mask`, `mask` is not
    /// read and the whole gradient counts.
    fn masked_sum_squares(
        grad: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        has_mask: bool,
    ) -> FloatTensor<Self>;
}

impl MaskedNormBackend for Flex {
    fn masked_sum_squares(
        grad: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        has_mask: bool,
    ) -> FloatTensor<Self> {
        let g = f32_elements(&grad);
        let mask = has_mask.then(|| f32_elements(&mask));
        let chunks: Vec<usize> = (0..g.len().div_ceil(CHUNK)).collect();
        let sums = parallel::map(&chunks, |&c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(g.len());
            match &mask {
                Some(k) => range
                    .filter(|&i| k[i] != 0.0)
                    .map(|i| {
                        let v = (g[i] * k[i]) as f64;
                        v * v
                    })
                    .sum::<f64>(),
                None => range.map(|i| (g[i] as f64) * (g[i] as f64)).sum::<f64>(),
            }
        });
        tensor(vec![sums.iter().sum::<f64>() as f32], Shape::new([1]))
    }
}

/// `sum((grad * mask)^2)` of one parameter's flat gradient, as a one-element tensor on its
/// device: the one-pass loop on Flex, the tensor ops elsewhere.
pub fn masked_sum_squares(grad: Tensor<1>, mask: Option<Tensor<1>>) -> Tensor<1> {
    if !super::runs_flex(&grad.device()) {
        return reference(grad, mask);
    }
    let has_mask = mask.is_some();
    // Without a mask the op still takes a tensor; it is not read.
    let mask = mask.unwrap_or_else(|| grad.clone());
    Tensor::from_dispatch(<Dispatch as MaskedNormBackend>::masked_sum_squares(
        grad.inner().into_dispatch(),
        mask.inner().into_dispatch(),
        has_mask,
    ))
}

/// The tensor ops: `(grad * mask).square().sum()`.
pub fn reference(grad: Tensor<1>, mask: Option<Tensor<1>>) -> Tensor<1> {
    match mask {
        Some(mask) => (grad * mask).square().sum(),
        None => grad.square().sum(),
    }
}
