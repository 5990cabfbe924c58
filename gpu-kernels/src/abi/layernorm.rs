//! The layernorm's parameters.

use super::Kernel;
use super::half::Half;
use super::launch::{HALVES_PER_VECTOR, LaunchDims, WARP, check_batch, check_vector_width};

/// `out = (x - mean) / sqrt(var + eps) * gamma + beta` per row, statistics in fp32.
///
/// One warp per row holds the row in registers: one read of the row from memory, then
/// exact two-pass statistics over the registers.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LayerNormParams {
    /// (batch, d_model) input.
    pub x: *const Half,
    /// (d_model) scale.
    pub gamma: *const Half,
    /// (d_model) shift.
    pub beta: *const Half,
    /// (batch, d_model) output; may not alias `x`.
    pub out: *mut Half,
    /// Row width, a multiple of 8, at most [`LayerNormParams::MAX_D_MODEL`].
    pub d_model: u32,
    /// Rows.
    pub batch: u32,
    /// Added to the variance (GPT-2: 1e-5).
    pub eps: f32,
}

impl LayerNormParams {
    /// 16-byte vectors each lane holds in registers.
    pub const VECTORS_PER_LANE: u32 = 8;
    /// The widest row one warp holds: 32 lanes x 8 vectors x 8 halves.
    pub const MAX_D_MODEL: u32 = WARP * Self::VECTORS_PER_LANE * HALVES_PER_VECTOR;
    /// Warps (rows) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;
}

impl Kernel for LayerNormParams {
    const ENTRIES: &'static [&'static str] = &["layernorm"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)?;
        if self.d_model > Self::MAX_D_MODEL {
            return Err("layernorm rows are at most 2048 wide");
        }
        Ok(())
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(
            self.batch.div_ceil(Self::WARPS_PER_BLOCK),
            Self::WARPS_PER_BLOCK * WARP,
        )
    }
}
