//! The RMSNorm's parameters.

use super::Kernel;
use super::half::Half;
use super::launch::{LaunchDims, WARP, check_batch, check_vector_width};

/// `out = x / sqrt(mean(x^2) + eps) * gamma` per row (Llama's and Qwen's norm), the
/// statistics and the product in fp32, rounded once.
///
/// One warp per row reads the row twice (the second time from L1): rows of any width.
/// It runs where no GEMV can fold the norm into its input: the final norm before the LM
/// head, and before the QKV and MLP GEMVs where their batch or row width has no folded
/// entry (with `gamma` null: unit scale, the scale being folded into the weights).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RmsNormParams {
    /// (batch, d_model) input.
    pub x: *const Half,
    /// (d_model) scale, or null for 1.
    pub gamma: *const Half,
    /// (batch, d_model) output; may not alias `x`.
    pub out: *mut Half,
    /// Row width, a multiple of 8.
    pub d_model: u32,
    /// Rows.
    pub batch: u32,
    /// Added to the mean square (Llama 3: 1e-5, Qwen2.5: 1e-6).
    pub eps: f32,
}

impl RmsNormParams {
    /// Warps (rows) per block.
    pub const WARPS_PER_BLOCK: u32 = 4;
}

impl Kernel for RmsNormParams {
    const ENTRIES: &'static [&'static str] = &["rmsnorm"];

    fn check(&self) -> Result<(), &'static str> {
        check_batch(self.batch)?;
        check_vector_width(self.d_model)
    }

    fn launch_dims(&self) -> LaunchDims {
        LaunchDims::linear(
            self.batch.div_ceil(Self::WARPS_PER_BLOCK),
            Self::WARPS_PER_BLOCK * WARP,
        )
    }
}
