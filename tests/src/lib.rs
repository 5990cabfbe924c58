//! Helpers shared by the tests: opening the GPU, fresh random inputs, error metrics, and
//! model directories to load.

pub mod model_dir;

use gpu_kernels::abi::HalfType;
use gpu_kernels::abi::{Epilogue, GemvParams, HEAD_DIM, KvCacheLayer};
use host::cuda::{Gpu, GpuBuffer, HalfBits};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The reason every GPU test gives `#[ignore]`, so CI lists them as ignored.
pub const NEEDS_GPU: &str = "needs a CUDA GPU";

/// Opens GPU 0, or fails the test with the reason: a GPU test never passes without one.
pub fn gpu() -> Gpu {
    gpu_for(HalfType::F16)
}

/// GPU 0 with the kernels over `half` loaded (fails the test without a GPU).
pub fn gpu_for(half: HalfType) -> Gpu {
    Gpu::open_for(0, half).unwrap_or_else(|e| panic!("this test needs a CUDA GPU: {e}"))
}

/// `len` values of `half` drawn uniformly from (-scale, scale).
pub fn random_halves(rng: &mut StdRng, len: usize, scale: f32, half: HalfType) -> Vec<HalfBits> {
    (0..len)
        .map(|_| HalfBits::from_f32(rng.random_range(-scale..scale), half))
        .collect()
}

/// The relative L2 error a kernel's output stored in `half` reaches from its rounding
/// alone, with room: fp16 keeps 11 significant bits, bf16 8.
pub fn storage_threshold(half: HalfType) -> f64 {
    match half {
        HalfType::F16 => 2e-3,
        HalfType::Bf16 => 1e-2,
    }
}

/// Head layouts of the models with rotary positions, (query heads, KV heads, head size):
/// Llama 3.2 1B and 3B, Llama 3.1 8B, Qwen2.5 0.5B, 1.5B and 7B, SmolLM2 135M.
pub const GQA_HEADS: [(usize, usize, usize); 7] = [
    (32, 8, 64),
    (24, 8, 128),
    (32, 8, 128),
    (14, 2, 64),
    (12, 2, 128),
    (28, 4, 128),
    (9, 3, 64),
];

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

/// The outputs of a QKV projection into the cache: q, and K and V at a random position
/// of each sequence in a cache of `capacity` positions per head, all poisoned, and the
/// check of them against the CPU's (batch, 3 d) projection.
pub struct QkvOutputs {
    q: GpuBuffer<half::f16>,
    k: GpuBuffer<half::f16>,
    v: GpuBuffer<half::f16>,
    positions: Vec<u32>,
    positions_gpu: GpuBuffer<u32>,
    d: usize,
    n_head: usize,
    capacity: usize,
}

impl QkvOutputs {
    /// Poisoned outputs for `batch` sequences at random positions below `capacity`.
    pub fn new(
        gpu: &Gpu,
        rng: &mut StdRng,
        (d, n_head): (usize, usize),
        capacity: usize,
        batch: usize,
    ) -> Self {
        let positions: Vec<u32> = (0..batch)
            .map(|_| rng.random_range(0..capacity as u32))
            .collect();
        let cache_len = batch * n_head * capacity * HEAD_DIM as usize;
        QkvOutputs {
            q: gpu.alloc_poisoned(batch * d).unwrap(),
            k: gpu.alloc_poisoned(cache_len).unwrap(),
            v: gpu.alloc_poisoned(cache_len).unwrap(),
            positions_gpu: gpu.upload(&positions).unwrap(),
            positions,
            d,
            n_head,
            capacity,
        }
    }

    /// The GEMV writing them from `x` with weight `w` (3 d, d) and `bias`.
    pub fn params(
        &mut self,
        x: &GpuBuffer<half::f16>,
        w: &GpuBuffer<half::f16>,
        bias: &GpuBuffer<half::f16>,
    ) -> GemvParams {
        GemvParams {
            x: x.as_ptr(),
            w: w.as_ptr(),
            bias: bias.as_ptr(),
            out: self.q.as_mut_ptr(),
            residual: std::ptr::null(),
            cache: KvCacheLayer {
                k: self.k.as_mut_ptr(),
                v: self.v.as_mut_ptr(),
                positions: self.positions_gpu.as_ptr(),
                capacity: self.capacity as u32,
            },
            in_features: self.d as u32,
            out_features: 3 * self.d as u32,
            batch: self.positions.len() as u32,
            epilogue: Epilogue::QkvToCache as u32,
        }
    }

    /// Checks q and the cache entries at each sequence's position against `qkv` (the
    /// CPU's projection, (batch, 3 d)) and that no other cache entry was written.
    pub fn assert_match(&self, what: &str, qkv: &[f32], threshold: f64) {
        let (d, n_head, capacity) = (self.d, self.n_head, self.capacity);
        let (k, v) = (
            to_f32(&self.k.to_host().unwrap()),
            to_f32(&self.v.to_host().unwrap()),
        );
        let q = to_f32(&self.q.to_host().unwrap());
        let hd = HEAD_DIM as usize;
        let (mut q_ref, mut kv_ref, mut kv_got) = (Vec::new(), Vec::new(), Vec::new());
        let mut written = vec![false; k.len()];
        for (b, &position) in self.positions.iter().enumerate() {
            let row = &qkv[b * 3 * d..][..3 * d];
            q_ref.extend_from_slice(&row[..d]);
            for c in 0..d {
                let at = ((b * n_head + c / hd) * capacity + position as usize) * hd + c % hd;
                kv_ref.extend_from_slice(&[row[d + c], row[2 * d + c]]);
                kv_got.extend_from_slice(&[k[at], v[at]]);
                written[at] = true;
            }
        }
        assert_close(&format!("q: {what}"), &q, &q_ref, threshold);
        assert_close(&format!("k and v: {what}"), &kv_got, &kv_ref, threshold);
        let stray = (0..k.len())
            .filter(|&i| !written[i] && !(k[i].is_nan() && v[i].is_nan()))
            .count();
        assert_eq!(
            stray, 0,
            "{what}: cache entries written outside the positions"
        );
    }
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
