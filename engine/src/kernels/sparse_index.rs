//! The compressed format the sparse kernels read, built on the host from a layer's mask:
//! the active positions listed by output channel (CSR rows, for the forward pass and the
//! weight gradient) and by input channel (for the input gradient, a gather without float
//! atomics). The weights themselves stay in their dense buffer, so autodiff and the
//! optimizer see an ordinary parameter; only the index changes when the mask does.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};

/// Where a layer's weights sit in its flat buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightLayout {
    pub out_channels: usize,
    pub in_channels: usize,
    /// kernel_h * kernel_w (1 for a linear layer).
    pub taps: usize,
    pub stride_oc: usize,
    pub stride_ic: usize,
}

impl WeightLayout {
    /// A conv weight `[out, in, kh, kw]`.
    pub fn conv(dims: [usize; 4]) -> Self {
        let taps = dims[2] * dims[3];
        Self {
            out_channels: dims[0],
            in_channels: dims[1],
            taps,
            stride_oc: dims[1] * taps,
            stride_ic: taps,
        }
    }

    /// A Burn linear weight `[in, out]`.
    pub fn linear(dims: [usize; 2]) -> Self {
        Self {
            out_channels: dims[1],
            in_channels: dims[0],
            taps: 1,
            stride_oc: 1,
            stride_ic: dims[1],
        }
    }

    pub fn numel(&self) -> usize {
        self.out_channels * self.in_channels * self.taps
    }

    pub fn flat(&self, oc: usize, ic: usize, tap: usize) -> usize {
        oc * self.stride_oc + ic * self.stride_ic + tap
    }
}

/// The index on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseIndex {
    pub layout: WeightLayout,
    /// `row_start[oc]..row_start[oc + 1]` are output channel oc's entries `ic * taps + tap`.
    pub row_start: Vec<i32>,
    pub row_entries: Vec<i32>,
    /// `col_start[ic]..col_start[ic + 1]` are input channel ic's entries `oc * taps + tap`.
    pub col_start: Vec<i32>,
    pub col_entries: Vec<i32>,
}

impl SparseIndex {
    /// Builds the index from `active` in the layer's flat order.
    pub fn new(layout: WeightLayout, active: &[bool]) -> Self {
        assert_eq!(active.len(), layout.numel(), "mask and weight sizes differ");
        assert!(
            layout.numel() < i32::MAX as usize,
            "layer too large for a 32-bit index"
        );
        let (oc_n, ic_n, taps) = (layout.out_channels, layout.in_channels, layout.taps);
        let mut row_start = vec![0i32; oc_n + 1];
        let mut row_entries = Vec::new();
        for oc in 0..oc_n {
            for ic in 0..ic_n {
                for tap in 0..taps {
                    if active[layout.flat(oc, ic, tap)] {
                        row_entries.push((ic * taps + tap) as i32);
                    }
                }
            }
            row_start[oc + 1] = row_entries.len() as i32;
        }
        let mut col_start = vec![0i32; ic_n + 1];
        let mut col_entries = Vec::with_capacity(row_entries.len());
        for ic in 0..ic_n {
            for oc in 0..oc_n {
                for tap in 0..taps {
                    if active[layout.flat(oc, ic, tap)] {
                        col_entries.push((oc * taps + tap) as i32);
                    }
                }
            }
            col_start[ic + 1] = col_entries.len() as i32;
        }
        Self {
            layout,
            row_start,
            row_entries,
            col_start,
            col_entries,
        }
    }

    pub fn nnz(&self) -> usize {
        self.row_entries.len()
    }

    /// Uploads the index to `device`.
    pub fn to_device(&self, device: &Device) -> DeviceSparseIndex {
        // Empty buffers cannot be bound: an all-pruned layer gets one unread entry.
        let upload = |values: &[i32]| {
            let values = if values.is_empty() {
                vec![0]
            } else {
                values.to_vec()
            };
            let n = values.len();
            // 32-bit on every backend: the shaders read array<i32>, and Flex's loops then
            // borrow the buffer as it is (its default int type is wider, which would
            // mean a converted copy on every call).
            Tensor::<1, Int>::from_data(TensorData::new(values, [n]), (device, DType::I32))
        };
        DeviceSparseIndex {
            layout: self.layout,
            nnz: self.nnz(),
            row_start: upload(&self.row_start),
            row_entries: upload(&self.row_entries),
            col_start: upload(&self.col_start),
            col_entries: upload(&self.col_entries),
        }
    }
}

/// The index on a device, as the kernels take it.
#[derive(Clone, Debug)]
pub struct DeviceSparseIndex {
    pub layout: WeightLayout,
    pub nnz: usize,
    pub row_start: Tensor<1, Int>,
    pub row_entries: Tensor<1, Int>,
    pub col_start: Tensor<1, Int>,
    pub col_entries: Tensor<1, Int>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_columns_list_the_same_active_positions() {
        let layout = WeightLayout::conv([3, 2, 2, 2]);
        let active: Vec<bool> = (0..layout.numel()).map(|i| i % 3 == 0).collect();
        let index = SparseIndex::new(layout, &active);
        assert_eq!(index.nnz(), active.iter().filter(|a| **a).count());
        let mut from_rows = Vec::new();
        for oc in 0..3 {
            for e in index.row_start[oc]..index.row_start[oc + 1] {
                let r = index.row_entries[e as usize] as usize;
                from_rows.push(layout.flat(oc, r / 4, r % 4));
            }
        }
        let mut from_cols = Vec::new();
        for ic in 0..2 {
            for e in index.col_start[ic]..index.col_start[ic + 1] {
                let q = index.col_entries[e as usize] as usize;
                from_cols.push(layout.flat(q / 4, ic, q % 4));
            }
        }
        from_rows.sort_unstable();
        from_cols.sort_unstable();
        let expected: Vec<usize> = (0..layout.numel()).filter(|&i| active[i]).collect();
        assert_eq!(from_rows, expected);
        assert_eq!(from_cols, expected);
    }

    #[test]
    fn linear_layout_follows_burns_in_by_out_weight() {
        // Burn's Linear weight is [in, out]: element (i, o) sits at i * out + o.
        let (i, o, d_out) = (1, 2, 3);
        let layout = WeightLayout::linear([4, d_out]);
        assert_eq!(layout.flat(o, i, 0), i * d_out + o);
        let mut active = vec![false; 12];
        active[i * d_out + o] = true;
        let index = SparseIndex::new(layout, &active);
        assert_eq!(index.row_start, vec![0, 0, 0, 1]);
        assert_eq!(index.row_entries, vec![1]);
    }
}
