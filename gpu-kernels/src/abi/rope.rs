//! Rotary position embedding of q and k, and K and V into the cache.

use super::Kernel;
use super::half::Half;
use super::launch::{LaunchDims, check_batch};

/// Splits the QKV projection's output `(batch, (n_head + 2 n_kv_head) head_dim)` (q
/// heads, then k heads, then v heads), rotates q and k by each sequence's position
/// (rotate-half pairing: dimension i pairs with i + head_dim / 2, as Llama and Qwen
/// apply it), writes q to `q` and the rotated k and v into the cache at the position.
///
/// `out[i] = y[i] cos - y[i + h/2] sin`, `out[i + h/2] = y[i + h/2] cos + y[i] sin`, with
/// `(cos, sin)` of `position * inv_freq[i]` from `rope`, a table the host computes once
/// per model (frequency scaling such as Llama 3.1's included), so the kernel does no
/// transcendental math. Positions come from device memory: one graph serves every
/// length of its bucket. A position at or past `capacity` stops the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RopeKvParams {
    /// (batch, (n_head + 2 n_kv_head) head_dim) the QKV projection.
    pub qkv: *const Half,
    /// (capacity, head_dim / 2, 2) (cos, sin) per position and frequency, f32.
    pub rope: *const f32,
    /// (batch) each sequence's position.
    pub positions: *const u32,
    /// (batch, n_head head_dim) rotated queries.
    pub q: *mut Half,
    /// (batch, n_kv_head, capacity, head_dim) keys of this layer.
    pub k: *mut Half,
    /// (batch, n_kv_head, capacity, head_dim) values of this layer.
    pub v: *mut Half,
    /// Query heads.
    pub n_head: u32,
    /// Key and value heads.
    pub n_kv_head: u32,
    /// Dimensions per head, even.
    pub head_dim: u32,
    /// Positions per sequence in the cache (and rows of `rope`).
    pub capacity: u32,
    /// Sequences.
    pub batch: u32,
}

impl RopeKvParams {
    /// Threads per block, one per rotation pair.
    pub const BLOCK: u32 = 256;

    /// Rotation pairs of one sequence: half of every head's dimensions.
    pub fn pairs(&self) -> u32 {
        (self.n_head + 2 * self.n_kv_head) * self.head_dim / 2
    }
}

impl Kernel for RopeKvParams {
    const ENTRIES: &'static [&'static str] = &["rope_kv"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) || self.n_kv_head == 0 {
            return Err("rotary embedding needs KV heads and an even head size");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims {
            grid: [self.pairs().div_ceil(Self::BLOCK), self.batch, 1],
            ..LaunchDims::linear(1, Self::BLOCK)
        }
    }
}
