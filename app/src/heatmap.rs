//! A layer's mask as a heatmap: the weight as stored, rows = its first dim, columns = the
//! rest flattened (a conv's `in x kh x kw`), pooled into at most `MAX_ROWS x MAX_COLS`
//! cells so ResNet-18's 512x4608 layers stay a few kilobytes per message.

use crate::protocol::LayerHeatmap;
use sparselab::sparsity::LayerMask;

pub const MAX_ROWS: usize = 64;
pub const MAX_COLS: usize = 192;

/// `grown` and `pruned`: flat indices changed since the previous heatmap of this layer.
pub fn layer_heatmap(mask: &LayerMask, grown: &[usize], pruned: &[usize]) -> LayerHeatmap {
    let full_rows = mask.dims.first().copied().unwrap_or(1).max(1);
    let full_cols = (mask.numel() / full_rows).max(1);
    let pool_r = full_rows.div_ceil(MAX_ROWS);
    let pool_c = full_cols.div_ceil(MAX_COLS);
    let (rows, cols) = (full_rows.div_ceil(pool_r), full_cols.div_ceil(pool_c));
    let cell_of = |i: usize| (i / full_cols / pool_r) * cols + (i % full_cols) / pool_c;
    let mut active = vec![0usize; rows * cols];
    let mut size = vec![0usize; rows * cols];
    for (i, &on) in mask.active.iter().enumerate() {
        let c = cell_of(i);
        size[c] += 1;
        active[c] += on as usize;
    }
    let mut change = vec![0u8; rows * cols];
    for &i in pruned {
        change[cell_of(i)] = 2;
    }
    for &i in grown {
        change[cell_of(i)] = 1;
    }
    LayerHeatmap {
        path: mask.path.clone(),
        nnz: mask.nnz(),
        numel: mask.numel(),
        rows,
        cols,
        pool: (pool_r, pool_c),
        // Any active weight shows: a cell with 1 of 4,096 active is not drawn as empty.
        active: active
            .iter()
            .zip(&size)
            .map(|(&a, &n)| match a {
                0 => 0,
                _ => (a * 255 / n.max(1)).max(1) as u8,
            })
            .collect(),
        change,
        grown: grown.len(),
        pruned: pruned.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(dims: Vec<usize>, active: Vec<bool>) -> LayerMask {
        LayerMask {
            path: "l".into(),
            dims,
            active,
        }
    }

    #[test]
    fn small_layers_are_exact() {
        // 2 output channels x (1 in x 2 x 2): 2 rows, 4 columns.
        let m = mask(
            vec![2, 1, 2, 2],
            vec![true, false, false, false, false, false, true, true],
        );
        let h = layer_heatmap(&m, &[6], &[1]);
        assert_eq!((h.rows, h.cols, h.pool), (2, 4, (1, 1)));
        assert_eq!(h.active, vec![255, 0, 0, 0, 0, 0, 255, 255]);
        assert_eq!(h.change, vec![0, 2, 0, 0, 0, 0, 1, 0]);
        assert_eq!((h.nnz, h.numel, h.grown, h.pruned), (3, 8, 1, 1));
    }

    #[test]
    fn large_layers_pool_and_keep_lone_weights_visible() {
        let (out, inner) = (512, 4608);
        let mut active = vec![false; out * inner];
        active[123] = true;
        let h = layer_heatmap(&mask(vec![out, 512, 3, 3], active), &[], &[123]);
        assert_eq!((h.rows, h.cols), (64, 192));
        assert_eq!(h.pool, (8, 24));
        assert_eq!(h.active.iter().filter(|&&a| a > 0).count(), 1);
        assert_eq!(h.active[123 / 24], 1);
        assert_eq!(h.change[123 / 24], 2);
    }
}
