//! Exact top-k selection with deterministic tie-breaking: the CPU reference for every
//! prune (smallest magnitudes) and grow (largest gradients) decision.

use std::cmp::Ordering;

/// Orders (score, index) pairs: higher score first; equal scores, lower index first.
/// NaN scores rank below everything, so a NaN is never selected ahead of a number.
fn rank(a: (f32, usize), b: (f32, usize)) -> Ordering {
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    key(b.0).total_cmp(&key(a.0)).then(a.1.cmp(&b.1))
}

/// Indices of the `k` highest `score(i)` among `candidates`, exact in count.
/// Runs in O(n) expected time (quickselect), not a full sort.
pub fn top_k(
    candidates: impl IntoIterator<Item = usize>,
    score: impl Fn(usize) -> f32,
    k: usize,
) -> Vec<usize> {
    let mut items: Vec<(f32, usize)> = candidates.into_iter().map(|i| (score(i), i)).collect();
    assert!(k <= items.len(), "top_k: asked for {k} of {}", items.len());
    if k == 0 {
        return Vec::new();
    }
    if k < items.len() {
        items.select_nth_unstable_by(k - 1, |a, b| rank(*a, *b));
        items.truncate(k);
    }
    let mut out: Vec<usize> = items.into_iter().map(|(_, i)| i).collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_largest_and_breaks_ties_by_index() {
        let s = [0.5f32, 3.0, 1.0, 3.0, 3.0, -1.0];
        assert_eq!(top_k(0..6, |i| s[i], 2), vec![1, 3]);
        assert_eq!(top_k(0..6, |i| s[i], 4), vec![1, 2, 3, 4]);
        assert_eq!(top_k([0, 2, 5], |i| s[i], 2), vec![0, 2]);
        assert_eq!(top_k(0..6, |i| -s[i].abs(), 1), vec![0]);
    }

    #[test]
    fn nan_is_never_preferred() {
        let s = [f32::NAN, 0.1, f32::NAN];
        assert_eq!(top_k(0..3, |i| s[i], 1), vec![1]);
    }

    #[test]
    fn matches_a_full_sort() {
        let mut r = crate::rng::Rng::new(3);
        // Few distinct values so ties are common.
        let s: Vec<f32> = (0..500).map(|_| (r.below(20) as f32) * 0.25).collect();
        for k in [0, 1, 7, 250, 500] {
            let mut idx: Vec<usize> = (0..500).collect();
            idx.sort_by(|&a, &b| rank((s[a], a), (s[b], b)));
            let mut want = idx[..k].to_vec();
            want.sort();
            assert_eq!(top_k(0..500, |i| s[i], k), want);
        }
    }
}
