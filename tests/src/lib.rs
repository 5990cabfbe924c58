//! Helpers shared by the GPU tests: opening the GPU, fresh random inputs, error metrics.

use host::cuda::Gpu;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The reason every GPU test gives `#[ignore]`, so CI lists them as ignored.
pub const NEEDS_GPU: &str = "needs a CUDA GPU";

/// Opens GPU 0, or fails the test with the reason: a GPU test never passes without one.
pub fn gpu() -> Gpu {
    Gpu::open(0).unwrap_or_else(|e| panic!("this test needs a CUDA GPU: {e}"))
}

/// A random generator with a fresh seed each run, printed so a failure can be replayed
/// with `TEST_SEED=<seed>`.
pub fn fresh_rng() -> StdRng {
    let seed = std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("TEST_SEED={seed}");
    StdRng::seed_from_u64(seed)
}

/// `len` fp16 values drawn uniformly from (-scale, scale).
pub fn random_f16(rng: &mut StdRng, len: usize, scale: f32) -> Vec<half::f16> {
    (0..len)
        .map(|_| half::f16::from_f32(rng.random_range(-scale..scale)))
        .collect()
}

/// GPT-2 family widths and their head counts (head_dim 64): gpt2, -medium, -large, -xl.
pub const GPT2_WIDTHS: [(usize, usize); 4] = [(768, 12), (1024, 16), (1280, 20), (1600, 25)];
/// Batch sizes every kernel is tested at: 1, one that is no power of two, and the tiles'
/// middle and top.
pub const TEST_BATCHES: [usize; 4] = [1, 3, 8, 32];
/// GPT-2's vocabulary: not a multiple of 8 or 16.
pub const GPT2_VOCAB: usize = 50257;

/// fp16 values widened to f32.
pub fn to_f32(v: &[half::f16]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

/// f32 values rounded to fp16, as the GPU stores them.
pub fn to_f16(v: &[f32]) -> Vec<half::f16> {
    v.iter().map(|&x| half::f16::from_f32(x)).collect()
}

/// Fails with the relative L2 error and the largest difference when `out` is further than
/// `threshold` from `reference` (or holds a NaN: an element the kernel did not write).
pub fn assert_close(what: &str, out: &[f32], reference: &[f32], threshold: f64) {
    let error = relative_l2(out, reference);
    assert!(
        error <= threshold,
        "{what}: relative L2 error {error:e} > {threshold:e}; NaNs {}; largest difference \
         (index, gpu, cpu) {:?}",
        out.iter().filter(|x| x.is_nan()).count(),
        largest_difference(out, reference)
    );
}

pub use host::reference::relative_l2;

/// The index and values of the largest absolute difference, for failure messages.
pub fn largest_difference(out: &[f32], reference: &[f32]) -> Option<(usize, f32, f32)> {
    out.iter()
        .zip(reference)
        .enumerate()
        .max_by(|(_, (a, ra)), (_, (b, rb))| {
            let da = (*a - *ra).abs();
            let db = (*b - *rb).abs();
            da.partial_cmp(&db).unwrap_or(std::cmp::Ordering::Greater)
        })
        .map(|(i, (&o, &r))| (i, o, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_l2_is_zero_for_equal_and_infinite_for_nan() {
        let reference = [1.0, -2.0, 3.0];
        assert_eq!(relative_l2(&reference, &reference), 0.0);
        assert!(relative_l2(&[1.0, f32::NAN, 3.0], &reference).is_infinite());
        assert!(relative_l2(&[1.0, 2.0], &reference).is_infinite());
        let off = relative_l2(&[1.0, -2.0, 3.1], &reference);
        assert!((off - 0.1 / 14f64.sqrt()).abs() < 1e-6, "{off}");
    }

    #[test]
    fn largest_difference_points_at_the_worst_element() {
        assert_eq!(
            largest_difference(&[1.0, 5.0, 3.0], &[1.0, 2.0, 3.5]),
            Some((1, 5.0, 2.0))
        );
    }
}
