//! Turns images into normalised float batches, with CIFAR's standard augmentation:
//! 4-pixel zero padding + random 32x32 crop, and a random horizontal flip.

use super::{IMAGE_BYTES, IMAGE_SIZE, ImageSet};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation, in [0, 1] pixel units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// Measured on the given images (the training portion, never the validation one).
    pub fn measure(set: &ImageSet, indices: &[usize]) -> Self {
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        let mut sum = [0f64; 3];
        let mut sq = [0f64; 3];
        for &i in indices {
            let img = set.image(i);
            for c in 0..3 {
                for &p in &img[c * plane..(c + 1) * plane] {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = (indices.len() * plane).max(1) as f64;
        let mut norm = Normalization {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        for c in 0..3 {
            let mean = sum[c] / n;
            norm.mean[c] = mean as f32;
            norm.std[c] = ((sq[c] / n - mean * mean).max(1e-8)).sqrt() as f32;
        }
        norm
    }
}

/// A batch ready for the device: `images` is `[size, 3, 32, 32]` row-major.
#[derive(Clone, Debug)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    pub size: usize,
}

#[derive(Clone, Debug)]
pub struct Batcher {
    pub normalization: Normalization,
    /// Per channel: (scale, shift) so that x = pixel * scale + shift.
    affine: [(f32, f32); 3],
}

impl Batcher {
    pub fn new(normalization: Normalization) -> Self {
        let affine = std::array::from_fn(|c| {
            let s = 1.0 / (255.0 * normalization.std[c]);
            (s, -normalization.mean[c] / normalization.std[c])
        });
        Self {
            normalization,
            affine,
        }
    }

    /// Builds a batch of `indices`; `augment` carries the RNG for crops and flips.
    pub fn batch(&self, set: &ImageSet, indices: &[usize], augment: Option<&mut Rng>) -> Batch {
        let mut images = vec![0f32; indices.len() * IMAGE_BYTES];
        let mut labels = Vec::with_capacity(indices.len());
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        let mut rng = augment;
        for (b, &i) in indices.iter().enumerate() {
            let src = set.image(i);
            let dst = &mut images[b * IMAGE_BYTES..(b + 1) * IMAGE_BYTES];
            labels.push(set.labels[i] as i64);
            let (dx, dy, flip) = match rng.as_deref_mut() {
                Some(r) => (
                    r.below(9) as i32 - 4,
                    r.below(9) as i32 - 4,
                    r.below(2) == 1,
                ),
                None => (0, 0, false),
            };
            for c in 0..3 {
                let (scale, shift) = self.affine[c];
                for y in 0..IMAGE_SIZE {
                    let sy = y as i32 + dy;
                    for x in 0..IMAGE_SIZE {
                        let xo = if flip { IMAGE_SIZE - 1 - x } else { x };
                        let sx = xo as i32 + dx;
                        // Zero padding in pixel space, like torchvision's RandomCrop(padding=4).
                        let pixel = if (0..IMAGE_SIZE as i32).contains(&sy)
                            && (0..IMAGE_SIZE as i32).contains(&sx)
                        {
                            src[c * plane + sy as usize * IMAGE_SIZE + sx as usize] as f32
                        } else {
                            0.0
                        };
                        dst[c * plane + y * IMAGE_SIZE + x] = pixel * scale + shift;
                    }
                }
            }
        }
        Batch {
            images,
            labels,
            size: indices.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic;

    #[test]
    fn normalised_training_pixels_have_zero_mean_unit_std() {
        let set = synthetic::generate(100, 2);
        let idx: Vec<usize> = (0..100).collect();
        let batcher = Batcher::new(Normalization::measure(&set, &idx));
        let b = batcher.batch(&set, &idx, None);
        let plane = IMAGE_SIZE * IMAGE_SIZE;
        for c in 0..3 {
            let vals: Vec<f32> = b
                .images
                .chunks_exact(IMAGE_BYTES)
                .flat_map(|img| img[c * plane..(c + 1) * plane].to_vec())
                .collect();
            let mean = vals.iter().sum::<f32>() / vals.len() as f32;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / vals.len() as f32;
            assert!(mean.abs() < 1e-3, "mean {mean}");
            assert!((var.sqrt() - 1.0).abs() < 1e-2, "std {}", var.sqrt());
        }
    }

    #[test]
    fn augmentation_is_a_shifted_flipped_copy() {
        let set = synthetic::generate(1, 2);
        let norm = Normalization {
            mean: [0.0; 3],
            std: [1.0 / 255.0; 3],
        };
        let batcher = Batcher::new(norm);
        let plain = batcher.batch(&set, &[0], None);
        let mut rng = Rng::new(9);
        let mut probe = rng.clone();
        let (dx, dy, flip) = (
            probe.below(9) as i32 - 4,
            probe.below(9) as i32 - 4,
            probe.below(2) == 1,
        );
        let aug = batcher.batch(&set, &[0], Some(&mut rng));
        let (y, x) = (15usize, 10usize);
        let xo = if flip { 31 - x } else { x };
        let (sy, sx) = ((y as i32 + dy) as usize, (xo as i32 + dx) as usize);
        assert_eq!(aug.images[y * 32 + x], plain.images[sy * 32 + sx]);
    }
}
