//! CPU twin of the random fill: the same values the GPU writes, bit for bit.

use gpu_kernels::abi::splitmix64;
use half::f16;

/// `len` values uniform in (-scale, scale) from `seed`, as `fill_uniform` writes them:
/// element i takes 24 bits of `splitmix64(seed + i)`.
pub fn fill_uniform(len: usize, seed: u64, scale: f32) -> Vec<f16> {
    (0..len as u64)
        .map(|i| {
            let unit = (splitmix64(seed.wrapping_add(i)) >> 40) as f32 / (1u32 << 24) as f32;
            f16::from_f32((2.0 * unit - 1.0) * scale)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lie_inside_the_interval_and_follow_the_seed() {
        let values = fill_uniform(10_000, 3, 0.5);
        assert!(values.iter().all(|v| v.to_f32().abs() <= 0.5));
        let mean = values.iter().map(|v| f64::from(v.to_f32())).sum::<f64>() / 1e4;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert_eq!(fill_uniform(8, 3, 0.5), values[..8]);
        assert_ne!(fill_uniform(8, 4, 0.5), values[..8]);
    }
}
