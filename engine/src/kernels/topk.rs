//! Kernel 2: exact top-k selection without a full sort: a 4-pass radix select on the bit
//! pattern of |score| (8-bit digits, one histogram per pass) finds the k-th key, then ties
//! at that key are ranked by index with a chunked prefix scan. Exact in the count, ties to
//! the lower index: the same answer as the CPU reference `sparsity::topk::top_k`.
//!
//! One call serves every mask update: prune = the k smallest |w| among active weights,
//! grow = the k largest |grad| among inactive ones. Shaders: `shaders/topk_*.wgsl`.

use super::wgsl::{self, shader};
use crate::sparsity::topk::top_k;
use burn::backend::ops::FloatTensorOps;
use burn::backend::wgpu::{CubeBackend, CubeTensor};
use burn::backend::{
    Backend, Dispatch, Flex, TensorMetadata, backend_extension, tensor::FloatTensor,
};
use burn::tensor::{DType, Tensor, TensorData, read_sync};

/// What to select.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopKQuery {
    /// How many elements to select (all eligible ones when fewer are eligible).
    pub k: usize,
    /// Select the smallest |score| instead of the largest.
    pub smallest: bool,
    /// Candidates are the elements whose `eligible` value is 1 (true) or 0 (false).
    pub among_ones: bool,
}

#[backend_extension(Cube, Fusion, Flex)]
pub trait TopKBackend: Backend {
    /// A 0/1 tensor shaped like `scores` marking the selected elements.
    #[fusion(dtype = scores, shape = scores)]
    fn top_k_mask(
        scores: FloatTensor<Self>,
        eligible: FloatTensor<Self>,
        query: TopKQuery,
    ) -> FloatTensor<Self>;
}

/// Selects on the device: the radix kernels on wgpu, the CPU reference elsewhere.
/// `scores` and `eligible` are flat (autodiff is dropped); `eligible` holds 0/1.
pub fn top_k_mask(scores: Tensor<1>, eligible: Tensor<1>, query: TopKQuery) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as TopKBackend>::top_k_mask(
        scores.inner().into_dispatch(),
        eligible.inner().into_dispatch(),
        query,
    ))
}

/// The CPU reference on host slices: the selected indices, ascending.
pub fn reference(scores: &[f32], eligible: &[f32], query: TopKQuery) -> Vec<usize> {
    let wanted = if query.among_ones { 1.0 } else { 0.0 };
    let candidates: Vec<usize> = (0..scores.len())
        .filter(|&i| eligible[i] == wanted)
        .collect();
    let k = query.k.min(candidates.len());
    if query.smallest {
        top_k(candidates, |i| -scores[i].abs(), k)
    } else {
        top_k(candidates, |i| scores[i].abs(), k)
    }
}

impl TopKBackend for Flex {
    fn top_k_mask(
        scores: FloatTensor<Self>,
        eligible: FloatTensor<Self>,
        query: TopKQuery,
    ) -> FloatTensor<Self> {
        let device = TensorMetadata::device(&scores);
        let read = |t| -> Vec<f32> {
            read_sync(Self::float_into_data(t))
                .expect("reading a CPU tensor")
                .try_to_vec::<f32>()
                .expect("f32 tensor")
        };
        let (scores, eligible) = (read(scores), read(eligible));
        let mut selected = vec![0.0f32; scores.len()];
        for i in reference(&scores, &eligible, query) {
            selected[i] = 1.0;
        }
        let n = selected.len();
        Self::float_from_data(TensorData::new(selected, [n]), &device)
    }
}

/// Layout of the selection state buffer shared by the top-k shaders.
const STATE_WORDS: usize = 4 + 256;

impl TopKBackend for CubeBackend {
    fn top_k_mask(scores: CubeTensor, eligible: CubeTensor, query: TopKQuery) -> CubeTensor {
        let f32_only = [DType::F32];
        let scores = wgsl::contiguous(scores, "scores", &f32_only);
        let eligible = wgsl::contiguous(eligible, "eligible", &f32_only);
        let n = scores.shape().num_elements();
        let selected = wgsl::empty_f32(&scores, scores.shape());
        let chunks = wgsl::groups_for(n);
        let (grid, groups_x) = wgsl::grid(chunks);
        let k = u32::try_from(query.k.min(n)).expect("layer larger than 2^32");
        let mut state = vec![0u32; STATE_WORDS];
        state[2] = k;
        let state = wgsl::u32_buffer(&scores, &state);
        let params = |shift: u32| {
            [
                n as u32,
                shift,
                query.smallest as u32,
                if query.among_ones { 1.0f32 } else { 0.0 }.to_bits(),
                k,
                groups_x,
            ]
        };
        for shift in [24u32, 16, 8, 0] {
            wgsl::launch(
                &scores,
                shader!("topk_histogram", "topk_common"),
                wgsl::WORKGROUP,
                grid.clone(),
                vec![
                    scores.handle.clone(),
                    eligible.handle.clone(),
                    state.clone(),
                ],
                &params(shift),
            );
            wgsl::launch(
                &scores,
                shader!("topk_select_bin"),
                1,
                cubecl::server::CubeCount::Static(1, 1, 1),
                vec![state.clone()],
                &[shift],
            );
        }
        let chunk_counts = scores.client.empty(chunks as usize * 4);
        wgsl::launch(
            &scores,
            shader!("topk_tie_counts", "topk_common"),
            wgsl::WORKGROUP,
            grid.clone(),
            vec![
                scores.handle.clone(),
                eligible.handle.clone(),
                state.clone(),
                chunk_counts.clone(),
            ],
            &params(0),
        );
        wgsl::launch(
            &scores,
            shader!("topk_tie_scan"),
            wgsl::WORKGROUP,
            cubecl::server::CubeCount::Static(1, 1, 1),
            vec![chunk_counts.clone()],
            &[chunks],
        );
        wgsl::launch(
            &scores,
            shader!("topk_mark", "topk_common"),
            wgsl::WORKGROUP,
            grid,
            vec![
                scores.handle.clone(),
                eligible.handle.clone(),
                state,
                chunk_counts,
                selected.handle.clone(),
            ],
            &params(0),
        );
        selected
    }
}
